package collect

import (
	"path/filepath"
	"strconv"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// GuestSample is a guest in the guests payload: what Proxmox says of it
// plus its cgroup's pressure.
type GuestSample struct {
	pve.Guest
	// Pressure is null for a guest that is not running, and when its
	// cgroup v2 files are missing (a cgroup v1 host, a kernel without PSI).
	Pressure *GuestPressure `json:"pressure"`
}

// GuestPressure is the 10-second averages of a guest's cgroup pressure
// files, in percent of wall time; a field is null when its line is
// missing (cpu has no full line at cgroup level before 5.13... and none
// is asked for).
type GuestPressure struct {
	CPUSomeAvg10    lenient.Float `json:"cpu_some_avg10"`
	MemorySomeAvg10 lenient.Float `json:"memory_some_avg10"`
	MemoryFullAvg10 lenient.Float `json:"memory_full_avg10"`
	IOSomeAvg10     lenient.Float `json:"io_some_avg10"`
	IOFullAvg10     lenient.Float `json:"io_full_avg10"`
}

// withPressure adds each running guest's pressure. The cgroup is
// qemu.slice/<vmid>.scope for a VM and lxc/<vmid> for a container; the
// vmid is a number, so the path cannot leave the cgroup root.
func (g *Guests) withPressure(gs []pve.Guest) []GuestSample {
	out := make([]GuestSample, len(gs))
	var r pseudoFiles
	for i, gu := range gs {
		out[i].Guest = gu
		if g.CgroupRoot == "" || gu.Status != "running" || !gu.VMID.Valid {
			continue
		}
		id := strconv.FormatUint(gu.VMID.V, 10)
		var dir string
		switch gu.Type {
		case "qemu":
			dir = filepath.Join(g.CgroupRoot, "qemu.slice", id+".scope")
		case "lxc":
			dir = filepath.Join(g.CgroupRoot, "lxc", id)
		default:
			continue
		}
		out[i].Pressure = cgroupPressure(&r, dir)
	}
	return out
}

// cgroupPressure reads dir's three pressure files; nil when none can be
// read.
func cgroupPressure(r *pseudoFiles, dir string) *GuestPressure {
	var p GuestPressure
	any := false
	for _, f := range []struct {
		file       string
		some, full *lenient.Float
	}{
		{"cpu.pressure", &p.CPUSomeAvg10, nil},
		{"memory.pressure", &p.MemorySomeAvg10, &p.MemoryFullAvg10},
		{"io.pressure", &p.IOSomeAvg10, &p.IOFullAvg10},
	} {
		b, err := r.read(filepath.Join(dir, f.file))
		if err != nil {
			continue
		}
		ps, err := procfs.ParsePressure(b)
		if err != nil {
			continue
		}
		any = true
		*f.some = lenient.F(ps.Some.Avg10)
		if f.full != nil && ps.Full != nil {
			*f.full = lenient.F(ps.Full.Avg10)
		}
	}
	if !any {
		return nil
	}
	return &p
}
