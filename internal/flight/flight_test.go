package flight

import "testing"

func TestOneInFlightPerKey(t *testing.T) {
	var s Set
	a, _ := s.Take("zpool status")
	if a == nil {
		t.Fatal("first take refused")
	}
	if b, since := s.Take("zpool status"); b != nil || since.IsZero() {
		t.Fatalf("second take of a held key: %v %v", b, since)
	}
	if other, _ := s.Take("zfs list"); other == nil {
		t.Fatal("another key refused")
	}
	s.Abandon(a)
	if s.Stuck() != 1 || s.Outstanding() != 2 {
		t.Fatalf("stuck %d outstanding %d", s.Stuck(), s.Outstanding())
	}
	s.Release(a)
	if s.Stuck() != 0 || s.Outstanding() != 1 {
		t.Fatalf("after release: stuck %d outstanding %d", s.Stuck(), s.Outstanding())
	}
	c, _ := s.Take("zpool status")
	s.Release(a) // a late release of the old claim must not free the new one
	if s.Outstanding() != 2 || c == nil {
		t.Fatalf("stale release freed the new claim: %d", s.Outstanding())
	}
}
