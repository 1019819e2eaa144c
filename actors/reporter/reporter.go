// Package reporter is the reporter actor: it receives samples from the
// collectors, records the exact payload in the dump, keeps it in a bounded
// queue, and delivers it over one Phoenix channel session, replaying in
// order after every reconnect.
//
// Delivery: a push is delivered when the server replies ok. Whether the
// server replies at all is learnt from the first push, which is sent alone:
// a reply within the reply timeout means "acks" (from then on unacked pushes
// are kept and resent after a reconnect: at least once); none means a
// {:noreply} channel, where a push counts as delivered once written. An
// error reply is logged and not retried ("unmatched topic" excepted: that
// is a lost join, and the push is resent after the rejoin).
package reporter

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Server is where and how to connect; a zero URL means "queue only" (tests).
type Server struct {
	URL          string
	Token        string
	Topic        string
	HostID       string
	Version      string
	Heartbeat    time.Duration
	ReplyTimeout time.Duration
	CAFile       string
	Insecure     bool
	// Reconnect overrides the backoff schedule (tests).
	Reconnect []time.Duration
}

// Options configure the reporter.
type Options struct {
	Server     Server
	Dump       *dump.Handle
	Log        *slog.Logger
	MaxSamples int
	MaxBytes   int
	// Window bounds pushes in flight (default 64).
	Window int
}

// Props builds the reporter; a restart starts with an empty queue.
func Props(o Options) *actor.Props {
	o.Log = o.Log.With("actor", "reporter")
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.Server.ReplyTimeout <= 0 {
		o.Server.ReplyTimeout = 10 * time.Second
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &reporter{o: o, q: Queue{MaxItems: o.MaxSamples, MaxBytes: o.MaxBytes}, byRef: map[string]*Item{}}
	})
}

// Server acknowledgement modes, learnt from the first push.
const (
	acksUnknown = iota
	acksYes
	acksNo
)

// Client events, forwarded to the mailbox by handler.
type (
	evConnected   struct{ gen uint64 }
	evJoined      struct{ gen uint64 }
	evJoinRefused struct {
		gen    uint64
		reason string
	}
	evLeft struct {
		gen    uint64
		reason string
	}
	evDisconnected struct {
		gen uint64
		err error
	}
	evWritten struct {
		gen uint64
		ref string
	}
	evReplied struct {
		gen   uint64
		ref   string
		reply phoenix.Reply
	}
	evCheck struct{ owner *reporter }
)

type handler struct {
	root *actor.RootContext
	pid  *actor.PID
}

func (h handler) Connected(g uint64)             { h.root.Send(h.pid, &evConnected{g}) }
func (h handler) Joined(g uint64)                { h.root.Send(h.pid, &evJoined{g}) }
func (h handler) JoinRefused(g uint64, r string) { h.root.Send(h.pid, &evJoinRefused{g, r}) }
func (h handler) Left(g uint64, r string)        { h.root.Send(h.pid, &evLeft{g, r}) }
func (h handler) Disconnected(g uint64, e error) { h.root.Send(h.pid, &evDisconnected{g, e}) }
func (h handler) Written(g uint64, ref string)   { h.root.Send(h.pid, &evWritten{g, ref}) }
func (h handler) Replied(g uint64, ref string, r phoenix.Reply) {
	h.root.Send(h.pid, &evReplied{g, ref, r})
}

type reporter struct {
	o      Options
	q      Queue
	byRef  map[string]*Item
	client *phoenix.Client
	timer  *time.Timer

	connected, joined bool
	gen               uint64
	acks              int
	inflight          int
	pushed, acked     uint64
	last              string

	drops, dial, errReplies, refusals statelog.Tracker
}

