package collector

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/messages"
)

var discard = slog.New(slog.DiscardHandler)

// harness spawns a collector whose reporter is a channel.
type harness struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	samples chan *messages.Sample
	counts  *collect.Counters
}

func spawn(t *testing.T, interval time.Duration, sources ...collect.Source) *harness {
	t.Helper()
	return spawnLogging(t, discard, interval, sources...)
}

// spawnLogging is spawn with the collector's log going to log.
func spawnLogging(t *testing.T, log *slog.Logger, interval time.Duration, sources ...collect.Source) *harness {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	h := &harness{sys: sys, samples: make(chan *messages.Sample, 100), counts: &collect.Counters{}}
	rep := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*messages.Sample); ok {
			h.samples <- s
		}
	}))
	h.pid = sys.Root.Spawn(Props(Options{Kind: "fast", Interval: interval, Sources: sources,
		Reporter: rep, Counters: h.counts, Log: log}))
	t.Cleanup(func() {
		sys.Root.PoisonFuture(h.pid).Wait()
		sys.Shutdown()
	})
	return h
}

func (h *harness) next(t *testing.T) *messages.Sample {
	t.Helper()
	select {
	case s := <-h.samples:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no sample within 10s")
		return nil
	}
}

func value(name string, v any) collect.Source {
	return collect.Source{Name: name, Timeout: time.Second, Collect: func(context.Context) (any, error) { return v, nil }}
}

func TestFirstRoundRightAfterStartAndAssembly(t *testing.T) {
	h := spawn(t, time.Hour,
		value("a", 1),
		collect.Source{Name: "b", Timeout: time.Second, Collect: func(context.Context) (any, error) { return nil, errors.New("zpool not found") }},
	)
	s := h.next(t)
	if s.Kind != "fast" || s.Data["a"] != 1 || len(s.Data) != 1 {
		t.Fatalf("sample = %+v", s)
	}
	if s.Errors["b"] != "zpool not found" || len(s.Errors) != 1 {
		t.Fatalf("errors = %v", s.Errors)
	}
	if time.Since(s.CollectedAt) > 10*time.Second {
		t.Fatalf("collected_at %v", s.CollectedAt)
	}
}

func TestNoErrorsMapWhenAllSucceed(t *testing.T) {
	h := spawn(t, time.Hour, value("a", 1))
	if s := h.next(t); s.Errors != nil {
		t.Fatalf("errors = %v, want nil", s.Errors)
	}
}

// A source that ignores its context and hangs: the round reports it timed
// out without waiting longer, the other source's data arrives, and the next
// round does not start it again while it is still running.
func TestHungSourceTimesOutAndIsNotRestarted(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	calls := make(chan struct{}, 10)
	hang := collect.Source{Name: "zfs_pools", Timeout: 100 * time.Millisecond, Collect: func(context.Context) (any, error) {
		calls <- struct{}{}
		<-release
		return nil, nil
	}}
	h := spawn(t, 150*time.Millisecond, hang, value("host", 1))
	s := h.next(t)
	if s.Errors["zfs_pools"] != "timed out after 100ms" || s.Data["host"] != 1 {
		t.Fatalf("first round: %+v", s)
	}
	s = h.next(t)
	if !strings.Contains(s.Errors["zfs_pools"], "previous run still in progress") || s.Data["host"] != 1 {
		t.Fatalf("second round: %+v", s)
	}
	if n := len(calls); n != 1 {
		t.Fatalf("hung source started %d times", n)
	}
}

// A round still running when the next tick fires makes that tick a counted
// skip; rounds resume when it finishes.
func TestTickDuringRoundIsSkippedAndCounted(t *testing.T) {
	release := make(chan struct{})
	slow := blockingSource(release)
	h := spawn(t, 10*time.Millisecond, slow)
	testkit.Eventually(t, 10*time.Second, "three skipped ticks", func() bool { return h.counts.Skipped.Load() >= 3 })
	if len(h.samples) != 0 {
		t.Fatal("a sample arrived while the round was blocked")
	}
	close(release)
	if s := h.next(t); s.Data["slow"] != "done" {
		t.Fatalf("sample %+v", s)
	}
	h.next(t) // and the cadence goes on
}

// The mailbox stays responsive during a round: a Poison is handled at once
// even while a source blocks.
func TestMailboxResponsiveDuringRound(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := spawn(t, time.Hour, collect.Source{Name: "block", Timeout: time.Minute, Collect: func(context.Context) (any, error) {
		<-release
		return nil, nil
	}})
	if err := h.sys.Root.PoisonFuture(h.pid).Wait(); err != nil {
		t.Fatalf("collector did not stop while a round ran: %v", err)
	}
}

