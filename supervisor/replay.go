package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/actors/reporter"
	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	Config *config.Config
	Log    *slog.Logger
	// Samples yields the selected samples in order (a second pass over
	// the files; the first counted Total).
	Samples func(yield func(dump.LoggedSample) error) error
	Total   int
	// Progress is called now and then with the samples delivered so far.
	Progress func(delivered int)
	// Stall gives up when nothing is delivered for this long (default 5 min).
	Stall         time.Duration
	SystemOptions []actor.ConfigOption
}

// ReplaySummary is what a replay did.
type ReplaySummary struct {
	Total, Delivered        int
	Refused, Poisoned, Lost uint64
	Pushes                  uint64
	Elapsed                 time.Duration
}

// replayWindow bounds the samples handed to the reporter and not yet
// settled: memory stays flat whatever the files hold.
const replayWindow = 512

// ErrStalled is returned when the server took nothing for ReplayOptions.Stall.
var ErrStalled = errors.New("replay stalled: nothing delivered")

// Replay pushes already-encoded samples (a dump's samples.log) to the
// configured server through a reporter actor of its own: the same client
// and delivery rules as the daemon (acks, reconnects, poison), no spool and
// no dump. It returns when every sample is settled, or on a stall.
func Replay(o ReplayOptions) (ReplaySummary, error) {
	if o.Stall <= 0 {
		o.Stall = 5 * time.Minute
	}
	cfg := o.Config
	sys := actor.NewActorSystem(o.SystemOptions...)
	defer sys.Shutdown()
	pid := sys.Root.Spawn(reporter.Props(reporter.Options{
		Server:     serverOf(cfg),
		Log:        o.Log,
		MaxSamples: replayWindow * 2, MaxBytes: 1 << 30,
	}))
	defer func() { _ = sys.Root.PoisonFuture(pid).Wait() }()
	r := &replayer{sys: sys, pid: pid, o: o, start: time.Now()}
	err := o.Samples(r.send)
	if err == nil {
		err = r.settle(0)
	}
	sum := r.summary()
	return sum, err
}

type replayer struct {
	sys      *actor.ActorSystem
	pid      *actor.PID
	o        ReplayOptions
	start    time.Time
	sent     int
	last     *messages.Status
	progress time.Time // last delivery seen
}

func (r *replayer) send(s dump.LoggedSample) error {
	if err := r.settle(replayWindow - 1); err != nil {
		return err
	}
	r.sys.Root.Send(r.pid, &messages.Encoded{Kind: s.Kind, CollectedAt: s.CollectedAt, Payload: s.Payload})
	r.sent++
	return nil
}

// settle waits until at most open samples are unsettled.
func (r *replayer) settle(open int) error {
	for {
		st, err := r.status()
		if err != nil {
			return err
		}
		if r.sent-settled(st) <= open {
			return nil
		}
		if time.Since(r.progress) > r.o.Stall {
			return fmt.Errorf("%w for %s (%d of %d delivered; last error: %s)", ErrStalled, r.o.Stall, st.Acked, r.o.Total, st.LastError)
		}
		time.Sleep(20 * time.Millisecond) // polling the reporter's status, with a stall deadline
	}
}

func settled(st *messages.Status) int {
	return int(st.Acked + st.Refused + st.Poisoned + st.Dropped)
}

func (r *replayer) status() (*messages.Status, error) {
	res, err := r.sys.Root.RequestFuture(r.pid, &messages.StatusRequest{}, 10*time.Second).Result()
	if err != nil {
		return nil, fmt.Errorf("reporter status: %w", err)
	}
	st := res.(*messages.Status)
	// Progress is anything settled, not only acks: a server that refuses
	// or poisons slowly is still being worked through.
	if r.last == nil || settled(st) != settled(r.last) || r.progress.IsZero() {
		r.progress = time.Now()
		if r.o.Progress != nil {
			r.o.Progress(int(st.Acked))
		}
	}
	r.last = st
	return st, nil
}

func (r *replayer) summary() ReplaySummary {
	s := ReplaySummary{Total: r.o.Total, Elapsed: time.Since(r.start)}
	if st := r.last; st != nil {
		s.Delivered, s.Refused, s.Poisoned, s.Lost, s.Pushes = int(st.Acked), uint64(st.Refused), uint64(st.Poisoned), uint64(st.Dropped), uint64(st.Pushed)
	}
	return s
}

// serverOf is the reporter's view of the config's server, shared by the
// tree and Replay.
func serverOf(cfg *config.Config) reporter.Server {
	return reporter.Server{
		URL: cfg.ServerURL, Token: cfg.Token, Topic: cfg.Topic, HostID: cfg.HostID, Version: cfg.Version,
		Heartbeat:    config.Seconds(cfg.Reporter.HeartbeatSeconds),
		ReplyTimeout: config.Seconds(cfg.Reporter.ReplyTimeoutSeconds),
		ReconnectMax: config.Seconds(cfg.Reporter.ReconnectMaxSeconds),
		CAFile:       cfg.TLS.CAFile, Insecure: cfg.TLS.InsecureSkipVerify,
	}
}
