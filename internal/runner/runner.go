// Package runner executes external commands the way the agent needs them on
// a storage host: argv only (no shell), LC_ALL=C.UTF-8, a per-call timeout,
// the child in its own process group (a timeout kills the whole group),
// stdout and stderr captured apart and capped, and a child that cannot be
// reaped (zpool in D state on a suspended pool) abandoned rather than waited
// for. The same command line is never started twice at once: while an
// earlier run is outstanding, Run answers "stuck" without starting another.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/flight"
)

// Defaults for a zero Runner.
const (
	DefaultMaxOutput = 16 << 20
	DefaultGrace     = 2 * time.Second
)

// wait reaps cmd and releases its command line. The release comes before
// the result is handed over, so that the caller's next run of this line is
// not answered "stuck"; but after a kill, only once whatever still holds
// the command's output is gone too.
func (r *Runner) wait(cmd *exec.Cmd, outR *os.File, owner *atomic.Int32, c *flight.Claim, reaped chan struct{}, done chan<- error) {
	err := cmd.Wait()
	// The command has exited: give its stdout outputDelay more for what it
	// wrote just before, unless Wait already waited that long for a
	// grandchild holding stderr (which then holds stdout too).
	cut := time.Now().Add(outputDelay)
	if errors.Is(err, exec.ErrWaitDelay) {
		cut = time.Now()
	}
	_ = outR.SetReadDeadline(cut)
	if !owner.CompareAndSwap(ownRunning, ownWaited) {
		// We killed it for overrunning: whatever still holds its output (a
		// child that left the process group, a zpool in D state) is part
		// of it, and the line stays claimed until that is gone too, so a
		// hung command is never started twice.
		_ = outR.SetReadDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, outR)
		outR.Close()
	}
	r.lines.Release(c)
	close(reaped)
	done <- err
}

// Owners of a command's stdout pipe (see run).
const (
	ownRunning int32 = iota
	ownKilled
	ownWaited
)

// outputDelay is how long output is still read after the command exited,
// for whatever it wrote just before exiting; past it, a pipe that a
// grandchild still holds open is closed.
const outputDelay = 500 * time.Millisecond

// Runner runs commands. The zero value is usable; set Dump to record every
// call in the diagnostic dump. Safe for concurrent use.
type Runner struct {
	// Dump receives one entry per call (nil: dump off).
	Dump *dump.Handle
	// MaxOutput caps bytes kept per stream; the rest is read and discarded.
	MaxOutput int
	// Grace is how long to wait for the killed group to be reaped before
	// abandoning it.
	Grace time.Duration
	// Env is the base environment (nil: the agent's own).
	Env []string

	lines flight.Set // command lines in flight, by argv
}

// claim is one started command line that has not been reaped yet.
// Result is what one call produced.
type Result struct {
	// Line is the command line as run, for messages ("zpool status -p").
	Line      string
	Outcome   dump.Outcome
	ExitCode  int
	Stdout    []byte
	Stderr    []byte
	Truncated bool
	// Reason explains outcomes without output (not found, timed out, stuck, failed).
	Reason   string
	Duration time.Duration
}

// Err returns nil for exit 0 and otherwise an *Error that says what happened
// in one short line, fit for a sample's errors map.
func (r Result) Err() error {
	if r.Outcome == dump.OK {
		return nil
	}
	return &Error{Result: r}
}

// Error is a failed command.
type Error struct{ Result Result }

func (e *Error) Error() string {
	r := e.Result
	switch r.Outcome {
	case dump.NonZero:
		msg := firstLine(r.Stderr)
		if msg == "" {
			msg = firstLine(r.Stdout)
		}
		if msg == "" {
			return fmt.Sprintf("%s: exit %d", r.Line, r.ExitCode)
		}
		return fmt.Sprintf("%s: exit %d: %s", r.Line, r.ExitCode, msg)
	case dump.NotFound:
		name, _, _ := strings.Cut(r.Line, " ")
		return name + " not found"
	default:
		return r.Line + ": " + r.Reason
	}
}

// NotFound reports whether err is a command that is not installed: on a
// host without ZFS or Proxmox that is "not present", not a failure.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Result.Outcome == dump.NotFound
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.TrimSpace(s)
}

