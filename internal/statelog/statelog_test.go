package statelog

import (
	"testing"
	"time"
)

func TestTrackerLogsChangesOnceAndRemindsRateLimited(t *testing.T) {
	tr := Tracker{Every: time.Minute}
	t0 := time.Unix(0, 0)
	var lines []uint64
	logf := func(n uint64) { lines = append(lines, n) }

	tr.Fail(t0, logf)                     // first: logged
	tr.Fail(t0.Add(time.Second), logf)    // suppressed
	tr.Fail(t0.Add(2*time.Second), logf)  // suppressed
	tr.Fail(t0.Add(61*time.Second), logf) // reminder, 2 suppressed
	tr.Fail(t0.Add(62*time.Second), logf) // suppressed
	if len(lines) != 2 || lines[0] != 0 || lines[1] != 2 {
		t.Fatalf("lines = %v, want [0 2]", lines)
	}
	var recovered []uint64
	tr.OK(func(n uint64) { recovered = append(recovered, n) })
	tr.OK(func(n uint64) { recovered = append(recovered, n) })
	if len(recovered) != 1 || recovered[0] != 5 {
		t.Fatalf("recovered = %v, want [5]", recovered)
	}
	if tr.Failing() {
		t.Fatal("still failing after OK")
	}
	tr.Fail(t0.Add(63*time.Second), logf) // new episode logs at once
	if len(lines) != 3 {
		t.Fatalf("new episode not logged: %v", lines)
	}
}

func TestTrackerZeroEveryLogsOnlyFirst(t *testing.T) {
	var tr Tracker
	n := 0
	for i := 0; i < 10; i++ {
		tr.Fail(time.Unix(int64(i)*3600, 0), func(uint64) { n++ })
	}
	if n != 1 {
		t.Fatalf("logged %d times, want 1", n)
	}
}
