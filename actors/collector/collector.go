// Package collector is the collector actor: one per cadence, it ticks on its
// interval, runs its sources concurrently in the background (so its mailbox
// stays responsive), and sends the assembled sample to the reporter. The
// actor only schedules and assembles; sources do the work.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/messages"
	"github.com/proxmox-agent/proxmox-agent/runner"
	"github.com/proxmox-agent/proxmox-agent/statelog"
)

// Source is one thing a collector reads in a round.
type Source struct {
	// Name is the key in the sample's data (or errors).
	Name string
	// Timeout bounds the source; past it the round goes on without it.
	Timeout time.Duration
	// Collect returns the source's data. It should honour ctx, but a source
	// that does not cannot hold up the round past Timeout.
	Collect func(ctx context.Context) (any, error)
}

// Counters are shared by every incarnation of a collector (they live in
// the supervisor, outside the actor, so a restart does not reset them).
type Counters struct {
	Rounds  atomic.Uint64
	Skipped atomic.Uint64
	Panics  atomic.Uint64
}

// Options configure one collector.
type Options struct {
	Kind     string
	Interval time.Duration
	Sources  []Source
	// Reporter receives each *messages.Sample.
	Reporter *actor.PID
	Counters *Counters
	Log      *slog.Logger
	// Now stamps collected_at (tests fix it).
	Now func() time.Time
}

// Props builds the collector. Every restart constructs a new instance with
// fresh state; busy flags for sources still running from before a restart
// are shared, so a hung source is never started twice.
func Props(o Options) *actor.Props {
	if o.Counters == nil {
		o.Counters = &Counters{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Log = o.Log.With("actor", "collector", "kind", o.Kind)
	busy := make([]atomic.Bool, len(o.Sources))
	return actor.PropsFromProducer(func() actor.Actor {
		return &collector{o: o, busy: busy}
	})
}

// tick asks for a round. owner is the incarnation that armed it: ticks
// armed before a restart are ignored by the new instance.
type tick struct{ owner *collector }

// roundDone carries a finished round back to the actor.
type roundDone struct {
	owner  *collector
	sample *messages.Sample
	// panics lists sources that panicked: a bug, not a data problem.
	panics []string
	// errs are the sources' errors as returned, for state-change logging.
	errs map[string]error
}

type collector struct {
	o       Options
	busy    []atomic.Bool
	timer   *time.Timer
	running bool
	stopped atomic.Bool
	skips   statelog.Tracker
	// health follows each source so that a failure is logged when it starts
	// and when it ends, not on every round.
	health map[string]*statelog.Tracker
}

func (c *collector) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// The first round starts right away; later ones on the interval.
		c.skips.Every = 10 * time.Minute
		ctx.Send(ctx.Self(), &tick{owner: c})
	case *tick:
		if m.owner != c {
			return
		}
		c.arm(ctx)
		if c.running {
			c.o.Counters.Skipped.Add(1)
			c.skips.Fail(time.Now(), func(suppressed uint64) {
				c.o.Log.Warn("tick skipped: previous round still running",
					"skipped_total", c.o.Counters.Skipped.Load(), "interval", c.o.Interval)
			})
			return
		}
		c.running = true
		c.startRound(ctx)
	case *roundDone:
		c.o.Counters.Rounds.Add(1)
		// A round from before a restart still carries good data: forward it.
		ctx.Send(c.o.Reporter, m.sample)
		if m.owner != c {
			return
		}
		c.running = false
		c.skips.OK(nil)
		c.logHealth(m.errs)
		if len(m.panics) > 0 {
			// The sample went out with error entries; now let the supervisor
			// see the fault, count it and restart this collector.
			panic(fmt.Sprintf("collector %s: source panicked: %v", c.o.Kind, m.panics))
		}
	case *messages.Ping:
		ctx.Respond(&messages.Pong{})
	case *actor.Restarting, *actor.Stopping:
		c.stop()
	}
}

