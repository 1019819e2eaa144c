package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/zfs"
)

// The zpool forms the pool parsers expect.
var (
	statusArgsJSON = []string{"status", "-j", "--json-flat-vdevs", "--json-int"}
	statusArgsText = []string{"status", "-p"}
	listArgsJSON   = []string{"list", "-j", "--json-int"}
	listArgsText   = []string{"list", "-H", "-p", "-o", zfs.ListColumns}
)

// ZFSPools is the zfs_pools source: zpool status plus zpool list.
type ZFSPools struct {
	Zpool zfsTool
	// FS reads /proc/spl/kstat/zfs/<pool>/state when zpool itself hangs.
	FS  FS
	Loc *time.Location
}

// PoolsData is the zfs_pools payload.
type PoolsData struct {
	Pools []zfs.Pool `json:"pools"`
}

// Collect runs zpool status and zpool list, in JSON mode or, on OpenZFS
// 2.2, in text mode.
func (z *ZFSPools) Collect(ctx context.Context) (any, error) {
	pools, err := z.collect(ctx)
	if err != nil {
		return nil, z.withKstat(err)
	}
	return PoolsData{Pools: pools}, nil
}

func (z *ZFSPools) collect(ctx context.Context) ([]zfs.Pool, error) {
	out, isJSON, err := z.Zpool.first(ctx, statusArgsJSON, statusArgsText)
	if err != nil {
		return nil, err
	}
	parseStatus, listArgs, parseList := zfs.ParseStatusJSON, listArgsJSON, zfs.ParseListJSON
	if !isJSON {
		parseStatus = func(b []byte) ([]zfs.Pool, error) { return zfs.ParseStatusText(b, z.Loc) }
		listArgs, parseList = listArgsText, zfs.ParseListText
	}
	pools, err := parseStatus(out)
	if err != nil {
		return nil, err
	}
	lout, err := z.Zpool.run(ctx, listArgs...)
	if err != nil {
		return nil, err
	}
	sizes, err := parseList(lout)
	if err != nil {
		return nil, err
	}
	return zfs.MergeSizes(pools, sizes), nil
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
