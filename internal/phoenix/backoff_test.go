package phoenix

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBackoffWindow(t *testing.T) {
	def := Backoff{}
	cases := []struct {
		b          Backoff
		failures   int
		serverGone bool
		want       time.Duration
	}{
		{def, 0, false, time.Second},
		{def, 1, false, 2 * time.Second},
		{def, 4, false, 16 * time.Second},
		{def, 5, false, 30 * time.Second},
		{def, 1 << 20, false, 30 * time.Second}, // no overflow however long the outage
		{def, 0, true, 30 * time.Second},
		{Backoff{Max: 60 * time.Second}, 0, true, time.Minute},
		{Backoff{Max: 500 * time.Millisecond}, 0, false, 500 * time.Millisecond}, // First never above Max
		{Backoff{First: 100 * time.Millisecond, Max: time.Second}, 3, false, 800 * time.Millisecond},
	}
	for _, c := range cases {
		if got := c.b.Window(c.failures, c.serverGone); got != c.want {
			t.Errorf("%+v.Window(%d, %v) = %s, want %s", c.b, c.failures, c.serverGone, got, c.want)
		}
	}
	if d := def.Delay(0, true, 0.5); d != 15*time.Second {
		t.Errorf("Delay(u=0.5) = %s", d)
	}
	if d := def.Delay(0, true, 0); d != 0 {
		t.Errorf("Delay(u=0) = %s", d)
	}
}

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func closed(code int) error {
	return fmt.Errorf("read: %w", &websocket.CloseError{Code: code})
}

func TestServerGone(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		want   bool
	}{
		{"going away 1001", closed(websocket.CloseGoingAway), 0, true},
		{"service restart 1012", closed(websocket.CloseServiceRestart), 0, true},
		{"try again later 1013", closed(websocket.CloseTryAgainLater), 0, true},
		{"normal closure 1000", closed(websocket.CloseNormalClosure), 0, false},
		{"abnormal 1006", closed(websocket.CloseAbnormalClosure), 0, false},
		{"connection refused", refused(), 0, true},
		{"proxy 502", errors.New("bad handshake"), 502, true},
		{"proxy 503", errors.New("bad handshake"), 503, true},
		{"token refused 403", errors.New("bad handshake"), 403, false},
		{"timeout", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, 0, false},
		{"unreachable", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, 0, false},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), 0, false},
		{"heartbeat", errHeartbeat, 0, false},
		{"nil", nil, 0, false},
	}
	for _, c := range cases {
		if got := ServerGone(c.err, c.status); got != c.want {
			t.Errorf("%s: ServerGone = %v, want %v", c.name, got, c.want)
		}
	}
}

// The retry state: windows double from First while the loss may be the
// link's, jump to Max once the server said it went away, and start over
// only after a healthy connection.
func TestRetryNext(t *testing.T) {
	r := retry{b: Backoff{}}
	const u = 0.999999
	near := func(d, w time.Duration) bool { return d <= w && d > w-time.Millisecond }
	steps := []struct {
		err     error
		healthy bool
		window  time.Duration
	}{
		{closed(websocket.CloseAbnormalClosure), true, time.Second}, // a flaky link: back within a second
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, false, 2 * time.Second},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, false, 4 * time.Second},
		{refused(), false, 30 * time.Second},                                                                       // the server is down: the full window
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, false, 30 * time.Second}, // and it stays
		{closed(websocket.CloseAbnormalClosure), false, 30 * time.Second},                                          // an unhealthy connection changes nothing
		{closed(websocket.CloseAbnormalClosure), true, time.Second},                                                // a healthy one starts over
		{closed(websocket.CloseServiceRestart), true, 30 * time.Second},                                            // a clean restart is spread at once
	}
	for i, s := range steps {
		if d := r.next(s.err, 0, s.healthy, u); !near(d, s.window) {
			t.Errorf("step %d (%v, healthy %v): delay %s, want just under %s", i, s.err, s.healthy, d, s.window)
		}
	}
	fixed := retry{fixed: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond}, jitter: func(d time.Duration) time.Duration { return d }}
	got := []time.Duration{fixed.next(refused(), 0, false, u), fixed.next(refused(), 0, false, u), fixed.next(refused(), 0, false, u)}
	if !slices.Equal(got, []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}) {
		t.Errorf("fixed schedule: %v", got)
	}
}