// arm schedules the next tick. A one-shot timer re-armed on each tick, not
// scheduler.SendRepeatedly, which outlives restarts (see ACTORS.md).
func (c *collector) arm(ctx actor.Context) {
	if c.stopped.Load() {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	c.timer = time.AfterFunc(c.o.Interval, func() {
		if !c.stopped.Load() {
			root.Send(self, &tick{owner: c})
		}
	})
}

func (c *collector) stop() {
	c.stopped.Store(true)
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (c *collector) startRound(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	at := c.o.Now()
	go func() {
		done := c.round(at)
		done.owner = c
		root.Send(self, done)
	}()
}

type result struct {
	name  string
	data  any
	err   error
	panic bool
}

// round runs every source at once and waits for each until its own timeout;
// a source that overruns is reported and left behind (its busy flag stays set
// until it returns, so the next round reports it instead of starting it again).
func (c *collector) round(at time.Time) *roundDone {
	results := make(chan result, len(c.o.Sources))
	var wg sync.WaitGroup
	for i := range c.o.Sources {
		src := &c.o.Sources[i]
		if !c.busy[i].CompareAndSwap(false, true) {
			results <- result{name: src.Name, err: fmt.Errorf("previous run still in progress; not started again")}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- c.runSource(src, &c.busy[i])
		}()
	}
	wg.Wait()
	close(results)

	s := &messages.Sample{Kind: c.o.Kind, CollectedAt: at, Data: map[string]any{}}
	var panics []string
	errs := map[string]error{}
	for r := range results {
		errs[r.name] = r.err
		if r.err != nil {
			if s.Errors == nil {
				s.Errors = map[string]string{}
			}
			s.Errors[r.name] = r.err.Error()
			if r.panic {
				panics = append(panics, r.name)
			}
			continue
		}
		s.Data[r.name] = r.data
	}
	sort.Strings(panics)
	return &roundDone{sample: s, panics: panics, errs: errs}
}

// healthEvery is how often a source that keeps failing is mentioned again.
const healthEvery = time.Hour

// logHealth logs each source's state changes: a missing binary once at
// info (not a ZFS or not a Proxmox host is normal), other failures once at
// warn, and the recovery at info.
func (c *collector) logHealth(errs map[string]error) {
	if c.health == nil {
		c.health = map[string]*statelog.Tracker{}
	}
	now := time.Now()
	for name, err := range errs {
		tr := c.health[name]
		if tr == nil {
			tr = &statelog.Tracker{Every: healthEvery}
			c.health[name] = tr
		}
		if err == nil {
			tr.OK(func(n uint64) { c.o.Log.Info("source recovered", "source", name, "failed_rounds", n) })
			continue
		}
		tr.Fail(now, func(suppressed uint64) {
			if runner.NotFound(err) {
				c.o.Log.Info("source not present on this host", "source", name, "err", err)
				return
			}
			c.o.Log.Warn("source failing", "source", name, "err", err, "failed_rounds_since_last_log", suppressed)
		})
	}
}

// runSource waits for one source up to its timeout. The source itself runs
// in a goroutine of its own that clears busy when it really ends.
func (c *collector) runSource(src *Source, busy *atomic.Bool) result {
	ctx, cancel := context.WithTimeout(context.Background(), src.Timeout)
	defer cancel()
	out := make(chan result, 1)
	go func() {
		defer busy.Store(false)
		defer func() {
			if p := recover(); p != nil {
				c.o.Counters.Panics.Add(1)
				c.o.Log.Error("source panicked", "source", src.Name, "panic", p, "stack", string(debug.Stack()))
				out <- result{name: src.Name, err: fmt.Errorf("internal error: source panicked: %v", p), panic: true}
			}
		}()
		data, err := src.Collect(ctx)
		out <- result{name: src.Name, data: data, err: err}
	}()
	select {
	case r := <-out:
		return r
	case <-ctx.Done():
		return result{name: src.Name, err: fmt.Errorf("timed out after %s", src.Timeout)}
	}
}

// CollectOnce runs one round of sources outside any actor (the `once`
// subcommand) with the same concurrency, timeouts and error entries.
func CollectOnce(kind string, sources []Source, log *slog.Logger) *messages.Sample {
	c := &collector{
		o:    Options{Kind: kind, Sources: sources, Counters: &Counters{}, Log: log, Now: time.Now},
		busy: make([]atomic.Bool, len(sources)),
	}
	return c.round(c.o.Now()).sample
}
