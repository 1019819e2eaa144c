package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/actors/writer"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Once collects every cadence once with the daemon's wiring (Wire) and no
// server, for the once subcommand. When the dump is on, commands and the
// encoded samples are written to it as the daemon would, and flushed before
// Once returns. It returns each cadence's encoded payload; a cadence whose
// sample cannot be encoded is missing from the map and named in the error.
//
// With o.Source set only that source runs, and the map holds only its
// cadence, whose payload carries only that source.
func Once(o Options) (map[string]json.RawMessage, error) {
	cfg, log := o.Config, o.Log
	kinds := messages.Kinds
	if o.Source != "" {
		spec, ok := collect.Lookup(o.Source)
		if !ok {
			return nil, collect.CheckSourceName(o.Source)
		}
		only := *cfg
		only.Sources = collect.Only(o.Source)
		cfg, kinds = &only, []string{spec.Cadence}
	}
	dumpDir := cfg.Debug.DumpDir
	if o.DumpDir != "" {
		dumpDir = o.DumpDir
	}
	var (
		h    *dump.Handle
		sys  *actor.ActorSystem
		wpid *actor.PID
	)
	if writer.Configure(dumpDir, log) {
		sys = actor.NewActorSystem(o.SystemOptions...)
		wpid = sys.Root.Spawn(writer.Props(dumpDir, log))
		h = writer.NewHandle(sys.Root, wpid, log)
	}
	env := Wire(cfg, h, nil, log)
	env.ReporterStatus = func(time.Duration) (*messages.Status, error) {
		return nil, errors.New("not connected: once does not report")
	}
	sourcesFor := o.Sources
	if sourcesFor == nil {
		sourcesFor = collect.For
	}
	out := map[string]json.RawMessage{}
	var errs []error
	for _, kind := range kinds {
		s := collect.CollectOnce(kind, sourcesFor(kind, env), log)
		body, err := payload.Encode(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("encode %s sample: %w", kind, err))
			continue
		}
		h.Sample(kind, time.Now(), payload.Indent(body))
		out[kind] = body
	}
	if sys != nil {
		if _, err := sys.Root.RequestFuture(wpid, &messages.Flush{}, 10*time.Second).Result(); err != nil {
			log.Warn("dump flush failed", "err", err)
		}
		_ = sys.Root.PoisonFuture(wpid).Wait()
		sys.Shutdown()
	}
	return out, errors.Join(errs...)
}
