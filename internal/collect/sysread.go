package collect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
)

// pseudoFiles reads the small files of /sys and /proc the host sources read
// every fast round (hundreds on a big host) into one buffer it reuses: no
// *os.File, no per-read allocation of the contents. What read returns is
// valid until the next read. Not safe for concurrent use: each source has
// its own (the round never runs a source twice at once).
type pseudoFiles struct {
	Dump *dump.Handle
	// Max caps a file (0: 16 MiB): a root pointed at a device or a runaway
	// file must not eat the agent's memory.
	Max int

	buf []byte
}

// read returns the file at p. O_NONBLOCK keeps a FIFO planted under a root
// from blocking the open; O_NOFOLLOW refuses a final symlink (attributes
// are never links; the links to follow are the directories above them).
func (r *pseudoFiles) read(p string) ([]byte, error) {
	var start time.Time
	if r.Dump.Enabled() {
		start = time.Now()
	}
	b, err := r.readFile(p)
	if r.Dump.Enabled() {
		r.Dump.Read(p, time.Now(), append([]byte(nil), b...), err, time.Since(start))
	}
	return b, err
}

func (r *pseudoFiles) readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	limit := r.Max
	if limit <= 0 {
		limit = 16 << 20
	}
	if cap(r.buf) == 0 {
		r.buf = make([]byte, 0, 4096)
	}
	b := r.buf[:0]
	for {
		if len(b) == cap(b) {
			if len(b) > limit {
				return nil, fmt.Errorf("read %s: larger than %d bytes", p, limit)
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.buf = b[:0]
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			break
		}
		b = b[:len(b)+n]
	}
	r.buf = b[:0]
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// readlinkBase is the last element of the symlink at p ("master" ->
// "../bond0" gives "bond0"), "" when p is not a link (no master), or when
// the name is not a valid one.
func readlinkBase(p string) string {
	var buf [256]byte
	n, err := unix.Readlink(p, buf[:])
	if err != nil || n <= 0 || n >= len(buf) {
		return ""
	}
	name := path.Base(string(buf[:n]))
	if !validName(name) {
		return ""
	}
	return name
}

// validName reports whether name, taken from the kernel or a file, can be
// joined to a root as one path element: not empty, not . or .., no slash
// or NUL. Interface, disk and chip names are data; a name that fails is
// skipped, never used to build a path.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 && !strings.ContainsAny(name, "/\x00")
}

// listDir returns the names in dir, unsorted, or an error; a missing dir
// is fs.ErrNotExist.
func listDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// excluded reports whether name matches one of the globs (path.Match
// syntax; the config checked them).
func excluded(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// absent tells "this file does not exist on this kernel" (ENOENT,
// ENOTDIR, and EOPNOTSUPP, which a PSI file gives when PSI is compiled in
// but off) from a failed read.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EOPNOTSUPP)
}
