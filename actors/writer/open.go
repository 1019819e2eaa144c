package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
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
var errRefused = errors.New("refused")

func refuse(path, why string) error {
	return fmt.Errorf("dump %s: %w: %s", path, errRefused, why)
}

// opener opens one dump file; tests swap in a hung or special one.
type opener func(dir, name string) (*os.File, error)

// openDump opens dir/name for appending without following a planted symlink
// and without blocking on a FIFO, then refuses anything but a regular file
// of the agent's own with a single link, in a directory others cannot write
// to. The directory is checked through the same descriptor the file is
// opened from, so swapping it between the check and the open changes nothing.
func openDump(dir, name string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open dump dir %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	if err := checkDirFd(dir, dfd); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	fd, err := unix.Openat(dfd, name,
		unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, fileMode)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, refuse(path, "is a symlink")
	case errors.Is(err, unix.ENXIO):
		// O_NONBLOCK write-only open of a FIFO nobody reads.
		return nil, refuse(path, "is a FIFO")
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := adopt(path, fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// adopt vets a freshly opened fd and makes it an ordinary blocking,
// private file.
func adopt(path string, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return refuse(path, "is not a regular file")
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return refuse(path, fmt.Sprintf("is owned by uid %d, not the agent's %d", st.Uid, euid))
	}
	// A second link could be a hard link planted to a file of ours elsewhere.
	if st.Nlink > 1 {
		return refuse(path, fmt.Sprintf("has %d hard links", st.Nlink))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("clear O_NONBLOCK on %s: %w", path, err)
	}
	// A file left by the old agent (0644) or by a loose umask keeps the mode
	// it was created with; ours never needs more than fileMode.
	if perm := st.Mode & 0o7777; perm&^fileMode != 0 {
		if err := unix.Fchmod(fd, perm&fileMode); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return nil
}

// checkDirFd refuses a dump directory that others can write to: they could
// plant or swap files in it. A sticky directory of the agent's own (like
// /tmp for root) is accepted, since others cannot rename or remove our files
// there, and what they create themselves is refused by owner.
func checkDirFd(dir string, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat dump dir %s: %w", dir, err)
	}
	return checkDirStat(dir, st.Mode, st.Uid)
}

func checkDirStat(dir string, mode, uid uint32) error {
	if mode&0o022 == 0 {
		return nil
	}
	if mode&unix.S_ISVTX != 0 && int(uid) == os.Geteuid() {
		return nil
	}
	return refuse(dir, fmt.Sprintf("directory mode %#o is writable by group or others and not sticky and ours", mode&0o7777))
}

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
