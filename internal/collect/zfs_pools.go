package collect

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/zfs"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// Output modes of the zfs tools, detected once per process.
const (
	modeUnknown int32 = iota
	modeJSON          // OpenZFS >= 2.3: -j works
	modeText          // OpenZFS 2.2: -j is an invalid option
)

// ZFSPools is the zfs_pools source: zpool status plus zpool list.
type ZFSPools struct {
	Run     Runner
	Zpool   string
	Timeout time.Duration
	// FS reads /proc/spl/kstat/zfs/<pool>/state when zpool itself hangs.
	FS  FS
	Loc *time.Location
	Log *slog.Logger

	mode atomic.Int32
}

// PoolsData is the zfs_pools payload.
type PoolsData struct {
	Pools []zfs.Pool `json:"pools"`
}

// Collect runs zpool in JSON mode, or in text mode on OpenZFS 2.2.
func (z *ZFSPools) Collect(ctx context.Context) (any, error) {
	var (
		pools []zfs.Pool
		err   error
	)
	if z.mode.Load() != modeText {
		pools, err = z.collectJSON(ctx)
	}
	if z.mode.Load() == modeText {
		pools, err = z.collectText(ctx)
	}
	if err != nil {
		return nil, z.withKstat(err)
	}
	return PoolsData{Pools: pools}, nil
}

func (z *ZFSPools) collectJSON(ctx context.Context) ([]zfs.Pool, error) {
	res := z.Run.Run(ctx, z.Timeout, z.Zpool, "status", "-j", "--json-flat-vdevs", "--json-int")
	if invalidOption(res) {
		z.mode.Store(modeText)
		if z.Log != nil {
			z.Log.Info("zpool has no JSON output (OpenZFS < 2.3): using its text output from now on", "zpool", z.Zpool)
		}
		return nil, nil
	}
	out, err := output(res)
	if err != nil {
		return nil, err
	}
	z.mode.Store(modeJSON)
	pools, err := zfs.ParseStatusJSON(out)
	if err != nil {
		return nil, err
	}
	lres := z.Run.Run(ctx, z.Timeout, z.Zpool, "list", "-j", "--json-int")
	lout, err := output(lres)
	if err != nil {
		return nil, err
	}
	sizes, err := zfs.ParseListJSON(lout)
	if err != nil {
		return nil, err
	}
	return zfs.MergeSizes(pools, sizes), nil
}

func (z *ZFSPools) collectText(ctx context.Context) ([]zfs.Pool, error) {
	out, err := output(z.Run.Run(ctx, z.Timeout, z.Zpool, "status", "-p"))
	if err != nil {
		return nil, err
	}
	pools, err := zfs.ParseStatusText(out, z.Loc)
	if err != nil {
		return nil, err
	}
	lout, err := output(z.Run.Run(ctx, z.Timeout, z.Zpool, "list", "-H", "-p", "-o", zfs.ListColumns))
	if err != nil {
		return nil, err
	}
	sizes, err := zfs.ParseListText(lout)
	if err != nil {
		return nil, err
	}
	return zfs.MergeSizes(pools, sizes), nil
}

// invalidOption recognises OpenZFS 2.2 refusing -j: exit 2, "invalid option".
func invalidOption(res runner.Result) bool {
	return res.Outcome == dump.NonZero &&
		(strings.Contains(string(res.Stderr), "invalid option") || strings.Contains(string(res.Stdout), "invalid option"))
}

// withKstat adds the pools' states from kstat when zpool hung or failed:
// those files are read without pool locks and never hang, so the operator
// still learns "tank=SUSPENDED" while zpool is stuck on it.
func (z *ZFSPools) withKstat(err error) error {
	root := filepath.Join(z.FS.Root, "spl", "kstat", "zfs")
	entries, rerr := os.ReadDir(root)
	if rerr != nil {
		return err
	}
	var states []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, serr := z.FS.Read(filepath.Join("spl", "kstat", "zfs", e.Name(), "state"))
		if serr != nil {
			continue
		}
		states = append(states, e.Name()+"="+strings.TrimSpace(string(b)))
	}
	if len(states) == 0 {
		return err
	}
	sort.Strings(states)
	return fmt.Errorf("%w; kstat pool states: %s", err, strings.Join(states, " "))
}
