package writer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// eventually waits for effects outside the actor (a pipe's far end) that
// no barrier covers.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, what, cond)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A writer blocked in write(2) (here: a pipe nobody reads, standing in for
// a hung disk) while collectors keep producing: the callers never block, the
// backlog and the heap stay bounded, drops are counted and logged once; once
// the writer unblocks, Flush answers and later entries are written.
func TestBacklogBoundedWhileWriterBlocked(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pipe := func(dir, name string) (*os.File, error) {
		if name == CommandsFile {
			return pw, nil
		}
		return openDump(dir, name)
	}
	f := startWith(t, t.TempDir(), pipe, openTimeout)
	h := NewHandle(f.sys.Root, f.pid, slog.New(slog.NewTextHandler(f.logs, nil)))

	const n, size = 20000, 8 << 10 // 160 MiB offered
	before := heapInUse()
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for i := 0; i < n; i++ {
			// A fresh body per entry, as the runner captures one per command.
			h.Command(dump.CommandRecord{At: time.Now(), Command: "zpool", Stdout: make([]byte, size)})
		}
	}()
	select {
	case <-flooded:
	case <-time.After(30 * time.Second):
		t.Fatal("callers blocked on a stalled writer")
	}
	grown := int64(heapInUse()) - int64(before)
	entries, bytes := h.Backlog().Pending()
	t.Logf("offered %d MiB; backlog %d entries %d MiB; heap grew %d MiB; dropped %d",
		n*size>>20, entries, bytes>>20, grown>>20, h.Dropped())
	if entries > dump.DefaultBacklogEntries || bytes > dump.DefaultBacklogBytes+size {
		t.Fatalf("backlog %d entries %d bytes exceeds its bound", entries, bytes)
	}
	if grown > 2*dump.DefaultBacklogBytes {
		t.Fatalf("heap grew %d MiB under the flood", grown>>20)
	}
	if h.Dropped() == 0 {
		t.Fatal("nothing dropped while the writer was blocked")
	}
	if c := strings.Count(f.logs.String(), "dropping entries"); c != 1 {
		t.Fatalf("%d drop warnings, want 1:\n%s", c, f.logs.String())
	}

	var got syncBuffer
	go io.Copy(&got, r)
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	h.Command(dump.CommandRecord{At: time.Now(), Command: "after-flood"})
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the later entry on the pipe", func() bool { return strings.Contains(got.String(), "$ after-flood") })
	mustContain(t, f.logs.String(), "dump writer caught up")
}

// A FIFO named commands.log, with or without a reader: opening it neither
// blocks the writer nor is written to; that file's dump is off with one
// warning and samples.log still works.
func TestFIFOCommandsLogRefused(t *testing.T) {
	for _, reader := range []bool{false, true} {
		t.Run(fmt.Sprintf("reader=%v", reader), func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, CommandsFile)
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			if reader {
				fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer unix.Close(fd)
			}
			f := start(t, dir)
			f.send(&dump.CommandRecord{At: time.Now(), Command: "secret"})
			f.send(&dump.SampleRecord{At: time.Now(), Kind: "fast", Payload: []byte("{}")})
			if err := f.flush(); !errors.Is(err, errRefused) {
				t.Fatalf("flush err %v, want a refusal", err)
			}
			mustContain(t, f.read(SamplesFile), "kind=fast")
			f.send(&dump.CommandRecord{At: time.Now(), Command: "again"})
			f.flush()
			if c := strings.Count(f.logs.String(), `msg="dump file refused`); c != 1 {
				t.Fatalf("%d refusal lines, want 1:\n%s", c, f.logs.String())
			}
		})
	}
}

// A symlink planted as commands.log is not followed: its target is untouched.
func TestSymlinkCommandsLogNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, CommandsFile)); err != nil {
		t.Fatal(err)
	}
	f := start(t, dir)
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool", Stdout: []byte("raw output")})
	if err := f.flush(); !errors.Is(err, errRefused) {
		t.Fatalf("flush err %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "original\n" {
		t.Fatalf("symlink target written: %q", b)
	}
	mustContain(t, f.logs.String(), "symlink")
}

// A hard link planted as commands.log (to a file the agent owns elsewhere)
// is refused: owner checks alone would pass it.
func TestHardLinkCommandsLogRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, filepath.Join(dir, CommandsFile)); err != nil {
		t.Skipf("cannot hard link across temp dirs: %v", err)
	}
	f := start(t, dir)
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool"})
	if err := f.flush(); !errors.Is(err, errRefused) {
		t.Fatalf("flush err %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "original\n" {
		t.Fatalf("hard link target written: %q", b)
	}
}

// A samples.log pre-created (0666) by another user does not receive the
// agent's samples; commands.log still works.
func TestForeignOwnedFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another uid")
	}
	dir := t.TempDir()
	planted := filepath.Join(dir, SamplesFile)
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Chown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	f := start(t, dir)
	f.send(&dump.SampleRecord{At: time.Now(), Kind: "fast", Payload: []byte(`{"host":"pve1"}`)})
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool"})
	if err := f.flush(); !errors.Is(err, errRefused) {
		t.Fatalf("flush err %v, want a refusal", err)
	}
	if b := f.read(SamplesFile); b != "" {
		t.Fatalf("foreign file received: %q", b)
	}
	mustContain(t, f.read(CommandsFile), "$ zpool")
	mustContain(t, f.logs.String(), "owned by uid 65534")
}