// Run executes name with args under timeout. ctx cancellation counts as a
// timeout. It never blocks past timeout + Grace.
func (r *Runner) Run(ctx context.Context, timeout time.Duration, name string, args ...string) Result {
	start := time.Now()
	res := r.run(ctx, timeout, name, args)
	res.Duration = time.Since(start)
	if r.Dump.Enabled() {
		rec := dump.CommandRecord{
			At: time.Now(), Command: name, Args: args, Outcome: res.Outcome, ExitCode: res.ExitCode,
			Stdout: res.Stdout, Stderr: res.Stderr, Truncated: res.Truncated, Duration: res.Duration,
		}
		if res.Outcome != dump.OK && res.Outcome != dump.NonZero {
			rec.Err = res.Reason
		}
		r.Dump.Command(rec)
	}
	return res
}

func (r *Runner) run(ctx context.Context, timeout time.Duration, name string, args []string) Result {
	line := strings.Join(append([]string{name}, args...), " ")
	res := Result{Line: line}
	key := name + "\x00" + strings.Join(args, "\x00")
	c, since := r.lines.Take(key)
	if c == nil {
		res.Outcome = dump.Stuck
		res.Reason = fmt.Sprintf("previous run still stuck (started %s ago, not reaped after SIGKILL); not starting another",
			time.Since(since).Round(time.Second))
		return res
	}
	released := false
	defer func() {
		if !released {
			r.lines.Release(c)
		}
	}()

	cmd := exec.Command(name, args...)
	env := r.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env[:len(env):len(env)], "LC_ALL=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Err != nil { // lookup failed
		return startFailure(res, cmd.Err)
	}
	// stdout is a pipe of our own that this goroutine reads, stderr goes
	// through os/exec's copier: one goroutine fewer per command than
	// letting os/exec copy both (issue 12), and neither stream costs a
	// 32 KiB copy buffer (capped.ReadFrom).
	outR, outW, err := os.Pipe()
	if err != nil {
		return startFailure(res, err)
	}
	// Who closes outR: this function, unless it killed the command while
	// the waiter was still waiting; then the waiter, after draining it.
	var owner atomic.Int32 // ownRunning, ownKilled, ownWaited
	defer func() {
		if owner.Load() != ownKilled {
			outR.Close()
		}
	}()
	stdout := &capped{max: r.maxOutput()}
	stderr := &capped{max: r.maxOutput()}
	cmd.Stdout, cmd.Stderr = outW, stderr
	// A grandchild that inherits stderr (a forked helper, "cmd &") would
	// keep Wait blocked until the timeout after the command itself exited,
	// throwing its good output away: stop reading that long after exit.
	// The waiter below does the same for stdout.
	cmd.WaitDelay = outputDelay
	// The overall deadline is set before the waiter can exist: set after,
	// it could overwrite the short one the waiter sets once the command has
	// exited, and a grandchild holding stdout then held the call to the
	// full timeout (seen under CPU load in CI).
	deadline := time.Now().Add(timeout)
	_ = outR.SetReadDeadline(deadline)
	err = cmd.Start()
	outW.Close() // the child has its copy; EOF comes when it (and any heir) closes it
	if err != nil {
		return startFailure(res, err)
	}
	done := make(chan error, 1)
	reaped := make(chan struct{})
	released = true // from here the waiter goroutine releases the claim
	go r.wait(cmd, outR, &owner, c, reaped, done)

	timer := time.NewTimer(time.Until(deadline)) // the read's deadline, not a later one
	defer timer.Stop()
	// Cancellation moves the deadline into the past, which ends the read.
	stopCancel := context.AfterFunc(ctx, func() { _ = outR.SetReadDeadline(time.Unix(1, 0)) })
	defer stopCancel()
	_, readErr := stdout.ReadFrom(outR)
	var waitErr error
	var stop string
	select {
	case waitErr = <-done:
	case <-timer.C:
		stop = fmt.Sprintf("timed out after %s", timeout)
	case <-ctx.Done():
		stop = fmt.Sprintf("cancelled: %v", context.Cause(ctx))
	}
	if stop != "" {
		// Kill only a command not yet reaped (its process group still
		// exists, so the signal cannot reach a stranger that reused the
		// pid); one that exited at the deadline gets its normal result.
		if owner.CompareAndSwap(ownRunning, ownKilled) {
			return r.kill(res, c, cmd, reaped, stop)
		}
		waitErr = <-done
	}
	if errors.Is(readErr, os.ErrDeadlineExceeded) {
		// The read stopped on a deadline (the overall one, or the waiter's
		// cut after exit) but the command exited by itself: what it wrote
		// just before is still in the pipe. The waiter is done with outR.
		_ = outR.SetReadDeadline(time.Now().Add(drainDelay))
		_, readErr = stdout.ReadFrom(outR)
	}
	return settled(res, cmd, stdout, stderr, waitErr, readErr)
}

