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

	r     pseudoFiles
	held  heldPaths
	paths [3]string
}

// Collect reads the three files. A kernel without PSI (older than 4.20,
// or booted with psi=0) has none of them: ErrAbsent.
func (p *Pressure) Collect(context.Context) (any, error) {
	p.r.Dump = p.Dump
	holdFor(&p.r, p)
	defer p.r.sweep(&p.held)
	var d PressureData
	for i, dst := range []*procfs.Pressure{&d.CPU, &d.Memory, &d.IO} {
		if p.paths[i] == "" {
			p.paths[i] = filepath.Join(p.Proc, "pressure", [3]string{"cpu", "memory", "io"}[i])
		}
		path := p.paths[i]
		b, err := p.r.readPath(&p.held, path)
		if absent(err) {
			return nil, fmt.Errorf("no %s (kernel without PSI): %w", path, ErrAbsent)
		}
		if err != nil {
			return nil, err
		}
		if *dst, err = procfs.ParsePressure(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return d, nil
}
