package writer

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

var discard = slog.New(slog.DiscardHandler)

type fixture struct {
	t    *testing.T
	sys  *actor.ActorSystem
	pid  *actor.PID
	dir  string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, dir string) *fixture {
	t.Helper()
	return startWith(t, dir, openDump, openTimeout)
}

// startWith starts a writer whose files are opened by open, waiting at most
// timeout for each open.
func startWith(t *testing.T, dir string, open opener, timeout time.Duration) *fixture {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	logs := &syncBuffer{}
	pid := sys.Root.Spawn(props(dir, slog.New(slog.NewTextHandler(logs, nil)), open, timeout))
	t.Cleanup(func() {
		_ = sys.Root.PoisonFuture(pid).Wait()
		sys.Shutdown()
	})
	return &fixture{t: t, sys: sys, pid: pid, dir: dir, logs: logs}
}

// flush is the barrier: every message sent before it is on disk when it returns.
func (f *fixture) flush() error {
	f.t.Helper()
	res, err := f.sys.Root.RequestFuture(f.pid, &messages.Flush{}, 5*time.Second).Result()
	if err != nil {
		f.t.Fatalf("flush: %v", err)
	}
	return res.(*messages.FlushDone).Err
}

func (f *fixture) read(name string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) send(m any) { f.sys.Root.Send(f.pid, m) }

func mustContain(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("missing %q in:\n%s", s, body)
		}
	}
}

// Seed writer_test: "handle_cast :command appends a formatted entry to commands.log".
func TestCommandEntry(t *testing.T) {
	f := start(t, t.TempDir())
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool", Args: []string{"list", "-j"},
		Stdout: []byte("hello body"), Duration: 1234 * time.Microsecond})
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	mustContain(t, f.read(CommandsFile), "$ zpool list -j", "exit=0", "duration=1ms", "size=10", "hello body", "=====\n")
}

// Seed: "handle_cast :command records errors in place of exit".
func TestCommandErrorEntry(t *testing.T) {
	f := start(t, t.TempDir())
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool", Args: []string{"list"},
		Outcome: dump.NotFound, Err: `not found: "zpool"`, Duration: 300 * time.Microsecond})
	f.flush()
	body := f.read(CommandsFile)
	mustContain(t, body, `error=not found: "zpool"`, "duration=0ms")
	if strings.Contains(body, "exit=") {
		t.Errorf("error entry has an exit status:\n%s", body)
	}
}

// Seed: "handle_cast :command formats non-zero exit results".
func TestCommandNonZeroEntry(t *testing.T) {
	f := start(t, t.TempDir())
	f.send(&dump.CommandRecord{At: time.Now(), Command: "/bin/sh", Args: []string{"-c", "exit 7"},
		Outcome: dump.NonZero, ExitCode: 7, Stdout: []byte("oops"), Duration: 500 * time.Microsecond})
	f.flush()
	mustContain(t, f.read(CommandsFile), "exit=7", "size=4", "oops")
}

// Seed: "handle_cast :sample appends pretty-printed JSON to samples.log".
func TestSampleEntry(t *testing.T) {
	f := start(t, t.TempDir())
	f.send(&dump.SampleRecord{At: time.Now(), Kind: "fast", Payload: []byte("{\n  \"host\": {\n    \"load1\": 0.1\n  }\n}")})
	f.flush()
	mustContain(t, f.read(SamplesFile), "kind=fast", `"host"`, `"load1"`, "=====\n")
}

// Seed: "multiple casts serialize and do not interleave" — and, stricter
// than the seed, every body appears exactly once and in order.
func TestManyEntriesInOrder(t *testing.T) {
	f := start(t, t.TempDir())
	for i := 1; i <= 50; i++ {
		f.send(&dump.CommandRecord{At: time.Now(), Command: fmt.Sprintf("cmd%d", i),
			Stdout: []byte(fmt.Sprintf("body%d|", i)), Duration: time.Millisecond})
	}
	f.flush()
	body := f.read(CommandsFile)
	pos := 0
	for i := 1; i <= 50; i++ {
		needle := fmt.Sprintf("body%d|", i)
		if strings.Count(body, needle) != 1 {
			t.Fatalf("%s appears %d times", needle, strings.Count(body, needle))
		}
		j := strings.Index(body, needle)
		if j < pos {
			t.Fatalf("%s out of order", needle)
		}
		pos = j
	}
}

// Concurrent senders (collectors run in parallel) never interleave bytes:
// every entry parses back whole.
func TestConcurrentSendersDoNotInterleave(t *testing.T) {
	f := start(t, t.TempDir())
	big := strings.Repeat("x", 64<<10)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				f.send(&dump.CommandRecord{At: time.Now(), Command: fmt.Sprintf("g%d", g),
					Args: []string{fmt.Sprint(i)}, Stdout: []byte(big)})
			}
		}(g)
	}
	wg.Wait()
	f.flush()
	entries := strings.Split(f.read(CommandsFile), "===== ")[1:]
	if len(entries) != 160 {
		t.Fatalf("%d entries, want 160", len(entries))
	}
	for _, e := range entries {
		if !strings.Contains(e, "size=65536\n\n"+big+"\n\n") {
			t.Fatalf("entry torn: %.120q", e)
		}
	}
}

