package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/sysfs"
)

// HostData is the host payload: load, memory and swap in bytes, uptime, and
// CPU busy % since the previous sample (null on the first).
type HostData struct {
	Load1         lenient.Float `json:"load1"`
	Load5         lenient.Float `json:"load5"`
	Load15        lenient.Float `json:"load15"`
	MemTotal      uint64        `json:"mem_total"`
	MemFree       uint64        `json:"mem_free"`
	MemAvailable  uint64        `json:"mem_available"`
	MemUsed       uint64        `json:"mem_used"` // total − available, as Proxmox reports it
	Buffers       uint64        `json:"buffers"`
	Cached        uint64        `json:"cached"`
	SwapTotal     uint64        `json:"swap_total"`
	SwapFree      uint64        `json:"swap_free"`
	SwapUsed      uint64        `json:"swap_used"`
	UptimeSeconds uint64        `json:"uptime_seconds"`
	CPUBusyPct    lenient.Float `json:"cpu_busy_pct"`
	// CPU is how CPU time was spent since the previous sample (null on
	// the first, or after a counter went backwards).
	CPU *CPUBreakdown `json:"cpu"`
	// OOMKills counts the OOM killer's kills since boot (null before 4.13).
	OOMKills lenient.Uint `json:"oom_kills"`
	// KSMSharedBytes is the memory KSM saves by merging identical pages
	// (null without KSM).
	KSMSharedBytes lenient.Uint `json:"ksm_shared_bytes"`
	// EDAC sums the memory controllers' error counters; absent without
	// EDAC (no driver for the board, or a VM).
	EDAC *EDACCounts `json:"edac,omitempty"`
	// Time is the kernel clock's discipline (null when adjtimex fails).
	Time *TimeSync `json:"time"`
}

// CPUBreakdown is procfs.CPUShares in the payload's names.
type CPUBreakdown struct {
	UserPct   float64 `json:"user_pct"` // nice included
	SystemPct float64 `json:"system_pct"`
	IOWaitPct float64 `json:"iowait_pct"`
	StealPct  float64 `json:"steal_pct"`
	IRQPct    float64 `json:"irq_pct"` // softirq included
	IdlePct   float64 `json:"idle_pct"`
}

// EDACCounts are corrected and uncorrected memory errors since boot.
type EDACCounts struct {
	Correctable   uint64 `json:"correctable"`
	Uncorrectable uint64 `json:"uncorrectable"`
}

// TimeSync is what adjtimex says of the clock. Synced is false when the
// kernel marks the clock unsynchronised (STA_UNSYNC: no NTP daemon has
// disciplined it, or it lost its source). The offset is what the kernel
// is still slewing; max error grows while no daemon updates it.
type TimeSync struct {
	Synced          bool    `json:"synced"`
	OffsetSeconds   float64 `json:"offset_seconds"`
	MaxErrorSeconds float64 `json:"max_error_seconds"`
}

// Adjtimexer reads the kernel clock's state; unix.Adjtimex with no mode
// bits set only reads. Tests fake it.
type Adjtimexer interface {
	Adjtimex(buf *unix.Timex) (state int, err error)
}

// SystemClock is the real Adjtimexer.
type SystemClock struct{}

// Adjtimex calls adjtimex(2).
func (SystemClock) Adjtimex(buf *unix.Timex) (int, error) { return unix.Adjtimex(buf) }

// Host reads /proc (and a few /sys files); it keeps the previous CPU
// counters for the busy delta and the breakdown.
type Host struct {
	FS FS
	// Sys is the sys root ("" leaves the /sys additions out).
	Sys string
	// Clock reads the clock's discipline (nil: time is null).
	Clock Adjtimexer
	// PageSize multiplies KSM's page count (0: the system's).
	PageSize int

	mu   sync.Mutex
	prev *procfs.CPUStat
	r    pseudoFiles
}

