package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

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

// Datasets is the zfs_datasets source: zfs list of filesystems and volumes.
type Datasets struct {
	Run     Runner
	Zfs     string
	Timeout time.Duration
	Log     *slog.Logger

	mode atomic.Int32
}

// Collect runs zfs list -j, or the -H -p text form on OpenZFS 2.2.
func (d *Datasets) Collect(ctx context.Context) (any, error) {
	if d.mode.Load() != modeText {
		res := d.Run.Run(ctx, d.Timeout, d.Zfs, zfs.DatasetArgsJSON...)
		if !invalidOption(res) {
			out, err := output(res)
			if err != nil {
				return nil, err
			}
			d.mode.Store(modeJSON)
			return zfs.ParseDatasetsJSON(out)
		}
		d.mode.Store(modeText)
		if d.Log != nil {
			d.Log.Info("zfs has no JSON output (OpenZFS < 2.3): using its text output from now on", "zfs", d.Zfs)
		}
	}
	out, err := output(d.Run.Run(ctx, d.Timeout, d.Zfs, zfs.DatasetArgsText...))
	if err != nil {
		return nil, err
	}
	return zfs.ParseDatasetsText(out)
}
