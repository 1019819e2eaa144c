package writer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// Prepare creates dir (mode 0750) if it is missing and checks that others
// cannot write to it. The supervisor calls it before spawning the writer; on
// error the dump stays off.
func Prepare(dir string) error {
	if err := safefile.CheckPath("dump", dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create dump dir %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dump dir %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return checkDirFd(dir, fd)
}

// Configure decides whether the dump is on for dir, as the seed's
// Diagnostics.configure did: "" means off; a directory that cannot be created
// or is refused logs one warning and leaves the dump off; otherwise it is on.
// A directory on a hung filesystem counts as unusable after openTimeout
// rather than holding up the start of the whole tree.
func Configure(dir string, log *slog.Logger) bool {
	return configure(dir, log, Prepare, openTimeout)
}

func configure(dir string, log *slog.Logger, prepare func(string) error, timeout time.Duration) bool {
	if dir == "" {
		return false
	}
	if err := within(timeout, dir, prepare); err != nil {
		log.Warn("diagnostic dump disabled", "dir", dir, "err", err)
		return false
	}
	log.Info("diagnostic dump enabled", "dir", dir)
	return true
}

var errPrepareTimeout = errors.New("timed out")

// within runs prepare off the caller's goroutine and gives up after timeout:
// mkdir or stat on a hung mount cannot be interrupted. A prepare that returns
// later is simply forgotten; it holds nothing that needs closing.
func within(timeout time.Duration, dir string, prepare func(string) error) error {
	done := make(chan error, 1)
	go func() { done <- prepare(dir) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("prepare dump dir %s: %w after %s", dir, errPrepareTimeout, timeout)
	}
}
