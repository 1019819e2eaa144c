// Package sources wires the data sources into each cadence: which source
// runs on fast, medium and slow, with which binary, path and timeout. The
// parsing and reading live in their own packages; this file only assembles.
package sources

import (
	"github.com/proxmox-agent/proxmox-agent/actors/collector"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// For returns the sources of cadence kind.
func For(kind string, env *supervisor.Env) []collector.Source {
	return nil
}
