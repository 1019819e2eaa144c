// Package reporter is the reporter actor: it receives samples from the
// collectors, encodes them, records the exact payload in the dump, and holds
// them in a bounded queue until they are delivered to the server.
package reporter

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/dump"
	"github.com/proxmox-agent/proxmox-agent/messages"
	"github.com/proxmox-agent/proxmox-agent/payload"
	"github.com/proxmox-agent/proxmox-agent/statelog"
)

// Options configure the reporter.
type Options struct {
	Dump       *dump.Handle
	Log        *slog.Logger
	MaxSamples int
	MaxBytes   int
}

// Props builds the reporter; a restart starts with an empty queue.
func Props(o Options) *actor.Props {
	o.Log = o.Log.With("actor", "reporter")
	return actor.PropsFromProducer(func() actor.Actor {
		return &reporter{o: o, q: Queue{MaxItems: o.MaxSamples, MaxBytes: o.MaxBytes}}
	})
}

type reporter struct {
	o     Options
	q     Queue
	drops statelog.Tracker
	last  string
}

func (r *reporter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.drops.Every = 10 * time.Minute
	case *messages.Sample:
		r.enqueue(m)
	case *messages.StatusRequest:
		ctx.Respond(&messages.Status{
			QueueDepth: r.q.Len(), QueueBytes: r.q.Bytes(), Dropped: r.q.Dropped(), LastError: r.last,
		})
	}
}

func (r *reporter) enqueue(s *messages.Sample) {
	body, err := payload.Encode(s)
	if err != nil {
		// A collector bug must not take the reporter down; say which sample.
		r.last = err.Error()
		r.o.Log.Error("sample dropped: cannot encode", "kind", s.Kind, "err", err)
		return
	}
	if r.o.Dump.Enabled() {
		r.o.Dump.Sample(s.Kind, time.Now(), payload.Indent(body))
	}
	if n := r.q.Push(Item{Kind: s.Kind, CollectedAt: s.CollectedAt, Body: body}); n > 0 {
		r.drops.Fail(time.Now(), func(uint64) {
			r.o.Log.Warn("queue full: dropping oldest samples", "dropped_total", r.q.Dropped(),
				"queue_depth", r.q.Len(), "queue_bytes", r.q.Bytes())
		})
	}
}
