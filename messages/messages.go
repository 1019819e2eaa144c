// Package messages holds the plain structs the agent's actors exchange. They
// carry data only; every message is sent as a pointer.
package messages

import (
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/delivery/stats"
)

// Cadence kinds, used as the sample kind and in the event name metric:<kind>.
const (
	Fast   = "fast"
	Medium = "medium"
	Slow   = "slow"
)

// Kinds lists the cadences in start order.
var Kinds = []string{Fast, Medium, Slow}

// Sample is one collection round's result, sent by a collector to the reporter.
type Sample struct {
	Kind        string
	CollectedAt time.Time
	// Data has one key per source that succeeded.
	Data map[string]any
	// Errors maps a failed source to a short message; nil when all succeeded.
	Errors map[string]string
}

// Flush asks the writer to answer (with *FlushDone) once every message sent
// to it before this one is on disk. Tests and shutdown use it as a barrier.
type Flush struct{}

// FlushDone answers Flush.
type FlushDone struct {
	// Err is the last write error since the previous flush, if any.
	Err error
}

// Reopen asks the writer to close and reopen its files (SIGHUP, logrotate).
// A Dir, when set and different, moves the dump there (a config reload).
type Reopen struct {
	Dir string
}

// StatusRequest asks the reporter for its *Status.
type StatusRequest struct{}

// Status is the reporter's connection state and the delivery engine's
// Stats, carried as they are (no counter narrowed or dropped) to
// `proxmox-agent status`.
type Status struct {
	Connected bool
	Joined    bool
	// Since is when Connected or Joined last changed.
	Since time.Time
	stats.Stats
	// SetAsideError is why the last sample set aside could not be kept
	// for replay ("" when it was, or none was set aside).
	SetAsideError string
	LastError     string
}

// Encoded is a sample already encoded, pushed as it is (replay): the
// reporter neither encodes it again nor records it in the dump.
type Encoded struct {
	Kind        string
	CollectedAt time.Time
	Payload     []byte
}

// Ping asks an actor to answer *Pong from its mailbox: the supervisor's
// liveness check behind the systemd watchdog. An actor whose handler is
// wedged cannot answer.
type Ping struct{}

// Pong answers Ping.
type Pong struct{}
