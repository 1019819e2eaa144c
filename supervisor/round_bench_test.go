package supervisor

// Profiles of the agent's own work per round (issue 12). Each benchmark
// runs the daemon's real wiring (Wire, collect.For, the real runner) on the
// fake commands in testdata/fakebin and the proc root in testdata/proc:
//
//	go test ./supervisor -run '^$' -bench 'Round|Encode|Push|Tree' -benchmem
//	go test ./supervisor -run '^$' -bench 'Tree/noexec' -cpuprofile cpu.out -memprofile mem.out
//	go tool pprof -top -cum supervisor.test cpu.out
//
// "noexec" variants replay each command's output, recorded from one real
// run, instead of starting it: what is left is entirely ours (parse,
// assemble, encode, actors, push). The sink runs in the test process; its
// frames are under internal/sink (pprof -ignore 'internal/sink' drops them).

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/actors/reporter"
	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// benchConfig is the footprint run's config: node pve1, the fake commands,
// testdata/proc, all cadences on url.
func benchConfig(b testing.TB, url string) *config.Config {
	b.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf("server_url = %q\ntoken = \"tok\"\nhost_id = \"bench\"\nnode = \"pve1\"\n", url)),
		func() (string, error) { return "pve1", nil })
	if err != nil {
		b.Fatal(err)
	}
	bin, _ := filepath.Abs("../testdata/fakebin")
	cfg.Commands.Zpool = filepath.Join(bin, "zpool")
	cfg.Commands.Zfs = filepath.Join(bin, "zfs")
	cfg.Commands.Pvesh = filepath.Join(bin, "pvesh")
	cfg.Commands.Smartctl = filepath.Join(bin, "smartctl")
	cfg.Proc.Root, _ = filepath.Abs("../testdata/proc")
	cfg.Sys.Root, _ = filepath.Abs("../testdata/host/pve9/sys") // not the machine's own /sys
	cfg.Version = "bench"
	cfg.Spool.Dir = filepath.Join(b.TempDir(), "spool") // as packaged: spool on
	return cfg
}

// replay runs each command line once for real and then answers it from
// memory: a round without exec.
type replay struct {
	real *runner.Runner
	mu   sync.Mutex
	seen map[string]runner.Result
}

func (r *replay) Run(ctx context.Context, timeout time.Duration, name string, args ...string) runner.Result {
	key := fmt.Sprint(name, args)
	r.mu.Lock()
	res, ok := r.seen[key]
	r.mu.Unlock()
	if ok {
		return res
	}
	res = r.real.Run(ctx, timeout, name, args...)
	r.mu.Lock()
	r.seen[key] = res
	r.mu.Unlock()
	return res
}

// sourcesFor builds the real sources, through the runner when exec is set
// and through a replay of it otherwise.
func sourcesFor(exec bool) SourcesFunc {
	rp := &replay{real: &runner.Runner{}, seen: map[string]runner.Result{}}
	return func(kind string, env *collect.Env) []collect.Source {
		if exec {
			return collect.For(kind, env)
		}
		rp.real = env.Runner
		return collect.Build(kind, env.Config, rp, collect.FS{Root: env.Config.Proc.Root, Dump: env.Dump}, env)
	}
}

func variants() []struct {
	name string
	exec bool
} {
	return []struct {
		name string
		exec bool
	}{{"exec", true}, {"noexec", false}}
}

func joinedStatus(time.Duration) (*messages.Status, error) {
	return &messages.Status{Connected: true, Joined: true}, nil
}

