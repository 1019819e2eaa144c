// Package rate turns two snapshots of kernel counters into per-second
// rates. A rate needs two samples: the first round after a start has none,
// and a counter that went backwards (a NIC driver reloaded, a disk
// replaced, a 32-bit counter wrapped) gives none for that round rather
// than a negative or absurd number.
package rate

import (
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Seconds is the time between two readings of the clock. Readings from
// time.Now carry the monotonic clock, which Sub uses, so a wall clock step
// (NTP, an operator) does not distort a rate. Zero or negative (a fake
// clock that did not move) means no rate can be computed.
func Seconds(prev, cur time.Time) float64 {
	return cur.Sub(prev).Seconds()
}

// Deltas writes cur[i]-prev[i] into out and reports true; it reports false
// (and leaves out unspecified) when the lengths differ or any counter went
// backwards: a group of counters read together (one interface, one disk)
// is reset together, so one backwards counter voids the whole group.
func Deltas(prev, cur, out []uint64) bool {
	if len(prev) != len(cur) || len(out) < len(cur) {
		return false
	}
	for i := range cur {
		if cur[i] < prev[i] {
			return false
		}
		out[i] = cur[i] - prev[i]
	}
	return true
}

// PerSecond is delta/seconds, unknown when seconds is not positive.
func PerSecond(delta uint64, seconds float64) lenient.Float {
	if !(seconds > 0) {
		return lenient.Float{}
	}
	return lenient.F(round(float64(delta) / seconds))
}

// round keeps two decimals: finer digits are noise at a 30 s cadence and
// only lengthen the payload.
func round(v float64) float64 {
	if v > 1e15 {
		return v
	}
	return float64(int64(v*100+0.5)) / 100
}
