package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/zfs"
)

// ARC is the arc source: /proc/spl/kstat/zfs/arcstats.
type ARC struct{ FS FS }

// Collect reads and parses arcstats.
func (a *ARC) Collect(context.Context) (any, error) {
	b, err := a.FS.Read("spl/kstat/zfs/arcstats")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("arcstats not present (ZFS module not loaded)")
	}
	if err != nil {
		return nil, fmt.Errorf("read arcstats: %w", err)
	}
	return zfs.ParseARCStats(b)
}
