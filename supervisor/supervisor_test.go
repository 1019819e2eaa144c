package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/messages"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/config"
)

var discard = slog.New(slog.DiscardHandler)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte("server_url = \"ws://127.0.0.1:1/socket/websocket\"\ntoken = \"t\"\nhost_id = \"h\"\n"),
		func() (string, error) { return "h", nil })
	if err != nil {
		t.Fatal(err)
	}
	// Never the packaged /var/lib path: each test its own spool.
	cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	// Nor the host's Proxmox files: the health sources find none.
	none := filepath.Join(t.TempDir(), "none")
	cfg.PVE.LibDir, cfg.PVE.LogDir, cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = none, none, none, none
	return cfg
}

func fastIntervals(d time.Duration) map[string]time.Duration {
	return map[string]time.Duration{"fast": d, "medium": d, "slow": d}
}

func startTree(t *testing.T, o Options) *Tree {
	t.Helper()
	if o.Config == nil {
		o.Config = testConfig(t)
	}
	if o.Sources == nil {
		// Sourceless cadences: each round is an empty sample.
		o.Sources = func(string, *collect.Env) []collect.Source { return nil }
	}
	o.Log = discard
	o.SystemOptions = []actor.ConfigOption{actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard })}
	tree, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tree.Stop)
	return tree
}

func queueDepth(t *testing.T, tree *Tree) int {
	st, err := tree.ReporterStatus(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Depth)
}

func constSource(name string) collect.Source {
	return collect.Source{Name: name, Timeout: time.Second, Collect: func(context.Context) (any, error) { return 1, nil }}
}

func TestSamplesFlowFromEveryCadenceToReporterAndDump(t *testing.T) {
	dir := t.TempDir()
	tree := startTree(t, Options{
		DumpDir:   dir,
		Intervals: fastIntervals(time.Hour), // one round each, at start
		Sources: func(kind string, env *collect.Env) []collect.Source {
			return []collect.Source{{Name: "echo", Timeout: 5 * time.Second, Collect: func(ctx context.Context) (any, error) {
				res := env.Runner.Run(ctx, time.Second, "/bin/echo", kind)
				return string(res.Stdout), res.Err()
			}}}
		},
	})
	testkit.Eventually(t, 10*time.Second, "three samples", func() bool { return queueDepth(t, tree) == 3 })
	if err := tree.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	samples, _ := os.ReadFile(filepath.Join(dir, "samples.log"))
	cmds, _ := os.ReadFile(filepath.Join(dir, "commands.log"))
	for _, k := range []string{"fast", "medium", "slow"} {
		if !strings.Contains(string(samples), "kind="+k) {
			t.Errorf("samples.log lacks kind=%s", k)
		}
		if !strings.Contains(string(cmds), "$ /bin/echo "+k) {
			t.Errorf("commands.log lacks the %s command", k)
		}
	}
}

