package rate

import (
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

func TestDeltas(t *testing.T) {
	out := make([]uint64, 3)
	for _, c := range []struct {
		name      string
		prev, cur []uint64
		want      []uint64
		ok        bool
	}{
		{"grew", []uint64{1, 2, 3}, []uint64{11, 2, 1<<64 - 1}, []uint64{10, 0, 1<<64 - 4}, true},
		{"one reset voids all", []uint64{100, 2, 3}, []uint64{200, 1, 3}, nil, false},
		{"length changed", []uint64{1, 2}, []uint64{1, 2, 3}, nil, false},
		{"empty", nil, nil, []uint64{}, true},
	} {
		ok := Deltas(c.prev, c.cur, out)
		if ok != c.ok {
			t.Errorf("%s: ok %v", c.name, ok)
		}
		for i := range c.want {
			if ok && out[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.name, out, c.want)
			}
		}
	}
	if Deltas([]uint64{1, 2}, []uint64{1, 2}, make([]uint64, 1)) {
		t.Error("short out accepted")
	}
}

func TestPerSecond(t *testing.T) {
	for _, c := range []struct {
		delta uint64
		secs  float64
		want  lenient.Float
	}{
		{3000, 30, lenient.F(100)}, {1, 3, lenient.F(0.33)}, {2, 3, lenient.F(0.67)}, {0, 30, lenient.F(0)},
		{5, 0, lenient.Float{}}, {5, -1, lenient.Float{}}, {1<<64 - 1, 1e-9, lenient.F(float64(1<<64-1) / 1e-9)},
	} {
		if got := PerSecond(c.delta, c.secs); got != c.want {
			t.Errorf("%d/%v = %+v, want %+v", c.delta, c.secs, got, c.want)
		}
	}
}

func TestSecondsUsesMonotonicClock(t *testing.T) {
	a := time.Now()
	b := a.Add(30 * time.Second)
	// A wall clock step (NTP) changes what Round(0) — the wall reading —
	// says, not what Sub measures between two readings that both carry
	// the monotonic clock.
	if s := Seconds(a, b); s != 30 {
		t.Fatalf("%v", s)
	}
	if s := Seconds(b, a); s >= 0 {
		t.Fatalf("clock going back gives %v", s)
	}
}
