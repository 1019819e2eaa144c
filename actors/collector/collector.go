// Package collector is the collector actor: one per cadence, it ticks on its
// interval, runs its sources concurrently in the background (so its mailbox
// stays responsive), and sends the assembled sample to the reporter. The
// actor only schedules and assembles; sources do the work.
package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Options configure one collector.
type Options struct {
	Kind     string
	Interval time.Duration
	Sources  []collect.Source
	// Reporter receives each *messages.Sample.
	Reporter *actor.PID
	Counters *collect.Counters
	// Health records each round for status; nil records nothing.
	Health *collect.Health
	Log    *slog.Logger
	// Now stamps collected_at (tests fix it).
	Now func() time.Time
}

// Props builds the collector. Every restart constructs a new instance with
// fresh state; the round runner (which knows the sources still running from
// before a restart) is shared, so a hung source is never started twice.
func Props(o Options) *actor.Props {
	if o.Counters == nil {
		o.Counters = &collect.Counters{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Log = o.Log.With("actor", "collector", "kind", o.Kind)
	round := collect.NewRound(o.Kind, o.Sources, o.Counters, o.Log)
	sh := &shared{}
	sh.interval.Store(int64(o.Interval))
	return actor.PropsFromProducer(func() actor.Actor {
		return &collector{o: o, round: round, sh: sh}
	})
}

// Reconfigure replaces a collector's sources and interval (a config
// reload): the new interval applies from the next tick, armed now, and the
// sources from the next round. A round already running finishes with the
// sources it started with.
type Reconfigure struct {
	Interval time.Duration
	Sources  []collect.Source
}

// shared is what a reload changed, kept across restarts of the actor like
// the round itself: a restarted collector must not go back to the
// intervals of the config it was first started with.
type shared struct {
	interval atomic.Int64 // time.Duration
}

// tick asks for a round. owner is the incarnation that armed it: ticks
// armed before a restart are ignored by the new instance.
type tick struct{ owner *collector }

// roundDone carries a finished round back to the actor.
type roundDone struct {
	owner *collector
	at    time.Time // when the round started
	collect.Result
}

type collector struct {
	o       Options
	round   *collect.Round
	sh      *shared
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
					"skipped_total", c.o.Counters.Skipped.Load(), "interval", c.interval())
			})
			return
		}
		c.running = true
		c.startRound(ctx)
	case *roundDone:
		c.o.Counters.Rounds.Add(1)
		// A round from before a restart still carries good data: forward it.
		ctx.Send(c.o.Reporter, m.Sample)
		if m.owner != c {
			return
		}
		// Not c.skips.OK: a round that keeps overrunning its tick finishes
		// in between, and each finish would re-arm the warning.
		c.running = false
		c.logHealth(m.Errs)
		if c.o.Health != nil {
			c.o.Health.Record(m.at, time.Now(), m.Errs)
		}
		if len(m.Panics) > 0 {
			// The sample went out with error entries; now let the supervisor
			// see the fault, count it and restart this collector.
			panic(fmt.Sprintf("collector %s: source panicked: %v", c.o.Kind, m.Panics))
		}
	case *Reconfigure:
		c.reconfigure(ctx, m)
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
	c.timer = time.AfterFunc(c.interval(), func() {
		if !c.stopped.Load() {
			root.Send(self, &tick{owner: c})
		}
	})
}

func (c *collector) interval() time.Duration { return time.Duration(c.sh.interval.Load()) }

func (c *collector) reconfigure(ctx actor.Context, m *Reconfigure) {
	c.round.Reconfigure(m.Sources)
	if m.Interval <= 0 || m.Interval == c.interval() {
		return
	}
	c.sh.interval.Store(int64(m.Interval))
	// Re-armed from now: an interval cut from an hour to a minute should
	// not wait out the hour first.
	if c.timer != nil && c.timer.Stop() {
		c.arm(ctx)
	}
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
		root.Send(self, &roundDone{owner: c, at: at, Result: c.round.Run(at)})
	}()
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
			if runner.NotFound(err) || errors.Is(err, collect.ErrAbsent) {
				c.o.Log.Info("source not present on this host", "source", name, "err", err)
				return
			}
			c.o.Log.Warn("source failing", "source", name, "err", err, "failed_rounds_since_last_log", suppressed)
		})
	}
}