func TestCollectorPanicIsRestartedAndSiblingsKeepState(t *testing.T) {
	dir := t.TempDir()
	var arm atomic.Bool
	tree := startTree(t, Options{
		DumpDir:   dir,
		Intervals: map[string]time.Duration{"fast": 20 * time.Millisecond, "medium": time.Hour, "slow": time.Hour},
		Sources: func(kind string, env *collect.Env) []collect.Source {
			if kind != "fast" {
				return []collect.Source{constSource("x")}
			}
			return []collect.Source{constSource("x"), {Name: "fault", Timeout: time.Second, Collect: func(context.Context) (any, error) {
				if arm.CompareAndSwap(true, false) {
					panic("injected fault")
				}
				return nil, nil
			}}}
		},
	})
	testkit.Eventually(t, 10*time.Second, "a few samples", func() bool { return queueDepth(t, tree) >= 5 })
	tree.Flush(5 * time.Second)
	before, err := os.Stat(filepath.Join(dir, "samples.log"))
	if err != nil {
		t.Fatal(err)
	}
	depthBefore := queueDepth(t, tree)

	arm.Store(true)
	testkit.Eventually(t, 10*time.Second, "the restart", func() bool { return tree.Stats.Restarts.Load() == 1 })
	if tree.Stats.Collectors["fast"].Panics.Load() != 1 {
		t.Fatalf("panics = %d", tree.Stats.Collectors["fast"].Panics.Load())
	}
	// The restarted collector keeps ticking, and the reporter kept its queue:
	// its depth only grows (a restarted reporter would start from zero).
	testkit.Eventually(t, 10*time.Second, "samples after the restart", func() bool { return queueDepth(t, tree) >= depthBefore+5 })
	if tree.Stats.Restarts.Load() != 1 {
		t.Fatalf("%d restarts: a sibling restarted too", tree.Stats.Restarts.Load())
	}
	tree.Flush(5 * time.Second)
	after, err := os.Stat(filepath.Join(dir, "samples.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The writer's file is the same inode and still growing: not reopened.
	if before.Sys().(*syscall.Stat_t).Ino != after.Sys().(*syscall.Stat_t).Ino || after.Size() <= before.Size() {
		t.Fatal("dump file replaced or not written after the collector restart")
	}
	body, _ := os.ReadFile(filepath.Join(dir, "samples.log"))
	if !strings.Contains(string(body), "source panicked: injected fault") {
		t.Error("the round with the panic was not pushed with an error entry")
	}
	select {
	case <-tree.Done():
		t.Fatal("tree stopped after a single fault")
	default:
	}
}

func TestRestartIntensityExceededStopsTree(t *testing.T) {
	tree := startTree(t, Options{
		MaxRestarts: 2,
		Window:      time.Minute,
		Intervals:   map[string]time.Duration{"fast": 5 * time.Millisecond, "medium": time.Hour, "slow": time.Hour},
		Sources: func(kind string, env *collect.Env) []collect.Source {
			if kind != "fast" {
				return nil
			}
			return []collect.Source{{Name: "fault", Timeout: time.Second, Collect: func(context.Context) (any, error) {
				panic("always")
			}}}
		},
	})
	select {
	case <-tree.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("tree still running after a crash loop")
	}
	err := tree.Err()
	if err == nil || !strings.Contains(err.Error(), "collector-fast") || !strings.Contains(err.Error(), "restart intensity") {
		t.Fatalf("err = %v", err)
	}
}

func TestStopDrainsDumpAndStopsQuickly(t *testing.T) {
	dir := t.TempDir()
	tree := startTree(t, Options{DumpDir: dir, Intervals: fastIntervals(time.Hour)})
	for i := 0; i < 200; i++ {
		tree.Dump().Read("/proc/loadavg", time.Now(), []byte("x"), nil, 0)
	}
	start := time.Now()
	tree.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	if tree.Err() != nil {
		t.Fatalf("requested stop reported %v", tree.Err())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "commands.log"))
	if n := strings.Count(string(b), "$ cat /proc/loadavg"); n != 200 {
		t.Fatalf("%d of 200 queued dump entries written before stop", n)
	}
	tree.Stop() // idempotent
}

func TestUnusableDumpDirRunsWithDumpOff(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	tree := startTree(t, Options{DumpDir: filepath.Join(file, "sub"), Intervals: fastIntervals(time.Hour)})
	if tree.Writer() != nil || tree.Dump().Enabled() {
		t.Fatal("dump on with an unusable dir")
	}
	testkit.Eventually(t, 10*time.Second, "samples", func() bool { return queueDepth(t, tree) == 3 })
}

func TestReporterStatusAfterStopFails(t *testing.T) {
	tree := startTree(t, Options{Intervals: fastIntervals(time.Hour)})
	tree.Stop()
	if _, err := tree.ReporterStatus(100 * time.Millisecond); err == nil {
		t.Fatal("status from a stopped tree")
	} else if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// Alive succeeds while every child's mailbox answers, and fails naming the
// child whose handler is wedged.
func TestAliveDetectsWedgedChild(t *testing.T) {
	block := make(chan struct{})
	tree := startTree(t, Options{Intervals: fastIntervals(time.Hour)})
	if err := tree.Alive(time.Second); err != nil {
		t.Fatalf("healthy tree: %v", err)
	}
	// Wedge the reporter: its handler blocks inside a request it serves.
	tree.System.Root.Send(tree.Reporter(), &messages.Sample{Kind: "fast", Data: map[string]any{"x": wedge(block)}})
	err := tree.Alive(200 * time.Millisecond)
	close(block)
	if err == nil || !strings.Contains(err.Error(), "reporter") {
		t.Fatalf("wedged reporter not detected: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "recovery", func() bool { return tree.Alive(time.Second) == nil })
	tree.Stop()
	if tree.Alive(time.Second) == nil {
		t.Fatal("a stopped tree reported alive")
	}
}

// wedge is a value whose JSON encoding blocks until release is closed: it
// holds the reporter's handler the way a stuck call would.
type wedge chan struct{}

func (w wedge) MarshalJSON() ([]byte, error) {
	<-w
	return []byte("0"), nil
}

// NeedRestart names exactly the changed settings a reload cannot apply.
func TestNeedRestart(t *testing.T) {
	old := testConfig(t)
	same := *old
	if got := NeedRestart(old, &same, false); len(got) != 0 {
		t.Errorf("unchanged: %v", got)
	}
	changed := *old
	changed.Spool.Dir, changed.Status.Socket, changed.Intervals.FastSeconds = "/elsewhere", "/run/x.sock", 7
	changed.Debug.DumpDir = "/var/log/pa"
	got := strings.Join(NeedRestart(old, &changed, false), ",")
	if got != "spool.dir,status.socket,debug.dump_dir" {
		t.Errorf("changed: %s", got)
	}
	// A dump already on moves to a new directory without a restart.
	on, moved := *old, *old
	on.Debug.DumpDir, moved.Debug.DumpDir = "/a", "/b"
	if got := NeedRestart(&on, &moved, true); len(got) != 0 {
		t.Errorf("dump dir moved: %v", got)
	}
}

// Damaged spool files moved aside in an earlier run stay named in status
// until an operator salvages and removes them; one the reporter already
// names (with what was wrong) is not named twice.
func TestKeptFilesFromEarlierRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.db")
	for _, n := range []string{".corrupt-20261201T000000Z", ".corrupt-20261202T000000Z", ".rewrite-1"} {
		os.WriteFile(path+n, nil, 0o600)
	}
	got := keptFiles([]string{path + ".corrupt-20261202T000000Z (spool file damaged: invalid database)"}, path)
	want := []string{path + ".corrupt-20261202T000000Z (spool file damaged: invalid database)", path + ".corrupt-20261201T000000Z (from an earlier run)"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
}

// A reload that changes nothing the sources read (logrotate's daily HUP,
// a new token) keeps the sources and their rate state; a changed interval,
// switch or exclude list rebuilds them.
func TestSameCollection(t *testing.T) {
	old := testConfig(t)
	for name, change := range map[string]func(c *config.Config){
		"token":      func(c *config.Config) { c.Token = "other" },
		"server":     func(c *config.Config) { c.ServerURL = "wss://elsewhere/socket/websocket" },
		"log level":  func(c *config.Config) { c.Log.Level = "debug" },
		"dump dir":   func(c *config.Config) { c.Debug.DumpDir = "/var/log/x" },
		"reconnects": func(c *config.Config) { c.Reporter.ReconnectMaxSeconds = 5 },
	} {
		c := *old
		change(&c)
		if !SameCollection(old, &c) {
			t.Errorf("%s: sources rebuilt", name)
		}
	}
	for name, change := range map[string]func(c *config.Config){
		"interval":     func(c *config.Config) { c.Intervals.FastSeconds++ },
		"switch":       func(c *config.Config) { c.Sources = config.Sources{"host": false} },
		"timeout":      func(c *config.Config) { c.Timeouts.ZpoolSeconds++ },
		"net exclude":  func(c *config.Config) { c.Net.Exclude = []string{"lo"} },
		"pve etc dir":  func(c *config.Config) { c.PVE.EtcDir = "/elsewhere" },
		"zpool binary": func(c *config.Config) { c.Commands.Zpool = "/opt/zpool" },
	} {
		c := *old
		change(&c)
		if SameCollection(old, &c) {
			t.Errorf("%s: sources kept", name)
		}
	}
}

// A root actor that fails and is restarted does not spawn a second set of
// children and rewrite the PIDs others read: the tree stops and says why.
// (Before, a restarted root ran spawnChildren again and wrote the exported
// PID fields while Alive and StatusDoc read them from other goroutines.)
func TestRootRestartStopsTheTree(t *testing.T) {
	tree := startTree(t, Options{Intervals: fastIntervals(time.Hour),
		Sources: func(string, *collect.Env) []collect.Source { return []collect.Source{constSource("x")} }})
	before := tree.Reporter()
	// A reload without a config makes the root's handler fail: a stand-in
	// for any bug in it.
	tree.System.Root.Send(tree.kids.Load().root, &reload{cfg: nil, sources: true})
	select {
	case <-tree.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the tree did not stop after its root failed")
	}
	if err := tree.Err(); err == nil || !strings.Contains(err.Error(), "root actor restarted") {
		t.Errorf("Err = %v", err)
	}
	if tree.Reporter() != before {
		t.Error("the reporter's PID was rewritten")
	}
}
