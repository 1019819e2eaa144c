package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
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
	Name           string        `json:"name"`
	ReadsPerS      lenient.Float `json:"reads_per_s"`
	WritesPerS     lenient.Float `json:"writes_per_s"`
	ReadBytesPerS  lenient.Float `json:"read_bytes_per_s"`
	WriteBytesPerS lenient.Float `json:"write_bytes_per_s"`
	// Awaits are the mean time a request completed in the interval took,
	// queue included; 0 when none completed.
	ReadAwaitMs  lenient.Float `json:"read_await_ms"`
	WriteAwaitMs lenient.Float `json:"write_await_ms"`
	// UtilPct is the share of the interval the device had I/O in flight.
	UtilPct lenient.Float `json:"util_pct"`
}

// DiskIO is the diskio source: <proc>/diskstats, whole devices only
// (those listed in <sys>/block).
type DiskIO struct {
	Proc, Sys string
	Exclude   []string
	Dump      *dump.Handle
	Now       func() time.Time

	file  pseudoFiles
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
	now := d.Now()
	p := filepath.Join(d.Proc, "diskstats")
	b, err := d.file.read(p)
	if err != nil {
		return nil, err
	}
	stats, err := procfs.ParseDiskstats(b, d.stats[:0])
	d.stats = stats
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := d.refreshWhole(stats); err != nil {
		return nil, err
	}
	if d.prev == nil {
		d.prev = map[string]diskPrev{}
	}
	d.round++
	secs := 0.0
	if !d.prevAt.IsZero() {
		secs = rate.Seconds(d.prevAt, now)
	}
	out := make([]Disk, 0, 8)
	for i := range stats {
		s := &stats[i]
		if !d.whole[string(s.Name)] || excluded(skipDisks, string(s.Name)) || excluded(d.Exclude, string(s.Name)) {
			continue
		}
		out = append(out, d.one(s, secs))
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

func (d *DiskIO) one(s *procfs.DiskStat, secs float64) Disk {
	disk := Disk{Name: string(s.Name)}
	cur := [7]uint64{s.ReadIOs, s.WriteIOs, s.ReadSectors, s.WriteSectors, s.ReadMs, s.WriteMs, s.IOMs}
	p, seen := d.prev[disk.Name]
	var dl [7]uint64
	if seen && secs > 0 && rate.Deltas(p.c[:], cur[:], dl[:]) {
		disk.ReadsPerS, disk.WritesPerS = rate.PerSecond(dl[0], secs), rate.PerSecond(dl[1], secs)
		disk.ReadBytesPerS, disk.WriteBytesPerS = rate.PerSecond(dl[2]*512, secs), rate.PerSecond(dl[3]*512, secs)
		disk.ReadAwaitMs, disk.WriteAwaitMs = await(dl[4], dl[0]), await(dl[5], dl[1])
		// io_ticks can run a little ahead of the clock between two reads.
		disk.UtilPct = lenient.F(min(100, float64(int64(float64(dl[6])/(secs*1000)*10000+0.5))/100))
	}
	d.prev[disk.Name] = diskPrev{c: cur, round: d.round}
	return disk
}

func await(ms, ios uint64) lenient.Float {
	if ios == 0 {
		return lenient.F(0)
	}
	return lenient.F(float64(int64(float64(ms)/float64(ios)*100+0.5)) / 100)
}

// refreshWhole reads <sys>/block when stats has a name not seen at the
// last reading, and then remembers, for every current name, whether it is
// a whole device.
func (d *DiskIO) refreshWhole(stats []procfs.DiskStat) error {
	fresh := d.whole != nil
	for i := range stats {
		if _, ok := d.whole[string(stats[i].Name)]; !ok {
			fresh = false
			break
		}
	}
	if fresh {
		return nil
	}
	dir := filepath.Join(d.Sys, "block")
	names, err := listDir(dir)
	if err != nil {
		return fmt.Errorf("list whole block devices: %w", err)
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[n] = true
	}
	whole := make(map[string]bool, len(stats))
	for i := range stats {
		whole[string(stats[i].Name)] = listed[string(stats[i].Name)]
	}
	d.whole = whole
	return nil
}
