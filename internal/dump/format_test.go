package dump

import (
	"errors"
	"io/fs"
	"testing"
	"time"
)

var at = time.Date(2026, 4, 22, 15, 32, 17, 104_000_000, time.UTC)

// The exact bytes of each entry form, as DESIGN.md and the seed spec show them.
func TestEntryFormatsByteForByte(t *testing.T) {
	cases := []struct {
		name string
		rec  CommandRecord
		want string
	}{
		{"ok", CommandRecord{At: at, Command: "zpool", Args: []string{"status", "-j", "--json-flat-vdevs", "--json-int"},
			Stdout: []byte("{}"), Duration: 124*time.Millisecond + 900*time.Microsecond},
			"===== 2026-04-22T15:32:17.104Z =====\n$ zpool status -j --json-flat-vdevs --json-int\nexit=0 duration=124ms size=2\n\n{}\n\n"},
		{"nonzero with stderr", CommandRecord{At: at, Command: "zpool", Args: []string{"status", "-j"},
			Outcome: NonZero, ExitCode: 2, Stderr: []byte("invalid option 'j'\n"), Duration: 3 * time.Millisecond},
			"===== 2026-04-22T15:32:17.104Z =====\n$ zpool status -j\nexit=2 duration=3ms size=0\n\n\n----- stderr size=19 -----\ninvalid option 'j'\n\n\n"},
		{"timeout", CommandRecord{At: at, Command: "zpool", Args: []string{"list"},
			Outcome: TimedOut, Err: "timed out after 10s", Duration: 10 * time.Second},
			"===== 2026-04-22T15:32:17.104Z =====\n$ zpool list\nerror=timed out after 10s duration=10000ms\n\n"},
		{"no args keeps the seed's trailing space", CommandRecord{At: at, Command: "cmd1", Stdout: []byte("body1")},
			"===== 2026-04-22T15:32:17.104Z =====\n$ cmd1 \nexit=0 duration=0ms size=5\n\nbody1\n\n"},
		{"truncated", CommandRecord{At: at, Command: "yes", Stdout: []byte("y\ny\n"), Truncated: true},
			"===== 2026-04-22T15:32:17.104Z =====\n$ yes \nexit=0 duration=0ms size=4 truncated=true\n\ny\ny\n\n\n"},
		{"error without text falls back to outcome", CommandRecord{At: at, Command: "x", Outcome: Stuck},
			"===== 2026-04-22T15:32:17.104Z =====\n$ x \nerror=stuck duration=0ms\n\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendCommand(nil, &c.rec)); got != c.want {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	s := &SampleRecord{At: at.In(time.FixedZone("CEST", 7200)), Kind: "fast", Payload: []byte("{\n  \"a\": 1\n}")}
	if got, want := string(AppendSample(nil, s)), "===== 2026-04-22T15:32:17.104Z kind=fast =====\n{\n  \"a\": 1\n}\n\n"; got != want {
		t.Errorf("sample got %q want %q", got, want)
	}
}

func TestHandleDisabledDoesNothing(t *testing.T) {
	var nilHandle *Handle
	for _, h := range []*Handle{nilHandle, NewHandle(nil)} {
		if h.Enabled() {
			t.Fatal("disabled handle reports enabled")
		}
		// Must not panic.
		h.Command(CommandRecord{Command: "zpool"})
		h.Read("/proc/loadavg", at, nil, nil, 0)
		h.Sample("fast", at, nil)
	}
}

func TestHandleEnabledPostsRecords(t *testing.T) {
	var got []any
	h := NewHandle(func(m any) { got = append(got, m) })
	args := []string{"list"}
	h.Command(CommandRecord{Command: "zpool", Args: args})
	h.Read("/proc/loadavg", at, []byte("0.12 0.34 0.56 1/200 3000"), nil, 150*time.Microsecond)
	h.Read("/proc/nope", at, nil, &fs.PathError{Op: "open", Path: "/proc/nope", Err: fs.ErrNotExist}, 0)
	h.Read("/proc/stat", at, nil, errors.New("EIO"), 0)
	h.Sample("fast", at, []byte("{}"))
	if len(got) != 5 {
		t.Fatalf("%d messages, want 5", len(got))
	}
	// Seed diagnostics_test "log_read/3 writes to commands.log formatted as cat".
	entry := string(AppendCommand(nil, got[1].(*CommandRecord)))
	want := "===== 2026-04-22T15:32:17.104Z =====\n$ cat /proc/loadavg\nexit=0 duration=0ms size=25\n\n0.12 0.34 0.56 1/200 3000\n\n"
	if entry != want {
		t.Errorf("read entry %q, want %q", entry, want)
	}
	if r := got[2].(*CommandRecord); r.Outcome != NotFound {
		t.Errorf("missing file outcome = %v", r.Outcome)
	}
	if r := got[3].(*CommandRecord); r.Outcome != Failed || r.Err != "EIO" {
		t.Errorf("failed read = %+v", r)
	}
	if s := got[4].(*SampleRecord); s.Kind != "fast" || string(s.Payload) != "{}" {
		t.Errorf("sample = %+v", s)
	}
}

// BenchmarkCommandDisabled proves the dump-off call site is free: run with
// -benchmem and expect 0 allocs/op.
func BenchmarkCommandDisabled(b *testing.B) {
	var h *Handle
	args := []string{"status", "-j"}
	out := []byte("output")
	b.ReportAllocs()
	for b.Loop() {
		h.Command(CommandRecord{At: at, Command: "zpool", Args: args, Stdout: out, Duration: time.Millisecond})
		h.Read("/proc/loadavg", at, out, nil, time.Millisecond)
		h.Sample("fast", at, out)
	}
}

func TestDisabledHandleAllocatesNothing(t *testing.T) {
	var h *Handle
	args := []string{"status"}
	n := testing.AllocsPerRun(100, func() {
		h.Command(CommandRecord{At: at, Command: "zpool", Args: args})
		h.Read("/proc/loadavg", at, nil, nil, 0)
		h.Sample("fast", at, nil)
	})
	if n != 0 {
		t.Fatalf("disabled handle allocates %v per call", n)
	}
}

// BenchmarkAppendCommand measures formatting one 12 KiB zpool entry.
func BenchmarkAppendCommand(b *testing.B) {
	r := &CommandRecord{At: at, Command: "zpool", Args: []string{"status", "-j"}, Stdout: make([]byte, 12<<10)}
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Stdout)))
	for b.Loop() {
		buf = AppendCommand(buf[:0], r)
	}
}
