package rate

import "testing"

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
