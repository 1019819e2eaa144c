package phoenix_test

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
)

// fleetMember records when its client joined.
type fleetMember struct {
	counter
	mu    sync.Mutex
	joins []time.Time
}

func (m *fleetMember) Joined(g uint64) {
	m.counter.Joined(g)
	m.mu.Lock()
	m.joins = append(m.joins, time.Now())
	m.mu.Unlock()
}

// firstJoinAfter is when the member joined again after t (zero if not).
func (m *fleetMember) firstJoinAfter(t time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, j := range m.joins {
		if j.After(t) {
			return j
		}
	}
	return time.Time{}
}

// fleet runs n real clients against one sink over pipes in a synctest
// bubble; while down is set, every dial is refused (the server's port is
// closed), as a restarting server's are.
type fleet struct {
	s       *sink.Server
	ln      *pipeListener
	down    atomic.Bool
	members []*fleetMember
	clients []*phoenix.Client
}

func startFleet(t *testing.T, n int, b phoenix.Backoff) *fleet {
	f := &fleet{s: sink.New("tok")}
	f.ln = servePipes(f.s)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f.down.Load() {
			return nil, refused
		}
		return f.ln.dial(ctx, network, addr)
	}
	for i := 0; i < n; i++ {
		m := &fleetMember{}
		rng := rand.New(rand.NewPCG(uint64(i), 17))
		c, err := phoenix.New(phoenix.Options{URL: "ws://server/socket/websocket", Token: "tok", Topic: "agent:fleet",
			Handler: m, Backoff: b, Rand: rng.Float64})
		if err != nil {
			t.Fatal(err)
		}
		phoenix.SetNetDial(c, dial)
		c.Start()
		f.members = append(f.members, m)
		f.clients = append(f.clients, c)
	}
	return f
}

func (f *fleet) stop() {
	for _, c := range f.clients {
		c.Close()
	}
	f.ln.Close()
	f.s.Stop()
}

// returns lists, per member, how long after back it joined again after
// lost (negative: before the server was back, which cannot be).
func (f *fleet) returns(t *testing.T, lost, back time.Time) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, len(f.members))
	for i, m := range f.members {
		j := m.firstJoinAfter(lost)
		if j.IsZero() {
			t.Fatalf("client %d never came back", i)
		}
		out = append(out, j.Sub(back))
	}
	return out
}

// Issue 17 item 7, with the real client: 1,000 clients, healthy, lose the
// server at the same instant (it closes every socket with 1001 or 1012 and
// refuses connections while away); once it is back no second holds more
// than a tenth of the rejoins, and all are back within 45 s of its return.
func TestFleetOfClientsRejoinsSpreadOut(t *testing.T) {
	const n = 1000
	cases := []struct {
		name string
		code int
		away time.Duration
	}{
		{"1001, back at once", websocket.CloseGoingAway, 0},
		{"1012, away 20 s", websocket.CloseServiceRestart, 20 * time.Second},
		{"1001, away 3 min", websocket.CloseGoingAway, 3 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := startFleet(t, n, phoenix.Backoff{})
				defer f.stop()
				synctest.Wait()
				time.Sleep(31 * time.Second) // every join held past HealthyAfter
				synctest.Wait()
				lost := time.Now()
				f.down.Store(true)
				f.s.CloseAll(c.code)
				time.Sleep(c.away)
				f.down.Store(false)
				back := time.Now()
				time.Sleep(time.Minute)
				synctest.Wait()
				rs := f.returns(t, lost, back)
				peak, last := phoenix.Busiest(rs), slices.Max(rs)
				t.Logf("%d clients, close %d, away %s: busiest second %d rejoins, last back %s after the server",
					n, c.code, c.away, peak, last.Round(100*time.Millisecond))
				if peak > n/10 {
					t.Errorf("%d rejoins within one second, more than a tenth of %d", peak, n)
				}
				if last > 45*time.Second || slices.Min(rs) < 0 {
					t.Errorf("rejoins from %s to %s after the server's return, want within [0, 45s]", slices.Min(rs), last)
				}
			})
		})
	}
}

// One agent on a flaky link (its connection drops, no close frame, the
// server still up) is back within the first window, a second: the spread
// is for losses the whole fleet shares.
func TestFlakyLinkComesBackWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := startFleet(t, 1, phoenix.Backoff{})
		defer f.stop()
		synctest.Wait()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		for i := 0; i < 5; i++ {
			lost := time.Now()
			f.s.Stop() // every connection cut without a close frame (1006)
			time.Sleep(2 * time.Second)
			synctest.Wait()
			j := f.members[0].firstJoinAfter(lost)
			if j.IsZero() || j.Sub(lost) > time.Second {
				t.Fatalf("drop %d: back after %s, want within 1 s", i, j.Sub(lost))
			}
			time.Sleep(31 * time.Second) // healthy again: the next drop starts over
			synctest.Wait()
		}
	})
}