// BenchmarkRound is one round of each cadence and its encode, outside the
// actors: sources, runner (or replay), parse, assemble, payload.Encode.
func BenchmarkRound(b *testing.B) {
	for _, v := range variants() {
		for _, kind := range messages.Kinds {
			b.Run(v.name+"/"+kind, func(b *testing.B) {
				cfg := benchConfig(b, "ws://127.0.0.1:1/socket/websocket")
				if kind == "slow" { // the cluster source reads .members
					cfg.PVE.EtcDir, _ = filepath.Abs("../testdata/pmxcfs/pve9")
				}
				env := Wire(cfg, nil, nil, discard)
				env.ReporterStatus = joinedStatus
				round := collect.NewRound(kind, sourcesFor(v.exec)(kind, env), nil, discard)
				round.Run(time.Now()) // the replay records here
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuNow()
				for i := 0; i < b.N; i++ {
					// Back to back: a source's busy flag and the runner's
					// claim are released before the round has its result.
					s := round.Run(time.Now()).Sample
					if len(s.Errors) > 0 {
						b.Fatalf("round errors: %v", s.Errors)
					}
					if _, err := payload.Encode(s); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkEncode is payload.Encode alone on a real sample of each cadence.
func BenchmarkEncode(b *testing.B) {
	for _, kind := range messages.Kinds {
		b.Run(kind, func(b *testing.B) {
			s := oneSample(b, kind)
			body, _ := payload.Encode(s)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := payload.Encode(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func oneSample(b *testing.B, kind string) *messages.Sample {
	b.Helper()
	cfg := benchConfig(b, "ws://127.0.0.1:1/socket/websocket")
	env := Wire(cfg, nil, nil, discard)
	env.ReporterStatus = joinedStatus
	s := collect.CollectOnce(kind, collect.For(kind, env), discard)
	if len(s.Errors) > 0 {
		b.Fatalf("%s: %v", kind, s.Errors)
	}
	return s
}

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
}

// BenchmarkPush is the reporter's path for one real sample of each cadence:
// mailbox, encode, queue, Phoenix push, the sink's ack, and its reply back
// through the mailbox. One op is one sample recorded by the sink.
func BenchmarkPush(b *testing.B) {
	for _, kind := range messages.Kinds {
		b.Run(kind, func(b *testing.B) {
			s := oneSample(b, kind)
			srv := sinktest.Start(b, "127.0.0.1:0", "tok", sink.Faults{})
			sys := quietSystem()
			defer sys.Shutdown()
			pid := sys.Root.Spawn(reporter.Props(reporter.Options{
				Server: reporter.Server{URL: srv.URL(), Token: "tok", Topic: "agent:bench", HostID: "bench", Version: "bench",
					Heartbeat: 30 * time.Second, ReplyTimeout: 10 * time.Second},
				Log: discard, MaxSamples: 1 << 20, MaxBytes: 1 << 30,
			}))
			defer func() { _ = sys.Root.PoisonFuture(pid).Wait() }()
			// Warm up: connected, joined, ack mode learnt.
			sys.Root.Send(pid, s)
			if _, err := srv.WaitSamples(1, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := 0; i < b.N; i++ {
				sys.Root.Send(pid, s)
			}
			if _, err := srv.WaitSamples(b.N+1, time.Minute); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op(incl.sink)")
		})
	}
}

// BenchmarkTree is the whole daemon in-process: supervisor, three
// collectors ticking every 5 ms, the reporter, the sink. One op is one
// sample at the sink, of any cadence. Rounds that overrun the tick are
// skipped, as in the daemon, so the rate is whatever the machine sustains.
func BenchmarkTree(b *testing.B) {
	for _, v := range variants() {
		b.Run(v.name, func(b *testing.B) {
			srv := sinktest.Start(b, "127.0.0.1:0", "tok", sink.Faults{})
			cfg := benchConfig(b, srv.URL())
			tree, err := Start(Options{
				Config: cfg, Log: discard, Sources: sourcesFor(v.exec),
				Intervals:     map[string]time.Duration{"fast": 5 * time.Millisecond, "medium": 5 * time.Millisecond, "slow": 5 * time.Millisecond},
				SystemOptions: []actor.ConfigOption{actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard })},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer tree.Stop()
			if _, err := srv.WaitSamples(3, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			n0 := len(srv.Samples())
			b.ResetTimer()
			cpu0, child0 := cpuNow(), cpuChildren()
			if _, err := srv.WaitSamples(n0+b.N, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op(incl.sink)")
			b.ReportMetric(float64(cpuChildren()-child0)/1e6/float64(b.N), "children-cpu-ms/op")
		})
	}
}

// cpuNow is this process's user+system CPU so far, ns (threads included).
func cpuNow() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuChildren is the CPU of reaped children so far, ns.
func cpuChildren() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkExec is the parent's side of one command, through the runner:
// what a round pays per command besides parsing its output. "true" is
// /bin/true; "fake-zpool" is the shell fake the footprint run uses.
func BenchmarkExec(b *testing.B) {
	bin, _ := filepath.Abs("../testdata/fakebin")
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"true", []string{"/bin/true"}},
		{"fake-zpool", []string{filepath.Join(bin, "zpool"), "list", "-j", "--json-int"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := &runner.Runner{}
			b.ReportAllocs()
			cpu0, child0 := cpuNow(), cpuChildren()
			for b.Loop() {
				res := r.Run(context.Background(), 10*time.Second, c.argv[0], c.argv[1:]...)
				if res.Err() != nil {
					b.Fatal(res.Err())
				}
			}
			b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(cpuChildren()-child0)/1e6/float64(b.N), "children-cpu-ms/op")
		})
	}
}
