package writer

import (
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// Prepare creates dir (mode 0750) if it is missing and checks that others
// cannot write to it. The supervisor calls it before spawning the writer; on
// error the dump stays off.
func Prepare(dir string) error {
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