// Seed: "terminate closes handles cleanly" — a stop drains the queue first
// (poison), and the files are closed afterwards.
func TestPoisonDrainsAndCloses(t *testing.T) {
	dir := t.TempDir()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	pid := sys.Root.Spawn(Props(dir, discard))
	for i := 0; i < 200; i++ {
		sys.Root.Send(pid, &dump.CommandRecord{At: time.Now(), Command: "c", Stdout: []byte("b")})
	}
	if err := sys.Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, CommandsFile))
	if n := strings.Count(string(b), "$ c "); n != 200 {
		t.Fatalf("%d of 200 entries reached the file", n)
	}
}

// A full disk: the write fails, one warning is logged (not one per entry),
// the writer keeps running, and a later flush still answers.
func TestWriteFailureIsRateLimitedAndSurvived(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	// The real opener refuses a device, so hand the writer /dev/full directly.
	full := func(dir, name string) (*os.File, error) {
		if name == CommandsFile {
			return os.OpenFile("/dev/full", os.O_WRONLY, 0)
		}
		return openDump(dir, name)
	}
	f := startWith(t, t.TempDir(), full, openTimeout)
	for i := 0; i < 20; i++ {
		f.send(&dump.CommandRecord{At: time.Now(), Command: "c", Stdout: []byte("b")})
	}
	if err := f.flush(); err == nil {
		t.Fatal("flush reported no write error on /dev/full")
	}
	if n := strings.Count(f.logs.String(), "dump write failed"); n != 1 {
		t.Fatalf("%d warnings for 20 failed writes, want 1:\n%s", n, f.logs.String())
	}
	// samples.log is on a healthy file and keeps working.
	f.send(&dump.SampleRecord{At: time.Now(), Kind: "fast", Payload: []byte("{}")})
	if err := f.flush(); err != nil {
		t.Fatalf("healthy file reported %v", err)
	}
	mustContain(t, f.read(SamplesFile), "kind=fast")
}

// logrotate renames the files then sends SIGHUP (Reopen): entries before the
// reopen stay in the old file, entries after go to a new one, none lost.
func TestReopenAfterRename(t *testing.T) {
	f := start(t, t.TempDir())
	f.send(&dump.CommandRecord{At: time.Now(), Command: "before"})
	f.flush()
	if err := os.Rename(filepath.Join(f.dir, CommandsFile), filepath.Join(f.dir, CommandsFile+".1")); err != nil {
		t.Fatal(err)
	}
	f.send(&dump.CommandRecord{At: time.Now(), Command: "between"}) // still the old inode
	f.send(&messages.Reopen{})
	f.send(&dump.CommandRecord{At: time.Now(), Command: "after"})
	f.flush()
	old, _ := os.ReadFile(filepath.Join(f.dir, CommandsFile+".1"))
	mustContain(t, string(old), "$ before", "$ between")
	cur := f.read(CommandsFile)
	mustContain(t, cur, "$ after")
	if strings.Contains(cur, "before") || strings.Contains(string(old), "after") {
		t.Fatal("entries landed in the wrong file")
	}
}

// The dump directory removed while running: the writer notices its files
// are gone (not writing on into unlinked inodes), warns, and starts again
// when the directory is back.
func TestDirRemovedWhileRunning(t *testing.T) {
	f := start(t, filepath.Join(t.TempDir(), "dump"))
	if err := Prepare(f.dir); err != nil {
		t.Fatal(err)
	}
	f.send(&messages.Reopen{}) // files now exist in the new dir
	f.flush()
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	f.send(&dump.CommandRecord{At: time.Now(), Command: "lost"})
	if err := f.flush(); err == nil {
		t.Fatal("no error reported for a missing dump dir")
	}
	mustContain(t, f.logs.String(), "dump write failed")
	// The directory comes back: the next write opens the file again.
	if err := Prepare(f.dir); err != nil {
		t.Fatal(err)
	}
	f.send(&dump.CommandRecord{At: time.Now(), Command: "back"})
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	mustContain(t, f.read(CommandsFile), "$ back")
	mustContain(t, f.logs.String(), "dump writes recovered")
}

// Seed diagnostics_test "configure/1 and enabled?/0".
func TestConfigure(t *testing.T) {
	if Configure("", discard) {
		t.Error(`"" enabled the dump`)
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	if !Configure(dir, discard) {
		t.Error("valid path did not enable")
	}
	// Only bits beyond 0750 are checked: a stricter umask may clear more.
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || st.Mode().Perm()&^0o750 != 0 || st.Mode().Perm()&0o700 != 0o700 {
		t.Errorf("dir not created 0750: %v %v", st, err)
	}
	parent := filepath.Join(t.TempDir(), "file")
	os.WriteFile(parent, []byte("not a directory"), 0o644)
	var logs syncBuffer
	if Configure(filepath.Join(parent, "child"), slog.New(slog.NewTextHandler(&logs, nil))) {
		t.Error("unreachable path enabled the dump")
	}
	if strings.Count(logs.String(), "level=WARN") != 1 {
		t.Errorf("want exactly one warning, got:\n%s", logs.String())
	}
}
