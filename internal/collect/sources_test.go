package collect

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeRun answers command lines from files in ../testdata/fakebin/data, the
// same fixtures the shell fakes print.
type fakeRun struct {
	mu    sync.Mutex
	zfs22 bool
	calls []string
	hang  map[string]bool
	// fail makes a binary (by base name) exit 1.
	fail map[string]bool
	// missing makes a binary (by base name) not installed.
	missing map[string]bool
	// resources replaces pvesh-cluster-resources.json (a path relative to data).
	resources string
}

const data = "../../testdata/fakebin/data/"

func (f *fakeRun) Run(ctx context.Context, timeout time.Duration, name string, args ...string) runner.Result {
	line := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	f.mu.Lock()
	f.calls = append(f.calls, line)
	hang := f.hang[filepath.Base(name)]
	fail := f.fail[filepath.Base(name)]
	missing := f.missing[filepath.Base(name)]
	f.mu.Unlock()
	resources := f.resources
	res := runner.Result{Line: line}
	if missing {
		res.Outcome, res.Reason = dump.NotFound, "executable file not found in $PATH"
		return res
	}
	if hang {
		<-ctx.Done()
		res.Outcome, res.Reason = dump.TimedOut, "timed out after "+timeout.String()
		return res
	}
	file := map[string]string{
		"zpool status -j --json-flat-vdevs --json-int": "zpool-status.json",
		"zpool list -j --json-int":                     "zpool-list.json",
		"zpool status -p":                              "zpool-status-degraded-p.txt",
		"zpool list -H -p -o " + "name,size,alloc,free,frag,cap,dedup,health":                "zpool-list-Hp.txt",
		"zfs list -j --json-int -t filesystem,volume -o name,used,avail,refer,compressratio": "zfs-list-datasets.json",
		"zfs list -H -p -t filesystem,volume -o name,type,used,avail,refer,compressratio":    "zfs-list-datasets-Hp.txt",
		"zfs version": "zfs-version.txt",
		"pvesh get /cluster/resources --output-format json":  "pvesh-cluster-resources.json",
		"pvesh get /nodes/pve1/storage --output-format json": "pvesh-nodes-storage.json",
		"pvesh get /nodes/pve1/version --output-format json": "pvesh-nodes-version.json",
		"smartctl --scan -j":                        "smartctl-scan.json",
		"corosync-cfgtool -s":                       "../../pve-health/corosync-cfgtool-s.txt",
		"smartctl -j -a -n standby -d sat /dev/sda": "smartctl-a-sata-ssd.json",
		"smartctl -j -a -n standby -d sat /dev/sdc": "smartctl-a-hdd-standby.json",
	}[line]
	if resources != "" && strings.Contains(line, "/cluster/resources") {
		file = resources
	}
	if f.zfs22 && strings.Contains(line, " -j") && !strings.HasPrefix(line, "smartctl") {
		res.Outcome, res.ExitCode = dump.NonZero, 2
		res.Stderr, _ = os.ReadFile(data + "zpool-status-j-on-zfs-2.2.stderr.txt")
		return res
	}
	if file == "" || fail {
		res.Outcome, res.ExitCode = dump.NonZero, 1
		res.Stderr = []byte("fake: no fixture for " + line)
		return res
	}
	b, err := os.ReadFile(data + file)
	if err != nil {
		panic(err)
	}
	res.Stdout = b
	if strings.HasSuffix(line, "/dev/sdc") {
		res.Outcome, res.ExitCode = dump.NonZero, 2
	}
	return res
}

// Fixture trees of /etc/pve (see testdata/pmxcfs/README.md), and a path
// that does not exist: a host without pmxcfs.
const (
	pve9Tree  = "../../testdata/pmxcfs/pve9"
	pve8Tree  = "../../testdata/pmxcfs/pve8"
	noPmxcfs  = "../../testdata/pmxcfs/not-mounted"
	pve9Guest = "../../pmxcfs/pve9/cluster-resources.guests.json" // relative to data
	pve8Guest = "../../pmxcfs/pve8/cluster-resources.guests.json"
)

