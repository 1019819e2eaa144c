package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"fast", "fast"},
		{"nœud-é 🙂", "nœud-é 🙂"},
		{"\x1b[31mred", `\x1b[31mred`},
		{"a\rb\nc\td\x00\x7f", `a\x0db\x0ac\x09d\x00\x7f`},
		{"\u009b2J", `\u009b2J`},       // C1 CSI
		{"\u202eevil", `\u202eevil`},   // bidi override
		{"\U000e0041", `\U000e0041`},   // a tag character (Cf)
		{"bad\xffutf8", `bad\xffutf8`}, // invalid UTF-8
		{`back\x1b`, `back\x1b`},       // a backslash is text
		{"\ufffd ok", `\ufffd ok`},     // a real U+FFFD is escaped too
		{"", ""},
	}
	for _, c := range cases {
		if got := escape(c.in); got != c.want {
			t.Errorf("escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// hostileLog is a samples.log in which someone forged entry headers: a
// phx_join, a kind carrying a terminal escape, a damaged entry whose
// collected_at carries one, between two real samples.
func hostileLog(t *testing.T) string {
	t.Helper()
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	entry := func(kind string, ts time.Time, collected string) []byte {
		return dump.AppendSample(nil, &dump.SampleRecord{At: ts, Kind: kind,
			Payload: []byte(`{"collected_at": "` + collected + `", "data": {}}`)})
	}
	var b []byte
	b = append(b, entry("fast", at, dump.Timestamp(at))...)
	b = append(b, entry("phx_join", at.Add(time.Second), dump.Timestamp(at.Add(time.Second)))...)
	b = append(b, entry("\x1b[31mred\x1b[0m", at.Add(2*time.Second), dump.Timestamp(at.Add(2*time.Second)))...)
	b = append(b, entry("fast", at.Add(3*time.Second), `\u001b]0;pwned\u0007`)...)
	b = append(b, entry("medium", at.Add(4*time.Second), dump.Timestamp(at.Add(4*time.Second)))...)
	b = append(b, entry("phx_join", at.Add(5*time.Second), dump.Timestamp(at.Add(5*time.Second)))...)
	file := filepath.Join(t.TempDir(), "samples.log")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func noControl(t *testing.T, what, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\x1b\x07\x9b") {
		t.Errorf("%s carries raw control characters: %q", what, s)
	}
}

// Issue 17 item 4: only metric:fast|medium|slow go out; the other kinds are
// counted, skipped and reported at the end; nothing from the file reaches
// the terminal unescaped.
func TestReplayPushesOnlyMetricKinds(t *testing.T) {
	file := hostileLog(t)
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	cfg := testkit.WriteConfig(t, testkit.Config{URL: s.URL(), SpoolDir: "-"})
	var out, errb bytes.Buffer
	code := run([]string{"replay", file, "--config", cfg}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	var events []string
	for _, smp := range s.Samples() {
		events = append(events, smp.Event)
	}
	if strings.Join(events, " ") != "metric:fast metric:medium" {
		t.Errorf("server received %v, want only the fast and medium samples", events)
	}
	if !strings.Contains(out.String(), "replayed 2 of 2") {
		t.Errorf("summary: %s", out.String())
	}
	const note = `note: skipped 3 entries that are not samples (only kind=fast|medium|slow are pushed): kind=\x1b[31mred\x1b[0m (1), kind=phx_join (2)`
	if !strings.Contains(errb.String(), note) || !strings.HasSuffix(strings.TrimSpace(errb.String()), note) {
		t.Errorf("no skipped note at the end:\n%s", errb.String())
	}
	noControl(t, "stdout", out.String())
	noControl(t, "stderr", errb.String())
}

// The same file in --dry-run: the listing and every note escaped.
func TestReplayDryRunEscapesFileText(t *testing.T) {
	file := hostileLog(t)
	// A file name is file-derived text too (a glob can pick up any name).
	named := filepath.Join(filepath.Dir(file), "samples\x1b[2J.log")
	if err := os.Rename(file, named); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"replay", "--dry-run", named, "--config", testkit.WriteRawConfig(t, goodConfig)}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "2 samples would be pushed") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{`samples\x1b[2J.log:1`, "kind=phx_join (2)", `collected_at "\x1b]0;pwned\a"`} {
		if !strings.Contains(out.String()+errb.String(), want) {
			t.Errorf("output lacks %q:\n%s%s", want, out.String(), errb.String())
		}
	}
	noControl(t, "stdout", out.String())
	noControl(t, "stderr", errb.String())
}

// Issue 19 item 7: a file that does not start with an entry header is not
// a samples.log: exit 1, one line naming the file, nothing pushed or
// listed. An empty file (just rotated) is 0 samples.
func TestReplayRefusesAFileThatIsNotASamplesLog(t *testing.T) {
	dir := t.TempDir()
	real := string(dump.AppendSample(nil, &dump.SampleRecord{At: time.Now(), Kind: "fast",
		Payload: []byte(`{"collected_at": "2026-11-29T10:00:00Z", "data": {}}`)}))
	cases := []struct{ name, body string }{
		{"agent.toml", goodConfig},
		{"commands.log", "----- 2026-11-29T10:00:00.000Z zpool status -p (exit 0, 12ms) -----\n" + real},
		{"garbage.bin", "\x00\x01\x02\xff\xfe" + strings.Repeat("x", 4096)},
		{"long-first-line", strings.Repeat("=", 2000) + "\n" + real},
		{"damaged first header", "===== 2026-11-29T10:00:00.000Z kind=fa st =====\n" + real},
		{"leading blank line", "\n" + real},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, c.name)
			os.WriteFile(file, []byte(c.body), 0o600)
			var out, errb bytes.Buffer
			code := run([]string{"replay", "--dry-run", file}, &out, &errb)
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], file+": not a samples.log") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("listed something: %s", out.String())
			}
		})
	}
	empty := filepath.Join(dir, "samples.log")
	os.WriteFile(empty, nil, 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--dry-run", empty}, &out, &errb); code != 0 || !strings.Contains(out.String(), "0 samples would be pushed") {
		t.Fatalf("empty file: exit %d %s%s", code, out.String(), errb.String())
	}
	// A real file refused with a bad one: nothing of the good one is pushed
	// either (all files are read before anything goes out).
	good := filepath.Join(dir, "good.log")
	os.WriteFile(good, []byte(real), 0o600)
	out.Reset()
	errb.Reset()
	if code := run([]string{"replay", good, filepath.Join(dir, "agent.toml"), "--config", testkit.WriteRawConfig(t, goodConfig)}, &out, &errb); code != 1 ||
		strings.Contains(out.String(), "replayed") {
		t.Fatalf("good then bad: exit %d %s%s", code, out.String(), errb.String())
	}
}
