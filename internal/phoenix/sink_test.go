package phoenix_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
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

// waitFor is testkit.Eventually with this file's generous deadline: the
// sink tests run real sockets on a shared machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, what, cond)
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

// Against the sink: pushes are acknowledged and heartbeats answered, so an
// answered heartbeat never ends the connection. It runs on the fake clock
// (see TestServerIdleTimeout): on the real one a loaded machine could delay
// a heartbeat reply past the next tick and fail the test for no fault of
// the client.
func TestAgainstSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		c, h, stop := pipeClient(t, s, func(o *phoenix.Options) { o.Heartbeat = 20 * time.Millisecond })
		defer stop()
		synctest.Wait()
		if h.joined.Load() != 1 {
			t.Fatalf("joined %d", h.joined.Load())
		}
		for i := 0; i < 10; i++ {
			if _, _, err := c.Push("metric:fast", json.RawMessage(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // fifty heartbeat periods of fake time
		synctest.Wait()
		if got := h.replied.Load(); got != 10 {
			t.Errorf("replied %d, want 10", got)
		}
		if got := s.Heartbeats.Load(); got < 40 {
			t.Errorf("heartbeats %d, want about 50", got)
		}
		if got := len(s.Samples()); got != 10 {
			t.Errorf("sink recorded %d", got)
		}
		if h.disconnected.Load() != 0 {
			t.Errorf("answered heartbeats still disconnected")
		}
	})
}

// pipeClient starts a client against s over net.Pipe, for a synctest
// bubble; stop closes both.
func pipeClient(t *testing.T, s *sink.Server, mod func(*phoenix.Options)) (*phoenix.Client, *counter, func()) {
	t.Helper()
	ln := servePipes(s)
	h := &counter{}
	o := phoenix.Options{URL: "ws://127.0.0.1/socket/websocket", Token: "tok", Topic: "agent:x", Handler: h,
		Jitter: func(d time.Duration) time.Duration { return d }}
	if mod != nil {
		mod(&o)
	}
	c, err := phoenix.New(o)
	if err != nil {
		t.Fatal(err)
	}
	phoenix.SetNetDial(c, ln.dial)
	c.Start()
	return c, h, func() {
		c.Close()
		ln.Close()
		s.Stop()
	}
}

// A server that upgrades and joins and then drops every connection does
// not earn a fresh reconnect backoff with each upgrade: over 60 s the
// client's windows grow (1, 2, 4, 8, 16, then 30 s) instead of redialling
// at once (thousands of times).
func TestReconnectBackoffSurvivesUpgrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		s.Faults.DropEvery = 1 // the join frame, then the cut
		_, h, stop := pipeClient(t, s, nil)
		defer stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		// At least 6: the windows' sum reaches 60 s only after 1+2+4+8+16+30.
		// About 9 on average; 20 would take delays far below half the window.
		if got := h.connected.Load(); got < 6 || got > 20 {
			t.Errorf("%d connections in a minute, want 6..20", got)
		}
	})
}

// A channel that crashes on the first push after every join does not
// earn a fresh rejoin backoff with each join: over 60 s the client walks
// the rejoin schedule (100 ms ... 10 s) instead of rejoining every 100 ms.
func TestRejoinBackoffSurvivesJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		s.Faults.PoisonContains = "poison"
		joined := make(chan struct{}, 1000)
		c, _, stop := pipeClient(t, s, func(o *phoenix.Options) { o.Handler = &pushOnJoin{counter: &counter{}, joined: joined} })
		defer stop()
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-joined:
					c.Push("metric:fast", json.RawMessage(`{"poison":1}`))
				case <-done:
					return
				}
			}
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		// 8.6 s for the first five steps, then one per 10 s: 11 joins.
		if got := s.Joins.Load(); got < 6 || got > 15 {
			t.Errorf("%d joins in a minute, want 6..15", got)
		}
		if got := s.Poisoned.Load(); got != s.Joins.Load() {
			t.Errorf("poisoned %d of %d joins", got, s.Joins.Load())
		}
	})
}

// After a join that held (a push acked), the next channel loss rejoins at
// the first step again.
func TestRejoinBackoffResetsAfterAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		s.Faults.PoisonContains = "poison"
		c, h, stop := pipeClient(t, s, nil)
		defer stop()
		push := func(body string) {
			t.Helper()
			synctest.Wait()
			if _, _, err := c.Push("metric:fast", json.RawMessage(body)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
		push(`{"poison":1}`) // joins 1 -> rejoin after 100 ms
		time.Sleep(200 * time.Millisecond)
		push(`{"poison":2}`) // join 2 -> rejoin after 500 ms
		time.Sleep(time.Second)
		push(`{"fine":1}`) // acked: healthy
		synctest.Wait()
		push(`{"poison":3}`) // join 3 -> rejoin after 100 ms, not 1 s
		start := time.Now()
		for s.Joins.Load() < 4 && time.Since(start) < 10*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(start); d > 150*time.Millisecond {
			t.Errorf("rejoined %s after a healthy join's loss, want the 100 ms first step", d)
		}
		if h.replied.Load() != 1 {
			t.Errorf("replied %d", h.replied.Load())
		}
	})
}

// A server that never answers the upgrade costs one handshake timeout per
// attempt, plus the backoff: a timeout may be the link's, so the windows
// grow from 1 s. In a minute: at least 5 (5 s each plus the windows 1, 2,
// 4, 8, 16 s), at most 12 (5 s each and no wait at all).
func TestServerThatNeverUpgrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		s.Faults.NoUpgrade = true
		_, h, stop := pipeClient(t, s, func(o *phoenix.Options) { o.HandshakeTimeout = 5 * time.Second })
		defer stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := h.disconnected.Load(); got < 5 || got > 12 || h.connected.Load() != 0 {
			t.Errorf("%d failed dials (%d connected) in a minute, want 5..12", got, h.connected.Load())
		}
	})
}

