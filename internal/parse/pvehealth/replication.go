package pvehealth

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// ReplicationJob is one job of /etc/pve/replication.cfg.
type ReplicationJob struct {
	ID       string // "<vmid>-<n>"
	VMID     uint64
	Target   string
	Schedule string
	Disabled bool
}

// ParseReplicationConfig parses /etc/pve/replication.cfg (pve-guest-common
// PVE/ReplicationConfig.pm, PVE 5 to 9): "local: <vmid>-<n>" sections with
// target, schedule (default "*/15"), disable. A section whose id is not
// "<vmid>-<n>" is skipped, as the Perl refuses it. Sorted by id.
func ParseReplicationConfig(b []byte) []ReplicationJob {
	out := []ReplicationJob{}
	for _, s := range parseSections(b) {
		if s.Type != "local" {
			continue
		}
		id, n, ok := strings.Cut(s.ID, "-")
		vmid, err := strconv.ParseUint(id, 10, 64)
		if _, err2 := strconv.ParseUint(n, 10, 64); !ok || err != nil || err2 != nil || vmid == 0 {
			continue
		}
		sched := s.Props["schedule"]
		if sched == "" {
			sched = "*/15"
		}
		out = append(out, ReplicationJob{ID: s.ID, VMID: vmid, Target: lenient.Text(s.Props["target"]), Schedule: lenient.Text(sched), Disabled: flag(s.Props, "disable", false)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ReplicationState is one job's entry in the node's replication state.
type ReplicationState struct {
	LastSync  int64 // unix seconds; 0 = never synced
	LastTry   int64
	Duration  float64 // seconds, of the last run
	FailCount uint64
	Error     string
}

// ParseReplicationState parses /var/lib/pve-manager/pve-replication-state.json
// (pve-guest-common PVE/ReplicationState.pm): {vmid: {"local/<target>":
// {last_sync, last_try, duration, fail_count, error, ...}}}, keyed here by
// "<vmid>/<target>". Empty is no state (no job has run on this node yet).
func ParseReplicationState(b []byte) (map[string]ReplicationState, error) {
	out := map[string]ReplicationState{}
	if len(strings.TrimSpace(string(b))) == 0 {
		return out, nil
	}
	var raw map[string]map[string]struct {
		LastSync  lenient.Int    `json:"last_sync"`
		LastTry   lenient.Int    `json:"last_try"`
		Duration  lenient.Float  `json:"duration"`
		FailCount lenient.Uint   `json:"fail_count"`
		Error     lenient.String `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("replication state: want a JSON object: %w", err)
	}
	for vmid, jobs := range raw {
		for tid, s := range jobs {
			target, ok := strings.CutPrefix(tid, "local/")
			if !ok {
				continue
			}
			out[vmid+"/"+target] = ReplicationState{LastSync: s.LastSync.V, LastTry: s.LastTry.V,
				Duration: s.Duration.V, FailCount: s.FailCount.V, Error: lenient.Text(string(s.Error))}
		}
	}
	return out, nil
}
