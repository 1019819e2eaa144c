// Package reporter is the reporter actor: it receives samples from the
// collectors, records the exact payload in the dump, keeps it in a bounded
// queue, and delivers it over one Phoenix channel session, replaying in
// order after every reconnect. What is sent when, and what counts as
// delivered, is decided by Delivery; the actor schedules.
package reporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/delivery"
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
	// Reconnect and Rejoin override the backoff schedules, HealthyAfter how
	// long a join must hold before they start over (tests).
	Reconnect    []time.Duration
	Rejoin       []time.Duration
	HealthyAfter time.Duration
	// ReconnectMax is the widest reconnect window (0: phoenix's default).
	ReconnectMax time.Duration
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
	// Spool returns the on-disk spool; nil keeps the queue in memory only.
	// It outlives the actor: a restarted reporter reloads what it holds.
	Spool delivery.Opener
	// SetAside keeps a sample set aside (the server failed on it every
	// time) and returns where; nil drops such samples, counted and logged.
	SetAside delivery.KeepFunc
}

// Props builds the reporter. A restart starts with an empty memory queue
// and reloads the spool's window: only samples held in memory alone (the
// spool unusable, or none configured) are lost with the actor.
func Props(o Options) *actor.Props {
	o.Log = o.Log.With("actor", "reporter")
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.Server.ReplyTimeout <= 0 {
		o.Server.ReplyTimeout = 10 * time.Second
	}
	// The server a reload switched to outlives a restart of the actor: a
	// restarted reporter must not go back to the one it was spawned with.
	server := &atomic.Pointer[Server]{}
	server.Store(&o.Server)
	return actor.PropsFromProducer(func() actor.Actor {
		o := o
		o.Server = *server.Load()
		r := newReporter(o)
		r.server = server
		return r
	})
}

func newReporter(o Options) *reporter {
	q := &delivery.Queue{MaxItems: o.MaxSamples, MaxBytes: o.MaxBytes}
	d := delivery.NewDelivery(q, o.Window, o.Server.ReplyTimeout)
	r := &reporter{o: o, d: d, store: delivery.NewStore(q, d, o.Spool, o.Log)}
	r.keep = r.store.SetAside(o.SetAside)
	// Failures that repeat (a server down for hours, or one that fails
	// every connection) are logged once, then as a reminder per interval
	// with a count of those suppressed, then once when delivery recovers.
	for _, t := range []*statelog.Tracker{&r.drops, &r.dial, &r.errReplies, &r.refusals, &r.lostConn, &r.left, &r.silent} {
		t.Every = remindEvery
	}
	return r
}

// remindEvery is the gap between reminders of a condition that persists.
const remindEvery = 10 * time.Minute

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

// handler forwards a client's events, tagged with the client they came
// from: after a reload replaced the client, the old one's late events
// (its generations count from 1 like the new one's) are not taken for the
// new connection's.
type handler struct {
	root   *actor.RootContext
	pid    *actor.PID
	client uint64
}

// clientEvent is one event of the client numbered client.
type clientEvent struct {
	client uint64
	ev     any
}

func (h handler) send(ev any)                    { h.root.Send(h.pid, &clientEvent{h.client, ev}) }
func (h handler) Connected(g uint64)             { h.send(&evConnected{g}) }
func (h handler) Joined(g uint64)                { h.send(&evJoined{g}) }
func (h handler) JoinRefused(g uint64, r string) { h.send(&evJoinRefused{g, r}) }
func (h handler) Left(g uint64, r string)        { h.send(&evLeft{g, r}) }
func (h handler) Disconnected(g uint64, e error) { h.send(&evDisconnected{g, e}) }
func (h handler) Written(g uint64, ref string)   { h.send(&evWritten{g, ref}) }
func (h handler) Replied(g uint64, ref string, r phoenix.Reply) {
	h.send(&evReplied{g, ref, r})
}

