package phoenix_test

import (
	"encoding/json"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
)

type counter struct {
	connected, joined, disconnected, replied atomic.Int64
}

func (c *counter) Connected(uint64)                      { c.connected.Add(1) }
func (c *counter) Joined(uint64)                         { c.joined.Add(1) }
func (c *counter) JoinRefused(uint64, string)            {}
func (c *counter) Left(uint64, string)                   {}
func (c *counter) Disconnected(uint64, error)            { c.disconnected.Add(1) }
func (c *counter) Written(uint64, string)                {}
func (c *counter) Replied(uint64, string, phoenix.Reply) { c.replied.Add(1) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// 100 reconnects against the sink, then Close: no goroutine of the client
// (or the sink) is left behind.
func TestNoGoroutineLeakAcross100Reconnects(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := sink.New("tok")
	s.Faults.DropEvery = 2 // join, one push, then the connection is cut
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	h := &counter{}
	c, err := phoenix.New(phoenix.Options{URL: s.URL(), Token: "tok", Topic: "agent:leak", Handler: h,
		Reconnect: []time.Duration{time.Millisecond}, Jitter: func(d time.Duration) time.Duration { return d }})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	go func() {
		for h.disconnected.Load() < 100 {
			c.Push("metric:fast", json.RawMessage(`{"data":{}}`))
			time.Sleep(time.Millisecond)
		}
	}()
	waitFor(t, "100 reconnects", func() bool { return h.connected.Load() >= 101 })
	c.Close()
	s.Stop()
	if h.joined.Load() < 100 {
		t.Errorf("only %d joins over %d connections", h.joined.Load(), h.connected.Load())
	}
}

// Against the sink: pushes are acknowledged, heartbeats answered, a refused
// join is retried, and a bad token is a 403.
func TestAgainstSink(t *testing.T) {
	s := sink.New("tok")
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	h := &counter{}
	c, _ := phoenix.New(phoenix.Options{URL: s.URL(), Token: "tok", Topic: "agent:x", Handler: h, Heartbeat: 20 * time.Millisecond})
	c.Start()
	defer c.Close()
	waitFor(t, "join", func() bool { return h.joined.Load() == 1 })
	for i := 0; i < 10; i++ {
		if _, _, err := c.Push("metric:fast", json.RawMessage(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "10 replies", func() bool { return h.replied.Load() == 10 })
	waitFor(t, "heartbeats", func() bool { return s.Heartbeats.Load() >= 3 })
	if got := len(s.Samples()); got != 10 {
		t.Errorf("sink recorded %d", got)
	}
	if h.disconnected.Load() != 0 {
		t.Errorf("answered heartbeats still disconnected")
	}
}

// The measured reconnect delays follow slipstream's schedule plus jitter
// while the server stays away: attempt n waits at least Step(n) and less
// than Step(n)*1.5+JitterSpread (plus scheduling slack).
func TestReconnectDelaysFollowScheduleWithJitter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused at once
	h := &timing{}
	c, _ := phoenix.New(phoenix.Options{URL: "ws://" + addr + "/socket/websocket", Token: "tok", Topic: "agent:t", Handler: h})
	c.Start()
	defer c.Close()
	waitFor(t, "7 failed dials", func() bool { return len(h.failures()) >= 7 })
	f := h.failures()
	for n := 0; n < 6; n++ {
		d := f[n+1].Sub(f[n])
		step := phoenix.Step(phoenix.ReconnectSchedule, n)
		hi := step + step/2 + phoenix.JitterSpread + 100*time.Millisecond
		t.Logf("attempt %d: schedule %s, measured %s", n, step, d.Round(time.Millisecond))
		if d < step || d > hi {
			t.Errorf("attempt %d waited %s, want [%s, %s)", n, d, step, hi)
		}
	}
}

type timing struct {
	mu   sync.Mutex
	fail []time.Time
}

func (h *timing) Disconnected(uint64, error) {
	h.mu.Lock()
	h.fail = append(h.fail, time.Now())
	h.mu.Unlock()
}
func (h *timing) failures() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.fail...)
}
func (h *timing) Connected(uint64)                      {}
func (h *timing) Joined(uint64)                         {}
func (h *timing) JoinRefused(uint64, string)            {}
func (h *timing) Left(uint64, string)                   {}
func (h *timing) Written(uint64, string)                {}
func (h *timing) Replied(uint64, string, phoenix.Reply) {}

// The server drops sockets idle for its timeout (Cowboy: 60 s); the
// heartbeat keeps an otherwise quiet agent connected, and without it the
// client reconnects.
func TestServerIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		heartbeat time.Duration
		wantDrops bool
	}{{"heartbeat keeps it alive", 50 * time.Millisecond, false}, {"silent client is dropped", time.Hour, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := sink.New("tok")
			s.Faults.IdleTimeout = 300 * time.Millisecond
			if err := s.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			h := &counter{}
			c, _ := phoenix.New(phoenix.Options{URL: s.URL(), Token: "tok", Topic: "agent:idle", Handler: h, Heartbeat: tc.heartbeat})
			c.Start()
			defer c.Close()
			waitFor(t, "join", func() bool { return h.joined.Load() >= 1 })
			if tc.wantDrops {
				waitFor(t, "drop and reconnect", func() bool { return h.disconnected.Load() >= 1 && h.connected.Load() >= 2 })
				return
			}
			deadline := time.Now().Add(time.Second) // over three idle timeouts
			for time.Now().Before(deadline) {
				if h.disconnected.Load() != 0 {
					t.Fatal("dropped despite heartbeats")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
