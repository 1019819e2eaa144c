package collect

import (
	"path/filepath"
	"strconv"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// withPressure adds each running guest's cgroup pressure. The cgroup is
// qemu.slice/<vmid>.scope for a VM and lxc/<vmid> for a container; the
// vmid is a number, so the path cannot leave the cgroup root.
func (g *Guests) withPressure(gs []pve.Guest) []pve.Guest {
	var r pseudoFiles
	for i := range gs {
		gu := &gs[i]
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
		gu.Pressure = cgroupPressure(&r, dir)
	}
	return gs
}

// cgroupPressure reads dir's three pressure files; nil when none can be
// read.
func cgroupPressure(r *pseudoFiles, dir string) *pve.GuestPressure {
	var p pve.GuestPressure
	found := false
	for _, f := range []struct {
		file       string
		some, full **float64
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
		found = true
		some := ps.Some.Avg10
		*f.some = &some
		if f.full != nil && ps.Full != nil {
			full := ps.Full.Avg10
			*f.full = &full
		}
	}
	if !found {
		return nil
	}
	return &p
}
