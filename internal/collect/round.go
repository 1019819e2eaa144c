package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Source is one thing a cadence reads in a round.
type Source struct {
	// Name is the key in the sample's data (or errors).
	Name string
	// Timeout bounds the source; past it the round goes on without it.
	Timeout time.Duration
	// Collect returns the source's data. It should honour ctx, but a source
	// that does not cannot hold up the round past Timeout.
	Collect func(ctx context.Context) (any, error)
}

// Counters are a cadence's counters for the agent's self-report. They live
// outside the collector actor so that a restart does not reset them.
type Counters struct {
	Rounds  atomic.Uint64
	Skipped atomic.Uint64
	Panics  atomic.Uint64
}

// Round runs a cadence's sources. It holds the one piece of state that must
// outlive a collector actor's restart: which sources are still running from
// an earlier round, so that a hung source is never started twice.
type Round struct {
	Kind     string
	Counters *Counters
	Log      *slog.Logger

	mu      sync.Mutex
	sources []Source
	// busy is per source name, so a source rebuilt by a config reload is
	// not started again while its hung predecessor still runs.
	busy map[string]*atomic.Bool
}

// NewRound returns the runner for one cadence's sources.
func NewRound(kind string, sources []Source, counters *Counters, log *slog.Logger) *Round {
	if counters == nil {
		counters = &Counters{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Round{Kind: kind, Counters: counters, Log: log, busy: map[string]*atomic.Bool{}}
	r.Reconfigure(sources)
	return r
}

// Reconfigure replaces the sources from the next Run on (a config reload).
// A source that is still running from an earlier round keeps its busy flag
// under its name, so the new one is not started beside it.
func (r *Round) Reconfigure(sources []Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources = sources
	for _, s := range sources {
		if r.busy[s.Name] == nil {
			r.busy[s.Name] = &atomic.Bool{}
		}
	}
}

// Sources returns the sources the next Run runs.
func (r *Round) Sources() []Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources
}

func (r *Round) snapshot() ([]Source, []*atomic.Bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	busy := make([]*atomic.Bool, len(r.sources))
	for i, s := range r.sources {
		busy[i] = r.busy[s.Name]
	}
	return r.sources, busy
}

// Result is one finished round.
type Result struct {
	Sample *messages.Sample
	// Panics lists sources that panicked: a bug, not a data problem.
	Panics []string
	// Errs are the sources' errors as returned (nil for success), for
	// state-change logging.
	Errs map[string]error
}

type result struct {
	index int
	name  string
	data  any
	err   error
	panic bool
}

// Run runs every source at once and waits for each until its own timeout;
// a source that overruns is reported and left behind (its busy flag stays
// set until it returns, so the next round reports it instead of starting it
// again).
//
// Each source runs in one goroutine of its own, which clears the source's
// busy flag before it hands its result over: once Run has the result, the
// next round can start the source again. Run itself waits for the results
// and for the earliest deadline still pending on one timer.
func (r *Round) Run(at time.Time) Result {
	sources, busy := r.snapshot()
	n := len(sources)
	results := make(chan result, n) // never blocks a source, even one left behind
	var out []result
	deadlines := make([]time.Time, n) // zero: not pending
	pending := 0
	for i := range sources {
		src := &sources[i]
		if !busy[i].CompareAndSwap(false, true) {
			out = append(out, result{name: src.Name, err: fmt.Errorf("previous run still in progress; not started again")})
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), src.Timeout)
		deadlines[i], _ = ctx.Deadline()
		pending++
		go func() {
			defer cancel()
			res := r.collect(ctx, i, src)
			busy[i].Store(false)
			results <- res
		}()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for pending > 0 {
		next := expire(sources, deadlines, &out, &pending)
		if pending == 0 {
			break
		}
		timer.Reset(time.Until(next))
		select {
		case res := <-results:
			if !deadlines[res.index].IsZero() { // not already reported as timed out
				deadlines[res.index] = time.Time{}
				pending--
				out = append(out, res)
			}
		case <-timer.C:
		}
	}
	return assemble(r.Kind, at, out)
}

// expire reports every pending source whose deadline has passed as timed
// out, and returns the earliest deadline still pending.
func expire(sources []Source, deadlines []time.Time, out *[]result, pending *int) time.Time {
	now := time.Now()
	var next time.Time
	for i, d := range deadlines {
		switch {
		case d.IsZero():
		case !now.Before(d):
			deadlines[i] = time.Time{}
			*pending--
			*out = append(*out, result{index: i, name: sources[i].Name, err: fmt.Errorf("timed out after %s", sources[i].Timeout)})
		case next.IsZero() || d.Before(next):
			next = d
		}
	}
	return next
}

func assemble(kind string, at time.Time, results []result) Result {
	s := &messages.Sample{Kind: kind, CollectedAt: at, Data: map[string]any{}}
	out := Result{Sample: s, Errs: map[string]error{}}
	for _, res := range results {
		out.Errs[res.name] = res.err
		if errors.Is(res.err, ErrAbsent) {
			continue // not on this host: out of the payload, logged once by the collector
		}
		if res.err == nil {
			s.Data[res.name] = res.data
			continue
		}
		if s.Errors == nil {
			s.Errors = map[string]string{}
		}
		s.Errors[res.name] = res.err.Error()
		if res.panic {
			out.Panics = append(out.Panics, res.name)
		}
	}
	sort.Strings(out.Panics)
	return out
}

// collect runs one source, turning a panic into an error result.
func (r *Round) collect(ctx context.Context, i int, src *Source) (res result) {
	defer func() {
		if p := recover(); p != nil {
			r.Counters.Panics.Add(1)
			r.Log.Error("source panicked", "source", src.Name, "panic", p, "stack", string(debug.Stack()))
			res = result{index: i, name: src.Name, err: fmt.Errorf("internal error: source panicked: %v", p), panic: true}
		}
	}()
	data, err := src.Collect(ctx)
	return result{index: i, name: src.Name, data: data, err: err}
}

// CollectOnce runs one round of sources outside any actor (the `once`
// subcommand) with the same concurrency, timeouts and error entries.
func CollectOnce(kind string, sources []Source, log *slog.Logger) *messages.Sample {
	return NewRound(kind, sources, nil, log).Run(time.Now()).Sample
}
