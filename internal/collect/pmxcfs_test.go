package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// guestsOf returns the guests value of a medium payload, indented.
func guestsOf(t *testing.T, payload []byte) []byte {
	t.Helper()
	var p struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors map[string]string          `json:"errors"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Data["guests"] == nil {
		t.Fatalf("no guests: %v", p.Errors)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, p.Data["guests"], "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func pveshCalls(f *fakeRun) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "pvesh ") {
			out = append(out, c)
		}
	}
	return out
}

// The file path and the pvesh path give the same guests payload, byte for
// byte, for the same cluster state: the fixture tree and the
// /cluster/resources entries for it. PVE 9 and PVE 8 formats; the PVE 8
// tree also has a guest without a .rrd line.
func TestGuestsBothPathsGolden(t *testing.T) {
	for _, c := range []struct{ name, tree, resources string }{
		{"pve9", pve9Tree, pve9Guest}, {"pve8", pve8Tree, pve8Guest},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.PVE.EtcDir = c.tree
			files := &fakeRun{resources: c.resources}
			fromFiles := guestsOf(t, collectWith(t, "medium", cfg, files))
			if calls := pveshCalls(files); len(calls) != 0 {
				t.Errorf("the file path ran pvesh: %v", calls)
			}
			cfg.PVE.EtcDir = noPmxcfs
			pvesh := &fakeRun{resources: c.resources}
			fromPvesh := guestsOf(t, collectWith(t, "medium", cfg, pvesh))
			if calls := pveshCalls(pvesh); len(calls) != 1 {
				t.Errorf("pvesh path calls: %v", calls)
			}
			if a, b := fileOnlyNulled(t, fromFiles), fileOnlyNulled(t, fromPvesh); !bytes.Equal(a, b) || !bytes.Equal(b, canonical(t, fromPvesh)) {
				t.Errorf("paths differ:\nfiles:\n%s\npvesh:\n%s", a, fromPvesh)
			}
			golden(t, "guests-"+c.name+".json", fromFiles)
		})
	}
}

// fileOnly are the guest fields only the pmxcfs path knows: pvesh's
// /cluster/resources has no onboot and no snapshots.
var fileOnly = []string{"onboot", "snapshots", "oldest_snapshot_seconds"}

// fileOnlyNulled is a guests payload with the fileOnly fields set to null,
// in a canonical form (keys sorted), to compare the two paths.
func fileOnlyNulled(t *testing.T, guests []byte) []byte {
	t.Helper()
	var gs []map[string]any
	if err := json.Unmarshal(guests, &gs); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		for _, k := range fileOnly {
			g[k] = nil
		}
	}
	b, _ := json.MarshalIndent(gs, "", "  ")
	return b
}

// canonical is a guests payload with its keys sorted.
func canonical(t *testing.T, guests []byte) []byte {
	t.Helper()
	var gs []map[string]any
	if err := json.Unmarshal(guests, &gs); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(gs, "", "  ")
	return b
}

// writePvesh writes a pvesh that appends each call to log and prints
// resources: a real child process, run by the real runner.
func writePvesh(t *testing.T, resources string) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(resources)
	if err != nil {
		t.Fatal(err)
	}
	bin, log = filepath.Join(dir, "pvesh"), filepath.Join(dir, "calls.log")
	script := "#!/bin/sh\necho \"$*\" >> '" + log + "'\ncat '" + abs + "'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

// A medium round on a host with readable pmxcfs files runs no pvesh at
// all; with the files absent it runs pvesh once and reports the same
// guests. The self-report names the path of the last guests sample.
func TestMediumRoundPvesh(t *testing.T) {
	bin, calls := writePvesh(t, filepath.Join(data, pve9Guest))
	run := func(etcDir string) (guests []byte, source string, pveshRuns []string) {
		cfg := testConfig(t)
		cfg.Commands.Pvesh, cfg.PVE.EtcDir, cfg.Proc.Root = bin, etcDir, "../../testdata/proc"
		cfg.Sources = config.Sources{"zfs_datasets": false} // its zfs is not the point here
		os.Remove(calls)
		env := &Env{Config: cfg, Runner: &runner.Runner{}, Stats: NewStats()}
		s := CollectOnce("medium", For("medium", env), slog.New(slog.DiscardHandler))
		s.CollectedAt = fixedAt
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		self, _ := (&Agent{Env: env}).Collect(context.Background())
		log, _ := os.ReadFile(calls)
		return guestsOf(t, b), self.(AgentData).GuestsSource, strings.Fields(strings.ReplaceAll(string(log), "\n", "|"))
	}
	filesGuests, filesSource, filesRuns := run(pve9Tree)
	if len(filesRuns) != 0 || filesSource != GuestsFromPmxcfs {
		t.Errorf("with pmxcfs: pvesh ran %v, guests_source %q", filesRuns, filesSource)
	}
	pveshGuests, pveshSource, pveshRuns := run(t.TempDir()) // an empty mount point: pmxcfs not running
	if strings.Join(pveshRuns, " ") != "get /cluster/resources --output-format json|" || pveshSource != GuestsFromPvesh {
		t.Errorf("without pmxcfs: pvesh ran %q, guests_source %q", pveshRuns, pveshSource)
	}
	if a, b := fileOnlyNulled(t, filesGuests), fileOnlyNulled(t, pveshGuests); !bytes.Equal(a, b) {
		t.Errorf("paths differ:\n%s\n%s", a, b)
	}
}

// The switch to pvesh and back is logged once each, not every round.
func TestGuestsLogTheSwitchOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	dir := t.TempDir()
	g := &Guests{Run: &fakeRun{resources: pve9Guest}, Pvesh: "pvesh", Node: "pve1", Timeout: time.Second,
		EtcDir: dir, Files: &SlowFS{}, ReadTimeout: time.Second, Log: log}
	for i := 0; i < 3; i++ {
		if _, err := g.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(dir, os.DirFS(pve9Tree)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := g.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if strings.Count(out, "using pvesh") != 1 || strings.Count(out, "readable again") != 1 || strings.Count(out, "\n") != 2 {
		t.Errorf("log:\n%s", out)
	}
	if !strings.Contains(out, "level=INFO msg=\"guests: no cluster filesystem") {
		t.Errorf("an absent pmxcfs is not a warning:\n%s", out)
	}
}

// A broken file (present, unparseable) is a failure, logged as a warning;
// when pvesh fails too the error names both.
func TestGuestsBrokenFilesFallBack(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(pve9Tree)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ".rrd"), []byte("garbage without a line"), 0o644)
	var buf bytes.Buffer
	g := &Guests{Run: &runner.Runner{}, Pvesh: "/nonexistent/pvesh", Node: "pve1", Timeout: time.Second,
		EtcDir: dir, Files: &SlowFS{}, ReadTimeout: time.Second, Log: slog.New(slog.NewTextHandler(&buf, nil))}
	_, err := g.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ".rrd")+": .rrd: no status line; pvesh fallback: /nonexistent/pvesh not found") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("log:\n%s", buf.String())
	}
}

// recorder collects dump entries.
type recorder struct {
	mu   sync.Mutex
	recs []*dump.CommandRecord
}

func (r *recorder) handle() *dump.Handle {
	return dump.NewHandle(func(m any) {
		if c, ok := m.(*dump.CommandRecord); ok {
			r.mu.Lock()
			r.recs = append(r.recs, c)
			r.mu.Unlock()
		}
	})
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.recs {
		out = append(out, strings.Join(append([]string{c.Command}, c.Args...), " ")+" "+c.Outcome.String())
	}
	return out
}

// A read that blocks forever (a FIFO nobody writes: open(2) itself blocks,
// as a read of a stuck FUSE file does): the round ends on time with an
// error entry, the next round does not start a second reader, and the
// dump shows both reads like /proc reads.
func TestStuckReadRoundGoesOnTime(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, ".vmlist")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.PVE.EtcDir, cfg.Commands.Pvesh, cfg.Timeouts.PmxcfsSeconds = dir, "/nonexistent/pvesh", 1
	cfg.Sources = config.Sources{"zfs_datasets": false}
	rec := &recorder{}
	env := &Env{Config: cfg, Dump: rec.handle(), Stats: NewStats()}
	round := NewRound("medium", Build("medium", cfg, &runner.Runner{}, FS{Root: "../../testdata/proc"}, env), nil, nil)
	t.Cleanup(func() {
		// Unblock the reader: a writer's open completes the reader's, then EOF.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for env.Files().Outstanding() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling for the reader to exit, not synchronising the test
		}
	})

	start := time.Now()
	r1 := round.Run(start)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("first round took %s with a 1s read timeout", took)
	}
	want := "read " + fifo + ": timed out after 1s; pvesh fallback: /nonexistent/pvesh not found"
	if e := r1.Sample.Errors["guests"]; e != want {
		t.Errorf("first round: %q, want %q", e, want)
	}
	// The round clears a source's busy flag just after handing over its
	// result; the next tick is minutes away in the daemon, here it is not.
	for round.busy["guests"].Load() {
		runtime.Gosched()
	}
	start = time.Now()
	r2 := round.Run(start)
	if took := time.Since(start); took > time.Second/2 {
		t.Errorf("second round waited %s for a read known to be stuck", took)
	}
	if e := r2.Sample.Errors["guests"]; !strings.Contains(e, "read "+fifo+": previous read still stuck (started ") {
		t.Errorf("second round: %q", e)
	}
	if n, m := env.Files().Stuck(), env.Files().Outstanding(); n != 1 || m != 1 {
		t.Errorf("stuck readers %d, outstanding %d; want 1", n, m)
	}
	self, _ := (&Agent{Env: env}).Collect(context.Background())
	if self.(AgentData).StuckReads != 1 {
		t.Errorf("self-report stuck_reads %d", self.(AgentData).StuckReads)
	}
	if got := strings.Join(rec.lines(), "\n"); got != "cat "+fifo+" timed_out\ncat "+fifo+" stuck" {
		t.Errorf("dump entries:\n%s", got)
	}
}

// A read that returns in time releases its path; a missing file is
// NotFound (not present), and both are in the dump as "$ cat <path>".
func TestSlowFSReads(t *testing.T) {
	rec := &recorder{}
	s := &SlowFS{Dump: rec.handle(), MaxBytes: 64}
	b, err := s.Read(context.Background(), time.Second, filepath.Join(pve9Tree, ".members"))
	if err == nil || !strings.Contains(err.Error(), "larger than 64 bytes") {
		t.Errorf("cap: %v", err)
	}
	s.MaxBytes = 0
	if b, err = s.Read(context.Background(), time.Second, filepath.Join(pve9Tree, ".members")); err != nil || !bytes.Contains(b, []byte(`"lab"`)) {
		t.Fatalf("%s %v", b, err)
	}
	_, err = s.Read(context.Background(), time.Second, filepath.Join(pve9Tree, "nope"))
	if !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing: %v", err)
	}
	if s.Outstanding() != 0 {
		t.Errorf("%d reads outstanding", s.Outstanding())
	}
	e := string(dump.AppendCommand(nil, rec.recs[1]))
	if !strings.Contains(e, "$ cat "+filepath.Join(pve9Tree, ".members")) || !strings.Contains(e, `"nodename": "pve1"`) {
		t.Errorf("entry:\n%s", e)
	}
	if got := strings.Join(rec.lines(), "\n"); !strings.HasSuffix(got, "nope not_found") || !strings.Contains(got, ".members failed") {
		t.Errorf("outcomes:\n%s", got)
	}
}

func TestClusterStandaloneAndOffline(t *testing.T) {
	dir := t.TempDir()
	c := &Cluster{EtcDir: dir, Files: &SlowFS{}, Timeout: time.Second}
	for body, want := range map[string]string{
		"{\n\"nodename\": \"solo\",\n\"version\": 0\n}\n": `{"name":null,"clustered":false,"quorate":null,"nodes_total":1,"nodes_online":1,"offline":[]}`,
		`{"nodename":"a","version":3,"cluster":{"name":"c","version":1,"nodes":3,"quorate":0},"nodelist":{"a":{"id":1,"online":1},"b":{"id":2,"online":0},"c":{"id":3,"online":0}}}`: `{"name":"c","clustered":true,"quorate":false,"nodes_total":3,"nodes_online":1,"offline":["b","c"]}`,
	} {
		os.WriteFile(filepath.Join(dir, ".members"), []byte(body), 0o644)
		d, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(d); string(b) != want {
			t.Errorf("%s\nwant %s", b, want)
		}
	}
	os.WriteFile(filepath.Join(dir, ".members"), []byte("ipcc_send_rec failed"), 0o644)
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ".members")+": .members: want a JSON object") {
		t.Errorf("garbage: %v", err)
	}
}

// Build runs each Registry row on its own cadence, once, and [sources]
// validation accepts exactly the Registry's names.
func TestBuildFollowsRegistry(t *testing.T) {
	cfg := testConfig(t)
	seen := map[string]string{}
	for _, kind := range []string{"fast", "medium", "slow"} {
		for _, s := range Build(kind, cfg, &fakeRun{}, FS{}, nil) {
			if _, dup := seen[s.Name]; dup {
				t.Errorf("%s built twice", s.Name)
			}
			seen[s.Name] = kind
			if s.Timeout <= 0 {
				t.Errorf("%s has no timeout", s.Name)
			}
		}
	}
	for _, spec := range Registry {
		if seen[spec.Name] != spec.Cadence {
			t.Errorf("%s: built on %q, registry says %q", spec.Name, seen[spec.Name], spec.Cadence)
		}
		if spec.Doc == "" {
			t.Errorf("%s has no Doc line", spec.Name)
		}
		body := "server_url = \"ws://a/s\"\ntoken = \"t\"\n[sources]\n" + spec.Name + " = false\n"
		if _, err := config.Parse([]byte(body), func() (string, error) { return "h", nil }, ConfigOption()); err != nil {
			t.Errorf("[sources] %s refused: %v", spec.Name, err)
		}
	}
	if len(seen) != len(Registry) {
		t.Errorf("built %d sources, registry has %d", len(seen), len(Registry))
	}
	if _, err := config.Parse([]byte("server_url = \"ws://a/s\"\ntoken = \"t\"\n[sources]\ngusts = false\n"), func() (string, error) { return "h", nil }, ConfigOption()); err == nil {
		t.Error("an unknown source name was accepted")
	}
}

// A source off by default runs only when [sources] turns it on.
func TestRegistryDefaults(t *testing.T) {
	saved := Registry
	t.Cleanup(func() { Registry = saved })
	Registry = append(slices.Clone(saved), Spec{Name: "optin", Cadence: "fast", Timeout: fixed(time.Second),
		New: func(*Deps) func(context.Context) (any, error) {
			return func(context.Context) (any, error) { return 1, nil }
		}, Doc: "test"})
	cfg := testConfig(t)
	has := func() bool {
		for _, s := range Build("fast", cfg, &fakeRun{}, FS{}, nil) {
			if s.Name == "optin" {
				return true
			}
		}
		return false
	}
	if has() || Enabled(cfg, "optin") || !slices.Contains(Off(cfg), "optin") {
		t.Error("an opt-in source runs by default")
	}
	cfg.Sources = config.Sources{"optin": true}
	if !has() || !Enabled(cfg, "optin") {
		t.Error("an opt-in source switched on does not run")
	}
}

func TestCheckSourceName(t *testing.T) {
	for _, n := range Names() {
		if err := CheckSourceName(n); err != nil {
			t.Error(err)
		}
	}
	err := CheckSourceName("gusts\x1b")
	if err == nil || err.Error() != `unknown source "gusts\x1b"; sources are `+strings.Join(Names(), ", ") {
		t.Errorf("%v", err)
	}
	if !strings.HasPrefix(strings.Join(Names(), ","), "host,zfs_pools,arc,agent,") {
		t.Errorf("names not in cadence order: %v", Names())
	}
}

// Each switch: the source is absent from data and errors, and what it
// would run or read is not run or read. The all-on round shows each of
// those traces does appear, so every check can fail.
func TestSourceSwitches(t *testing.T) {
	traces := map[string][]string{
		"host":         {"cat ../../testdata/proc/loadavg", "cat ../../testdata/proc/meminfo"},
		"zfs_pools":    {"zpool "},
		"arc":          {"cat ../../testdata/proc/spl/kstat/zfs/arcstats"},
		"agent":        nil, // runs nothing; absence from the payload is the check
		"guests":       {"cat " + healthEtc + "/.vmlist", "cat " + healthEtc + "/.rrd"},
		"zfs_datasets": {"zfs list"},
		"storage":      {"pvesh get /nodes/pve1/storage"},
		"disks":        {"smartctl"},
		"node":         {"pvesh get /nodes/pve1/version", "zfs version", "cat ../../testdata/proc/cpuinfo"},
		"cluster":      {"cat " + healthEtc + "/.members"},
		"backups":      {"cat " + healthEtc + "/jobs.cfg", "tail -c 8388608 " + healthTree + "/log-pve/tasks/index"},
		"replication":  {"cat " + healthEtc + "/replication.cfg", "pve-replication-state.json"},
		"ha":           {"cat " + healthEtc + "/ha/manager_status", "lrm_status"},
		"certificates": {"pve-root-ca.pem", "pve-ssl.pem"},
		"subscription": {"cat " + healthTree + "/subscription"},
		"updates":      {"cat " + healthTree + "/lib-pve-manager/pkgupdates"},
		"corosync":     {"corosync-cfgtool -s"},
	}
	round := func(sw config.Sources) (keys map[string]bool, trace string) {
		cfg := healthConfig(t)
		cfg.Sources = sw
		rec := &recorder{}
		run := &fakeRun{}
		keys = map[string]bool{}
		for _, kind := range []string{"fast", "medium", "slow"} {
			s := CollectOnce(kind, Build(kind, cfg, run, FS{Root: "../../testdata/proc", Dump: rec.handle()}, nil), slog.New(slog.DiscardHandler))
			for k := range s.Data {
				keys[k] = true
			}
			for k := range s.Errors {
				keys[k] = true
			}
		}
		return keys, strings.Join(append(rec.lines(), run.calls...), "\n")
	}
	allKeys, allTrace := round(config.Sources{})
	for name, want := range traces {
		if !allKeys[name] {
			t.Errorf("all on: %s missing", name)
		}
		for _, w := range want {
			if !strings.Contains(allTrace, w) {
				t.Errorf("all on: no trace %q of %s", w, name)
			}
		}
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			keys, trace := round(offOne(name))
			if keys[name] {
				t.Errorf("%s is off but in the payload", name)
			}
			if len(keys) != len(allKeys)-1 {
				t.Errorf("%d keys, want every other source", len(keys))
			}
			// Several sources read .vmlist or .members: switched off, a
			// source's reads are gone, the others' stay.
			for _, w := range traces[name] {
				if strings.Count(trace, w) >= strings.Count(allTrace, w) {
					t.Errorf("%s is off but %q ran as often", name, w)
				}
			}
		})
	}
}

// offOne turns one source off through the TOML a user would write, so the
// test also covers the key names.
func offOne(name string) config.Sources {
	cfg, err := config.Parse([]byte("server_url = \"ws://a/s\"\ntoken = \"t\"\n[sources]\n"+name+" = false\n"), func() (string, error) { return "h", nil }, ConfigOption())
	if err != nil {
		panic(err)
	}
	return cfg.Sources
}

// cpuTime is this process's and its reaped children's CPU time so far.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// BenchmarkGuestsRound is one guests round on each path: the file path
// reads the PVE 9 tree through SlowFS; the pvesh path forks the shell fake
// testdata/fakebin/pvesh through the real runner (a fork, exec and cat,
// not Perl: a real pvesh costs about a second of CPU, see SOURCES.md).
// cpu-ms/op counts the agent and its children.
func BenchmarkGuestsRound(b *testing.B) {
	bin, err := filepath.Abs("../../testdata/fakebin/pvesh")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, etcDir string }{{"pmxcfs", pve9Tree}, {"pvesh", noPmxcfs}} {
		b.Run(c.name, func(b *testing.B) {
			run := &runner.Runner{}
			g := &Guests{Run: run, Pvesh: bin, Node: "pve1", Timeout: 10 * time.Second,
				EtcDir: c.etcDir, Files: &SlowFS{}, ReadTimeout: 5 * time.Second}
			var used string
			g.Used = func(p string) { used = p }
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				gs, err := g.Collect(context.Background())
				if err != nil || gs == nil {
					b.Fatal(err)
				}
				// The runner releases a command line just after Run returns;
				// back to back, the next call would see it "still stuck".
				for run.Outstanding() > 0 {
					runtime.Gosched()
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			if used != c.name {
				b.Fatalf("ran the %s path", used)
			}
		})
	}
}
