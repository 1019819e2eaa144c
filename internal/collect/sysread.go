package collect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
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

	buf  []byte
	held *openSet // files kept open between rounds (readHeld)
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
	if cap(r.buf) == 0 {
		r.buf = make([]byte, 0, attrBuf)
	}
	return r.readRest(fd, p, 0)
}

// openDir opens dir as a base for readAttr: O_PATH needs no permission
// on the directory and reads nothing. Reading a directory's attributes
// relative to it resolves one path element per file instead of the whole
// path (through /sys/class/net/<if>'s symlink) each time: on a host with
// dozens of interfaces and chips that halves the fast round's cost.
func openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// attrBuf is the size of the first read of an attribute: sysfs hands the
// whole value over in the first read(2), so a read that does not fill the
// buffer is the whole file and no second read (to see EOF) is needed.
const attrBuf = 8 << 10

// readAttr reads the attribute name in the directory dirfd (opened by
// openDir on dir, which names it in errors and in the dump). What it
// returns is valid until the next read.
func (r *pseudoFiles) readAttr(dirfd int, dir, name string) ([]byte, error) {
	var start time.Time
	if r.Dump.Enabled() {
		start = time.Now()
	}
	b, err := r.readAttrFile(dirfd, dir, name)
	if r.Dump.Enabled() {
		r.Dump.Read(dir+"/"+name, time.Now(), append([]byte(nil), b...), err, time.Since(start))
	}
	return b, err
}

func (r *pseudoFiles) readAttrFile(dirfd int, dir, name string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir + "/" + name, Err: err}
	}
	if cap(r.buf) < attrBuf {
		r.buf = make([]byte, 0, attrBuf)
	}
	var n int
	for {
		n, err = unix.Read(fd, r.buf[:cap(r.buf)])
		if err != unix.EINTR {
			break
		}
	}
	if err == nil && n == cap(r.buf) { // not an attribute: read the rest
		b, err := r.readRest(fd, dir+"/"+name, n)
		unix.Close(fd)
		return b, err
	}
	unix.Close(fd)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: dir + "/" + name, Err: err}
	}
	return r.buf[:n], nil
}

// readRest reads fd to its end after the first n bytes already in r.buf.
func (r *pseudoFiles) readRest(fd int, p string, n int) ([]byte, error) {
	limit := r.Max
	if limit <= 0 {
		limit = 16 << 20
	}
	b := r.buf[:n]
	for {
		if len(b) == cap(b) {
			if len(b) > limit {
				return nil, fmt.Errorf("read %s: larger than %d bytes", p, limit)
			}
			b = append(b, 0)[:len(b)]
		}
		m, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			break
		}
		b = b[:len(b)+m]
	}
	r.buf = b[:0]
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// readlinkBase is the last element of the symlink name in dirfd ("master" ->
// "../bond0" gives "bond0"), "" when it is not a link (no master), or when
// the name is not a valid one.
func readlinkBase(dirfd int, name string) string {
	var buf [256]byte
	n, err := unix.Readlinkat(dirfd, name, buf[:])
	if err != nil || n <= 0 || n >= len(buf) {
		return ""
	}
	base := path.Base(string(buf[:n]))
	if !validName(base) {
		return ""
	}
	return base
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

// heldFile is an attribute file kept open between rounds and read again
// with pread at offset 0: sysfs produces the value afresh on every read
// from offset 0, so a fast round pays one system call per value instead
// of open, read and close (and the path walk through /sys/class's
// symlinks). The zero value is not open.
type heldFile struct {
	fd   int // valid when open
	open bool
	// reopened is set when a held file failed and was opened afresh: the
	// device may have been replaced by another of the same name, so what
	// was cached about it is stale. The reader clears it.
	reopened bool
}

// maxHeld bounds the files one source keeps open; past it, files are
// opened and closed on each read as usual.
const maxHeld = 512

// openSet is the descriptors a source holds, closed when the source is
// dropped (a config reload builds new sources).
type openSet struct {
	mu  sync.Mutex
	fds map[int]struct{}
}

func (s *openSet) add(fd int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fds == nil {
		s.fds = map[int]struct{}{}
	}
	s.fds[fd] = struct{}{}
}

func (s *openSet) remove(fd int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.fds, fd)
}

