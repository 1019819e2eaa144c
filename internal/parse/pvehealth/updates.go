package pvehealth

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Update is one pending package update.
type Update struct {
	Name   string `json:"name"`
	Old    string `json:"old"`
	New    string `json:"new"`
	Origin string `json:"origin"`
}

// ParseUpdates parses /var/lib/pve-manager/pkgupdates, the list `pveupdate`
// leaves for the GUI (pve-manager PVE/API2/APT.pm update_database: a JSON
// array of {Package, Version, OldVersion, Origin, ...}), sorted by name.
// Entries without a package name are skipped.
func ParseUpdates(b []byte) ([]Update, error) {
	var raw []struct {
		Package    lenient.String `json:"Package"`
		Version    lenient.String `json:"Version"`
		OldVersion lenient.String `json:"OldVersion"`
		Origin     lenient.String `json:"Origin"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("pkgupdates: want a JSON array: %w", err)
	}
	out := make([]Update, 0, len(raw))
	for _, p := range raw {
		if p.Package != "" {
			out = append(out, Update{Name: lenient.Text(string(p.Package)), Old: lenient.Text(string(p.OldVersion)), New: lenient.Text(string(p.Version)), Origin: lenient.Text(string(p.Origin))})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
