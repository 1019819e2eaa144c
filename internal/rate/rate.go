// Package rate turns two snapshots of kernel counters into per-second
// rates. A rate needs two samples: the first round after a start has none,
// and a counter that went backwards (a NIC driver reloaded, a disk
// replaced, a 32-bit counter wrapped) gives none for that round rather
// than a negative or absurd number.
package rate

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
