package collect

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
)

// PressureData is the pressure payload: the kernel's pressure stall
// information for the whole host. CPU's full line is there from 5.13 on
// (omitted before).
type PressureData struct {
	CPU    procfs.Pressure `json:"cpu"`
	Memory procfs.Pressure `json:"memory"`
	IO     procfs.Pressure `json:"io"`
}

// Pressure is the pressure source: /proc/pressure/{cpu,memory,io}.
type Pressure struct {
	Proc string // the proc root
	Dump *dump.Handle

	r pseudoFiles
}

// Collect reads the three files. A kernel without PSI (older than 4.20,
// or booted with psi=0) has none of them: ErrAbsent.
func (p *Pressure) Collect(context.Context) (any, error) {
	p.r.Dump = p.Dump
	var d PressureData
	for _, f := range []struct {
		name string
		dst  *procfs.Pressure
	}{{"cpu", &d.CPU}, {"memory", &d.Memory}, {"io", &d.IO}} {
		path := filepath.Join(p.Proc, "pressure", f.name)
		b, err := p.r.read(path)
		if absent(err) {
			return nil, fmt.Errorf("no %s (kernel without PSI): %w", path, ErrAbsent)
		}
		if err != nil {
			return nil, err
		}
		if *f.dst, err = procfs.ParsePressure(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return d, nil
}