// loss is how a simulated fleet lost its server, and what a dial meets
// while the server is away.
type loss struct {
	name string
	// lost is the error that ended every healthy connection at t=0.
	lost error
	// down is what a dial meets while the server is away; hang is how
	// long it takes to fail (a host that is down: SYNs unanswered until
	// the handshake timeout).
	down       error
	downStatus int // the upgrade's HTTP status, when a proxy answers
	hang       time.Duration
}

// simulateFleet returns when each of n clients is back, the server being
// away from 0 to away: each client runs the real retry state on a fake
// clock. A dial that hangs while the server is away connects at its next
// SYN retransmission (1, 3, 7 s after it started) if the server returns
// before the dial times out.
func simulateFleet(n int, b Backoff, l loss, away time.Duration, rng *rand.Rand) []time.Duration {
	back := make([]time.Duration, n)
	for i := range back {
		r := retry{b: b}
		t := r.next(l.lost, 0, true, rng.Float64())
		for t < away {
			if l.hang > 0 {
				connected := false
				for _, syn := range []time.Duration{time.Second, 3 * time.Second, 7 * time.Second} {
					if syn < l.hang && t+syn >= away {
						t, connected = t+syn, true
						break
					}
				}
				if connected {
					break
				}
				t += l.hang
			}
			t += r.next(l.down, l.downStatus, false, rng.Float64())
		}
		back[i] = t
	}
	return back
}

// busiest is the most returns within any one second (a sliding window).
func busiest(back []time.Duration) int {
	s := slices.Clone(back)
	slices.Sort(s)
	most, j := 0, 0
	for i := range s {
		for s[i]-s[j] >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// Issue 17 item 7: 1,000 clients that lost the server at the same instant
// come back spread out: no second holds more than a tenth of them, and all
// are back within 45 s of the server's return, whatever the outage's
// length, when the loss tells them the server went away (a clean close,
// refused dials, a proxy's 503). The figures are logged for the docs.
func TestFleetReturnsSpreadOut(t *testing.T) {
	const n = 1000
	timeout := &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}
	losses := []loss{
		{name: "clean close 1001, dials refused", lost: closed(websocket.CloseGoingAway), down: refused()},
		{name: "clean close 1012, dials refused", lost: closed(websocket.CloseServiceRestart), down: refused()},
		{name: "clean close 1001, proxy answers 503", lost: closed(websocket.CloseGoingAway), down: errors.New("websocket: bad handshake"), downStatus: 503},
		{name: "dropped (1006), dials refused", lost: closed(websocket.CloseAbnormalClosure), down: refused()},
		// A partition between the fleet and a server that listens
		// throughout: dials hang (SYNs unanswered) until the handshake
		// timeout, and those in flight when the path heals connect at
		// their next SYN retransmission, together. Logged, not held to
		// the 10 % rule: no schedule can spread dials already made.
		{name: "partition (1006, dials hang 10 s)", lost: closed(websocket.CloseAbnormalClosure), down: timeout, hang: 10 * time.Second},
	}
	aways := []time.Duration{0, time.Second, 5 * time.Second, 20 * time.Second, time.Minute, 10 * time.Minute, time.Hour}
	rng := rand.New(rand.NewPCG(17, 7))
	for _, l := range losses {
		for _, away := range aways {
			back := simulateFleet(n, Backoff{}, l, away, rng)
			peak, last := busiest(back), slices.Max(back)-away
			t.Logf("%-45s away %-6s busiest second %3d of %d, all back %5.1fs after the server", l.name, away, peak, n, last.Seconds())
			// A dropped connection may be this host's link: its first retry
			// comes within a second (the price of a flaky agent coming back
			// at once); once a dial meets the server's absence the fleet is
			// spread. So the 10 % rule holds for an unannounced loss from an
			// outage of one first window (1 s) on.
			announced := ServerGone(l.lost, 0)
			if (announced || away >= 2*time.Second) && l.hang == 0 && peak > n/10 {
				t.Errorf("%s, away %s: %d clients came back within one second (more than a tenth)", l.name, away, peak)
			}
			if last > 45*time.Second {
				t.Errorf("%s, away %s: the last client came back %s after the server", l.name, away, last)
			}
		}
	}
}
