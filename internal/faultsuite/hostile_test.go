package faultsuite

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// The bounds every hostile server is held to, over a run of about 12 s with
// a fast sample every second: the agent's whole log, and its peak RSS (it
// idles at about 20 MiB).
const (
	maxLogBytes = 16 << 10
	maxLogLines = 60
	maxHWMKiB   = 64 << 10
	hostileRun  = 12 * time.Second
)

type hostile struct {
	name   string
	faults sink.Faults
	// check looks at what the sink received; the common bounds are checked
	// for every scenario.
	check func(t *testing.T, s *sink.Server, a *testkit.Agent)
}

// A hostile server cannot stop delivery, flood the log or grow the agent's
// memory: a poison sample, a multi-MiB garbage ref, acks that stop, a flood
// of junk frames, a server that never upgrades. Each scenario runs the real
// binary for about 12 s; they run side by side.
func TestHostileServers(t *testing.T) {
	for _, h := range []hostile{
		{"poison sample", sink.Faults{PoisonContains: `"zfs_datasets"`}, checkPoison},
		{"poison sample drops the connection", sink.Faults{PoisonContains: `"zfs_datasets"`, PoisonDrops: true}, checkPoison},
		{"garbage 4 MiB ref after every join", sink.Faults{GarbageRefAfter: 3}, checkKeepsDelivering},
		{"acks three pushes then stops replying", sink.Faults{AckFirst: 3}, checkKeepsDelivering},
		{"flood of junk frames", sink.Faults{Flood: true}, checkKeepsDelivering},
		{"never upgrades", sink.Faults{NoUpgrade: true}, checkStillCollecting},
	} {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			s := sinktest.Start(t, "127.0.0.1:0", "tok", h.faults)
			a := testkit.StartAgent(t, testkit.Options{Config: withDump(t, s.URL())})
			deadline := time.Now().Add(hostileRun)
			testkit.Eventually(t, hostileRun+5*time.Second, "the end of the run", func() bool { return time.Now().After(deadline) })
			_, hwm := a.MemKiB()
			h.check(t, s, a)
			code, took := a.Stop()
			if took > 5*time.Second {
				t.Errorf("SIGTERM took %s", took)
			}
			log := a.Log()
			lines := strings.Count(log, "\n")
			t.Logf("%d samples received, log %d lines / %d bytes, peak RSS %d KiB, exit %d", len(s.Samples()), lines, len(log), hwm, code)
			if len(log) > maxLogBytes || lines > maxLogLines {
				t.Errorf("log %d lines / %d bytes in %s, over the bound (%d / %d):\n%s", lines, len(log), hostileRun, maxLogLines, maxLogBytes, clipLog(log))
			}
			if hwm > maxHWMKiB {
				t.Errorf("peak RSS %d KiB, over the %d KiB bound", hwm, maxHWMKiB)
			}
			if code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}

// pushesPerSample counts how often each collected_at reached the sink.
func pushesPerSample(t *testing.T, s *sink.Server) map[string]int {
	n := map[string]int{}
	for _, e := range []string{"metric:fast", "metric:medium", "metric:slow"} {
		for _, p := range decode(t, s.Samples(), e) {
			n[e+" "+p.CollectedAt]++
		}
	}
	return n
}

func checkKeepsDelivering(t *testing.T, s *sink.Server, _ *testkit.Agent) {
	t.Helper()
	fast := len(decode(t, s.Samples(), "metric:fast"))
	if fast < 5 {
		t.Errorf("only %d fast samples arrived in %s", fast, hostileRun)
	}
	for k, n := range pushesPerSample(t, s) {
		if n > 4 {
			t.Errorf("%s pushed %d times", k, n)
		}
	}
}

// The medium sample is the poison (only it carries zfs_datasets): it is
// pushed at most 3 times, set aside and counted, and the fast samples flow.
func checkPoison(t *testing.T, s *sink.Server, a *testkit.Agent) {
	t.Helper()
	if n := len(decode(t, s.Samples(), "metric:medium")); n < 1 || n > 3 {
		t.Errorf("poison sample pushed %d times, want 1 to 3", n)
	}
	checkKeepsDelivering(t, s, a)
	fast := decode(t, s.Samples(), "metric:fast")
	var self struct {
		Poisoned uint64 `json:"poisoned"`
	}
	if len(fast) > 0 {
		json.Unmarshal(fast[len(fast)-1].Data["agent"], &self)
	}
	if self.Poisoned != 1 {
		t.Errorf("self-report poisoned = %d, want 1", self.Poisoned)
	}
	if a.Count("set aside") != 1 {
		t.Errorf("%d 'set aside' lines, want 1", a.Count("set aside"))
	}
	checkSetAsideReplays(t, s, a)
}

// The poison sample is kept beside the spool, and `proxmox-agent replay`
// of that file delivers it, byte for byte, to a server that takes it.
func checkSetAsideReplays(t *testing.T, s *sink.Server, a *testkit.Agent) {
	t.Helper()
	file := filepath.Join(a.SpoolDir, "set-aside.log")
	if !a.Has("file=" + file) {
		t.Errorf("the set-aside line does not name %s", file)
	}
	st, err := exec.Command(testkit.BuildAgent(t), "status", "--json", "--socket", a.StatusSocket).Output()
	var doc struct {
		Queue struct {
			File string `json:"set_aside_file"`
		} `json:"queue"`
	}
	if err != nil || json.Unmarshal(st, &doc) != nil || doc.Queue.File != file {
		t.Errorf("status does not point at %s: %v %s", file, err, st)
	}
	healthy := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	cfg := testkit.WriteConfig(t, testkit.Config{URL: healthy.URL(), SpoolDir: "-"})
	out, err := exec.Command(testkit.BuildAgent(t), "replay", "--config", cfg, file).CombinedOutput()
	if err != nil {
		t.Fatalf("replay %s: %v\n%s", file, err, out)
	}
	got := healthy.Samples()
	if len(got) != 1 || got[0].Event != "metric:medium" {
		t.Fatalf("replay delivered %d samples, want the medium one:\n%s", len(got), out)
	}
	for _, p := range s.Samples() {
		if p.Event == "metric:medium" && string(p.Payload) != string(got[0].Payload) {
			t.Errorf("replayed payload differs from the one pushed")
		}
	}
}

// Nothing is delivered, but collection goes on: the dump shows the samples.
func checkStillCollecting(t *testing.T, s *sink.Server, a *testkit.Agent) {
	t.Helper()
	if n := len(s.Samples()); n != 0 {
		t.Errorf("%d samples through a server that never upgrades", n)
	}
	b, _ := os.ReadFile(filepath.Join(a.DumpDir, "samples.log"))
	if n := strings.Count(string(b), "kind=fast"); n < 5 {
		t.Errorf("only %d fast samples collected in %s", n, hostileRun)
	}
}

func clipLog(s string) string {
	if len(s) > 4000 {
		return s[:2000] + "\n…\n" + s[len(s)-2000:]
	}
	return s
}
