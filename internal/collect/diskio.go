package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/rate"
)

// skipDisks are never block devices an operator means by disk I/O: loop
// devices and RAM disks. Partitions are left out too (their disk has the
// sum); zvols (zd*) and device-mapper volumes (dm-*) are in unless
// [diskio] exclude names them.
var skipDisks = []string{"loop*", "ram*", "zram*"}

// Disk is one whole block device in the diskio payload, all since the
// previous round: null on the first round and after a counter went
// backwards (a disk replaced, or the kernel's 32-bit millisecond fields
// wrapping after 49.7 days).
type Disk struct {
	Name           string   `json:"name"`
	ReadsPerS      *float64 `json:"reads_per_s"`
	WritesPerS     *float64 `json:"writes_per_s"`
	ReadBytesPerS  *float64 `json:"read_bytes_per_s"`
	WriteBytesPerS *float64 `json:"write_bytes_per_s"`
	// Awaits are the mean time a request completed in the interval took,
	// queue included; 0 when none completed.
	ReadAwaitMs  *float64 `json:"read_await_ms"`
	WriteAwaitMs *float64 `json:"write_await_ms"`
	// UtilPct is the share of the interval the device had I/O in flight.
	UtilPct *float64 `json:"util_pct"`
}

// DiskIO is the diskio source: <proc>/diskstats, whole devices only
// (those listed in <sys>/block).
type DiskIO struct {
	Proc, Sys string
	Exclude   []string
	Dump      *dump.Handle
	Now       func() time.Time

	file  pseudoFiles
	held  heldPaths
	path  string
	stats []procfs.DiskStat
	// whole says, for each name diskstats listed when <sys>/block was last
	// read, whether it is a whole device. <sys>/block is read again only
	// when diskstats shows a name it does not know (hot-plug).
	whole  map[string]bool
	prev   map[string]diskPrev
	prevAt time.Time
	round  uint64
}

type diskPrev struct {
	c     [7]uint64 // read ios, write ios, read sectors, write sectors, read ms, write ms, io ms
	round uint64
}

// Collect reads diskstats.
func (d *DiskIO) Collect(context.Context) (any, error) {
	d.file.Dump = d.Dump
	holdFor(&d.file, d)
	defer d.file.sweep(&d.held)
	now := d.Now()
	if d.path == "" {
		d.path = filepath.Join(d.Proc, "diskstats")
	}
	p := d.path
	b, err := d.file.readPath(&d.held, p)
	if err != nil {
		return nil, err
	}
	stats, unknown, err := d.parse(b)
	if err == nil && unknown { // a device not seen before: which are whole?
		if err := d.refreshWhole(b); err != nil {
			return nil, err
		}
		stats, _, err = d.parse(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if d.prev == nil {
		d.prev = map[string]diskPrev{}
	}
	d.round++
	secs := 0.0
	if !d.prevAt.IsZero() {
		secs = now.Sub(d.prevAt).Seconds()
	}
	out := make([]Disk, 0, 8)
	nums := newFloats(7 * 8)
	for i := range stats {
		s := &stats[i]
		out = append(out, d.one(s, secs, nums))
	}
	for name, p := range d.prev {
		if p.round != d.round {
			delete(d.prev, name)
		}
	}
	d.prevAt = now
	slices.SortFunc(out, func(a, b Disk) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (d *DiskIO) one(s *procfs.DiskStat, secs float64, nums *floats) Disk {
	disk := Disk{Name: string(s.Name)}
	cur := [7]uint64{s.ReadIOs, s.WriteIOs, s.ReadSectors, s.WriteSectors, s.ReadMs, s.WriteMs, s.IOMs}
	p, seen := d.prev[disk.Name]
	var dl [7]uint64
	if seen && secs > 0 && rate.Deltas(p.c[:], cur[:], dl[:]) {
		disk.ReadsPerS, disk.WritesPerS = nums.of(round2(float64(dl[0])/secs)), nums.of(round2(float64(dl[1])/secs))
		disk.ReadBytesPerS, disk.WriteBytesPerS = nums.of(round2(float64(dl[2])*512/secs)), nums.of(round2(float64(dl[3])*512/secs))
		disk.ReadAwaitMs, disk.WriteAwaitMs = nums.of(await(dl[4], dl[0])), nums.of(await(dl[5], dl[1]))
		// io_ticks can run a little ahead of the clock between two reads.
		disk.UtilPct = nums.of(min(100, round2(float64(dl[6])/(secs*1000)*100)))
	}
	d.prev[disk.Name] = diskPrev{c: cur, round: d.round}
	return disk
}

func await(ms, ios uint64) float64 {
	if ios == 0 {
		return 0
	}
	return round2(float64(ms) / float64(ios))
}

// parse keeps the whole devices that are neither skipped nor excluded
// (partitions are most of the file: their counters are not even parsed),
// and reports whether a name was not known at the last reading of
// <sys>/block.
func (d *DiskIO) parse(b []byte) ([]procfs.DiskStat, bool, error) {
	unknown := d.whole == nil
	stats, err := procfs.ParseDiskstats(b, d.stats[:0], func(n []byte) bool {
		whole, ok := d.whole[string(n)]
		if !ok {
			unknown = true
		}
		return whole && !excluded(skipDisks, string(n)) && !excluded(d.Exclude, string(n))
	})
	d.stats = stats
	return stats, unknown, err
}

// refreshWhole reads <sys>/block and remembers, for every name in
// diskstats, whether it is a whole device.
func (d *DiskIO) refreshWhole(b []byte) error {
	var all []string
	procfs.ParseDiskstats(b, nil, func(n []byte) bool {
		all = append(all, string(n))
		return false
	})
	dir := filepath.Join(d.Sys, "block")
	names, err := listDir(dir)
	if err != nil {
		return fmt.Errorf("list whole block devices: %w", err)
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[n] = true
	}
	whole := make(map[string]bool, len(all))
	for _, n := range all {
		whole[n] = listed[n]
	}
	d.whole = whole
	return nil
}