// A dump dir others can write to is refused, unless it is sticky and the
// agent's own (others cannot swap our files there).
func TestDirWritableByOthers(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true}, {0o755, true}, {0o770, false}, {0o777, false}, {0o757, false},
		{0o777 | os.ModeSticky, true}, {0o770 | os.ModeSticky, true},
	} {
		dir := filepath.Join(t.TempDir(), "dump")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		if got := Configure(dir, slog.New(slog.NewTextHandler(&logs, nil))); got != c.ok {
			t.Errorf("mode %v: enabled=%v, want %v (%s)", c.mode, got, c.ok, logs.String())
		}
		if !c.ok && strings.Count(logs.String(), "level=WARN") != 1 {
			t.Errorf("mode %v: want one warning:\n%s", c.mode, logs.String())
		}
	}
}

// A sticky, writable dir owned by someone else (like another user's /tmp)
// is refused: its owner could swap files in it.
func TestStickyDirOwnedByOtherRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a directory to another uid")
	}
	dir := filepath.Join(t.TempDir(), "dump")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(dir); !errors.Is(err, errRefused) {
		t.Fatalf("Prepare = %v, want a refusal", err)
	}
}

// The dir is checked again at every open: one made world-writable after
// start is refused at the next reopen.
func TestDirCheckedAtReopen(t *testing.T) {
	f := start(t, t.TempDir())
	f.flush() // the first open has happened
	if err := os.Chmod(f.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f.send(&messages.Reopen{})
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool"})
	if err := f.flush(); !errors.Is(err, errRefused) {
		t.Fatalf("flush err %v, want a refusal", err)
	}
	if b := f.read(CommandsFile); b != "" {
		t.Fatalf("written into a world-writable dir: %q", b)
	}
}

// Files the agent creates are 0640, and an old agent's 0644 file is
// tightened to 0640: raw output names VMs and disk serials.
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SamplesFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := start(t, dir)
	f.send(&dump.CommandRecord{At: time.Now(), Command: "zpool"})
	f.send(&dump.SampleRecord{At: time.Now(), Kind: "fast", Payload: []byte("{}")})
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CommandsFile, SamplesFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// Only bits beyond 0640 are checked: a stricter umask may clear more.
		if p := st.Mode().Perm(); p&^0o640 != 0 || p&0o600 != 0o600 {
			t.Errorf("%s mode %v, want 0640", name, p)
		}
	}
}

// An open that hangs (a hung NFS mount): the writer gives up waiting after
// its timeout, logs once, drops and counts that file's entries, keeps
// answering Flush and writing the other file, and stops fast; when the open
// finally returns, the file is used again.
func TestHungOpenTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	hung := func(dir, name string) (*os.File, error) {
		if name == CommandsFile {
			<-release
		}
		return openDump(dir, name)
	}
	f := startWith(t, t.TempDir(), hung, 50*time.Millisecond)
	h := NewHandle(f.sys.Root, f.pid, discard)
	for i := 0; i < 10; i++ {
		h.Command(dump.CommandRecord{At: time.Now(), Command: "lost"})
	}
	h.Sample("fast", time.Now(), []byte("{}"))
	began := time.Now()
	if err := f.flush(); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("flush err %v, want the open timeout", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("flush took %s behind a hung open", d)
	}
	mustContain(t, f.read(SamplesFile), "kind=fast")
	if h.Dropped() != 10 {
		t.Fatalf("dropped %d, want 10", h.Dropped())
	}
	if c := strings.Count(f.logs.String(), "open timed out"); c != 1 {
		t.Fatalf("%d timeout lines, want 1:\n%s", c, f.logs.String())
	}

	close(release)
	eventually(t, "the late open to be used", func() bool {
		h.Command(dump.CommandRecord{At: time.Now(), Command: "back"})
		f.flush()
		b, _ := os.ReadFile(filepath.Join(f.dir, CommandsFile))
		return strings.Contains(string(b), "$ back")
	})
	mustContain(t, f.logs.String(), "dump writes recovered")
}

// Stopping the writer while an open hangs is prompt, and the file the open
// returns later is closed, not leaked.
func TestStopWhileOpenHangs(t *testing.T) {
	release := make(chan struct{})
	opened := make(chan *os.File, 1)
	hung := func(dir, name string) (*os.File, error) {
		if name != CommandsFile {
			return openDump(dir, name)
		}
		<-release
		fh, err := openDump(dir, name)
		opened <- fh
		return fh, err
	}
	f := startWith(t, t.TempDir(), hung, 50*time.Millisecond)
	f.flush()
	began := time.Now()
	if err := f.sys.Root.PoisonFuture(f.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("stop took %s behind a hung open", d)
	}
	close(release)
	fh := <-opened
	eventually(t, "the abandoned file to be closed", func() bool {
		_, err := fh.Write([]byte("x"))
		return errors.Is(err, os.ErrClosed)
	})
}

// A dump dir on a hung mount at start: Configure gives up after its timeout
// with one warning and the dump off, instead of holding up the whole tree.
func TestConfigureHungDirTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := func(string) error { <-release; return nil }
	var logs syncBuffer
	result := make(chan bool, 1)
	go func() {
		result <- configure("/mnt/hung/dump", slog.New(slog.NewTextHandler(&logs, nil)), hung, 50*time.Millisecond)
	}()
	select {
	case on := <-result:
		if on {
			t.Fatal("dump enabled on a dir that never answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Configure blocked on a hung dump dir")
	}
	if strings.Count(logs.String(), "level=WARN") != 1 || !strings.Contains(logs.String(), "timed out") {
		t.Fatalf("want one timeout warning:\n%s", logs.String())
	}
}
