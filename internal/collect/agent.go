package collect

import (
	"context"
	"runtime"
	"time"
)

// Agent is the agent's self-report, in every fast sample.
type Agent struct {
	Env     *Env
	Version string
	// Off lists the sources [sources] switches off, so the server can tell
	// a source that is off from one that vanished.
	Off []string
}

// AgentData is the agent payload.
type AgentData struct {
	Version       string            `json:"version"`
	GoVersion     string            `json:"go_version"`
	UptimeSeconds uint64            `json:"uptime_seconds"`
	Restarts      uint64            `json:"restarts"`
	SkippedTicks  map[string]uint64 `json:"skipped_ticks"`
	SourcePanics  uint64            `json:"source_panics"`
	StuckCommands int               `json:"stuck_commands"`
	StuckReads    int               `json:"stuck_reads"`             // /etc/pve reads still blocked
	GuestsSource  string            `json:"guests_source,omitempty"` // pmxcfs or pvesh: the last guests sample's path
	Connected     bool              `json:"connected"`
	Joined        bool              `json:"joined"`
	QueueDepth    int64             `json:"queue_depth"`
	QueueBytes    int64             `json:"queue_bytes"`
	Dropped       int64             `json:"dropped"`
	Poisoned      int64             `json:"poisoned"`
	DumpDropped   uint64            `json:"dump_dropped"` // dump entries dropped while the writer was behind
	LastError     string            `json:"last_error,omitempty"`
	SourcesOff    []string          `json:"sources_off"`
}

// Collect reads the supervisor's counters and asks the reporter for its state.
func (a *Agent) Collect(context.Context) (any, error) {
	env := a.Env
	d := AgentData{Version: a.Version, GoVersion: runtime.Version(), SkippedTicks: map[string]uint64{}, SourcesOff: a.Off}
	if d.SourcesOff == nil {
		d.SourcesOff = []string{}
	}
	if env == nil || env.Stats == nil {
		return d, nil
	}
	d.UptimeSeconds = uint64(time.Since(env.Stats.Started).Seconds())
	d.Restarts = env.Stats.Restarts.Load()
	for kind, c := range env.Stats.Collectors {
		d.SkippedTicks[kind] = c.Skipped.Load()
		d.SourcePanics += c.Panics.Load()
	}
	if env.Runner != nil {
		d.StuckCommands = env.Runner.Stuck()
	}
	d.StuckReads = env.Files().Stuck()
	d.DumpDropped = env.Dump.Dropped()
	if p := env.Stats.GuestsSource.Load(); p != nil {
		d.GuestsSource = *p
	}
	if env.ReporterStatus != nil {
		st, err := env.ReporterStatus(2 * time.Second)
		if err != nil {
			d.LastError = err.Error()
			return d, nil
		}
		d.Connected, d.Joined = st.Connected, st.Joined
		d.QueueDepth, d.QueueBytes, d.Dropped, d.Poisoned = st.Depth, st.Bytes, st.Dropped, st.Poisoned
		if st.LastError != "" {
			d.LastError = st.LastError
		}
	}
	return d, nil
}
