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
	"syscall"
	"time"

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
func (s *SlowFS) ReadTail(ctx context.Context, timeout time.Duration, path string, max int) ([]byte, error) {
	return s.do(ctx, timeout, path, "tail", []string{"-c", strconv.Itoa(max), path}, func(path string) ([]byte, error) { return readTail(path, max) }, nil)
}

func (s *SlowFS) do(ctx context.Context, timeout time.Duration, path, cmd string, args []string, read func(string) ([]byte, error), redact func([]byte) []byte) ([]byte, error) {
	start := time.Now()
	b, err := s.read(ctx, timeout, path, read)
	if s.Dump.Enabled() {
		out := b
		if redact != nil && out != nil {
			out = redact(out)
		}
		rec := dump.CommandRecord{At: time.Now(), Command: cmd, Args: args, Duration: time.Since(start), Stdout: out}
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

func (s *SlowFS) read(ctx context.Context, timeout time.Duration, path string, readFile func(string) ([]byte, error)) ([]byte, error) {
	c, since := s.paths.Take(path)
	if c == nil {
		return nil, &ReadError{Path: path, Outcome: dump.Stuck,
			Reason: fmt.Sprintf("previous read still stuck (started %s ago); not starting another", time.Since(since).Round(time.Second))}
	}
	done := make(chan readResult, 1)
	go func() {
		b, err := readFile(path)
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
