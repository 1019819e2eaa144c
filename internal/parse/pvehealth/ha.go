package pvehealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// ManagerStatus is /etc/pve/ha/manager_status, the HA CRM's view.
type ManagerStatus struct {
	Master    string
	Timestamp int64 // unix seconds of the last write
	Nodes     map[string]string
	Services  map[string]ServiceStatus // by sid ("vm:100", "ct:101")
}

// ServiceStatus is one HA service as the CRM sees it.
type ServiceStatus struct {
	State string
	Node  string
}

// ParseManagerStatus parses manager_status (pve-ha-manager
// src/PVE/HA/Manager.pm, written by the CRM master; PVE 4 to 9). Empty is
// an empty status (pve-ha-manager reads it so before the first write).
func ParseManagerStatus(b []byte) (ManagerStatus, error) {
	m := ManagerStatus{Nodes: map[string]string{}, Services: map[string]ServiceStatus{}}
	if isBlank(b) {
		return m, nil
	}
	var raw struct {
		Master    lenient.String            `json:"master_node"`
		Timestamp lenient.Int               `json:"timestamp"`
		Nodes     map[string]lenient.String `json:"node_status"`
		Services  map[string]struct {
			State lenient.String `json:"state"`
			Node  lenient.String `json:"node"`
		} `json:"service_status"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return ManagerStatus{}, fmt.Errorf("manager_status: want a JSON object: %w", err)
	}
	m.Master, m.Timestamp = lenient.Text(string(raw.Master)), raw.Timestamp.V
	for n, s := range raw.Nodes {
		m.Nodes[lenient.Text(n)] = lenient.Text(string(s))
	}
	for sid, s := range raw.Services {
		m.Services[lenient.Text(sid)] = ServiceStatus{State: lenient.Text(string(s.State)), Node: lenient.Text(string(s.Node))}
	}
	return m, nil
}

// HAResource is one resource of /etc/pve/ha/resources.cfg.
type HAResource struct {
	SID       string // "vm:100", "ct:101"
	Requested string // the state asked for; "started" when unset
	Group     string
}

// ParseHAResources parses resources.cfg (pve-ha-manager
// src/PVE/HA/Resources.pm: "vm: 100" / "ct: 101" sections with state and
// group), sorted by sid. "enabled" is the old name of "started".
func ParseHAResources(b []byte) []HAResource {
	out := []HAResource{}
	for _, s := range parseSections(b) {
		if s.Type != "vm" && s.Type != "ct" {
			continue
		}
		st := s.Props["state"]
		switch st {
		case "", "enabled":
			st = "started"
		}
		out = append(out, HAResource{SID: s.Type + ":" + lenient.Text(s.ID), Requested: lenient.Text(st), Group: lenient.Text(s.Props["group"])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SID < out[j].SID })
	return out
}

// LRMStatus is a node's /etc/pve/nodes/<node>/lrm_status (pve-ha-manager
// src/PVE/HA/LRM.pm).
type LRMStatus struct {
	Mode      string // active, restart, maintenance, shutdown
	State     string // wait_for_agent_lock, active, lost_agent_lock, maintenance
	Timestamp int64
}

// ParseLRMStatus parses a node's lrm_status.
func ParseLRMStatus(b []byte) (LRMStatus, error) {
	var raw struct {
		Mode      lenient.String `json:"mode"`
		State     lenient.String `json:"state"`
		Timestamp lenient.Int    `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return LRMStatus{}, fmt.Errorf("lrm_status: want a JSON object: %w", err)
	}
	if raw.State == "" && raw.Mode == "" {
		return LRMStatus{}, errors.New("lrm_status: neither mode nor state")
	}
	return LRMStatus{Mode: lenient.Text(string(raw.Mode)), State: lenient.Text(string(raw.State)), Timestamp: raw.Timestamp.V}, nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
