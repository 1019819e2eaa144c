package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// The spool is root's file in a directory an operator chose: it gets the
// checks the dump and the set-aside file have (internal/safefile). A
// directory others can write to could let them plant a spool.db before
// the agent starts (its samples would reach the server as this host's)
// or swap it later; a spool.db that is a symlink, a hard link or another
// user's file is not the agent's own. Each is refused with an error
// wrapping safefile.ErrRefused, and the agent runs from memory. The file
// is vetted on the very descriptor bbolt then uses (openFile), so nothing
// can be swapped in between the check and the open.

// fileID names a file by device and inode: how the spool tells the file
// it holds open from whatever the path names now.
type fileID struct{ dev, ino uint64 }

func idOf(st *unix.Stat_t) fileID { return fileID{dev: uint64(st.Dev), ino: st.Ino} } //nolint:unconvert // Dev's type differs by arch

// checkDir refuses a spool directory that another user controls: its
// path (safefile.CheckPath) and the directory itself.
func checkDir(dir string) error {
	if err := safefile.CheckPath("spool", dir); err != nil {
		return err
	}
	return checkDirItself(dir)
}

// checkDirItself refuses a spool directory that others can write to or
// own, checked on the directory it opens.
func checkDirItself(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("spool dir %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return safefile.CheckDirFd("spool", dir, fd)
}

// checkFile vets what the path names without opening it (a FIFO would
// block the open, a device would be read): a missing file is fine (it
// will be created, by the agent), anything else must be the agent's own
// regular file with one link.
func checkFile(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool %s: %w", path, err)
	}
	return vet(path, &st)
}

// vet refuses a file that is not the agent's own single-link regular
// file.
func vet(path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return safefile.Refuse("spool", path, "is a symlink")
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return safefile.Refuse("spool", path, fmt.Sprintf("is not a regular file (mode %#o)", st.Mode&unix.S_IFMT))
	case int(st.Uid) != os.Geteuid():
		return safefile.Refuse("spool", path, fmt.Sprintf("is owned by uid %d, not the agent's %d: never opened", st.Uid, os.Geteuid()))
	case st.Nlink > 1:
		return safefile.Refuse("spool", path, fmt.Sprintf("has %d hard links", st.Nlink))
	}
	return nil
}

// openFile is bbolt's OpenFile for the spool: no symlink followed, no
// FIFO waited on, and the opened file vetted (vet) before bbolt reads a
// byte of it. It records the file's identity in id.
func openFile(id *fileID) func(string, int, os.FileMode) (*os.File, error) {
	return func(path string, flag int, mode os.FileMode) (*os.File, error) {
		fd, err := unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(mode.Perm()))
		if errors.Is(err, unix.ELOOP) {
			return nil, safefile.Refuse("spool", path, "is a symlink")
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
		}
		if err := vet(path, &st); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		*id = idOf(&st)
		return os.NewFile(uintptr(fd), path), nil
	}
}

// pathID is the identity of the file the path names now; ok is false
// when it names none (removed), err when that cannot be told.
func pathID(path string) (id fileID, ok bool, err error) {
	var st unix.Stat_t
	err = unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return fileID{}, false, nil
	}
	if err != nil {
		return fileID{}, false, err
	}
	return idOf(&st), true, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