func (r *reporter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.drops.Every, r.dial.Every, r.errReplies.Every, r.refusals.Every = 10*time.Minute, 10*time.Minute, 10*time.Minute, 10*time.Minute
		r.start(ctx)
	case *actor.Restarting, *actor.Stopping:
		r.stop()
	case *messages.Sample:
		r.enqueue(m)
		r.pump()
	case *messages.Ping:
		ctx.Respond(&messages.Pong{})
	case *messages.StatusRequest:
		ctx.Respond(&messages.Status{Connected: r.connected, Joined: r.joined, QueueDepth: r.q.Len(),
			QueueBytes: r.q.Bytes(), Dropped: r.q.Dropped(), Pushed: r.pushed, Acked: r.acked, LastError: r.last})
	case *evConnected:
		r.connected = true
		r.dial.OK(nil)
		r.o.Log.Info("connected", "server", config.RedactURL(r.o.Server.URL))
	case *evJoined:
		r.joined, r.gen = true, m.gen
		r.refusals.OK(nil)
		r.o.Log.Info("joined", "topic", r.o.Server.Topic, "queued", r.q.Len())
		r.pump()
	case *evJoinRefused:
		r.last = "join refused: " + m.reason
		r.refusals.Fail(time.Now(), func(suppressed uint64) {
			r.o.Log.Warn("join refused; will rejoin with backoff", "topic", r.o.Server.Topic, "reason", m.reason,
				"refusals_since_last_log", suppressed)
		})
	case *evLeft:
		r.lost("channel left: " + m.reason)
	case *evDisconnected:
		wasConnected := r.connected
		r.connected = false
		r.lost("")
		if m.err != nil {
			r.last = m.err.Error()
		}
		if wasConnected {
			r.o.Log.Warn("connection lost; reconnecting", "err", m.err)
		} else {
			r.dial.Fail(time.Now(), func(suppressed uint64) {
				var de *phoenix.DialError
				if errors.As(m.err, &de) && de.StatusCode == 403 {
					r.o.Log.Error("server refused the connection (HTTP 403): check token", "server", config.RedactURL(r.o.Server.URL), "attempts_since_last_log", suppressed)
					return
				}
				r.o.Log.Warn("cannot connect; retrying with backoff", "server", config.RedactURL(r.o.Server.URL), "err", m.err, "attempts_since_last_log", suppressed)
			})
		}
	case *evWritten:
		if it := r.byRef[m.ref]; it != nil && it.Gen == m.gen && r.acks == acksNo {
			r.delivered(it)
			r.pump()
		}
	case *evReplied:
		r.replied(m)
		r.pump()
	case *evCheck:
		if m.owner == r {
			r.check()
			r.arm(ctx)
		}
	}
}

func (r *reporter) start(ctx actor.Context) {
	r.arm(ctx)
	s := r.o.Server
	if s.URL == "" {
		return
	}
	tlsCfg, err := tlsConfig(s.CAFile, s.Insecure)
	if err != nil {
		// A bad ca_file is a config error the operator must see; without it
		// the system roots still apply.
		r.o.Log.Error("tls: ignoring ca_file", "err", err)
	}
	if s.Insecure {
		r.o.Log.Warn("tls: insecure_skip_verify is set: the server's certificate is not checked")
	}
	client, err := phoenix.New(phoenix.Options{
		URL: s.URL, Token: s.Token, Topic: s.Topic,
		JoinParams: map[string]string{"host_id": s.HostID, "agent_version": s.Version, "token": s.Token},
		Heartbeat:  s.Heartbeat, ReplyTimeout: s.ReplyTimeout, TLS: tlsCfg, Reconnect: s.Reconnect,
		Handler: handler{root: ctx.ActorSystem().Root, pid: ctx.Self()}, Log: r.o.Log,
	})
	if err != nil {
		r.last = err.Error()
		r.o.Log.Error("cannot start the server connection", "err", err)
		return
	}
	r.client = client
	client.Start()
}

func (r *reporter) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
}

