package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
// blocked, the same path is not read again. Every read is recorded in the
// dump as "$ cat <path>". Safe for concurrent use; the zero value works.
type SlowFS struct {
	// Dump receives one entry per read (nil: dump off).
	Dump *dump.Handle
	// MaxBytes caps a file's size; a bigger one is an error (0: 16 MiB).
	MaxBytes int

	// StatfsFunc replaces statfs(2) (tests: a mount that hangs).
	StatfsFunc func(path string, st *unix.Statfs_t) error

	paths flight.Set // reads that have not returned yet
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
	start := time.Now()
	b, err := s.read(ctx, timeout, path)
	if s.Dump.Enabled() {
		rec := dump.CommandRecord{At: time.Now(), Command: "cat", Args: []string{path}, Duration: time.Since(start), Stdout: b}
		var re *ReadError
		if errors.As(err, &re) {
			rec.Outcome, rec.Err = re.Outcome, err.Error()
		}
		s.Dump.Command(rec)
	}
	return b, err
}

type readResult struct {
	b   []byte
	err error
}

func (s *SlowFS) read(ctx context.Context, timeout time.Duration, path string) ([]byte, error) {
	c, since := s.paths.Take(path)
	if c == nil {
		return nil, &ReadError{Path: path, Outcome: dump.Stuck,
			Reason: fmt.Sprintf("previous read still stuck (started %s ago); not starting another", time.Since(since).Round(time.Second))}
	}
	done := make(chan readResult, 1)
	go func() {
		b, err := s.readFile(path)
		s.paths.Release(c)
		done <- readResult{b, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err == nil {
			return r.b, nil
		}
		out := dump.Failed
		if errors.Is(r.err, fs.ErrNotExist) {
			out = dump.NotFound
		}
		return nil, &ReadError{Path: path, Outcome: out, Err: r.err}
	case <-timer.C:
	case <-ctx.Done():
	}
	s.paths.Abandon(c)
	return nil, &ReadError{Path: path, Outcome: dump.TimedOut, Reason: fmt.Sprintf("timed out after %s", timeout)}
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
