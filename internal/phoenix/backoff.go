package phoenix

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Backoff is the reconnect schedule after the connection is lost: full
// jitter (a delay drawn uniformly from [0, window)) over a window that
// doubles with each consecutive failed attempt, from First up to Max.
//
// A fleet that lost its server at the same instant must not come back at
// the same instant: the delays of its agents are spread over the whole
// window, not bunched around a step. When the loss says the server itself
// went away (it closed with 1001 going away, 1012 service restart or 1013
// try again later, it refused the connection, or a proxy answered the
// upgrade with 502/503/504) every agent of the fleet saw it too, so the
// window is Max at once. Any other loss (a dropped connection, a timeout,
// an unreachable network) may be this host's link alone: the first retry
// comes within First, so one agent on a flaky link is back within seconds.
type Backoff struct {
	// First is the window of the first retry after a loss the server did
	// not announce (default DefaultFirstWindow).
	First time.Duration
	// Max is the widest window, and the window after a loss the server
	// announced (default DefaultMaxWindow; [reporter] reconnect_max_seconds).
	Max time.Duration
}

// Defaults of Backoff.
const (
	DefaultFirstWindow = time.Second
	DefaultMaxWindow   = 30 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.First <= 0 {
		b.First = DefaultFirstWindow
	}
	if b.Max <= 0 {
		b.Max = DefaultMaxWindow
	}
	if b.First > b.Max {
		b.First = b.Max
	}
	return b
}

// Window is the window of the next retry after failures consecutive failed
// attempts (0: the connection was just lost), or Max when serverGone.
func (b Backoff) Window(failures int, serverGone bool) time.Duration {
	b = b.withDefaults()
	if serverGone {
		return b.Max
	}
	w := b.First
	for i := 0; i < failures && w < b.Max; i++ {
		w *= 2
	}
	return min(w, b.Max)
}

// Delay draws the delay of the next retry from [0, Window): u is a uniform
// random number in [0, 1) (rand.Float64 outside tests).
func (b Backoff) Delay(failures int, serverGone bool, u float64) time.Duration {
	return time.Duration(u * float64(b.Window(failures, serverGone)))
}

// ServerGone reports whether a lost connection (err, and the upgrade's
// HTTP status or 0) says that the server went away for everyone rather
// than this host's link failing: see Backoff.
func ServerGone(err error, status int) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	if err == nil {
		return false
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseGoingAway, websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
			return true
		}
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// retry is one client's reconnect state: consecutive failures since the
// last healthy connection, and whether the server announced its loss
// since. It starts over only after a healthy connection.
type retry struct {
	b          Backoff
	failures   int
	serverGone bool
	// fixed and jitter replace the schedule when set (Options.Reconnect).
	fixed  []time.Duration
	jitter func(time.Duration) time.Duration
}

// next returns the delay before the next attempt after one that ended
// (a failed dial, or a connection that ended), err and status saying how;
// healthy is whether that connection had proved itself.
func (r *retry) next(err error, status int, healthy bool, u float64) time.Duration {
	if healthy {
		r.failures, r.serverGone = 0, false
	}
	r.serverGone = r.serverGone || ServerGone(err, status)
	var d time.Duration
	if r.fixed != nil {
		d = r.jitter(Step(r.fixed, r.failures))
	} else {
		d = r.b.Delay(r.failures, r.serverGone, u)
	}
	r.failures++
	return d
}

// Backoff schedules of slipstream, in milliseconds; the last step repeats.
// ReconnectSchedule is used only when Options.Reconnect asks for a fixed
// schedule (tests); RejoinSchedule paces rejoins of a lost channel.
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

// JitterSpread is the fixed part of the jitter Jitter adds to a fixed
// schedule's step.
const JitterSpread = 500 * time.Millisecond

// Jitter returns d plus a random extra in [0, d/2 + JitterSpread): the
// default jitter of a fixed schedule (Options.Reconnect).
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d/2+JitterSpread)))
}
