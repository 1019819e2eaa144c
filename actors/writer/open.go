package writer

import (
	"os"
	"sync"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// Modes for what the agent creates. Raw pvesh and smartctl output names VMs
// and disk serials, so unlike the Elixir agent (0644) nothing is readable by
// others.
const (
	dirMode  = 0o750
	fileMode = 0o640
)

// errRefused marks a dump file or directory the agent will not write to
// because someone else could have planted or redirected it. Unlike an I/O
// error it is not retried until the next reopen.
var errRefused = safefile.ErrRefused

// opener opens one dump file; tests swap in a hung or special one.
type opener func(dir, name string) (*os.File, error)

// openDump opens dir/name for appending the way safefile does: no planted
// symlink followed, no FIFO blocking, only a regular file of the agent's own
// with a single link, in a directory others cannot write to.
func openDump(dir, name string) (*os.File, error) {
	return safefile.OpenAppend("dump", dir, name, fileMode)
}

func checkDirFd(dir string, fd int) error { return safefile.CheckDirFd("dump", dir, fd) }

// attempt is one open running on its own goroutine: open(2) on a hung
// filesystem cannot be interrupted, so the writer waits for it only so long
// and then goes on without the file until the open returns.
type attempt struct {
	done chan struct{}

	mu        sync.Mutex
	f         *os.File
	err       error
	abandoned bool
}

func startOpen(open opener, dir, name string) *attempt {
	a := &attempt{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		f, err := open(dir, name)
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.abandoned {
			if f != nil {
				f.Close()
			}
			return
		}
		a.f, a.err = f, err
	}()
	return a
}

// ready reports whether the open has returned.
func (a *attempt) ready() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// result hands over the opened file; call once, after ready.
func (a *attempt) result() (*os.File, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.f
	a.f = nil
	return f, a.err
}

// abandon gives up on the attempt: a file it opens later is closed, not
// leaked, since nobody will take it.
func (a *attempt) abandon() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.abandoned = true
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
}
