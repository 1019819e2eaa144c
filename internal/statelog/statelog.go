// Package statelog logs a recurring condition's state changes once and
// counts the repeats, so a failing disk or a missing binary produces one
// line when it starts, a reminder now and then, and one when it recovers.
package statelog

import "time"

// Tracker follows one condition. It is not safe for concurrent use: it
// belongs to the actor or goroutine that owns the condition.
type Tracker struct {
	// Every is the minimum gap between reminder lines while failing; zero
	// means only the first failure is logged.
	Every time.Duration

	failing    bool
	suppressed uint64
	total      uint64
	last       time.Time
}

// Fail records a failure at now. It calls log with the number of failures
// suppressed since the previous line when a line is due: on the first
// failure, and then at most once per Every.
func (t *Tracker) Fail(now time.Time, log func(suppressed uint64)) {
	t.total++
	if !t.failing || (t.Every > 0 && now.Sub(t.last) >= t.Every) {
		log(t.suppressed)
		t.failing = true
		t.suppressed = 0
		t.last = now
		return
	}
	t.suppressed++
}

// OK records a success; if the condition was failing, log is called once with
// the number of failures in that episode.
func (t *Tracker) OK(log func(failures uint64)) {
	if !t.failing {
		return
	}
	n := t.total
	t.failing, t.suppressed, t.total = false, 0, 0
	if log != nil {
		log(n)
	}
}

// Failing reports whether the last record was a failure.
func (t *Tracker) Failing() bool { return t.failing }
