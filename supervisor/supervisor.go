// Package supervisor builds and runs the agent's process tree:
//
//	root (one-for-one, bounded restart intensity)
//	├── writer     only when the dump is on
//	├── reporter
//	├── collector fast
//	├── collector medium
//	└── collector slow
//
// Children start in that order and stop in reverse; the writer closes its
// files last, after a final flush. A child that exceeds the restart intensity
// is stopped for good, and then the whole tree stops and Done reports an
// error, so the process exits non-zero and systemd restarts it.
package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/proxmox-agent/proxmox-agent/actors/collector"
	"github.com/proxmox-agent/proxmox-agent/actors/reporter"
	"github.com/proxmox-agent/proxmox-agent/actors/writer"
	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/delivery"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Restart intensity defaults: more than MaxRestarts failures of one child
// within Window stops the tree (OTP's intensity/period).
const (
	DefaultMaxRestarts = 5
	DefaultWindow      = time.Minute
)

// SourcesFunc returns the sources of one cadence kind.
type SourcesFunc func(kind string, env *collect.Env) []collect.Source

// Options configure the tree.
type Options struct {
	Config *config.Config
	Log    *slog.Logger
	// Sources builds a cadence's sources; nil means collect.For, the real
	// ones. Tests pass their own.
	Sources SourcesFunc
	// DumpDir overrides Config.Debug.DumpDir when non-empty (--dump-dir).
	DumpDir string
	// Source, for Once, runs that one source and nothing else, even when
	// [sources] turns it off (once --source: the operator asked for it).
	Source      string
	MaxRestarts int
	Window      time.Duration
	// Intervals override the config's cadences by kind (tests, benchmarks).
	Intervals map[string]time.Duration
	// ActorSystem options (tests pass logger and dead-letter settings).
	SystemOptions []actor.ConfigOption
}

// Tree is a running process tree.
type Tree struct {
	// Spool is the on-disk queue (nil: memory only). The tree owns it, so
	// a restarted reporter finds it open.
	Spool  *spool.Lazy
	System *actor.ActorSystem
	Stats  *collect.Stats

	// kids is written once, by the root's first start, before Start
	// returns; everything after reads it. A root that starts a second time
	// (restarted after a panic) does not rewrite it: it stops the tree.
	kids atomic.Pointer[children]
	// rootFailed is set when the root actor itself failed.
	rootFailed atomic.Bool
	// cfg is the running config: replaced whole by Reload, never changed in
	// place, so a reader holds a consistent one.
	cfg    atomic.Pointer[config.Config]
	reload reloadState

	log      *slog.Logger
	sub      *eventstream.Subscription
	done     chan struct{}
	err      error
	stopOnce sync.Once
}

// children are the tree's actors and the wiring they share.
type children struct {
	root       *actor.PID
	writer     *actor.PID // nil when the dump is off
	reporter   *actor.PID
	collectors map[string]*actor.PID
	dump       *dump.Handle
	runner     *runner.Runner
	env        *collect.Env
	dumpDir    string
}

// Reporter is the reporter's PID.
func (t *Tree) Reporter() *actor.PID { return t.kids.Load().reporter }

// Writer is the dump writer's PID, nil when the dump is off.
func (t *Tree) Writer() *actor.PID { return t.kids.Load().writer }

// Dump is the handle the tree's actors dump through (disabled when off).
func (t *Tree) Dump() *dump.Handle { return t.kids.Load().dump }

// Runner is the command runner every source shares.
func (t *Tree) Runner() *runner.Runner { return t.kids.Load().runner }

// Config is the running config: the one Start was given, or the last one
// Reload applied.
func (t *Tree) Config() *config.Config { return t.cfg.Load() }

// Done is closed when the tree has stopped, by Stop or because a child gave
// up; Err then says which.
func (t *Tree) Done() <-chan struct{} { return t.done }

// Err is nil after a requested Stop and the reason after a failure. Valid
// once Done is closed.
func (t *Tree) Err() error {
	<-t.done
	return t.err
}

type beginShutdown struct{}

