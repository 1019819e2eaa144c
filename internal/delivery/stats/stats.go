// Package stats holds the delivery engine's counters as one type: a leaf
// package (it imports nothing of the project), so the actor protocol
// (messages) and the status document carry the engine's own type.
package stats

import (
	"slices"
	"time"
)

// Stats is what the engine reports: the backlog (spooled and in memory)
// and the counters of what happened to samples. It is the one type for
// them from here to `proxmox-agent status --json` (carried in
// messages.Status and status.Queue unchanged), so no layer narrows or
// drops a counter. The counters only grow while the agent runs; int64
// keeps differences between them signed.
type Stats struct {
	// Depth and Bytes count what waits for delivery, spooled and in
	// memory; Oldest is the oldest waiting sample's collected_at (zero
	// when none waits).
	Depth  int64     `json:"depth"`
	Bytes  int64     `json:"bytes"`
	Oldest time.Time `json:"oldest,omitzero"`
	// Pushed counts pushes sent, resends included; Acked the samples
	// delivered.
	Pushed int64 `json:"pushed"`
	Acked  int64 `json:"acked"`
	// Refused counts samples the server answered with an error (or that
	// could not be framed): dropped, since resending gets the same answer.
	Refused int64 `json:"refused"`
	// Poisoned counts samples set aside after MaxFailures failed attempts
	// (kept in the set-aside file when it can take them).
	Poisoned int64 `json:"poisoned"`
	// Dropped counts samples lost to a bound: the spool's, or the memory
	// queue's while there is no usable spool.
	Dropped int64 `json:"dropped"`
	// Corrupt counts spool records that failed their checks (kept in the
	// set-aside file as evidence when it can take them).
	Corrupt int64 `json:"corrupt"`
	// Quarantined counts damaged spool files moved aside in this run;
	// Kept names them (and what was wrong), newest last, at most MaxKept.
	Quarantined int64    `json:"quarantined_files"`
	Kept        []string `json:"kept_files,omitempty"`
	// Rewritten counts the times the spool file was removed or replaced
	// under the running agent and what it held was written to a new one.
	Rewritten int64 `json:"spool_rewritten,omitempty"`
	// Fallback is set while a configured spool cannot be used and samples
	// are held in memory; FallbackReason says why (a refused directory, a
	// full disk).
	Fallback       bool   `json:"fallback,omitempty"`
	FallbackReason string `json:"fallback_reason,omitempty"`
}

// MaxKept bounds Stats.Kept: a disk that damages every file would
// otherwise grow the status document without end.
const MaxKept = 8

// Clone is s with its own copy of Kept, safe to hand to another goroutine.
func (s Stats) Clone() Stats {
	s.Kept = slices.Clone(s.Kept)
	return s
}