// A server flooding junk frames (replies to refs never pushed, unasked
// heartbeat replies, other topics) gets nothing through to the handler:
// each would be a message in the reporter's unbounded mailbox.
func TestFloodReachesNoHandler(t *testing.T) {
	s := sink.New("tok")
	s.Faults.Flood = true
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	h := &counter{}
	c, _ := phoenix.New(phoenix.Options{URL: s.URL(), Token: "tok", Topic: "agent:x", Handler: h})
	c.Start()
	defer c.Close()
	waitFor(t, "100k junk frames", func() bool { return s.Flooded.Load() >= 100_000 })
	if _, _, err := c.Push("metric:fast", json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the real reply", func() bool { return h.replied.Load() >= 1 })
	if got := h.replied.Load(); got != 1 || h.disconnected.Load() != 0 || h.joined.Load() != 1 {
		t.Errorf("replied %d, disconnected %d, joined %d; want 1, 0, 1", got, h.disconnected.Load(), h.joined.Load())
	}
}

type pushOnJoin struct {
	*counter
	joined chan struct{}
}

func (p *pushOnJoin) Joined(g uint64) {
	p.counter.Joined(g)
	p.joined <- struct{}{}
}

// Against real sockets: a refused dial says the server is away for the
// whole fleet, so every delay is drawn from the full window (here 300 ms):
// each under it, and not all alike.
func TestRefusedDialsWaitWithinTheFullWindow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused at once
	h := &timing{}
	const window = 300 * time.Millisecond
	c, _ := phoenix.New(phoenix.Options{URL: "ws://" + addr + "/socket/websocket", Token: "tok", Topic: "agent:t", Handler: h,
		Backoff: phoenix.Backoff{First: 10 * time.Millisecond, Max: window}})
	c.Start()
	defer c.Close()
	waitFor(t, "11 failed dials", func() bool { return len(h.failures()) >= 11 })
	f := h.failures()
	distinct := map[time.Duration]bool{}
	for n := 0; n < 10; n++ {
		d := f[n+1].Sub(f[n])
		distinct[d.Round(10*time.Millisecond)] = true
		if d > window+200*time.Millisecond { // scheduling slack on a busy machine
			t.Errorf("attempt %d waited %s, beyond the %s window", n, d, window)
		}
	}
	if len(distinct) < 3 {
		t.Errorf("delays barely vary: %v", distinct)
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

// The server drops sockets idle for its timeout; the heartbeat keeps an
// otherwise quiet agent connected, and without it the client reconnects.
// Client and sink run in a synctest bubble over net.Pipe with Cowboy's and
// slipstream's real timers: the fake clock moves only when every goroutine
// waits, so each heartbeat is answered and its reply handled before the next
// one is due, however loaded the machine is.
func TestServerIdleTimeout(t *testing.T) {
	const idle = 60 * time.Second
	for _, tc := range []struct {
		name      string
		heartbeat time.Duration
		run       time.Duration
		want      counts
	}{
		// Ticks at 30 s, 60 s, … 300 s; the server's idle deadline is always
		// 30 s ahead of the next one.
		{"heartbeat keeps it alive", 30 * time.Second, 5*time.Minute + time.Second,
			counts{connected: 1, joined: 1, disconnected: 0, heartbeats: 10}},
		// Dropped at 60 s, reconnected within the first backoff step (10 ms
		// plus at most 505 ms of jitter), next drop due at about 120 s.
		{"silent client is dropped", time.Hour, idle + idle/2,
			counts{connected: 2, joined: 2, disconnected: 1, heartbeats: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := sink.New("tok")
				s.Faults.IdleTimeout = idle
				ln := servePipes(s)
				defer ln.Close()
				defer s.Stop()
				h := &counter{}
				c, err := phoenix.New(phoenix.Options{URL: "ws://127.0.0.1/socket/websocket", Token: "tok",
					Topic: "agent:idle", Handler: h, Heartbeat: tc.heartbeat})
				if err != nil {
					t.Fatal(err)
				}
				phoenix.SetNetDial(c, ln.dial)
				c.Start()
				defer c.Close()
				time.Sleep(tc.run) // advances the bubble's clock; nothing waits on real time
				synctest.Wait()
				if got := h.counts(s); got != tc.want {
					t.Errorf("after %s: %+v, want %+v", tc.run, got, tc.want)
				}
			})
		})
	}
}

type counts struct{ connected, joined, disconnected, heartbeats int64 }

func (c *counter) counts(s *sink.Server) counts {
	return counts{c.connected.Load(), c.joined.Load(), c.disconnected.Load(), s.Heartbeats.Load()}
}

// pipeListener hands the sink one end of a net.Pipe per dial.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// servePipes serves h over net.Pipe connections made by the listener's dial.
func servePipes(h http.Handler) *pipeListener {
	ln := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return ln
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	return nil, net.ErrClosed
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// Close while a handshake hangs (a server that accepts TCP and never
// answers the upgrade) returns at once, not after the handshake timeout:
// the agent's SIGTERM must not wait on a hostile server.
func TestCloseDuringHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New("tok")
		s.Faults.NoUpgrade = true
		c, _, stop := pipeClient(t, s, func(o *phoenix.Options) { o.HandshakeTimeout = time.Hour })
		defer stop()
		time.Sleep(time.Second) // fake clock: the dial is under way
		synctest.Wait()
		start := time.Now()
		c.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Close took %s of fake time: it waited for the handshake timeout", d)
		}
	})
}