// testConfig is a Proxmox host whose /etc/pve is the PVE 9 fixture tree.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte("server_url = \"ws://127.0.0.1:1/s\"\ntoken = \"t\"\nnode = \"pve1\"\nhost_id = \"pve1\"\n"),
		func() (string, error) { return "pve1", nil })
	if err != nil {
		t.Fatal(err)
	}
	cfg.PVE.EtcDir = pve9Tree
	cfg.Sys.Root = hostSys
	// Nothing of the machine running the tests: the health sources' other
	// files are absent unless a test points them at testdata/pve-health.
	cfg.PVE.LibDir, cfg.PVE.LogDir = noPmxcfs, noPmxcfs
	cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = noPmxcfs, noPmxcfs
	return cfg
}

var fixedAt = time.Date(2026, 4, 22, 15, 32, 17, 104_000_000, time.UTC)

// collect runs one round of kind's sources (the agent self-report aside: it
// holds uptimes) and returns the pushed payload. Medium runs without
// pmxcfs, so medium.json stays the payload of the pvesh fixture; the file
// path has goldens of its own (TestGuestsBothPathsGolden).
func collect(t *testing.T, kind string, run Runner) []byte {
	t.Helper()
	cfg := testConfig(t)
	if kind == "medium" {
		cfg.PVE.EtcDir = noPmxcfs
	}
	return collectWith(t, kind, cfg, run)
}

func collectWith(t *testing.T, kind string, cfg *config.Config, run Runner) []byte {
	t.Helper()
	var srcs []Source
	cest := time.FixedZone("CEST", 2*3600) // the text fixtures' zone
	for _, s := range buildAt(kind, cfg, run, FS{Root: "../../testdata/proc"}, fixedEnv(cfg), func() time.Time { return fixedAt }, cest) {
		if s.Name != "agent" {
			srcs = append(srcs, s)
		}
	}
	s := CollectOnce(kind, srcs, slog.New(slog.DiscardHandler))
	s.CollectedAt = fixedAt
	b, err := payload.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return payload.Indent(b)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("%s differs from the golden file (go test ./internal/collect -update to accept):\n%s", name, got)
	}
}

// Each cadence's assembled payload, byte for byte.
func TestGoldenPayloads(t *testing.T) {
	for _, kind := range []string{"fast", "medium", "slow"} {
		t.Run(kind, func(t *testing.T) {
			golden(t, kind+".json", collect(t, kind, &fakeRun{}))
		})
	}
}

// On OpenZFS 2.2 the text path gives the same payload for the same pool.
// (The JSON fixture also holds a healthy rpool that the text one lacks.)
func TestZFS22FallbackSameShape(t *testing.T) {
	f := &fakeRun{zfs22: true}
	got := collect(t, "fast", f)
	golden(t, "fast-zfs22.json", got)
	var a, b struct {
		Data struct {
			Pools struct {
				Pools []map[string]any `json:"pools"`
			} `json:"zfs_pools"`
		} `json:"data"`
	}
	json.Unmarshal(collect(t, "fast", &fakeRun{}), &a)
	json.Unmarshal(got, &b)
	var tankJSON map[string]any
	for _, p := range a.Data.Pools.Pools {
		if p["name"] == "tank" {
			tankJSON = p
		}
	}
	tankText := b.Data.Pools.Pools[0]
	for k := range tankJSON {
		if _, ok := tankText[k]; !ok {
			t.Errorf("text path lacks key %s", k)
		}
	}
	// Detected once: the second round goes straight to text.
	p := &ZFSPools{Zpool: zfsTool{Run: f, Path: "zpool", Timeout: time.Second}, Loc: time.UTC}
	for i := 0; i < 2; i++ {
		if _, err := p.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.calls = nil
		}
	}
	if len(f.calls) != 2 {
		t.Errorf("second round ran %v", f.calls)
	}
	for _, c := range f.calls {
		if strings.Contains(c, " -j") {
			t.Errorf("retried JSON after detecting 2.2: %s", c)
		}
	}
	m := collect(t, "medium", &fakeRun{zfs22: true})
	if !strings.Contains(string(m), `"compressratio"`) || strings.Contains(string(m), "zfs_datasets\": \"") {
		t.Errorf("datasets fallback:\n%s", m)
	}
}

