package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// Replication is the replication source: the storage replication jobs of
// this node's guests with their state. A node without replication.cfg
// (standalone, or a cluster that never set up replication) has none: the
// source is absent.
type Replication struct {
	EtcDir, LibDir, Node string
	Files                *SlowFS
	Timeout              time.Duration
}

// ReplicationData is one job. The state fields are null until the job
// ran on this node; last_sync and last_try are null for "never".
type ReplicationData struct {
	ID              string   `json:"id"`
	VMID            uint64   `json:"vmid"`
	Target          string   `json:"target"`
	Schedule        string   `json:"schedule"`
	Disabled        bool     `json:"disabled"`
	LastSync        *string  `json:"last_sync"`
	LastTry         *string  `json:"last_try"`
	DurationSeconds *float64 `json:"duration_seconds"`
	FailCount       *uint64  `json:"fail_count"`
	Error           *string  `json:"error"`
}

// Collect reads replication.cfg, .vmlist and the node's state file. Jobs
// of guests on other nodes are left to those nodes: the state lives there.
func (r *Replication) Collect(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	p := pveFiles{Files: r.Files, Timeout: r.Timeout}
	cfgPath := filepath.Join(r.EtcDir, "replication.cfg")
	cfg, ok, err := p.read(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no %s: %w", cfgPath, ErrAbsent)
	}
	guests, err := p.localGuests(ctx, r.EtcDir, r.Node)
	if err != nil {
		return nil, err
	}
	local := map[uint64]bool{}
	for _, g := range guests {
		local[g.VMID] = true
	}
	statePath := filepath.Join(r.LibDir, "pve-replication-state.json")
	raw, _, err := p.read(ctx, statePath)
	if err != nil {
		return nil, err
	}
	states, err := pvehealth.ParseReplicationState(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	out := []ReplicationData{}
	for _, j := range pvehealth.ParseReplicationConfig(cfg) {
		if !local[j.VMID] {
			continue
		}
		d := ReplicationData{ID: j.ID, VMID: j.VMID, Target: j.Target, Schedule: j.Schedule, Disabled: j.Disabled}
		if s, ok := states[strconv.FormatUint(j.VMID, 10)+"/"+j.Target]; ok {
			dur, fails := s.Duration, s.FailCount
			d.LastSync, d.LastTry, d.DurationSeconds, d.FailCount, d.Error = stamp(s.LastSync), stamp(s.LastTry), &dur, &fails, opt(s.Error)
		}
		out = append(out, d)
	}
	return out, nil
}
