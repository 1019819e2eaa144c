package collect

import (
	"os"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
)

// FS reads files below Root (normally /proc).
type FS struct {
	Root string
	Dump *dump.Handle
}

// Read returns the file at Root/name, recording the read in the dump.
func (fs FS) Read(name string) ([]byte, error) {
	path := filepath.Join(fs.Root, name)
	start := time.Now()
	b, err := os.ReadFile(path)
	fs.Dump.Read(path, time.Now(), b, err, time.Since(start))
	return b, err
}
