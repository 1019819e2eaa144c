// Package writer is the diagnostic dump writer actor: it owns commands.log
// and samples.log under the dump directory and serializes every append, so
// concurrent collectors never interleave entries.
package writer

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// Prepare creates dir (mode 0755) if it is missing. The supervisor calls it
// before spawning the writer; on error the dump stays off.
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create dump dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("create dump dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("create dump dir: %s is not a directory", dir)
	}
	return nil
}

// Props builds the writer for dir. Each restart gets a fresh instance that
// reopens the files.
func Props(dir string, log *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &writer{dir: dir, log: log.With("actor", "writer"), now: time.Now}
	})
}

// NewHandle returns a dump.Handle whose entries go to the writer at pid.
func NewHandle(root *actor.RootContext, pid *actor.PID) *dump.Handle {
	return dump.NewHandle(func(m any) { root.Send(pid, m) })
}

type writer struct {
	dir  string
	log  *slog.Logger
	now  func() time.Time
	cmds *os.File
	smps *os.File
	buf  []byte
	// fail follows each file on its own: a full disk under one file must
	// not be "recovered" by a good write to the other.
	fail map[string]*statelog.Tracker
	// lastErr is reported by the next Flush, then cleared.
	lastErr error
}

func (w *writer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.fail = map[string]*statelog.Tracker{
			CommandsFile: {Every: warnEvery}, SamplesFile: {Every: warnEvery},
		}
		w.open()
	case *dump.CommandRecord:
		w.buf = dump.AppendCommand(w.buf[:0], m)
		w.write(&w.cmds, CommandsFile)
	case *dump.SampleRecord:
		w.buf = dump.AppendSample(w.buf[:0], m)
		w.write(&w.smps, SamplesFile)
	case *messages.Flush:
		ctx.Respond(&messages.FlushDone{Err: w.lastErr})
		w.lastErr = nil
	case *messages.Ping:
		ctx.Respond(&messages.Pong{})
	case *messages.Reopen:
		w.close()
		w.open()
		w.log.Info("dump files reopened", "dir", w.dir)
	case *actor.Restarting, *actor.Stopping:
		w.close()
	}
	// Keep one modest buffer between entries, not the largest ever seen.
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
}

func (w *writer) open() {
	w.cmds = w.openFile(CommandsFile)
	w.smps = w.openFile(SamplesFile)
}

func (w *writer) openFile(name string) *os.File {
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.failed(name, err)
		return nil
	}
	return f
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

// write appends w.buf to *fp, opening the file first if an earlier open
// failed (the directory may have come back). A failure is logged rate-limited
// and the entry is dropped: the dump must never stop the agent.
func (w *writer) write(fp **os.File, name string) {
	if *fp != nil && unlinked(*fp) {
		(*fp).Close()
		*fp = nil
	}
	if *fp == nil {
		if *fp = w.openFile(name); *fp == nil {
			return
		}
	}
	if _, err := (*fp).Write(w.buf); err != nil {
		w.failed(name, err)
		return
	}
	w.fail[name].OK(func(n uint64) { w.log.Info("dump writes recovered", "file", name, "dir", w.dir, "failures", n) })
}

func (w *writer) failed(name string, err error) {
	w.lastErr = err
	w.fail[name].Fail(w.now(), func(suppressed uint64) {
		w.log.Warn("dump write failed; entry dropped, agent keeps running",
			"file", name, "dir", w.dir, "err", err, "suppressed_since_last_warning", suppressed)
	})
}

func (w *writer) close() {
	for _, f := range []**os.File{&w.cmds, &w.smps} {
		if *f != nil {
			if err := (*f).Close(); err != nil {
				w.log.Warn("dump close failed", "err", err)
			}
			*f = nil
		}
	}
}

// Configure decides whether the dump is on for dir, as the seed's
// Diagnostics.configure did: "" means off; a directory that cannot be created
// logs one warning and leaves the dump off; otherwise it is on.
func Configure(dir string, log *slog.Logger) bool {
	if dir == "" {
		return false
	}
	if err := Prepare(dir); err != nil {
		log.Warn("diagnostic dump disabled", "dir", dir, "err", err)
		return false
	}
	log.Info("diagnostic dump enabled", "dir", dir)
	return true
}
