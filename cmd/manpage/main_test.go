package main

import (
	"os"
	"strings"
	"testing"
)

const title = "% tool(8) | System Administration\n"

func TestRender(t *testing.T) {
	tests := []struct {
		name, md string
		want     string // the output after the .TH line
	}{
		{"section and paragraph", title + "# Name\n\ntool - does it\n",
			".SH \"NAME\"\ntool \\- does it\n"},
		{"paragraphs are separated", title + "# A\n\none\ntwo\n\nthree\n",
			".SH \"A\"\none\ntwo\n.PP\nthree\n"},
		{"subsection", title + "## Sub part\n", ".SS \"Sub part\"\n"},
		{"inline markup", title + "**b** *i* `c --x`\n",
			".PP\n\\fBb\\fR \\fIi\\fR \\fBc \\-\\-x\\fR\n"},
		{"a lone star is text", title + "5 * 3\n", ".PP\n5 * 3\n"},
		{"definition with continuation", title + "**--flag** *X*\n:   does\n    more\n\nnext\n",
			".TP\n\\fB\\-\\-flag\\fR \\fIX\\fR\ndoes\nmore\n.PP\nnext\n"},
		{"bullet", title + "- one\n- two\n", ".IP \\(bu 2\none\n.IP \\(bu 2\ntwo\n"},
		{"literal block keeps markup and escapes", title + "```\n**x** a\\b\n.dot\n```\n",
			".PP\n.RS 4\n.nf\n**x** a\\eb\n\\&.dot\n.fi\n.RE\n"},
		{"a text line starting with a dot or quote is not a request", title + ".TH evil\n'x\n",
			".PP\n\\&.TH evil\n\\&'x\n"},
		{"non-ASCII punctuation", title + "FILE… a—b →\n", ".PP\nFILE\\&... a\\(emb \\(->\n"},
		{"CRLF input", strings.ReplaceAll(title+"# A\r\ntext\r\n", "\n", "\r\n"), ".SH \"A\"\ntext\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := render([]byte(tt.md), "1.0", "2026-01-02")
			if err != nil {
				t.Fatal(err)
			}
			head, body, _ := strings.Cut(string(out), "\n")
			if want := `.TH "TOOL" 8 "2026\-01\-02" "tool 1.0" "System Administration"`; head != want {
				t.Errorf("title line\n got %s\nwant %s", head, want)
			}
			if body != tt.want {
				t.Errorf("body\n got %q\nwant %q", body, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct{ name, md, want string }{
		{"empty", "", "line 1: want the title line"},
		{"no title", "# NAME\n", "line 1: want the title line"},
		{"title without section", "% tool | x\n", "line 1: want the title line"},
		{"open literal", title + "text\n```\ncode\n", "line 3: literal block (```) not closed"},
		{"definition without term", title + "\n:   orphan\n", "line 3: a definition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render([]byte(tt.md), "", "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRenderTitleQuotes: a quote in the manual name cannot end the macro
// argument early.
func TestRenderTitleQuotes(t *testing.T) {
	out, err := render([]byte("% tool(1) | say \"hi\"\n"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `.TH "TOOL" 1 "" "tool" "say ""hi"""` + "\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

// TestManPageSource renders the project's man page: the one source must stay
// within the subset this converter knows, and keep the sections man(1)
// readers look for.
func TestManPageSource(t *testing.T) {
	md, err := os.ReadFile("../../docs/proxmox-agent.8.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := render(md, "1.2.3", "2026-01-02")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.SH "NAME"`, `.SH "SYNOPSIS"`, `.SH "OPTIONS"`, `.SH "FILES"`, `.SH "EXIT STATUS"`, `.SH "SEE ALSO"`,
		`\-\-version`, `token_file`, `CREDENTIALS_DIRECTORY`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add([]byte(title + "# A\n**b** `c`\n- d\n```\ne\n```\nf\n:   g\n"))
	f.Fuzz(func(t *testing.T, md []byte) {
		out, err := render(md, "v", "d")
		if err != nil {
			return
		}
		// Every line the input could start is neutralised: no line of
		// output begins with a request the converter did not write.
		for _, l := range strings.Split(string(out), "\n") {
			if (strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'")) && !knownRequest(l) {
				t.Fatalf("unexpected request line %q", l)
			}
		}
	})
}

func knownRequest(l string) bool {
	for _, p := range []string{".TH ", ".SH ", ".SS ", ".PP", ".TP", ".IP ", ".RS ", ".RE", ".nf", ".fi"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