// A hung zpool: the source times out on its own, the rest of the sample is
// there, and kstat still tells the pools' states.
func TestHungZpoolReportsKstatStates(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeouts.ZpoolSeconds = 1
	f := &fakeRun{hang: map[string]bool{"zpool": true}}
	var srcs []Source
	for _, s := range Build("fast", cfg, f, FS{Root: "../../testdata/proc"}, nil) {
		if s.Name == "zfs_pools" {
			s.Timeout = 200 * time.Millisecond
		}
		srcs = append(srcs, s)
	}
	start := time.Now()
	s := CollectOnce("fast", srcs, slog.New(slog.DiscardHandler))
	if time.Since(start) > 5*time.Second {
		t.Fatal("round waited for the hung source")
	}
	if _, ok := s.Data["host"]; !ok {
		t.Error("host missing")
	}
	if e := s.Errors["zfs_pools"]; !strings.Contains(e, "timed out") {
		t.Errorf("zfs_pools error %q", e)
	}
	// The source's own context expiry: the runner (faked) reports it with kstat states.
	p := &ZFSPools{Zpool: zfsTool{Run: f, Path: "zpool", Timeout: time.Second}, FS: FS{Root: "../../testdata/proc"}, Loc: time.UTC}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Collect(ctx)
	if err == nil || !strings.Contains(err.Error(), "kstat pool states: rpool=ONLINE tank=DEGRADED") {
		t.Errorf("err = %v", err)
	}
}

// Not a ZFS, not a Proxmox host: short error entries, everything else pushed.
func TestPlainHost(t *testing.T) {
	r := &runner.Runner{}
	cfg := testConfig(t)
	cfg.Commands.Zpool, cfg.Commands.Zfs, cfg.Commands.Pvesh, cfg.Commands.Smartctl = "/nonexistent/zpool", "/nonexistent/zfs", "/nonexistent/pvesh", "/nonexistent/smartctl"
	cfg.PVE.EtcDir = "/nonexistent/pve"
	errs := map[string]string{}
	for _, kind := range []string{"fast", "medium", "slow"} {
		s := CollectOnce(kind, Build(kind, cfg, r, FS{Root: t.TempDir()}, nil), slog.New(slog.DiscardHandler))
		for k, v := range s.Errors {
			errs[k] = v
		}
		if kind == "fast" {
			if _, ok := s.Data["agent"]; !ok {
				t.Error("agent self-report missing")
			}
		}
	}
	want := map[string]string{
		"zfs_pools": "/nonexistent/zpool not found", "guests": "/nonexistent/pvesh not found",
		"zfs_datasets": "/nonexistent/zfs not found", "storage": "/nonexistent/pvesh not found",
		"disks": "/nonexistent/smartctl not found", "arc": "arcstats not present (ZFS module not loaded)",
		"cluster": "/nonexistent/pve/.members not found (not a Proxmox VE host, or pmxcfs not running)",
	}
	if !clusterAbsent(cfg) {
		t.Error("an absent .members is not classed as not present")
	}
	for k, v := range want {
		if errs[k] != v {
			t.Errorf("%s: %q, want %q", k, errs[k], v)
		}
	}
}

func TestHostCPUBusyFromSecondSample(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"loadavg", "meminfo", "uptime"} {
		b, _ := os.ReadFile("../../testdata/proc/" + f)
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	copyStat := func(src string) {
		b, _ := os.ReadFile("../parse/procfs/testdata/" + src)
		os.WriteFile(filepath.Join(dir, "stat"), b, 0o644)
	}
	h := &Host{FS: FS{Root: dir}}
	copyStat("stat")
	d1, err := h.Collect(context.Background())
	if err != nil || d1.(HostData).CPUBusyPct.Valid {
		t.Fatalf("first sample: %+v %v", d1, err)
	}
	copyStat("stat.next")
	d2, _ := h.Collect(context.Background())
	if got := d2.(HostData).CPUBusyPct; !got.Valid || got.V != 52.63 {
		t.Fatalf("second sample busy %v", got)
	}
	os.WriteFile(filepath.Join(dir, "meminfo"), []byte("garbage"), 0o644)
	if _, err := h.Collect(context.Background()); err == nil {
		t.Error("garbage meminfo accepted")
	}
}

