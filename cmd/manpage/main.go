// Command manpage turns the man page's one source, docs/proxmox-agent.8.md,
// into roff for man(1), at package build time. It knows the small Markdown
// subset that file uses, so the build needs neither pandoc nor the network:
//
//	% NAME(SECTION) | MANUAL   the title line (first line)
//	# HEADING                   a section (.SH); ## a subsection (.SS)
//	TERM                        a tagged paragraph (.TP): the term on one
//	:   DEFINITION              line, the definition after ":   ", more
//	    continued               lines indented by four spaces
//	- item                      a bulleted item
//	```                         a literal block, up to the next ```
//	**bold**, *italic*, `code`  inline (code is set in bold)
//
// Anything else is running text; a blank line ends a paragraph.
//
//	go run ./cmd/manpage -version 1.2.3 -date 2026-12-06 < in.md > out.8
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

func main() {
	version := flag.String("version", "", "the version shown in the page footer")
	date := flag.String("date", "", "the date shown in the page footer (YYYY-MM-DD)")
	flag.Parse()
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manpage: read stdin:", err)
		os.Exit(1)
	}
	out, err := render(in, *version, *date)
	if err != nil {
		fmt.Fprintln(os.Stderr, "manpage:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "manpage: write stdout:", err)
		os.Exit(1)
	}
}

var titleRE = regexp.MustCompile(`^% ([A-Za-z0-9_.-]+)\(([0-9][a-z]*)\)(?: \| (.*))?$`)

// renderer holds the state of one conversion: the output and whether a
// paragraph of running text is open (then a text line needs no macro).
type renderer struct {
	out    bytes.Buffer
	inText bool
	// afterHeading: the last line was .SH or .SS, which starts a paragraph
	// itself (a .PP there is useless, and lintian says so).
	afterHeading bool
}

// render converts the Markdown subset described in the package comment to
// roff. An input that does not start with the title line, or that leaves a
// literal block open, is an error naming the line.
func render(md []byte, version, date string) ([]byte, error) {
	lines := strings.Split(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n")
	m := titleRE.FindStringSubmatch(lines[0])
	if m == nil {
		return nil, errors.New(`line 1: want the title line "% NAME(SECTION) | MANUAL"`)
	}
	r := &renderer{}
	source := m[1]
	if version != "" {
		source += " " + version
	}
	fmt.Fprintf(&r.out, ".TH %s %s %s %s %s\n", quote(strings.ToUpper(m[1])), m[2], quote(date), quote(source), quote(m[3]))
	for i := 1; i < len(lines); i++ {
		next, err := r.line(lines, i)
		if err != nil {
			return nil, err
		}
		i = next
	}
	return r.out.Bytes(), nil
}

// line renders the construct starting at lines[i] and returns the index of
// its last line.
func (r *renderer) line(lines []string, i int) (int, error) {
	l := lines[i]
	switch {
	case strings.TrimSpace(l) == "":
		r.inText = false
	case strings.HasPrefix(l, "## "):
		r.macro(".SS " + quote(strings.TrimSpace(l[3:])))
	case strings.HasPrefix(l, "# "):
		r.macro(".SH " + quote(strings.ToUpper(strings.TrimSpace(l[2:]))))
	case strings.HasPrefix(l, "```"):
		return r.literal(lines, i)
	case strings.HasPrefix(l, "- "):
		r.macro(`.IP \(bu 2`)
		r.text(l[2:])
		r.inText = true
	case i+1 < len(lines) && strings.HasPrefix(lines[i+1], ":   "):
		return r.definition(lines, i), nil
	case strings.HasPrefix(l, ":   "):
		return 0, fmt.Errorf("line %d: a definition (\":   \") without a term on the line before", i+1)
	default:
		if !r.inText && !r.afterHeading {
			r.macro(".PP")
		}
		r.inText = true
		r.text(strings.TrimSpace(l))
	}
	return i, nil
}

// definition renders a term and its definition (.TP) and returns the index
// of the definition's last line.
func (r *renderer) definition(lines []string, i int) int {
	r.macro(".TP")
	r.text(strings.TrimSpace(lines[i]))
	r.text(strings.TrimSpace(lines[i+1][4:]))
	i++
	for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    ") && strings.TrimSpace(lines[i+1]) != "" {
		i++
		r.text(strings.TrimSpace(lines[i]))
	}
	r.inText = true // a following text line continues the definition
	return i
}

// literal renders a fenced block as it stands (no fill, no inline markup)
// and returns the index of the closing fence.
func (r *renderer) literal(lines []string, start int) (int, error) {
	r.macro(".PP")
	r.macro(".RS 4")
	r.macro(".nf")
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "```") {
			r.macro(".fi")
			r.macro(".RE")
			r.inText = false
			return i, nil
		}
		r.out.WriteString(lineStart(escape(lines[i])) + "\n")
	}
	return 0, fmt.Errorf("line %d: literal block (```) not closed", start+1)
}

func (r *renderer) macro(m string) {
	r.out.WriteString(m + "\n")
	r.inText = false
	r.afterHeading = strings.HasPrefix(m, ".SH ") || strings.HasPrefix(m, ".SS ")
}

// text writes one line of running text with its inline markup.
func (r *renderer) text(s string) {
	r.out.WriteString(lineStart(inline(escape(s))) + "\n")
	r.afterHeading = false
}

var (
	boldRE   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	italicRE = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
	codeRE   = regexp.MustCompile("`([^`]+)`")
)

// inline turns **bold**, *italic* and `code` into font changes. It runs on
// escaped text: escaping leaves the markers alone.
func inline(s string) string {
	s = codeRE.ReplaceAllString(s, `\fB$1\fR`)
	s = boldRE.ReplaceAllString(s, `\fB$1\fR`)
	return italicRE.ReplaceAllString(s, `\fI$1\fR`)
}

// escape makes text literal for roff: the escape character, hyphens (a bare
// "-" may be set as a hyphen, not the minus of an option) and the few
// non-ASCII characters the page uses.
func escape(s string) string {
	return strings.NewReplacer(
		`\`, `\e`,
		"-", `\-`,
		"…", `\&...`,
		"—", `\(em`,
		"→", `\(->`,
	).Replace(s)
}

// lineStart keeps a line that starts with "." or "'" from being read as a
// request.
func lineStart(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// quote makes one macro argument: double quotes around, inner ones doubled.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `""`) + `"`
}