// Start builds the tree and returns once every child has started.
func Start(o Options) (*Tree, error) {
	if o.MaxRestarts <= 0 {
		o.MaxRestarts = DefaultMaxRestarts
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	cfg := o.Config
	if o.DumpDir != "" {
		// The override becomes the running config's, so a reopen or a
		// reload sees one dump directory, not two.
		c := *cfg
		c.Debug.DumpDir = o.DumpDir
		cfg = &c
		o.Config = cfg
	}
	sys := actor.NewActorSystem(o.SystemOptions...)
	t := &Tree{
		System: sys, log: o.Log, done: make(chan struct{}),
		Stats: collect.NewStats(),
	}
	t.cfg.Store(cfg)
	t.reload.loaded = time.Now()
	if cfg.Spool.Dir != "" {
		t.Spool = &spool.Lazy{Dir: cfg.Spool.Dir, MaxBytes: int64(cfg.Spool.MaxBytes), Retry: spoolRetry, Log: o.Log}
	}
	t.sub = sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*actor.SupervisorEvent); ok {
			if e.Directive == actor.RestartDirective {
				t.Stats.Restarts.Add(1)
			}
			o.Log.Warn("child failed", "child", e.Child.Id, "reason", fmt.Sprint(e.Reason), "directive", e.Directive.String())
		}
	})

	dumpDir := cfg.Debug.DumpDir
	ready := make(chan error, 1)
	strategy := actor.NewOneForOneStrategy(o.MaxRestarts, o.Window, actor.DefaultDecider)
	props := actor.PropsFromProducer(func() actor.Actor {
		return &root{t: t, o: o, dumpDir: dumpDir, ready: ready}
	}, actor.WithSupervisor(strategy))
	if _, err := sys.Root.SpawnNamed(props, "root"); err != nil {
		sys.EventStream.Unsubscribe(t.sub)
		return nil, fmt.Errorf("spawn root: %w", err)
	}
	select {
	case err := <-ready:
		if err != nil {
			sys.Shutdown()
			return nil, err
		}
	case <-time.After(10 * time.Second):
		return nil, errors.New("process tree did not start within 10s")
	}
	return t, nil
}

type root struct {
	t        *Tree
	o        Options
	dumpDir  string
	ready    chan error
	stopping bool
}

func (r *root) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if r.t.kids.Load() != nil {
			// A restarted root: its children were stopped with the old
			// instance. Stop, so the process exits and systemd starts it
			// afresh, rather than rewrite the PIDs others read.
			r.giveUp(errRootRestarted)
			return
		}
		kids, err := r.spawnChildren(ctx)
		// Published before the start is signalled, so a failure right after
		// start (which shuts down from this actor) already sees every PID.
		r.t.kids.Store(kids)
		r.signal(err)
	case *reload:
		r.apply(ctx, m)
		ctx.Respond(m)
	case *beginShutdown:
		r.stopping = true
		ctx.Respond(m)
	case *actor.Restarting:
		// The root itself failed: protoactor stops its children and starts
		// a new instance, which must not respawn them (see Started).
		r.t.rootFailed.Store(true)
	case *actor.Terminated:
		if r.stopping {
			return
		}
		if r.t.rootFailed.Load() {
			r.giveUp(errRootRestarted)
			return
		}
		// A child stopped without Stop being called: the strategy gave up
		// on it. Take the whole tree down so systemd can start afresh.
		r.giveUp(fmt.Errorf("child %s exceeded the restart intensity (%d in %s); stopping", m.Who.Id, r.o.MaxRestarts, r.o.Window))
	}
}

var errRootRestarted = errors.New("the supervisor's root actor restarted; stopping the tree")

// giveUp stops the whole tree for err, once: the process then exits
// non-zero and systemd starts it afresh.
func (r *root) giveUp(err error) {
	r.stopping = true
	r.o.Log.Error("supervisor giving up", "err", err)
	go r.t.shutdown(err)
}

// signal reports the start result once; a restarted root has nobody waiting.
func (r *root) signal(err error) {
	select {
	case r.ready <- err:
	default:
	}
}

func (r *root) spawnChildren(ctx actor.Context) (*children, error) {
	t, cfg, log := r.t, r.o.Config, r.o.Log
	k := &children{root: ctx.Self(), collectors: map[string]*actor.PID{}, dumpDir: r.dumpDir}
	if writer.Configure(r.dumpDir, log) {
		pid, err := ctx.SpawnNamed(writer.Props(r.dumpDir, log), "writer")
		if err != nil {
			return k, fmt.Errorf("spawn writer: %w", err)
		}
		k.writer = pid
		k.dump = writer.NewHandle(ctx.ActorSystem().Root, pid, log)
	}
	env := Wire(cfg, k.dump, t.Stats, log)
	env.ReporterStatus = t.ReporterStatus
	k.env, k.runner = env, env.Runner
	rep, err := ctx.SpawnNamed(reporter.Props(reporter.Options{
		Server: serverOf(cfg),

		Dump: k.dump, Log: log,
		MaxSamples: cfg.Reporter.QueueMaxSamples, MaxBytes: cfg.Reporter.QueueMaxBytes,
		Spool:    t.spoolOpener(),
		SetAside: t.setAside(),
	}), "reporter")
	if err != nil {
		return k, fmt.Errorf("spawn reporter: %w", err)
	}
	k.reporter = rep
	for _, kind := range messages.Kinds {
		pid, err := ctx.SpawnNamed(collector.Props(collector.Options{
			Kind: kind, Interval: r.interval(cfg, kind), Sources: r.sourcesFor()(kind, env),
			Reporter: rep, Counters: t.Stats.Collectors[kind], Health: t.Stats.Health[kind], Log: log,
		}), "collector-"+kind)
		if err != nil {
			return k, fmt.Errorf("spawn collector %s: %w", kind, err)
		}
		k.collectors[kind] = pid
	}
	return k, nil
}

