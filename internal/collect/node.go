package collect

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/zfs"
)

// Node is the node source: Proxmox, kernel, CPU and ZFS versions.
type Node struct {
	Run          Runner
	Pvesh, Zfs   string
	Node         string
	FS           FS
	PveshTimeout time.Duration
	ZfsTimeout   time.Duration
}

// NodeData is the node payload; a part that could not be read is null and
// named in Errors.
type NodeData struct {
	PVE      *pve.Version      `json:"pve"`
	Kernel   string            `json:"kernel"`
	CPUModel string            `json:"cpu_model"`
	CPUCount int               `json:"cpu_count"`
	ZFS      *zfs.Version      `json:"zfs"`
	Errors   map[string]string `json:"errors,omitempty"`
}

// Collect reads each part; it fails only when every part failed.
func (n *Node) Collect(ctx context.Context) (any, error) {
	d := NodeData{}
	fail := func(part string, err error) {
		if d.Errors == nil {
			d.Errors = map[string]string{}
		}
		d.Errors[part] = err.Error()
	}
	if out, err := output(n.Run.Run(ctx, n.PveshTimeout, n.Pvesh, "get", "/nodes/"+n.Node+"/version", "--output-format", "json")); err != nil {
		fail("pve", err)
	} else if v, err := pve.ParseVersion(out); err != nil {
		fail("pve", err)
	} else {
		d.PVE = &v
	}
	if b, err := n.FS.Read("sys/kernel/osrelease"); err != nil {
		fail("kernel", err)
	} else {
		d.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := n.FS.Read("cpuinfo"); err != nil {
		fail("cpu", err)
	} else if ci, err := procfs.ParseCPUInfo(b); err != nil {
		fail("cpu", err)
	} else {
		d.CPUModel, d.CPUCount = ci.Model, ci.Count
	}
	if out, err := output(n.Run.Run(ctx, n.ZfsTimeout, n.Zfs, "version")); err != nil {
		fail("zfs", err)
	} else if v, err := zfs.ParseVersion(out); err != nil {
		fail("zfs", err)
	} else {
		d.ZFS = &v
	}
	if len(d.Errors) == 4 {
		var msgs []string
		for _, k := range []string{"pve", "kernel", "cpu", "zfs"} {
			msgs = append(msgs, k+": "+d.Errors[k])
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return d, nil
}