func TestSourcePanicBecomesErrorEntryThenActorFailure(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	failures := make(chan any, 10)
	sub := sys.EventStream.Subscribe(func(e any) {
		if ev, ok := e.(*actor.SupervisorEvent); ok {
			select { // never block the supervisor in a crash loop
			case failures <- ev.Reason:
			default:
			}
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	samples := make(chan *messages.Sample, 10)
	rep := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*messages.Sample); ok {
			samples <- s
		}
	}))
	counts := &collect.Counters{}
	pid := sys.Root.Spawn(Props(Options{Kind: "fast", Interval: time.Hour, Reporter: rep, Counters: counts, Log: discard,
		Sources: []collect.Source{value("ok", 1), {Name: "bad", Timeout: time.Second, Collect: func(context.Context) (any, error) {
			var m map[string]int
			//lint:ignore SA5000 a nil map write is the injected bug
			m["x"] = 1 // nil map write: a real bug, not a test panic()
			return nil, nil
		}}}}))
	defer func() { sys.Root.PoisonFuture(pid).Wait() }()
	s := <-samples
	if !strings.Contains(s.Errors["bad"], "source panicked") || s.Data["ok"] != 1 {
		t.Fatalf("sample %+v", s)
	}
	select {
	case r := <-failures:
		if !strings.Contains(r.(string), "bad") {
			t.Fatalf("failure reason %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor never saw the fault")
	}
	// Restarted: a fresh instance runs its first round right away.
	if s := <-samples; s.Data["ok"] != 1 {
		t.Fatalf("after restart: %+v", s)
	}
	if counts.Panics.Load() < 1 || counts.Rounds.Load() < 2 {
		t.Fatalf("counters %d panics %d rounds", counts.Panics.Load(), counts.Rounds.Load())
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A missing binary is logged once at info, not every round; a failure that
// ends is logged as recovered once.
func TestSourceHealthLoggedOnChangeOnly(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	var logs lockedBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	samples := make(chan *messages.Sample, 100)
	rep := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*messages.Sample); ok {
			samples <- s
		}
	}))
	var round atomic.Int32
	r := &runner.Runner{}
	pid := sys.Root.Spawn(Props(Options{Kind: "fast", Interval: 5 * time.Millisecond, Reporter: rep, Log: log,
		Sources: []collect.Source{
			{Name: "zfs_pools", Timeout: time.Second, Collect: func(ctx context.Context) (any, error) {
				return nil, r.Run(ctx, time.Second, "/nonexistent/zpool", "status").Err()
			}},
			{Name: "flaky", Timeout: time.Second, Collect: func(context.Context) (any, error) {
				if round.Add(1) <= 3 {
					return nil, errors.New("boom")
				}
				return 1, nil
			}},
		}}))
	defer func() { sys.Root.PoisonFuture(pid).Wait() }()
	for i := 0; i < 8; i++ {
		<-samples
	}
	sys.Root.PoisonFuture(pid).Wait()
	out := logs.String()
	if n := strings.Count(out, "source not present on this host"); n != 1 || !strings.Contains(out, "level=INFO msg=\"source not present") {
		t.Errorf("not-present logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "source failing"); n != 1 {
		t.Errorf("failing logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "source recovered"); n != 1 || !strings.Contains(out, "failed_rounds=3") {
		t.Errorf("recovery logged %d times:\n%s", n, out)
	}
}

// blockingSource returns "done" once release gives it a turn (or is closed).
func blockingSource(release <-chan struct{}) collect.Source {
	return collect.Source{Name: "slow", Timeout: time.Minute, Collect: func(ctx context.Context) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "done", nil
	}}
}

// countHandler counts log records whose message contains sub.
type countHandler struct {
	sub string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.sub) {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// A round that keeps overrunning its tick, finishing in between, is one
// condition: "tick skipped" is logged once, not once per finished round
// (the rate limit used to reset every round).
func TestTickSkippedLoggedOnceAcrossRounds(t *testing.T) {
	var lines atomic.Int64
	log := slog.New(countHandler{sub: "tick skipped", n: &lines})
	release := make(chan struct{})
	slow := blockingSource(release)
	h := spawnLogging(t, log, 10*time.Millisecond, slow)
	for round := 0; round < 5; round++ {
		want := h.counts.Skipped.Load() + 1
		testkit.Eventually(t, 10*time.Second, "a skipped tick", func() bool { return h.counts.Skipped.Load() >= want })
		release <- struct{}{}
		h.next(t)
	}
	if n := lines.Load(); n != 1 {
		t.Fatalf("%d 'tick skipped' lines over 5 overrunning rounds, want 1", n)
	}
}

// A reload: the hour-long interval becomes a short one at once (not after
// the hour), the switched-off source is gone from the next round, the new
// one is in it, and a restart of the actor keeps what the reload set.
func TestReconfigureAppliesFromTheNextRound(t *testing.T) {
	h := spawn(t, time.Hour, value("host", 1), value("arc", 2))
	if s := h.next(t); s.Data["host"] != 1 || s.Data["arc"] != 2 {
		t.Fatalf("before: %v", s.Data)
	}
	h.sys.Root.Send(h.pid, &Reconfigure{Interval: 20 * time.Millisecond, Sources: []collect.Source{value("host", 1), value("net", 3)}})
	s := h.next(t) // an hour away unless the new interval re-armed the timer
	if _, in := s.Data["arc"]; in || s.Data["net"] != 3 || s.Data["host"] != 1 {
		t.Fatalf("after reload: %v", s.Data)
	}
	// A source that panics once makes the collector restart; the fresh
	// instance keeps the reload's interval: two more rounds come in
	// milliseconds, not an hour.
	var panicked atomic.Bool
	boom := collect.Source{Name: "boom", Timeout: time.Second, Collect: func(context.Context) (any, error) {
		if panicked.CompareAndSwap(false, true) {
			panic("once")
		}
		return 4, nil
	}}
	h.sys.Root.Send(h.pid, &Reconfigure{Interval: 20 * time.Millisecond, Sources: []collect.Source{value("net", 3), boom}})
	testkit.Eventually(t, 10*time.Second, "rounds after the restart with the reload's sources", func() bool {
		s := h.next(t)
		return s.Data["boom"] == 4 && s.Data["net"] == 3 && h.counts.Panics.Load() == 1
	})
	h.next(t)
	h.next(t)
}
