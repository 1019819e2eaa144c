package phoenix

import (
	"math/rand/v2"
	"time"
)

// Backoff schedules of slipstream, in milliseconds; the last step repeats.
var (
	ReconnectSchedule = ms(10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000)
	RejoinSchedule    = ms(100, 500, 1000, 2000, 5000, 10000)
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// Step returns the schedule's delay for attempt n (0-based).
func Step(schedule []time.Duration, n int) time.Duration {
	if len(schedule) == 0 {
		return time.Second
	}
	if n >= len(schedule) {
		n = len(schedule) - 1
	}
	return schedule[n]
}

// JitterSpread is the fixed part of the jitter added to every reconnect:
// after a server restart a fleet's first reconnects spread over this window
// instead of arriving within the same 10 ms.
const JitterSpread = 500 * time.Millisecond

// Jitter returns d plus a random extra in [0, d/2 + JitterSpread).
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d/2+JitterSpread)))
}
