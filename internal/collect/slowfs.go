package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/flight"
)

// SlowFS reads files whose read(2) can block for as long as a userspace
// filesystem is stuck: /etc/pve is FUSE, served by pmxcfs. It is the file
// counterpart of the command runner: each read runs off the caller's
// goroutine under a timeout, a read that overruns is abandoned (a goroutine
// blocked in the kernel cannot be cancelled) and, while it is still
// blocked, the same path is not read again. Readers of a path whose read
// is under way (not yet abandoned) wait for it and share its result. Every read is recorded in the
// dump as "$ cat <path>". Safe for concurrent use; the zero value works.
type SlowFS struct {
	// Dump receives one entry per read (nil: dump off).
	Dump *dump.Handle
	// MaxBytes caps a file's size; a bigger one is an error (0: 16 MiB).
	MaxBytes int

	// StatfsFunc replaces statfs(2) (tests: a mount that hangs).
	StatfsFunc func(path string, st *unix.Statfs_t) error

	paths flight.Set // reads that have not returned yet
	mu    sync.Mutex
	calls map[string]*call // reads in flight that other readers may join
}

// ReadError is a read that did not produce the file. Outcome is NotFound,
// TimedOut, Stuck or Failed, as for commands.
type ReadError struct {
	Path    string
	Outcome dump.Outcome
	// Reason says what happened for TimedOut and Stuck.
	Reason string
	// Err is the underlying error for NotFound and Failed.
	Err error
}

func (e *ReadError) Error() string {
	if e.Err != nil {
		return e.Err.Error() // an *fs.PathError already names the file
	}
	return "read " + e.Path + ": " + e.Reason
}

// Unwrap gives errors.Is(err, fs.ErrNotExist) for a missing file.
func (e *ReadError) Unwrap() error { return e.Err }

// Read returns the file at path, waiting at most timeout (or until ctx
// ends) for it.
func (s *SlowFS) Read(ctx context.Context, timeout time.Duration, path string) ([]byte, error) {
	return s.do(ctx, timeout, path, "cat", []string{path}, s.readFile, nil)
}

// ReadRedacted is Read for a file that holds secrets (/etc/subscription, a
// certificate file that may carry a key): the dump gets redact(content)
// instead of the content.
func (s *SlowFS) ReadRedacted(ctx context.Context, timeout time.Duration, path string, redact func([]byte) []byte) ([]byte, error) {
	return s.do(ctx, timeout, path, "cat", []string{path}, s.readFile, redact)
}

// ReadTail returns at most max bytes from the end of the regular file at
// path, starting after the first newline when the file is longer (so it
// begins at a whole line): a task index or a task log can be megabytes,
// and the newest lines are at its end. A FIFO or a device is refused at
// once (opened non-blocking, checked with fstat) instead of blocking.
//
// The dump gets the size read and only its last DumpTailBytes (from a line
// start): a slow round reads megabytes of task index and logs, and the
// last lines are what a bug report needs.
func (s *SlowFS) ReadTail(ctx context.Context, timeout time.Duration, path string, max int) ([]byte, error) {
	return s.do(ctx, timeout, path, "tail", []string{"-c", strconv.Itoa(max), path}, func(path string) ([]byte, error) { return readTail(path, max) }, dumpTail)
}

// DumpTailBytes is the most of a ReadTail the dump keeps.
const DumpTailBytes = 4 << 10

// dumpTail keeps the end of b for the dump, from the first line start in
// its last DumpTailBytes (a single line longer than that is cut mid-line).
func dumpTail(b []byte) []byte {
	if len(b) <= DumpTailBytes {
		return b
	}
	t := b[len(b)-DumpTailBytes:]
	if i := bytes.IndexByte(t, '\n'); i >= 0 && i+1 < len(t) {
		t = t[i+1:]
	}
	return t
}

func (s *SlowFS) do(ctx context.Context, timeout time.Duration, path, cmd string, args []string, read func(string) ([]byte, error), redact func([]byte) []byte) ([]byte, error) {
	start := time.Now()
	b, err := s.read(ctx, timeout, path, cmd, read)
	if s.Dump.Enabled() {
		out := b
		if redact != nil && out != nil {
			out = redact(out)
		}
		rec := dump.CommandRecord{At: time.Now(), Command: cmd, Args: args, Duration: time.Since(start), Stdout: out}
		if cmd == "tail" { // out is the end of b: say how much was read
			rec.ReadBytes = len(b)
		}
		var re *ReadError
		if errors.As(err, &re) {
			rec.Outcome, rec.Err = re.Outcome, err.Error()
		}
		s.Dump.Command(rec)
	}
	return b, err
}

