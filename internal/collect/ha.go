package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// HAStaleAfter is how old an HA status may be before it is stale: Proxmox's
// own status view says "old timestamp - dead?" past it.
const HAStaleAfter = 30 * time.Second

// HA is the ha source: the HA manager's view (master, nodes, services),
// the configured resources and this node's LRM. Absent when neither
// ha/resources.cfg nor ha/manager_status exists (HA never used).
type HA struct {
	EtcDir, Node string
	Files        *SlowFS
	Timeout      time.Duration
	Now          func() time.Time
}

// HAData is the ha payload. Master and stale are null without a manager
// status (resources configured, no CRM has written yet); quorate is null
// when .members cannot be read; lrm is null without this node's
// lrm_status.
type HAData struct {
	Master   *string           `json:"master"`
	Quorate  *bool             `json:"quorate"`
	Stale    *bool             `json:"stale"`
	Nodes    map[string]string `json:"nodes"`
	Services []HAService       `json:"services"`
	LRM      *HALRM            `json:"lrm"`
}

// HAService is one service: state and node as the CRM has them (null when
// it does not know the service yet), requested and group from
// resources.cfg (null when the CRM still lists a removed one).
type HAService struct {
	SID       string  `json:"sid"`
	State     *string `json:"state"`
	Node      *string `json:"node"`
	Requested *string `json:"requested"`
	Group     *string `json:"group"`
}

// HALRM is this node's local resource manager.
type HALRM struct {
	Mode  string `json:"mode"`
	State string `json:"state"`
	Stale bool   `json:"stale"`
}

// Collect reads the HA files.
func (h *HA) Collect(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	p := pveFiles{Files: h.Files, Timeout: h.Timeout}
	resPath, msPath := filepath.Join(h.EtcDir, "ha", "resources.cfg"), filepath.Join(h.EtcDir, "ha", "manager_status")
	res, resOK, err := p.read(ctx, resPath)
	if err != nil {
		return nil, err
	}
	ms, msOK, err := p.read(ctx, msPath)
	if err != nil {
		return nil, err
	}
	if !resOK && !msOK {
		return nil, fmt.Errorf("no %s: %w", resPath, ErrAbsent)
	}
	now := h.Now()
	d := HAData{Nodes: map[string]string{}, Services: []HAService{}}
	status, err := pvehealth.ParseManagerStatus(ms)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", msPath, err)
	}
	if msOK {
		stale := now.Sub(time.Unix(status.Timestamp, 0)) > HAStaleAfter
		d.Master, d.Stale, d.Nodes = opt(status.Master), &stale, status.Nodes
	}
	d.Services = haServices(pvehealth.ParseHAResources(res), status.Services)
	if m, ok, err := p.members(ctx, h.EtcDir); err == nil && ok && m.Cluster != nil {
		q := m.Cluster.Quorate
		d.Quorate = &q
	}
	lrmPath := filepath.Join(h.EtcDir, "nodes", h.Node, "lrm_status")
	raw, ok, err := p.read(ctx, lrmPath)
	if err != nil {
		return nil, err
	}
	if ok {
		l, err := pvehealth.ParseLRMStatus(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lrmPath, err)
		}
		d.LRM = &HALRM{Mode: l.Mode, State: l.State, Stale: now.Sub(time.Unix(l.Timestamp, 0)) > HAStaleAfter}
	}
	return d, nil
}

// haServices joins the configured resources with the CRM's services, by sid.
func haServices(res []pvehealth.HAResource, st map[string]pvehealth.ServiceStatus) []HAService {
	by := map[string]*HAService{}
	for _, r := range res {
		by[r.SID] = &HAService{SID: r.SID, Requested: opt(r.Requested), Group: opt(r.Group)}
	}
	for sid, s := range st {
		e, ok := by[sid]
		if !ok {
			e = &HAService{SID: sid}
			by[sid] = e
		}
		e.State, e.Node = opt(s.State), opt(s.Node)
	}
	out := make([]HAService, 0, len(by))
	for _, e := range by {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SID < out[j].SID })
	return out
}
