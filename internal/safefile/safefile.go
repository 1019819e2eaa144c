// Package safefile opens files that the root agent appends to in
// directories an operator chose (the dump, the set-aside file) without
// being redirected: no planted symlink is followed, a FIFO does not block
// the open, and anything but a regular file of the agent's own with a
// single link, in a directory others cannot write to, is refused.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrRefused marks a file or directory the agent will not write to because
// someone else could have planted or redirected it. Unlike an I/O error,
// retrying soon will not help.
var ErrRefused = errors.New("refused")

// Refuse is an ErrRefused for path; what names the file's role ("dump").
func Refuse(what, path, why string) error {
	return fmt.Errorf("%s %s: %w: %s", what, path, ErrRefused, why)
}

// OpenAppend opens dir/name for appending, creating it with mode, and
// vets it as the package says; a file that exists with more permissions
// than mode is narrowed to mode. The directory is checked through the same
// descriptor the file is opened from, so swapping it between the check and
// the open changes nothing. what names the file's role in errors.
func OpenAppend(what, dir, name string, mode uint32) (*os.File, error) {
	return open(what, dir, name, mode, unix.O_WRONLY)
}

// OpenAppendRead is OpenAppend with the file also open for reading (a
// caller that checks how the file ends before appending).
func OpenAppendRead(what, dir, name string, mode uint32) (*os.File, error) {
	return open(what, dir, name, mode, unix.O_RDWR)
}

func open(what, dir, name string, mode uint32, access int) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s dir %s: %w", what, dir, err)
	}
	defer unix.Close(dfd)
	if err := CheckDirFd(what, dir, dfd); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	fd, err := unix.Openat(dfd, name,
		access|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, mode)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, Refuse(what, path, "is a symlink")
	case errors.Is(err, unix.ENXIO):
		// O_NONBLOCK write-only open of a FIFO nobody reads.
		return nil, Refuse(what, path, "is a FIFO")
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := adopt(what, path, fd, mode); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// adopt vets a freshly opened fd and makes it an ordinary blocking,
// private file.
func adopt(what, path string, fd int, mode uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Refuse(what, path, "is not a regular file")
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return Refuse(what, path, fmt.Sprintf("is owned by uid %d, not the agent's %d", st.Uid, euid))
	}
	// A second link could be a hard link planted to a file of ours elsewhere.
	if st.Nlink > 1 {
		return Refuse(what, path, fmt.Sprintf("has %d hard links", st.Nlink))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("clear O_NONBLOCK on %s: %w", path, err)
	}
	// A file left by the old agent (0644) or by a loose umask keeps the mode
	// it was created with; ours never needs more than mode.
	if perm := st.Mode & 0o7777; perm&^mode != 0 {
		if err := unix.Fchmod(fd, perm&mode); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return nil
}

// CheckDirFd refuses a directory that others can write to: they could
// plant or swap files in it. A sticky directory of the agent's own (like
// /tmp for root) is accepted, since others cannot rename or remove our
// files there, and what they create themselves is refused by owner.
func CheckDirFd(what, dir string, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s dir %s: %w", what, dir, err)
	}
	return CheckDirStat(what, dir, st.Mode, st.Uid)
}

// CheckDirStat is CheckDirFd on a directory's mode and owner. A directory
// owned by a user other than root and the agent's is refused whatever its
// mode: its owner can empty it, rename it or swap it for a symlink.
func CheckDirStat(what, dir string, mode, uid uint32) error {
	if uid != 0 && int(uid) != os.Geteuid() {
		return Refuse(what, dir, fmt.Sprintf("directory is owned by uid %d, neither root nor the agent's %d", uid, os.Geteuid()))
	}
	if mode&0o022 == 0 {
		return nil
	}
	if mode&unix.S_ISVTX != 0 && int(uid) == os.Geteuid() {
		return nil
	}
	return Refuse(what, dir, fmt.Sprintf("directory mode %#o is writable by group or others and not sticky and ours", mode&0o7777))
}

// CheckPath refuses a directory path another user controls on the way to
// it: an existing ancestor (or the directory) that is not root's or the
// agent's, or that others can write to without the sticky bit, and a
// symlink on the way that is not root's or the agent's. Missing trailing
// components (created later, by the agent) are skipped. It is checked
// before the directory is created or used, so a user who made
// /tmp/x/dump -> /etc first cannot have root write there.
func CheckPath(what, dir string) error {
	euid := os.Geteuid()
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if err := checkComponent(what, d, euid); err != nil {
			return err
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// CheckPrivateDir is CheckPath for a directory that nobody but root and
// the agent may write to at all, sticky or not (where a socket is bound:
// anyone who can create a name there can bind it first).
func CheckPrivateDir(what, dir string) error {
	if err := CheckPath(what, dir); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("stat %s path %s: %w", what, dir, err)
	}
	if st.Mode&0o022 != 0 {
		return Refuse(what, dir, fmt.Sprintf("directory mode %#o lets group or others write to it", st.Mode&0o7777))
	}
	return nil
}

func checkComponent(what, d string, euid int) error {
	var lst unix.Stat_t
	if err := unix.Lstat(d, &lst); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // not there yet: the agent creates it
		}
		return fmt.Errorf("stat %s path %s: %w", what, d, err)
	}
	if lst.Mode&unix.S_IFMT == unix.S_IFLNK && lst.Uid != 0 && int(lst.Uid) != euid {
		return Refuse(what, d, fmt.Sprintf("is a symlink owned by uid %d, neither root nor the agent's %d", lst.Uid, euid))
	}
	var st unix.Stat_t
	if err := unix.Stat(d, &st); err != nil {
		return fmt.Errorf("stat %s path %s: %w", what, d, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Refuse(what, d, "is not a directory")
	}
	if st.Uid != 0 && int(st.Uid) != euid {
		return Refuse(what, d, fmt.Sprintf("directory is owned by uid %d, neither root nor the agent's %d", st.Uid, euid))
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return Refuse(what, d, fmt.Sprintf("directory mode %#o is writable by group or others and not sticky", st.Mode&0o7777))
	}
	return nil
}
