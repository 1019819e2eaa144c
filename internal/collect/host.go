package collect

import (
	"context"
	"fmt"
	"sync"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
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
}

// Host reads /proc; it keeps the previous CPU counters for the busy delta.
type Host struct {
	FS FS

	mu   sync.Mutex
	prev *procfs.CPUTimes
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
	cpu, err := procfs.ParseStatCPU(b)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.prev != nil {
		if pct, ok := procfs.BusyPercent(*h.prev, cpu); ok {
			d.CPUBusyPct = lenient.F(pct)
		}
	}
	h.prev = &cpu
	h.mu.Unlock()
	return d, nil
}