// drainDelay is how long a pipe is read for what a command left in it
// after the read had stopped on a deadline: the data is already there.
const drainDelay = 10 * time.Millisecond

// settled is the result of a command that exited by itself.
func settled(res Result, cmd *exec.Cmd, stdout, stderr *capped, waitErr, readErr error) Result {
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.Truncated = stdout.truncated || stderr.truncated
	if errors.Is(waitErr, exec.ErrWaitDelay) || errors.Is(readErr, os.ErrDeadlineExceeded) {
		// The command exited but something it started still holds its
		// output: keep what it printed and kill the leftovers.
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			waitErr = nil
		}
	}
	return exited(res, waitErr)
}

// exited fills in the outcome of a command that was reaped.
func exited(res Result, waitErr error) Result {
	if waitErr == nil {
		res.Outcome = dump.OK
		return res
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Outcome = dump.Failed
			res.Reason = "killed by signal " + ws.Signal().String()
			return res
		}
		res.Outcome = dump.NonZero
		res.ExitCode = ee.ExitCode()
		return res
	}
	res.Outcome = dump.Failed
	res.Reason = waitErr.Error()
	return res
}

// kill SIGKILLs the child's whole process group and returns at once, so a
// stuck command costs its caller no more than its timeout. A process in
// uninterruptible sleep ignores SIGKILL until its I/O returns: if it is
// still not reaped after Grace it is counted as abandoned (Stuck), and its
// command line stays claimed until the waiter goroutine finally sees it exit.
func (r *Runner) kill(res Result, c *flight.Claim, cmd *exec.Cmd, reaped <-chan struct{}, reason string) Result {
	_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	res.Outcome = dump.TimedOut
	res.Reason = reason + "; process group killed"
	grace := r.grace()
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-reaped:
		case <-t.C:
			r.lines.Abandon(c)
		}
	}()
	return res
}

func startFailure(res Result, err error) Result {
	res.Reason = err.Error()
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		res.Outcome = dump.NotFound
	} else {
		res.Outcome = dump.Failed
	}
	return res
}

// Outstanding is how many started commands have not been reaped yet,
// running or abandoned.
func (r *Runner) Outstanding() int { return r.lines.Outstanding() }

// Stuck is how many commands were abandoned after SIGKILL and have still not
// exited: the agent's self-report shows it, since it is a host health signal.
func (r *Runner) Stuck() int { return r.lines.Stuck() }

func (r *Runner) maxOutput() int {
	if r.MaxOutput > 0 {
		return r.MaxOutput
	}
	return DefaultMaxOutput
}

func (r *Runner) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultGrace
}

// capped keeps the first max bytes written and discards the rest, still
// reporting success so the child is never blocked on a full pipe.
type capped struct {
	data      []byte
	max       int
	truncated bool
}

// Bytes is what was kept.
func (c *capped) Bytes() []byte { return c.data }

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - len(c.data)
	if room >= len(p) {
		c.data = append(c.data, p...)
		return len(p), nil
	}
	if room > 0 {
		c.data = append(c.data, p[:room]...)
	}
	c.truncated = true
	return len(p), nil
}

// ReadFrom reads src to its end, keeping the first max bytes. io.Copy (and
// so os/exec's copier) uses it instead of Write, reading straight into the
// kept bytes: without it every stream cost a 32 KiB copy buffer. The buffer
// doubles but never past max: bytes.Buffer's growth doubled a full 16 MiB
// buffer once more just to learn the stream had ended, 48 MB live for a
// 16 MiB output.
func (c *capped) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for len(c.data) < c.max {
		if len(c.data) == cap(c.data) {
			// make, not slices.Grow: append's growth would round past max.
			grown := make([]byte, len(c.data), len(c.data)+min(max(cap(c.data), 4<<10), c.max-len(c.data)))
			copy(grown, c.data)
			c.data = grown
		}
		n, err := src.Read(c.data[len(c.data):min(cap(c.data), c.max)])
		c.data = c.data[:len(c.data)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	// At the cap: whatever else comes is read and thrown away.
	scratch := make([]byte, 32<<10)
	for {
		n, err := src.Read(scratch)
		if n > 0 {
			c.truncated = true
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
