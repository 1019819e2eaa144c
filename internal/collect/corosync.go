package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// Corosync is the corosync source: this node's view of every knet link,
// from `corosync-cfgtool -s`. Run only on a clustered node (.members has
// a cluster block): elsewhere the command can only fail, so the source is
// absent.
type Corosync struct {
	Run         Runner
	Cfgtool     string
	Timeout     time.Duration // the command's
	EtcDir      string
	Files       *SlowFS
	ReadTimeout time.Duration
}

// CorosyncData is the corosync payload.
type CorosyncData struct {
	Links []pvehealth.CorosyncLink `json:"links"`
	// Disconnected counts the (link, node) pairs that are down.
	Disconnected int `json:"disconnected"`
}

// Collect runs corosync-cfgtool -s on a clustered node.
func (c *Corosync) Collect(ctx context.Context) (any, error) {
	p := pveFiles{Files: c.Files, Timeout: c.ReadTimeout}
	m, ok, err := p.members(ctx, c.EtcDir)
	if err != nil {
		return nil, err
	}
	if !ok || m.Cluster == nil {
		return nil, fmt.Errorf("not a cluster node (%s): %w", filepath.Join(c.EtcDir, ".members"), ErrAbsent)
	}
	out, err := output(c.Run.Run(ctx, c.Timeout, c.Cfgtool, "-s"))
	if runner.NotFound(err) {
		// corosync-cfgtool ships with corosync on every clustered PVE
		// node: missing here is a broken install, an error entry. The
		// runner's error is quoted, not wrapped, so it is not taken for
		// a tool this host simply lacks (logged at info as "not present
		// on this host", which would contradict the entry).
		return nil, fmt.Errorf("%v on a cluster node (it ships with corosync; path set by [commands] corosync_cfgtool)", err)
	}
	if err != nil {
		return nil, err
	}
	links, err := pvehealth.ParseCorosyncStatus(out)
	if err != nil {
		return nil, err
	}
	d := CorosyncData{Links: links}
	for _, l := range links {
		if l.Status == "disconnected" {
			d.Disconnected++
		}
	}
	return d, nil
}
