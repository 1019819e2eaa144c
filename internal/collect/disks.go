package collect

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/smart"
)

// Disks is the disks source: smartctl --scan, then one smartctl per device.
type Disks struct {
	Run      Runner
	Smartctl string
	Timeout  time.Duration
}

// DiskEntry is a disk, or the reason it could not be read.
type DiskEntry struct {
	smart.Disk
	Error string `json:"error,omitempty"`
}

// parallel bounds concurrent smartctl calls: a controller with dozens of
// disks should not get dozens of queries at once.
const parallel = 4

// Collect scans, then queries each device with -n standby so a sleeping
// disk is reported asleep and never spun up. A device that fails is an
// entry with an error, not a failure of the whole source.
func (d *Disks) Collect(ctx context.Context) (any, error) {
	out, err := output(d.Run.Run(ctx, d.Timeout, d.Smartctl, "--scan", "-j"))
	if err != nil {
		return nil, err
	}
	devs, err := smart.ParseScan(out)
	if err != nil {
		return nil, err
	}
	entries := make([]DiskEntry, len(devs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			entries[i] = d.one(ctx, dev)
		}()
	}
	wg.Wait()
	return entries, nil
}

func (d *Disks) one(ctx context.Context, dev smart.Device) DiskEntry {
	args := []string{"-j", "-a", "-n", "standby"}
	if dev.Type != "" {
		args = append(args, "-d", dev.Type)
	}
	args = append(args, dev.Name)
	res := d.Run.Run(ctx, d.Timeout, d.Smartctl, args...)
	base := smart.Disk{Device: dev.Name, Type: dev.Type, Protocol: dev.Protocol, Problems: []string{}}
	if len(res.Stdout) == 0 {
		if err := res.Err(); err != nil {
			return DiskEntry{Disk: base, Error: err.Error()}
		}
	}
	// The exit status is a bitmask, not success or failure: parse whatever
	// JSON came back together with it.
	disk, err := smart.ParseDisk(res.Stdout, res.ExitCode)
	if disk.Device == "" {
		disk.Device = base.Device
	}
	if disk.Type == "" {
		disk.Type = base.Type
	}
	if disk.Protocol == "" {
		disk.Protocol = base.Protocol
	}
	if disk.Problems == nil {
		disk.Problems = []string{}
	}
	if err != nil {
		return DiskEntry{Disk: disk, Error: strings.TrimSpace(err.Error())}
	}
	return DiskEntry{Disk: disk}
}
