// Package writer is the diagnostic dump writer actor: it owns commands.log
// and samples.log under the dump directory and serializes every append, so
// concurrent collectors never interleave entries.
package writer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// File names inside the dump directory.
const (
	CommandsFile = "commands.log"
	SamplesFile  = "samples.log"
)

// warnEvery rate-limits the "write failed" warning while a disk stays full.
const warnEvery = time.Minute

// openTimeout is how long the writer waits for an open before going on
// without the file. It stays well under the supervisor's 5 s final flush so
// that a hung filesystem cannot make shutdown slow.
const openTimeout = time.Second

// Props builds the writer for dir. Each restart gets a fresh instance that
// reopens the files.
func Props(dir string, log *slog.Logger) *actor.Props {
	return props(dir, log, openDump, openTimeout)
}

func props(dir string, log *slog.Logger, open opener, timeout time.Duration) *actor.Props {
	// The directory a reload moved the dump to outlives a restart.
	current := &atomic.Pointer[string]{}
	current.Store(&dir)
	return actor.PropsFromProducer(func() actor.Actor {
		return &writer{dir: *current.Load(), current: current, log: log.With("actor", "writer"), now: time.Now, open: open, timeout: timeout}
	})
}

// NewHandle returns a dump.Handle whose entries go to the writer at pid,
// bounded by the default backlog so that a stalled writer drops and counts
// entries (logging to log) instead of growing and blocking.
func NewHandle(root *actor.RootContext, pid *actor.PID, log *slog.Logger) *dump.Handle {
	b := dump.NewBacklog(dump.DefaultBacklogEntries, dump.DefaultBacklogBytes, log.With("actor", "writer"))
	return dump.NewBoundedHandle(func(m any) { root.Send(pid, m) }, b)
}

// file is one dump file and how far the writer got with it.
type file struct {
	name string
	f    *os.File
	// pending is an open still running; entries for the file are dropped
	// until it returns.
	pending *attempt
	// off is why the file was refused; it stays off until a reopen.
	off error
	// fail follows each file on its own: a full disk under one file must
	// not be "recovered" by a good write to the other.
	fail statelog.Tracker
}

type writer struct {
	dir        string
	current    *atomic.Pointer[string]
	log        *slog.Logger
	now        func() time.Time
	open       opener
	timeout    time.Duration
	cmds, smps *file
	buf        []byte
	// lastErr is reported by the next Flush, then cleared.
	lastErr error
}

func (w *writer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.cmds = &file{name: CommandsFile, fail: statelog.Tracker{Every: warnEvery}}
		w.smps = &file{name: SamplesFile, fail: statelog.Tracker{Every: warnEvery}}
		w.reopen()
	case *dump.CommandRecord:
		m.Taken()
		if !w.usable(w.cmds) || !w.write(w.cmds, dump.AppendCommand(w.buf[:0], m)) {
			m.Lost()
		}
	case *dump.SampleRecord:
		m.Taken()
		if !w.usable(w.smps) || !w.write(w.smps, dump.AppendSample(w.buf[:0], m)) {
			m.Lost()
		}
	case *messages.Flush:
		ctx.Respond(&messages.FlushDone{Err: w.lastErr})
		w.lastErr = nil
	case *messages.Ping:
		ctx.Respond(&messages.Pong{})
	case *messages.Reopen:
		w.move(m.Dir)
		w.reopen()
		w.log.Info("dump files reopened", "dir", w.dir)
	case *actor.Restarting, *actor.Stopping:
		w.close()
	}
	// Keep one modest buffer between entries, not the largest ever seen.
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
}

// reopen closes both files and opens them afresh, concurrently, waiting at
// most one timeout for the pair. An open still stuck from before is given up
// on: it may have resolved the name before a logrotate rename.
func (w *writer) reopen() {
	w.close()
	for _, f := range w.files() {
		f.off = nil
		f.pending = startOpen(w.open, w.dir, f.name)
	}
	w.await(w.files()...)
	for _, f := range w.files() {
		w.settle(f)
	}
}