// Collect reads loadavg, meminfo, uptime and stat.
func (h *Host) Collect(context.Context) (any, error) {
	var d HostData
	b, err := h.FS.Read("loadavg")
	if err != nil {
		return nil, fmt.Errorf("read loadavg: %w", err)
	}
	la, err := procfs.ParseLoadAvg(b)
	if err != nil {
		return nil, err
	}
	d.Load1, d.Load5, d.Load15 = la.Load1, la.Load5, la.Load15

	if b, err = h.FS.Read("meminfo"); err != nil {
		return nil, fmt.Errorf("read meminfo: %w", err)
	}
	mi, err := procfs.ParseMeminfo(b)
	if err != nil {
		return nil, err
	}
	d.MemTotal, d.MemFree, d.MemAvailable = mi["MemTotal"], mi["MemFree"], mi["MemAvailable"]
	if _, ok := mi["MemAvailable"]; !ok { // kernels before 3.14
		d.MemAvailable = mi["MemFree"] + mi["Buffers"] + mi["Cached"]
	}
	if d.MemTotal > d.MemAvailable {
		d.MemUsed = d.MemTotal - d.MemAvailable
	}
	d.Buffers, d.Cached = mi["Buffers"], mi["Cached"]
	d.SwapTotal, d.SwapFree = mi["SwapTotal"], mi["SwapFree"]
	if d.SwapTotal > d.SwapFree {
		d.SwapUsed = d.SwapTotal - d.SwapFree
	}

	if b, err = h.FS.Read("uptime"); err != nil {
		return nil, fmt.Errorf("read uptime: %w", err)
	}
	if d.UptimeSeconds, err = procfs.ParseUptime(b); err != nil {
		return nil, err
	}

	if b, err = h.FS.Read("stat"); err != nil {
		return nil, fmt.Errorf("read stat: %w", err)
	}
	cpu, err := procfs.ParseStat(b)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.prev != nil {
		if pct, ok := procfs.BusyPercent(h.prev.Times(), cpu.Times()); ok {
			d.CPUBusyPct = lenient.F(pct)
		}
		if sh, ok := procfs.Shares(*h.prev, cpu); ok {
			d.CPU = &CPUBreakdown{UserPct: sh.User, SystemPct: sh.System, IOWaitPct: sh.IOWait,
				StealPct: sh.Steal, IRQPct: sh.IRQ, IdlePct: sh.Idle}
		}
	}
	h.prev = &cpu
	h.additions(&d)
	return d, nil
}

// additions fills the fields that are optional on some hosts: each one
// that cannot be read is null (or absent), never an error for the source.
func (h *Host) additions(d *HostData) {
	if b, err := h.FS.Read("vmstat"); err == nil {
		if v, ok, err := procfs.VmstatValue(b, "oom_kill"); ok && err == nil {
			d.OOMKills = lenient.U(v)
		}
	}
	if h.Clock != nil {
		var tx unix.Timex
		if state, err := h.Clock.Adjtimex(&tx); err == nil {
			d.Time = timeSync(state, &tx)
		}
	}
	if h.Sys == "" {
		return
	}
	h.r.Dump = h.FS.Dump
	if b, err := h.r.read(filepath.Join(h.Sys, "kernel", "mm", "ksm", "pages_sharing")); err == nil {
		if v, err := sysfs.ParseUint(b); err == nil {
			ps := h.PageSize
			if ps <= 0 {
				ps = os.Getpagesize()
			}
			d.KSMSharedBytes = lenient.U(v * uint64(ps))
		}
	}
	d.EDAC = h.edac()
}

// edac sums ce_count and ue_count over the memory controllers; nil when
// there are none.
func (h *Host) edac() *EDACCounts {
	dir := filepath.Join(h.Sys, "devices", "system", "edac", "mc")
	names, err := listDir(dir)
	if err != nil {
		return nil
	}
	var e EDACCounts
	found := false
	for _, mc := range names {
		if !strings.HasPrefix(mc, "mc") || !validName(mc) {
			continue
		}
		for _, f := range []struct {
			name string
			sum  *uint64
		}{{"ce_count", &e.Correctable}, {"ue_count", &e.Uncorrectable}} {
			b, err := h.r.read(filepath.Join(dir, mc, f.name))
			if err != nil {
				continue
			}
			if v, err := sysfs.ParseUint(b); err == nil {
				*f.sum += v
				found = true
			}
		}
	}
	if !found {
		return nil
	}
	return &e
}

func timeSync(state int, tx *unix.Timex) *TimeSync {
	offset := float64(tx.Offset) / 1e6 // µs
	if tx.Status&unix.STA_NANO != 0 {
		offset = float64(tx.Offset) / 1e9
	}
	return &TimeSync{
		Synced:          state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0,
		OffsetSeconds:   offset,
		MaxErrorSeconds: float64(tx.Maxerror) / 1e6,
	}
}
