package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
)

// AsideName is the file, in the spool directory, that keeps samples set
// aside: the server failed on each of them every time it was the oldest
// push in flight (its channel crashed on it, or the connection died after
// it). They are not deliverable now, but they are not the agent's to
// drop either; the file is in samples.log's format, so `proxmox-agent
// replay` sends them once the server is fixed.
const AsideName = "set-aside.log"

// MaxAsideBytes bounds the set-aside file: a server that fails on every
// sample would otherwise fill the disk with them.
const MaxAsideBytes = 64 << 20

// Aside keeps set-aside samples in Dir/AsideName.
type Aside struct {
	Dir      string
	MaxBytes int64
}

// Path is the set-aside file's path.
func (a Aside) Path() string { return filepath.Join(a.Dir, AsideName) }

// Keep appends one sample to the file and syncs it, and returns the file's
// path. The file is 0600 like the spool; a symlink, a FIFO or anything but
// a regular file in its place is refused, and a full file keeps nothing
// more.
func (a Aside) Keep(kind string, at time.Time, payload []byte) (string, error) {
	path := a.Path()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	entry := dump.AppendSample(nil, &dump.SampleRecord{At: at, Kind: kind, Payload: payload})
	switch {
	case !st.Mode().IsRegular():
		return path, fmt.Errorf("set-aside file %s is not a regular file (%s)", path, st.Mode().Type())
	case st.Size()+int64(len(entry)) > a.MaxBytes:
		return path, fmt.Errorf("set-aside file %s is full (%d bytes, max %d)", path, st.Size(), a.MaxBytes)
	}
	if _, err := f.Write(entry); err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	return path, nil
}
