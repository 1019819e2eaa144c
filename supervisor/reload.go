package supervisor

import (
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/actors/collector"
	"github.com/proxmox-agent/proxmox-agent/actors/reporter"
	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// reloadState is what status shows of the config: when the running one was
// loaded, and the last reload that failed (cleared by one that works).
type reloadState struct {
	mu       sync.Mutex
	loaded   time.Time
	err      string
	failedAt time.Time
}

// ReloadFailed records a reload whose config could not be used: the agent
// goes on with the running one, and status says why.
func (t *Tree) ReloadFailed(err error) {
	t.reload.mu.Lock()
	defer t.reload.mu.Unlock()
	t.reload.err, t.reload.failedAt = err.Error(), time.Now()
}

// ConfigState returns when the running config was loaded and the last
// failed reload's error and time ("" and zero when the last one worked).
func (t *Tree) ConfigState() (loaded time.Time, lastErr string, failedAt time.Time) {
	t.reload.mu.Lock()
	defer t.reload.mu.Unlock()
	return t.reload.loaded, t.reload.err, t.reload.failedAt
}

// reload asks the root to apply a config; the root answers when every
// child has been told.
type reload struct {
	cfg *config.Config
	// sources: the collection settings changed, so the sources are
	// rebuilt (their rate state starts over).
	sources bool
}

// Reload applies a new, valid config to the running tree: the intervals,
// the sources and their timeouts from each cadence's next round, the server
// settings (a changed URL or token reconnects; nothing queued or spooled
// is lost) and the dump directory. It returns the settings that changed
// but apply only after a restart, by key.
func (t *Tree) Reload(cfg *config.Config, timeout time.Duration) ([]string, error) {
	old := t.cfg.Load()
	m := &reload{cfg: cfg, sources: !SameCollection(old, cfg)}
	if _, err := t.System.Root.RequestFuture(t.kids.Load().root, m, timeout).Result(); err != nil {
		return nil, fmt.Errorf("reload: the supervisor did not answer: %w", err)
	}
	t.cfg.Store(cfg)
	t.reload.mu.Lock()
	t.reload.loaded, t.reload.err, t.reload.failedAt = time.Now(), "", time.Time{}
	t.reload.mu.Unlock()
	return NeedRestart(old, cfg, t.kids.Load().dumpDir != ""), nil
}

// apply tells each child its part of a new config. It runs on the root's
// goroutine, the only one that builds sources, so the Env it updates is
// never read by a builder at the same time.
func (r *root) apply(ctx actor.Context, m *reload) {
	kids, cfg := r.t.kids.Load(), m.cfg
	kids.env.Config = cfg
	if m.sources {
		for _, kind := range messages.Kinds {
			ctx.Send(kids.collectors[kind], &collector.Reconfigure{Interval: r.interval(cfg, kind), Sources: r.sourcesFor()(kind, kids.env)})
		}
	}
	ctx.Send(kids.reporter, &reporter.Reconfigure{Server: serverOf(cfg)})
}

// SameCollection reports whether a and b collect the same way: every
// setting but the server, the delivery, the dump and the logs is equal. A
// reload that changes none of them (logrotate's daily SIGHUP) keeps the
// sources, and with them the previous round's counters that rates need.
func SameCollection(a, b *config.Config) bool {
	return reflect.DeepEqual(collection(a), collection(b))
}

// collection is c without the settings the sources do not read.
func collection(c *config.Config) config.Config {
	x := *c
	x.ServerURL, x.Token, x.TokenFile, x.TokenSource, x.Topic, x.HostID = "", "", "", "", "", ""
	x.Path, x.Version, x.Warnings = "", "", nil
	x.Debug, x.Reporter, x.Spool, x.Status, x.TLS, x.Log = config.Debug{}, config.Reporter{}, config.Spool{}, config.Status{}, config.TLS{}, config.Log{}
	return x
}

// NeedRestart lists the settings that differ between old and cfg but take
// effect only when the agent restarts. dumpOn says whether the running
// agent has a dump writer: a changed directory is applied, turning the
// dump on or off is not.
func NeedRestart(old, cfg *config.Config, dumpOn bool) []string {
	var keys []string
	add := func(changed bool, key string) {
		if changed {
			keys = append(keys, key)
		}
	}
	add(old.Spool.Dir != cfg.Spool.Dir, "spool.dir")
	add(old.Spool.MaxBytes != cfg.Spool.MaxBytes, "spool.max_bytes")
	add(old.Status.Socket != cfg.Status.Socket, "status.socket")
	add(old.Reporter.QueueMaxSamples != cfg.Reporter.QueueMaxSamples, "reporter.queue_max_samples")
	add(old.Reporter.QueueMaxBytes != cfg.Reporter.QueueMaxBytes, "reporter.queue_max_bytes")
	add(old.Commands.MaxOutputBytes != cfg.Commands.MaxOutputBytes, "commands.max_output_bytes")
	add(old.Log.Format != cfg.Log.Format, "log.format")
	add(dumpOn != (cfg.Debug.DumpDir != ""), "debug.dump_dir")
	return keys
}