// arm schedules the next in-flight check (a one-shot timer, re-armed).
func (r *reporter) arm(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	r.timer = time.AfterFunc(r.o.Server.ReplyTimeout/2, func() { root.Send(self, &evCheck{owner: r}) })
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
	for _, it := range r.q.Push(&Item{Kind: s.Kind, CollectedAt: s.CollectedAt, Body: body}) {
		r.forget(it)
		r.drops.Fail(time.Now(), func(uint64) {
			r.o.Log.Warn("queue full: dropping oldest samples", "dropped_total", r.q.Dropped(),
				"queue_depth", r.q.Len(), "queue_bytes", r.q.Bytes())
		})
	}
}

// pump sends queued items in order while joined and the window allows. Until
// the server's ack behaviour is known, only one push is in flight.
func (r *reporter) pump() {
	if !r.joined || r.client == nil {
		return
	}
	window := r.o.Window
	if r.acks == acksUnknown {
		window = 1
	}
	r.q.Each(func(it *Item) bool {
		if r.inflight >= window {
			return false
		}
		if it.Sent() {
			return true
		}
		ref, gen, err := r.client.Push(payload.Event(it.Kind), it.Body)
		if err != nil {
			return false // not joined any more, or the writer is busy: next event
		}
		it.Ref, it.Gen, it.SentAt = ref, gen, time.Now()
		r.byRef[ref] = it
		r.inflight++
		r.pushed++
		return true
	})
}

func (r *reporter) replied(m *evReplied) {
	it := r.byRef[m.ref]
	if it == nil || it.Gen != m.gen {
		return
	}
	if r.acks != acksYes {
		r.o.Log.Info("server acknowledges pushes: delivery is confirmed by reply")
	}
	r.acks = acksYes
	if m.reply.Status == "ok" {
		r.errReplies.OK(nil)
		r.delivered(it)
		return
	}
	reason := string(m.reply.Response)
	if strings.Contains(reason, "unmatched topic") {
		r.forget(it) // the join is gone; the client rejoins and we resend
		return
	}
	r.last = "push " + it.Kind + " refused: " + reason
	r.errReplies.Fail(time.Now(), func(suppressed uint64) {
		r.o.Log.Warn("server replied error to a push; not retried", "event", payload.Event(it.Kind),
			"collected_at", dump.Timestamp(it.CollectedAt), "response", reason, "errors_since_last_log", suppressed)
	})
	r.forget(it)
	r.q.Done(it)
}

func (r *reporter) delivered(it *Item) {
	r.acked++
	r.forget(it)
	r.q.Done(it)
}

// forget takes it off the wire: it is sent again, in order, at the next
// chance (after a lost connection or join, or a push left unanswered).
func (r *reporter) forget(it *Item) {
	if it.Sent() {
		delete(r.byRef, it.Ref)
		r.inflight--
		it.Ref = ""
	}
}

// lost puts every in-flight item back in line: they are resent, in order,
// after the next join.
func (r *reporter) lost(reason string) {
	if r.joined && reason != "" {
		r.o.Log.Warn("channel lost; will rejoin", "reason", reason)
	}
	r.joined = false
	r.q.Each(func(it *Item) bool {
		r.forget(it)
		return true
	})
}

// check settles pushes without a reply: while the ack mode is unknown, a
// first push unanswered for the reply timeout means the server does not
// reply ({:noreply}); in ack mode, a push unanswered for twice the timeout
// is sent again (at least once).
func (r *reporter) check() {
	timeout := r.o.Server.ReplyTimeout
	now := time.Now()
	var late []*Item
	r.q.Each(func(it *Item) bool {
		if it.Sent() && now.Sub(it.SentAt) > timeout {
			late = append(late, it)
		}
		return true
	})
	for _, it := range late {
		switch r.acks {
		case acksUnknown:
			r.acks = acksNo
			r.o.Log.Info("server does not reply to pushes: a push counts as delivered once written")
			r.delivered(it)
		case acksYes:
			if now.Sub(it.SentAt) > 2*timeout {
				r.forget(it)
			}
		}
	}
	r.pump()
}

func tlsConfig(caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // explicit, warned-about opt-out
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return cfg, fmt.Errorf("ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return cfg, fmt.Errorf("ca_file %s: no PEM certificate found", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
