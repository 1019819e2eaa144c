package delivery

import "github.com/proxmox-agent/proxmox-agent/internal/delivery/stats"

// Stats is the engine's report: see stats.Stats. An alias, so the engine,
// the actor protocol and the status document share the one type.
type Stats = stats.Stats

// MaxKept bounds Stats.Kept (stats.MaxKept).
const MaxKept = stats.MaxKept