func (s *openSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fds)
}

func (s *openSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

// holdFor makes the files r holds close when owner (the source r belongs
// to) is garbage: a config reload builds new sources and drops the old.
func holdFor[T any](r *pseudoFiles, owner *T) {
	if r.held == nil {
		r.held = &openSet{}
		runtime.AddCleanup(owner, func(s *openSet) { s.closeAll() }, r.held)
	}
}

// readHeld reads the attribute dir/name through h, opening it first when
// it is not open. When a file held from an earlier round fails (ENODEV: the
// device went away, and may be back under the same name with a new file)
// it is opened afresh once; a fresh file that fails is closed, to be
// opened again next time.
func (r *pseudoFiles) readHeld(h *heldFile, dir, name string) ([]byte, error) {
	wasOpen := h.open
	b, err := r.readHeldOnce(h, dir, name)
	if err != nil && wasOpen {
		h.reopened = true
		return r.readHeldOnce(h, dir, name)
	}
	return b, err
}

func (r *pseudoFiles) readHeldOnce(h *heldFile, dir, name string) ([]byte, error) {
	if r.held == nil {
		r.held = &openSet{}
	}
	if !h.open {
		if r.held.len() >= maxHeld {
			return r.read(dir + "/" + name)
		}
		fd, err := unix.Open(dir+"/"+name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: dir + "/" + name, Err: err}
		}
		h.fd, h.open = fd, true
		r.held.add(fd)
	}
	var start time.Time
	if r.Dump.Enabled() {
		start = time.Now()
	}
	b, err := r.pread(h.fd)
	if err != nil {
		r.release(h)
		err = &fs.PathError{Op: "read", Path: dir + "/" + name, Err: err}
	}
	if r.Dump.Enabled() {
		r.Dump.Read(dir+"/"+name, time.Now(), append([]byte(nil), b...), err, time.Since(start))
	}
	return b, err
}

// pread reads fd whole from offset 0. A read that fills the buffer may
// have more behind it (a /proc file of many lines): the buffer grows and
// the file is read again from 0, so what is returned is one consistent
// generation of the file. The grown buffer is kept: the next round's read
// of the same file fits in one call.
func (r *pseudoFiles) pread(fd int) ([]byte, error) {
	limit := r.Max
	if limit <= 0 {
		limit = 16 << 20
	}
	if cap(r.buf) < attrBuf {
		r.buf = make([]byte, 0, attrBuf)
	}
	for {
		n, err := unix.Pread(fd, r.buf[:cap(r.buf)], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < cap(r.buf) {
			return r.buf[:n], nil
		}
		if cap(r.buf) > limit {
			// Not kept: a root pointed at /dev/zero would pin the
			// grown buffer for the agent's life.
			r.buf = nil
			return nil, unix.EFBIG
		}
		r.buf = make([]byte, 0, 2*cap(r.buf))
	}
}

// heldPaths keeps files of fixed paths (/proc/net/dev, /proc/diskstats,
// the pressure files, a bond's status) open between rounds. A path not
// read for a round is closed by sweep, so the set follows the host (a bond
// removed, its file closed).
type heldPaths struct {
	m     map[string]*heldPath
	round uint64
}

type heldPath struct {
	h    heldFile
	used uint64
}

// readPath reads the file at p through a held descriptor.
func (r *pseudoFiles) readPath(hp *heldPaths, p string) ([]byte, error) {
	if hp.m == nil {
		hp.m = map[string]*heldPath{}
	}
	e := hp.m[p]
	if e == nil {
		e = &heldPath{}
		hp.m[p] = e
	}
	e.used = hp.round
	dir, name := path.Split(p)
	return r.readHeld(&e.h, strings.TrimSuffix(dir, "/"), name)
}

// sweep closes the paths not read since the last sweep and starts a new
// round.
func (r *pseudoFiles) sweep(hp *heldPaths) {
	for p, e := range hp.m {
		if e.used != hp.round {
			r.release(&e.h)
			delete(hp.m, p)
		}
	}
	hp.round++
}

// release closes h if it is open.
func (r *pseudoFiles) release(h *heldFile) {
	if !h.open {
		return
	}
	unix.Close(h.fd)
	if r.held != nil {
		r.held.remove(h.fd)
	}
	h.open = false
}
