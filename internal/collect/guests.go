package collect

import (
	"context"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// Guests is the guests source: this node's VMs and containers.
type Guests struct {
	Run     Runner
	Pvesh   string
	Node    string
	Timeout time.Duration
}

// Collect runs pvesh get /cluster/resources (the local node answers it from
// the cluster filesystem; no other node is contacted).
func (g *Guests) Collect(ctx context.Context) (any, error) {
	out, err := output(g.Run.Run(ctx, g.Timeout, g.Pvesh, "get", "/cluster/resources", "--output-format", "json"))
	if err != nil {
		return nil, err
	}
	return pve.ParseGuests(out, g.Node)
}
