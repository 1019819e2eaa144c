package spool

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
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

// CorruptKind is the kind of a set-aside entry that holds a damaged spool
// record: not a sample, so replay never pushes it (it counts and skips
// every kind but the metric cadences).
const CorruptKind = "spool-corrupt"

// CorruptEntry is the payload of a CorruptKind entry: a JSON object with
// the time it was set aside (collected_at, so the file reads like any
// samples.log), the record's sequence number, why it failed, and its raw
// bytes in base64, for a person or a tool to look at.
func CorruptEntry(seq uint64, raw []byte, why error) []byte {
	b, _ := json.Marshal(struct {
		CollectedAt string `json:"collected_at"`
		Seq         uint64 `json:"spool_seq"`
		Error       string `json:"error"`
		Raw         []byte `json:"raw_base64"`
	}{dump.Timestamp(time.Now()), seq, fmt.Sprint(why), raw})
	return b
}

// Path is the set-aside file's path.
func (a Aside) Path() string { return filepath.Join(a.Dir, AsideName) }

// Keep appends one sample to the file, headed with the time it was set
// aside, syncs it, and returns the file's path. The file is opened as the
// dump's are (safefile: no symlink, FIFO, hard link or foreign file, 0600).
// An entry never lands glued to a torn one: a file that does not end in a
// newline (a write cut short by a crash) gets one first, and a write that
// fails is cut back off.
func (a Aside) Keep(kind string, payload []byte) (string, error) {
	path := a.Path()
	entry := dump.AppendSample([]byte{'\n'}, &dump.SampleRecord{At: time.Now(), Kind: kind, Payload: payload})
	if int64(len(entry)) > a.MaxBytes {
		return path, fmt.Errorf("set-aside: a sample of %d bytes is over the file's bound (%d)", len(payload), a.MaxBytes)
	}
	f, err := safefile.OpenAppendRead("set-aside file", a.Dir, AsideName, 0o600)
	if err != nil {
		return path, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	size := st.Size()
	if !tornTail(f, size) {
		entry = entry[1:] // empty, or ends whole: no separator needed
	}
	if size+int64(len(entry)) > a.MaxBytes {
		return path, fmt.Errorf("set-aside file %s is full (%d bytes, max %d)", path, size, a.MaxBytes)
	}
	if _, err := f.Write(entry); err != nil {
		_ = f.Truncate(size)
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return path, fmt.Errorf("set-aside file: %w", err)
	}
	return path, nil
}

// tornTail reports whether the file's last byte is not a newline: its
// last entry was cut short, and the next must start on a line of its own.
func tornTail(f *os.File, size int64) bool {
	if size == 0 {
		return false
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], size-1)
	return err == nil && b[0] != '\n'
}