func TestAgentSelfReportWithoutEnv(t *testing.T) {
	d, err := (&Agent{Version: "1.2.3"}).Collect(context.Background())
	if err != nil || d.(AgentData).Version != "1.2.3" {
		t.Fatalf("%+v %v", d, err)
	}
}

// BenchmarkFastRound is one fast round end to end: the real runner executes
// the shell fakes in testdata/fakebin (fork+exec included), /proc from
// testdata, parse, assemble and encode.
func BenchmarkFastRound(b *testing.B) {
	cfg, err := config.Parse([]byte("server_url = \"ws://127.0.0.1:1/s\"\ntoken = \"t\"\nnode = \"pve1\"\n"), func() (string, error) { return "pve1", nil })
	if err != nil {
		b.Fatal(err)
	}
	bin, _ := filepath.Abs("../../testdata/fakebin")
	cfg.Commands.Zpool = filepath.Join(bin, "zpool")
	srcs := Build("fast", cfg, &runner.Runner{}, FS{Root: "../../testdata/proc"}, nil)
	log := slog.New(slog.DiscardHandler)
	var failures atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		s := CollectOnce("fast", srcs, log)
		if len(s.Errors) > 0 {
			failures.Add(1)
		}
		if _, err := payload.Encode(s); err != nil {
			b.Fatal(err)
		}
	}
	if failures.Load() > 0 {
		b.Fatalf("%d rounds had errors", failures.Load())
	}
}

// NaN and Inf in /proc/loadavg are null for those fields; the fast sample
// still carries host, zfs_pools and arc (one NaN used to fail the encode
// of the whole cadence).
func TestNonFiniteLoadIsNullNotALostSample(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../testdata/proc")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "loadavg"), []byte("NaN Inf 0.50 1/200 3000\n"), 0o644)
	var srcs []Source
	for _, s := range Build("fast", testConfig(t), &fakeRun{}, FS{Root: dir}, nil) {
		if s.Name != "agent" {
			srcs = append(srcs, s)
		}
	}
	b, err := payload.Encode(CollectOnce("fast", srcs, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Data   map[string]json.RawMessage
		Errors map[string]string
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) != 0 || p.Data["zfs_pools"] == nil || p.Data["arc"] == nil {
		t.Fatalf("sample lost parts: errors %v, data keys %d", p.Errors, len(p.Data))
	}
	if h := string(p.Data["host"]); !strings.Contains(h, `"load1":null,"load5":null,"load15":0.5`) {
		t.Fatalf("host: %s", h)
	}
}

// clusterAbsent is the cluster source's error on cfg's host, checked with
// runner.NotFound as the collector does to choose info over warn.
func clusterAbsent(cfg *config.Config) bool {
	_, err := (&Cluster{EtcDir: cfg.PVE.EtcDir, Files: &SlowFS{}, Timeout: time.Second}).Collect(context.Background())
	return runner.NotFound(err)
}

// The self-report carries the dump's drop count: a writer that fell behind
// shows up in every fast sample.
func TestAgentSelfReportCountsDumpDrops(t *testing.T) {
	// A backlog of one entry whose writer never takes it: the second entry
	// is dropped.
	h := dump.NewBoundedHandle(func(any) {}, dump.NewBacklog(1, 1<<20, slog.New(slog.DiscardHandler)))
	h.Sample("fast", fixedAt, []byte("{}"))
	h.Sample("fast", fixedAt, []byte("{}"))
	env := &Env{Config: testConfig(t), Dump: h, Stats: NewStats()}
	d, err := (&Agent{Env: env, Version: "x"}).Collect(context.Background())
	if err != nil || d.(AgentData).DumpDropped != 1 {
		t.Fatalf("%+v %v", d, err)
	}
}