func (r *root) sourcesFor() SourcesFunc {
	if r.o.Sources != nil {
		return r.o.Sources
	}
	return collect.For
}

// interval is a cadence's period: the config's, unless the options
// override it (tests, benchmarks).
func (r *root) interval(cfg *config.Config, kind string) time.Duration {
	if d, ok := r.o.Intervals[kind]; ok {
		return d
	}
	return cfg.Interval(kind)
}

// spoolRetry is how often an unusable spool directory is tried again.
const spoolRetry = time.Minute

func (t *Tree) spoolOpener() delivery.Opener {
	if t.Spool == nil {
		return nil
	}
	return delivery.LazyOpener(t.Spool)
}

// setAside keeps set-aside samples beside the spool; without a spool
// there is no place for them and they are dropped, as before.
func (t *Tree) setAside() func(string, []byte) (string, error) {
	if t.Spool == nil {
		return nil
	}
	return spool.Aside{Dir: t.Spool.Dir, MaxBytes: spool.MaxAsideBytes}.Keep
}

// keptFiles adds to kept (the reporter's, with what was wrong) the
// damaged spool files found beside spool (spool.db.corrupt-*) that it
// does not name yet, at most delivery.MaxKept in all.
func keptFiles(kept []string, spool string) []string {
	found, _ := filepath.Glob(spool + ".corrupt-*")
	for _, f := range found {
		if len(kept) >= delivery.MaxKept {
			break
		}
		if !slices.ContainsFunc(kept, func(k string) bool { return strings.HasPrefix(k, f) }) {
			kept = append(kept, f+" (from an earlier run)")
		}
	}
	return kept
}

// asideStatus describes the set-aside file for status: its path and size
// when it holds samples, or what is wrong with what is in its place (the
// agent would refuse to write there).
func asideStatus(path string) (file string, size int64, problem string) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", 0, ""
	case err != nil:
		return path, 0, err.Error()
	case !st.Mode().IsRegular():
		return path, 0, "not a regular file (" + st.Mode().Type().String() + "): set-aside samples cannot be kept"
	case st.Size() == 0:
		return "", 0, ""
	}
	return path, st.Size(), ""
}

// ReporterStatus asks the reporter for its status.
func (t *Tree) ReporterStatus(timeout time.Duration) (*messages.Status, error) {
	res, err := t.System.Root.RequestFuture(t.Reporter(), &messages.StatusRequest{}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("reporter status: %w", err)
	}
	st, ok := res.(*messages.Status)
	if !ok {
		return nil, fmt.Errorf("reporter status: unexpected answer %T", res)
	}
	return st, nil
}

// Alive asks every child to answer a Ping within timeout and returns an
// error naming the first that did not: a wedged mailbox (a handler stuck on
// a lock or a blocking call) cannot answer. The systemd watchdog is fed only
// while this succeeds.
func (t *Tree) Alive(timeout time.Duration) error {
	select {
	case <-t.done:
		return errors.New("process tree stopped")
	default:
	}
	kids := t.kids.Load()
	pids := []*actor.PID{kids.reporter}
	if kids.writer != nil {
		pids = append(pids, kids.writer)
	}
	for _, k := range messages.Kinds {
		pids = append(pids, kids.collectors[k])
	}
	futures := make([]*actor.Future, len(pids))
	for i, pid := range pids {
		futures[i] = t.System.Root.RequestFuture(pid, &messages.Ping{}, timeout)
	}
	for i, f := range futures {
		if _, err := f.Result(); err != nil {
			return fmt.Errorf("%s did not answer within %s: %w", pids[i].Id, timeout, err)
		}
	}
	return nil
}

// Flush waits until every dump entry sent so far is on disk (no-op when the
// dump is off).
func (t *Tree) Flush(timeout time.Duration) error {
	w := t.Writer()
	if w == nil {
		return nil
	}
	_, err := t.System.Root.RequestFuture(w, &messages.Flush{}, timeout).Result()
	return err
}

// Reopen asks the writer to reopen the dump files (SIGHUP), in the
// running config's dump directory: after a reload that moved it, there.
func (t *Tree) Reopen() {
	if w := t.Writer(); w != nil {
		t.System.Root.Send(w, &messages.Reopen{Dir: t.Config().Debug.DumpDir})
	}
}

