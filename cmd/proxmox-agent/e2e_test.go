package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
)

// e2eAgent starts the real binary against url with the fake commands and
// proc root, a 1 s fast cadence and the dump on.
func e2eAgent(t *testing.T, url, token string) (*lineWatcherProc, string) {
	t.Helper()
	root, _ := filepath.Abs("../..")
	dumpDir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`server_url = %q
token = %q
host_id = "e2e"
node = "pve1"
[intervals]
fast_seconds = 1
medium_seconds = 3600
slow_seconds = 3600
[proc]
root = %q
[reporter]
reply_timeout_seconds = 1
`, url, token, filepath.Join(root, "testdata/proc")))
	cmd, logs := startAgentEnv(t, []string{"PATH=" + filepath.Join(root, "testdata/fakebin") + ":" + os.Getenv("PATH")},
		"run", "--config", cfg, "--dump-dir", dumpDir)
	return &lineWatcherProc{cmd: cmd.Process, logs: logs}, dumpDir
}

type lineWatcherProc struct {
	cmd  *os.Process
	logs *lineWatcher
}

func e2eSink(t *testing.T, addr, token string, f sink.Faults) *sink.Server {
	return sinktest.Start(t, addr, token, f)
}

func loopbackAddr(t *testing.T) string { return sinktest.FreeAddr(t) }

var dumpFastRe = regexp.MustCompile(`(?s)===== [^ ]+ kind=fast =====\n\{\n  "collected_at": "([^"]+)"`)

// dumped returns the collected_at of every fast sample in samples.log: the
// ground truth of what the agent collected.
func dumped(t *testing.T, dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "samples.log"))
	var out []string
	for _, m := range dumpFastRe.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

func received(t *testing.T, ss []sink.Sample) []string {
	var out []string
	for _, s := range ss {
		if s.Event != "metric:fast" {
			continue
		}
		var p struct {
			CollectedAt string `json:"collected_at"`
		}
		json.Unmarshal(s.Payload, &p)
		out = append(out, p.CollectedAt)
	}
	return out
}

// The sink is killed and restarted mid-stream: every fast sample the agent
// collected (per its own dump) reaches the sink, first arrivals in order,
// duplicates only for acks lost with a connection.
func TestE2ESinkRestartsLoseNothing(t *testing.T) {
	addr := loopbackAddr(t)
	url := "ws://" + addr + "/socket/websocket"
	s := e2eSink(t, addr, "tok", sink.Faults{})
	agent, dumpDir := e2eAgent(t, url, "tok")
	var got []sink.Sample
	for round := 0; round < 3; round++ {
		if _, err := s.WaitSamples(2, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		s.Stop()
		got = append(got, s.Samples()...)
		// Stay away long enough for samples to queue.
		before := len(dumped(t, dumpDir))
		deadline := time.Now().Add(20 * time.Second)
		for len(dumped(t, dumpDir)) < before+2 {
			if time.Now().After(deadline) {
				t.Fatal("agent stopped collecting while the server was away")
			}
			time.Sleep(50 * time.Millisecond)
		}
		s = e2eSink(t, addr, "tok", sink.Faults{})
	}
	// Let the last sink catch up with everything dumped so far.
	deadline := time.Now().Add(30 * time.Second)
	for {
		want := dumped(t, dumpDir)
		have := map[string]bool{}
		for _, c := range received(t, append(got, s.Samples()...)) {
			have[c] = true
		}
		missing := 0
		for _, c := range want[:len(want)-1] { // the newest may still be in flight
			if !have[c] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d collected samples never arrived", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	agent.cmd.Signal(syscall.SIGTERM)
	all := received(t, append(got, s.Samples()...))
	seen := map[string]bool{}
	var firsts []string
	for _, c := range all {
		if !seen[c] {
			seen[c] = true
			firsts = append(firsts, c)
		}
	}
	for i := 1; i < len(firsts); i++ {
		if firsts[i] < firsts[i-1] {
			t.Fatalf("out of order: %s after %s", firsts[i], firsts[i-1])
		}
	}
	t.Logf("%d fast samples collected, %d received (%d duplicates) across 3 sink restarts",
		len(dumped(t, dumpDir)), len(all), len(all)-len(firsts))
	if !agent.logs.has("connection lost") {
		t.Errorf("no connection-lost log line")
	}
}

func TestE2EBadTokenRetriedAndLoggedOnce(t *testing.T) {
	s := e2eSink(t, "127.0.0.1:0", "right", sink.Faults{})
	agent, _ := e2eAgent(t, s.URL(), "wrong")
	deadline := time.Now().Add(20 * time.Second)
	for s.Refused.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts", s.Refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	agent.cmd.Signal(syscall.SIGTERM)
	all := agent.logs.all()
	if n := strings.Count(all, "HTTP 403"); n != 1 {
		t.Errorf("403 logged %d times over %d attempts:\n%s", n, s.Refused.Load(), all)
	}
	if strings.Contains(all, "wrong") {
		t.Error("token in the log")
	}
}

func TestE2EServerThatNeverReplies(t *testing.T) {
	s := e2eSink(t, "127.0.0.1:0", "tok", sink.Faults{NoReply: true})
	agent, _ := e2eAgent(t, s.URL(), "tok")
	if _, err := s.WaitSamples(4, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	agent.logs.waitFor(t, "server does not reply to pushes")
	agent.cmd.Signal(syscall.SIGTERM)
}

// A server that refuses every join: the agent rejoins with backoff, logs
// the refusal once (not per attempt), and pushes nothing.
func TestE2ERefusedJoins(t *testing.T) {
	s := e2eSink(t, "127.0.0.1:0", "tok", sink.Faults{RefuseJoins: true})
	agent, _ := e2eAgent(t, s.URL(), "tok")
	deadline := time.Now().Add(20 * time.Second)
	for s.RefusedJoins.Load() < 3 { // 100 ms, then 500 ms between rejoins
		if time.Now().After(deadline) {
			t.Fatalf("only %d join attempts", s.RefusedJoins.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	agent.cmd.Signal(syscall.SIGTERM)
	if n := strings.Count(agent.logs.all(), "join refused"); n != 1 {
		t.Errorf("refusal logged %d times over %d attempts", n, s.RefusedJoins.Load())
	}
	if len(s.Samples()) != 0 {
		t.Error("samples accepted without a join")
	}
}
