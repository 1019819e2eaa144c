package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
)

// What is set aside reads back as samples.log does (what replay reads):
// kind, collected_at and the exact payload, one entry per sample, in a
// file only root can read.
func TestAsideKeepsSamplesForReplay(t *testing.T) {
	a := Aside{Dir: t.TempDir(), MaxBytes: MaxAsideBytes}
	payloads := []string{`{"collected_at":"2026-11-29T12:00:00.123Z","x":1}`, `{"collected_at":"2026-11-29T12:00:30Z","poison":true}`}
	for i, p := range payloads {
		path, err := a.Keep([]string{"fast", "medium"}[i], []byte(p))
		if err != nil || path != filepath.Join(a.Dir, AsideName) {
			t.Fatalf("keep: %q %v", path, err)
		}
	}
	f, err := os.Open(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []dump.LoggedSample
	rep, err := dump.ScanSamples(f, func(s dump.LoggedSample) error { got = append(got, s); return nil })
	if err != nil || rep.Torn || len(rep.Bad) > 0 || len(got) != 2 {
		t.Fatalf("scan: %+v %v, %d samples", rep, err, len(got))
	}
	if got[1].Kind != "medium" || string(got[1].Payload) != payloads[1] || got[0].CollectedAt.Nanosecond() != 123_000_000 {
		t.Fatalf("read back %+v", got)
	}
	if st, _ := os.Stat(a.Path()); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
}

// A planted symlink or FIFO in the file's place is refused without
// writing through it or blocking; a full file takes nothing more and
// stays whole.
func TestAsideRefusesWhatIsNotItsFile(t *testing.T) {
	payload := []byte(`{"collected_at":"2026-11-29T12:00:00Z"}`)
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, nil, 0o644)
	os.Symlink(target, filepath.Join(dir, AsideName))
	if _, err := (Aside{Dir: dir, MaxBytes: MaxAsideBytes}).Keep("fast", payload); err == nil {
		t.Error("wrote through a symlink")
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("symlink target got %q", b)
	}

	dir = t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, AsideName), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Aside{Dir: dir, MaxBytes: MaxAsideBytes}).Keep("fast", payload); err == nil {
		t.Error("a FIFO was taken for the file")
	}

	a := Aside{Dir: t.TempDir(), MaxBytes: 200}
	if _, err := a.Keep("fast", payload); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(a.Path())
	_, err := a.Keep("fast", bytes.Repeat([]byte("x"), 100))
	if err == nil || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("over the bound: %v", err)
	}
	if _, err := a.Keep("fast", bytes.Repeat([]byte("x"), 300)); err == nil || !strings.Contains(err.Error(), "a sample of 300 bytes is over") {
		t.Fatalf("a sample larger than the bound: %v", err)
	}
	if after, _ := os.ReadFile(a.Path()); !bytes.Equal(before, after) {
		t.Fatalf("a full file changed: %q", after)
	}
}

// An entry torn by a crash or a full disk costs only itself: the next one
// starts on a line of its own and reads back.
func TestAsideAfterATornEntry(t *testing.T) {
	a := Aside{Dir: t.TempDir(), MaxBytes: MaxAsideBytes}
	if _, err := a.Keep("fast", []byte(`{"collected_at":"2026-11-29T12:00:00Z","n":1}`)); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(a.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("===== 2026-11-29T12:00:01.000Z kind=fast =====\n{\"collected_at\":\"2026-11-")
	f.Close()
	if _, err := a.Keep("slow", []byte(`{"collected_at":"2026-11-29T12:00:02Z","n":3}`)); err != nil {
		t.Fatal(err)
	}
	f, _ = os.Open(a.Path())
	defer f.Close()
	var kinds []string
	rep, err := dump.ScanSamples(f, func(s dump.LoggedSample) error { kinds = append(kinds, s.Kind); return nil })
	if err != nil || fmt.Sprint(kinds) != "[fast slow]" || len(rep.Bad) != 1 {
		t.Fatalf("read back %v, report %+v, %v", kinds, rep, err)
	}
}