// Stop shuts the tree down in order and returns when it has stopped:
// collectors first, then the reporter (closing its connection), then a final
// dump flush, the writer, and the root. Queued dump entries are written:
// poison drains a mailbox, stop would drop it.
func (t *Tree) Stop() {
	t.shutdown(nil)
	<-t.done
}

func (t *Tree) shutdown(cause error) {
	t.stopOnce.Do(func() {
		root := t.System.Root
		kids := t.kids.Load()
		_ = root.RequestFuture(kids.root, &beginShutdown{}, 5*time.Second).Wait()
		for i := len(messages.Kinds) - 1; i >= 0; i-- {
			if pid := kids.collectors[messages.Kinds[i]]; pid != nil {
				_ = root.PoisonFuture(pid).Wait()
			}
		}
		if kids.reporter != nil {
			_ = root.PoisonFuture(kids.reporter).Wait()
		}
		if t.Spool != nil {
			if err := t.Spool.Close(); err != nil {
				t.log.Warn("closing the spool", "err", err)
			}
		}
		if err := t.Flush(5 * time.Second); err != nil {
			t.log.Warn("final dump flush failed", "err", err)
		}
		if kids.writer != nil {
			_ = root.PoisonFuture(kids.writer).Wait()
		}
		_ = root.StopFuture(kids.root).Wait()
		t.System.EventStream.Unsubscribe(t.sub)
		t.System.Shutdown()
		t.err = cause
		close(t.done)
	})
}

// Wire builds the collection side the same way for the daemon and for
// once: the command runner and the /proc reader record into h (nil: dump
// off), and the sources of every cadence come from the returned Env through
// collect.For. A new source or dump hook wired here reaches both.
func Wire(cfg *config.Config, h *dump.Handle, stats *collect.Stats, log *slog.Logger) *collect.Env {
	if stats == nil {
		stats = collect.NewStats()
	}
	return &collect.Env{
		Config: cfg, Dump: h, Stats: stats, Log: log,
		Runner: &runner.Runner{MaxOutput: cfg.Commands.MaxOutputBytes, Dump: h},
	}
}

// StatusDoc assembles what `proxmox-agent status` shows from the reporter,
// the collectors' counters and health, and the config. It asks the
// reporter, so it is called from a goroutine, never from an actor.
func (t *Tree) StatusDoc() status.Doc {
	cfg := t.Config()
	d := status.Doc{Version: cfg.Version, PID: os.Getpid(), StartedAt: t.Stats.Started, Server: cfg.RedactedURL()}
	d.Config.Path = cfg.Path
	d.Config.LoadedAt, d.Config.ReloadError, d.Config.ReloadErrorAt = t.ConfigState()
	st, err := t.ReporterStatus(2 * time.Second)
	if err != nil {
		d.LastError = err.Error()
	} else {
		d.Connected, d.Joined, d.Since, d.LastError = st.Connected, st.Joined, st.Since, st.LastError
		d.Queue = status.Queue{Stats: st.Stats}
	}
	if t.Spool != nil {
		d.Queue.Spool = t.Spool.Path()
		// The file, not the reporter, says what is set aside: it survives
		// restarts until an operator replays and removes it.
		// Damaged files moved aside in earlier runs are still there until
		// an operator salvages and removes them: status names them too.
		d.Queue.Kept = keptFiles(d.Queue.Kept, t.Spool.Path())
		a := spool.Aside{Dir: t.Spool.Dir}
		d.Queue.SetAside, d.Queue.SetAsideBytes, d.Queue.SetAsideProblem = asideStatus(a.Path())
		if st != nil && st.SetAsideError != "" {
			// The agent's own last attempt says more than the file's type:
			// refused (owner, links, directory mode), full, or the disk.
			d.Queue.SetAside, d.Queue.SetAsideProblem = a.Path(), "the last sample set aside could not be kept: "+st.SetAsideError
		}
	}
	for _, kind := range messages.Kinds {
		c, h := t.Stats.Collectors[kind], t.Stats.Health[kind]
		last, took, sources := h.Snapshot()
		d.Cadences = append(d.Cadences, status.Cadence{Kind: kind, Interval: cfg.Interval(kind),
			Rounds: c.Rounds.Load(), Skipped: c.Skipped.Load(), LastRound: last, LastDuration: took})
		for _, s := range sources {
			d.Sources = append(d.Sources, status.Source{Cadence: kind, Name: s.Name, LastOK: s.LastOK,
				LastError: s.LastError, LastErrorAt: s.LastErrorAt})
		}
	}
	return d
}