// Reconfigure gives the reporter new server settings (a config reload).
// When they differ from the running ones, the connection is closed and a
// new one started: what was in flight goes back in line, nothing queued is
// lost.
type Reconfigure struct {
	Server Server
}

type reporter struct {
	o        Options
	d        *delivery.Delivery
	store    *delivery.Store
	client   *phoenix.Client
	clientNo uint64                  // numbers the clients this instance started
	server   *atomic.Pointer[Server] // the current server, shared with the next instance
	since    time.Time               // when connected or joined last changed
	timer    *time.Timer

	connected, joined bool
	last              string
	// everJoined: the first connect and join are logged at Info, later ones
	// at Debug, since a flapping server would repeat them every few seconds;
	// the recovery line says when delivery works again.
	everJoined bool
	ackLogged  bool
	keep       func(*delivery.Item) error // sets a poisoned sample aside (Store.SetAside)

	drops, dial, errReplies, refusals statelog.Tracker
	// lostConn: connections lost; left: channels lost; silent: the server
	// stopped replying to pushes.
	lostConn, left, silent statelog.Tracker
}

// Receive dispatches: lifecycle and requests here, connection events in
// onClient.
func (r *reporter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.start(ctx)
	case *actor.Restarting, *actor.Stopping:
		r.stop()
	case *messages.Sample:
		r.enqueue(m)
		r.pump()
	case *messages.Encoded:
		r.add(&delivery.Item{Kind: m.Kind, CollectedAt: m.CollectedAt, Body: m.Payload})
		r.pump()
	case *messages.Ping:
		ctx.Respond(&messages.Pong{})
	case *messages.StatusRequest:
		ctx.Respond(r.status())
	case *evCheck:
		r.onCheck(ctx, m)
	case *Reconfigure:
		r.reconfigure(ctx, m.Server)
	case *clientEvent:
		if m.client == r.clientNo {
			r.onClient(m.ev)
		}
	}
}

// onClient handles an event forwarded by the connection's handler.
func (r *reporter) onClient(m any) {
	switch m := m.(type) {
	case *evConnected:
		r.onConnected()
	case *evJoined:
		r.onJoined()
	case *evJoinRefused:
		r.onJoinRefused(m.reason)
	case *evLeft:
		r.lost("channel left: " + m.reason)
	case *evDisconnected:
		r.onDisconnected(m.err)
	case *evWritten:
		if r.d.Written(m.ref, m.gen) {
			r.healthy()
			r.pump()
		}
	case *evReplied:
		r.replied(m)
		r.pump()
	}
}

func (r *reporter) status() *messages.Status {
	return &messages.Status{Connected: r.connected, Joined: r.joined, Since: r.since,
		Stats: r.store.Stats(), LastError: r.last, SetAsideError: r.store.AsideError()}
}

// onCheck runs the in-flight check and re-arms it; a check armed by the
// instance before a restart is not ours and is dropped.
func (r *reporter) onCheck(ctx actor.Context, m *evCheck) {
	if m.owner != r {
		return
	}
	r.check()
	r.arm(ctx)
}

func (r *reporter) onConnected() {
	r.connected, r.since = true, time.Now()
	r.o.Log.Log(context.Background(), r.routine(), "connected", "server", config.RedactURL(r.o.Server.URL))
}

func (r *reporter) onJoined() {
	r.joined, r.since = true, time.Now()
	r.o.Log.Log(context.Background(), r.routine(), "joined", "topic", r.o.Server.Topic, "queued", r.store.Stats().Depth)
	r.everJoined = true
	r.pump()
}

