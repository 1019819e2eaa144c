package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pmxcfs"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// Cluster is the cluster source: this node's view of cluster membership
// and quorum, from /etc/pve/.members (what pvecm status and
// /cluster/status show, without running either).
type Cluster struct {
	EtcDir  string
	Files   *SlowFS
	Timeout time.Duration
}

// ClusterData is the cluster payload. On a standalone node name and
// quorate are null (there is no cluster, so no quorum to have) and the
// node counts itself.
type ClusterData struct {
	Name        *string  `json:"name"`
	Clustered   bool     `json:"clustered"`
	Quorate     *bool    `json:"quorate"`
	NodesTotal  uint64   `json:"nodes_total"`
	NodesOnline uint64   `json:"nodes_online"`
	Offline     []string `json:"offline"` // names of configured nodes not online
}

// Collect reads .members.
func (c *Cluster) Collect(ctx context.Context) (any, error) {
	path := filepath.Join(c.EtcDir, ".members")
	b, err := c.Files.Read(ctx, c.Timeout, path)
	if errors.Is(err, fs.ErrNotExist) {
		// Classed like a missing binary (runner.NotFound), so the collector
		// logs it once at info as "not present on this host", not as a failure.
		absent := &runner.Error{Result: runner.Result{Line: path, Outcome: dump.NotFound}}
		return nil, fmt.Errorf("%w (not a Proxmox VE host, or pmxcfs not running)", absent)
	} else if err != nil {
		return nil, err
	}
	m, err := pmxcfs.ParseMembers(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := ClusterData{Offline: []string{}}
	if m.Cluster == nil {
		d.NodesTotal, d.NodesOnline = 1, 1
		return d, nil
	}
	name, quorate := m.Cluster.Name, m.Cluster.Quorate
	d.Name, d.Clustered, d.Quorate = &name, true, &quorate
	for _, n := range m.Nodes {
		if n.Online {
			d.NodesOnline++
		} else {
			d.Offline = append(d.Offline, n.Name)
		}
	}
	// The cluster block counts configured nodes; the nodelist is the
	// fallback should a pmxcfs ever leave the count out.
	d.NodesTotal = uint64(len(m.Nodes))
	if m.Cluster.Nodes.Valid {
		d.NodesTotal = m.Cluster.Nodes.V
	}
	return d, nil
}