// move makes dir the dump's directory when it differs and can be prepared;
// otherwise the dump stays where it is and says why.
func (w *writer) move(dir string) {
	if dir == "" || dir == w.dir {
		return
	}
	if err := within(w.timeout, dir, Prepare); err != nil {
		w.log.Warn("dump directory not changed", "dir", w.dir, "refused", dir, "err", err)
		return
	}
	w.log.Info("dump directory changed", "from", w.dir, "to", dir)
	w.dir = dir
	w.current.Store(&dir)
}

func (w *writer) files() []*file { return []*file{w.cmds, w.smps} }

// await waits until the pending opens of files return or the timeout passes,
// and reports each one still running, once.
func (w *writer) await(files ...*file) {
	timer := time.NewTimer(w.timeout)
	defer timer.Stop()
	expired := false
	for _, f := range files {
		if f.pending == nil {
			continue
		}
		if !expired {
			select {
			case <-f.pending.done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		if !f.pending.ready() {
			w.openTimedOut(f)
		}
	}
}

// settle takes the result of f's open if it has returned, and reports
// whether f now has a file to write to.
func (w *writer) settle(f *file) bool {
	if f.pending == nil || !f.pending.ready() {
		return f.f != nil
	}
	fh, err := f.pending.result()
	f.pending = nil
	switch {
	case errors.Is(err, errRefused):
		f.off = err
		w.lastErr = err
		w.log.Warn("dump file refused; dump for this file off until reopen", "file", f.name, "dir", w.dir, "err", err)
	case err != nil:
		w.failed(f, err)
	}
	f.f = fh
	return fh != nil
}

// usable reports whether an entry for f can be written now, opening f
// first if an earlier open failed (the directory may have come back).
func (w *writer) usable(f *file) bool {
	if f.off != nil {
		return false
	}
	if f.f != nil && unlinked(f.f) {
		f.f.Close()
		f.f = nil
	}
	if f.f == nil && f.pending == nil {
		f.pending = startOpen(w.open, w.dir, f.name)
		w.await(f)
	}
	return w.settle(f)
}

// unlinked reports whether f's file was removed (the dump directory deleted
// by hand): writing on would go nowhere an operator can read.
func unlinked(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink == 0
}

// write appends buf to f. A failure is logged rate-limited and the entry is
// dropped: the dump must never stop the agent.
func (w *writer) write(f *file, buf []byte) bool {
	w.buf = buf
	if _, err := f.f.Write(buf); err != nil {
		w.failed(f, fmt.Errorf("write %s: %w", filepath.Join(w.dir, f.name), err))
		return false
	}
	f.fail.OK(func(n uint64) { w.log.Info("dump writes recovered", "file", f.name, "dir", w.dir, "failures", n) })
	return true
}

func (w *writer) failed(f *file, err error) {
	w.lastErr = err
	f.fail.Fail(w.now(), func(suppressed uint64) {
		w.log.Warn("dump write failed; entry dropped, agent keeps running",
			"file", f.name, "dir", w.dir, "err", err, "suppressed_since_last_warning", suppressed)
	})
}

func (w *writer) openTimedOut(f *file) {
	err := fmt.Errorf("open %s: timed out after %s", filepath.Join(w.dir, f.name), w.timeout)
	w.lastErr = err
	f.fail.Fail(w.now(), func(suppressed uint64) {
		w.log.Warn("dump file open timed out; its entries are dropped until the open returns",
			"file", f.name, "dir", w.dir, "err", err, "suppressed_since_last_warning", suppressed)
	})
}

func (w *writer) close() {
	for _, f := range w.files() {
		if f == nil {
			continue
		}
		if f.pending != nil {
			f.pending.abandon()
			f.pending = nil
		}
		if f.f != nil {
			if err := f.f.Close(); err != nil {
				w.log.Warn("dump close failed", "file", f.name, "err", err)
			}
			f.f = nil
		}
	}
}