// routine is the level of a connect or join: Info the first time only.
func (r *reporter) routine() slog.Level {
	if r.everJoined {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// healthy is a push delivered: whatever was failing has recovered. A
// connect or join alone does not count, since a broken server accepts both
// and fails right after; logging recovery on those would log every cycle.
func (r *reporter) healthy() {
	var failures uint64
	count := func(n uint64) { failures += n }
	for _, t := range []*statelog.Tracker{&r.dial, &r.refusals, &r.lostConn, &r.left} {
		t.OK(count)
	}
	if failures > 0 {
		r.o.Log.Info("delivering again", "failures", failures)
	}
}

func (r *reporter) onJoinRefused(reason string) {
	r.last = "join refused: " + reason
	r.refusals.Fail(time.Now(), func(suppressed uint64) {
		r.o.Log.Warn("join refused; will rejoin with backoff", "topic", r.o.Server.Topic, "reason", reason,
			"refusals_since_last_log", suppressed)
	})
}

func (r *reporter) onDisconnected(err error) {
	wasConnected := r.connected
	if wasConnected {
		r.since = time.Now()
	}
	r.connected = false
	r.lost("")
	if err != nil {
		r.last = err.Error()
	}
	if wasConnected {
		r.lostConn.Fail(time.Now(), func(suppressed uint64) {
			r.o.Log.Warn("connection lost; reconnecting with backoff", "err", err, "losses_since_last_log", suppressed)
		})
		return
	}
	r.dialFailed(err)
}

// dialFailed logs a failed connection attempt, rate-limited because the
// client retries forever; a 403 gets its own message since only the
// operator can fix the token.
func (r *reporter) dialFailed(err error) {
	r.dial.Fail(time.Now(), func(suppressed uint64) {
		var de *phoenix.DialError
		if errors.As(err, &de) && de.StatusCode == 403 {
			r.o.Log.Error("server refused the connection (HTTP 403): check token", "server", config.RedactURL(r.o.Server.URL), "attempts_since_last_log", suppressed)
			return
		}
		r.o.Log.Warn("cannot connect; retrying with backoff", "server", config.RedactURL(r.o.Server.URL), "err", err, "attempts_since_last_log", suppressed)
	})
}

func (r *reporter) start(ctx actor.Context) {
	r.arm(ctx)
	r.connect(ctx)
}

// sameServer reports whether a and b connect the same way; the reconnect
// schedules are not settings a reload changes.
func sameServer(a, b Server) bool {
	return a.URL == b.URL && a.Token == b.Token && a.Topic == b.Topic && a.HostID == b.HostID &&
		a.Version == b.Version && a.Heartbeat == b.Heartbeat && a.ReplyTimeout == b.ReplyTimeout &&
		a.CAFile == b.CAFile && a.Insecure == b.Insecure && a.ReconnectMax == b.ReconnectMax
}

// reconfigure applies new server settings: an unchanged server keeps its
// connection; a changed one is reconnected, what was in flight going back
// in line as after any lost connection.
func (r *reporter) reconfigure(ctx actor.Context, s Server) {
	if s.ReplyTimeout <= 0 {
		s.ReplyTimeout = r.o.Server.ReplyTimeout
	}
	s.Reconnect, s.Rejoin, s.HealthyAfter = r.o.Server.Reconnect, r.o.Server.Rejoin, r.o.Server.HealthyAfter
	if sameServer(s, r.o.Server) {
		return
	}
	r.o.Log.Info("server settings changed by a reload; reconnecting", "server", config.RedactURL(s.URL))
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
	r.connected = false
	if r.joined {
		r.since = time.Now()
	}
	r.joined = false
	// Closed by us: what was in flight goes back in line uncharged, so
	// reloads never add up to a good sample set aside as poison.
	r.d.Requeue()
	r.o.Server = s
	if r.server != nil {
		r.server.Store(&s)
	}
	r.d.SetReplyTimeout(s.ReplyTimeout)
	r.connect(ctx)
}

// connect starts a client for the configured server, numbered so that the
// events of a client replaced by a reload are ignored.
func (r *reporter) connect(ctx actor.Context) {
	r.clientNo++
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
		Rejoin: s.Rejoin, HealthyAfter: s.HealthyAfter, Backoff: phoenix.Backoff{Max: s.ReconnectMax},
		Handler: handler{root: ctx.ActorSystem().Root, pid: ctx.Self(), client: r.clientNo}, Log: r.o.Log,
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
	// Spooled first, dumped second: a sample in samples.log is one the
	// spool already holds, even if the agent is killed in between.
	r.add(&delivery.Item{Kind: s.Kind, CollectedAt: s.CollectedAt, Body: body})
	if r.o.Dump.Enabled() {
		r.o.Dump.Sample(s.Kind, time.Now(), payload.Indent(body))
	}
}

// add spools and queues it; overflow of the memory queue drops the oldest
// samples held in memory only.
func (r *reporter) add(it *delivery.Item) {
	for range r.store.Add(it, time.Now()) {
		r.drops.Fail(time.Now(), func(uint64) {
			st := r.d.Stats()
			r.o.Log.Warn("queue full: dropping oldest samples", "dropped_total", st.Dropped,
				"queue_depth", st.Depth, "queue_bytes", st.Bytes)
		})
	}
}

// pump sends what Delivery lets out, in order, while joined, after
// loading the oldest spooled samples into the window's free room.
func (r *reporter) pump() {
	r.store.Refill(time.Now())
	if !r.joined || r.client == nil {
		return
	}
	for it := r.d.Next(); it != nil; it = r.d.Next() {
		ref, gen, err := r.client.Push(payload.Event(it.Kind), it.Body)
		if errors.Is(err, phoenix.ErrNotJoined) || errors.Is(err, phoenix.ErrBusy) {
			return // not joined any more, or the writer is busy: next event
		}
		if err != nil {
			r.last = err.Error()
			r.o.Log.Error("sample dropped: it cannot be sent", "kind", it.Kind,
				"collected_at", dump.Timestamp(it.CollectedAt), "err", err)
			r.d.Unsendable(it)
			continue
		}
		r.d.Sent(it, ref, gen, time.Now())
	}
}

func (r *reporter) replied(m *evReplied) {
	it, outcome, learnt := r.d.Replied(m.ref, m.gen, m.reply.Status, string(m.reply.Response))
	if learnt {
		// r.silent stays failing: a server that replies late flips between
		// the modes, and each flip must not log anew.
		if !r.ackLogged {
			r.ackLogged = true
			r.o.Log.Info("server acknowledges pushes: delivery is confirmed by reply")
		}
	}
	switch outcome {
	case delivery.Delivered:
		r.errReplies.OK(nil)
		r.healthy()
	case delivery.Refused:
		reason := phoenix.Quote(m.reply.Response)
		r.last = "push " + it.Kind + " refused: " + reason
		r.errReplies.Fail(time.Now(), func(suppressed uint64) {
			r.o.Log.Warn("server replied error to a push; not retried", "event", payload.Event(it.Kind),
				"collected_at", dump.Timestamp(it.CollectedAt), "response", reason, "errors_since_last_log", suppressed)
		})
	}
}

// lost puts every in-flight item back in line: they are resent, in order,
// after the next join.
func (r *reporter) lost(reason string) {
	if r.joined && reason != "" {
		r.left.Fail(time.Now(), func(suppressed uint64) {
			r.o.Log.Warn("channel lost; will rejoin with backoff", "reason", reason, "losses_since_last_log", suppressed)
		})
	}
	if r.joined {
		r.since = time.Now()
	}
	r.joined = false
	r.d.Lost(r.keep)
}

// check settles pushes left without a reply, then sends what that let out.
func (r *reporter) check() {
	if r.d.Expire(time.Now()) {
		r.silent.Fail(time.Now(), func(suppressed uint64) {
			r.o.Log.Info("server does not reply to pushes: a push counts as delivered once written",
				"times_since_last_log", suppressed)
		})
		r.healthy()
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