// call is one read in flight, which concurrent readers of the same file
// join instead of failing: the cluster, ha and corosync sources all read
// .members in the same round.
type call struct {
	kind      string // "cat" or "tail": only the same read is shared
	done      chan struct{}
	b         []byte
	err       error
	abandoned bool // its starter timed out: the read is stuck, not joined
	waiters   int  // readers that joined it (for tests)
}

func (s *SlowFS) read(ctx context.Context, timeout time.Duration, path, kind string, readFile func(string) ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	if c, ok := s.calls[path]; ok && !c.abandoned && c.kind == kind {
		c.waiters++
		s.mu.Unlock()
		return s.wait(ctx, timeout, path, c, nil)
	}
	claim, since := s.paths.Take(path)
	if claim == nil {
		s.mu.Unlock()
		return nil, &ReadError{Path: path, Outcome: dump.Stuck,
			Reason: fmt.Sprintf("previous read still stuck (started %s ago); not starting another", time.Since(since).Round(time.Second))}
	}
	c := &call{kind: kind, done: make(chan struct{})}
	if s.calls == nil {
		s.calls = map[string]*call{}
	}
	s.calls[path] = c
	s.mu.Unlock()
	go func() {
		b, err := readFile(path)
		c.b, c.err = b, err
		s.mu.Lock()
		if s.calls[path] == c {
			delete(s.calls, path)
		}
		s.paths.Release(claim)
		s.mu.Unlock()
		close(c.done)
	}()
	return s.wait(ctx, timeout, path, c, claim)
}

// wait waits for c; the reader that started it (claim set) marks it
// abandoned when it gives up, so later readers are told it is stuck.
func (s *SlowFS) wait(ctx context.Context, timeout time.Duration, path string, c *call, claim *flight.Claim) ([]byte, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.done:
		if c.err == nil {
			return c.b, nil
		}
		out := dump.Failed
		if errors.Is(c.err, fs.ErrNotExist) {
			out = dump.NotFound
		}
		return nil, &ReadError{Path: path, Outcome: out, Err: c.err}
	case <-timer.C:
	case <-ctx.Done():
	}
	if claim != nil {
		s.mu.Lock()
		c.abandoned = true
		s.paths.Abandon(claim)
		s.mu.Unlock()
	}
	return nil, &ReadError{Path: path, Outcome: dump.TimedOut, Reason: fmt.Sprintf("timed out after %s", timeout)}
}

// readTail is ReadTail's read, off the caller's goroutine.
func readTail(path string, max int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
	}
	off := st.Size() - int64(max)
	if off < 0 {
		off = 0
	}
	// Read to the end as it is now: the file may grow while it is read,
	// never past max bytes.
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, off, int64(max)), int64(max)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if off > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, nil // one line longer than max: nothing whole to give
		}
		b = b[nl+1:]
	}
	return b, nil
}

// readFile reads at most MaxBytes+1 bytes, so a runaway file cannot eat
// the agent's memory.
func (s *SlowFS) readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := s.MaxBytes
	if limit <= 0 {
		limit = 16 << 20
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// Outstanding is how many reads have not returned yet, on time or not.
func (s *SlowFS) Outstanding() int { return s.paths.Outstanding() }

// Stuck is how many reads were abandoned after their timeout and are still
// blocked: the self-report shows it, as a stuck pmxcfs is a host problem.
func (s *SlowFS) Stuck() int { return s.paths.Stuck() }

// Statfs is statfs(2) on path with the rules of Read: off the caller's
// goroutine, under timeout, and never a second call on a path whose last
// one is still blocked (a dead NFS server or a stuck FUSE daemon leaves
// the caller in D state until it answers). Its claims share the read
// claims' set (keyed "statfs:<path>"), so Stuck counts them too.
func (s *SlowFS) Statfs(ctx context.Context, timeout time.Duration, path string) (unix.Statfs_t, error) {
	c, since := s.paths.Take("statfs:" + path)
	if c == nil {
		return unix.Statfs_t{}, &ReadError{Path: path, Outcome: dump.Stuck,
			Reason: fmt.Sprintf("previous statfs still stuck (started %s ago); not starting another", time.Since(since).Round(time.Second))}
	}
	type result struct {
		st  unix.Statfs_t
		err error
	}
	done := make(chan result, 1)
	statfs := s.StatfsFunc
	if statfs == nil {
		statfs = unix.Statfs
	}
	go func() {
		var r result
		r.err = statfs(path, &r.st)
		s.paths.Release(c)
		done <- r
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return unix.Statfs_t{}, &ReadError{Path: path, Outcome: dump.Failed, Err: &fs.PathError{Op: "statfs", Path: path, Err: r.err}}
		}
		return r.st, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	s.paths.Abandon(c)
	return unix.Statfs_t{}, &ReadError{Path: path, Outcome: dump.TimedOut, Reason: fmt.Sprintf("statfs timed out after %s", timeout)}
}
