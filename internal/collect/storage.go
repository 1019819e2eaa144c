package collect

import (
	"context"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// Storage is the storage source: the node's storages as it sees them.
type Storage struct {
	Run     Runner
	Pvesh   string
	Node    string
	Timeout time.Duration
}

// Collect runs pvesh get /nodes/<node>/storage, which checks every enabled
// storage and can take many seconds (slow cadence).
func (s *Storage) Collect(ctx context.Context) (any, error) {
	out, err := output(s.Run.Run(ctx, s.Timeout, s.Pvesh, "get", "/nodes/"+s.Node+"/storage", "--output-format", "json"))
	if err != nil {
		return nil, err
	}
	return pve.ParseStorage(out)
}
