package faultsuite

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
)

var (
	binary string
	root   string
)

func TestMain(m *testing.M) {
	root, _ = filepath.Abs("../..")
	dir, err := os.MkdirTemp("", "faultsuite")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "proxmox-agent")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/proxmox-agent").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is a running agent process.
type agent struct {
	t       *testing.T
	cmd     *exec.Cmd
	dumpDir string
	mu      sync.Mutex
	lines   []string
	exited  chan struct{}
}

type agentOpts struct {
	url     string
	token   string
	env     []string
	extra   string // more TOML
	noDump  bool
	dumpDir string
}

func startAgent(t *testing.T, o agentOpts) *agent {
	t.Helper()
	if o.token == "" {
		o.token = "tok"
	}
	a := &agent{t: t, dumpDir: o.dumpDir, exited: make(chan struct{})}
	if a.dumpDir == "" && !o.noDump {
		a.dumpDir = filepath.Join(t.TempDir(), "dump")
	}
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	body := fmt.Sprintf("server_url = %q\ntoken = %q\nhost_id = \"fault\"\nnode = \"pve1\"\n%s\n[intervals]\nfast_seconds = 1\nmedium_seconds = 3600\nslow_seconds = 3600\n[proc]\nroot = %q\n[reporter]\nreply_timeout_seconds = 1\n",
		o.url, o.token, o.extra, filepath.Join(root, "testdata/proc"))
	if a.dumpDir != "" {
		body += fmt.Sprintf("[debug]\ndump_dir = %q\n", a.dumpDir)
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(binary, "run", "--config", cfg)
	a.cmd.Env = append(append(os.Environ(), "PATH="+filepath.Join(root, "testdata/fakebin")+":"+os.Getenv("PATH")), o.env...)
	stderr, _ := a.cmd.StderrPipe()
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, sc.Text())
			a.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.exited
	})
	return a
}

func (a *agent) log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.lines, "\n")
}

func (a *agent) count(sub string) int { return strings.Count(a.log(), sub) }

func (a *agent) alive() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns the exit code and how long it took.
func (a *agent) stop() (int, time.Duration) {
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		return a.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(15 * time.Second):
		a.t.Fatalf("agent still running 15s after SIGTERM")
		return -1, 0
	}
}

// status reads /proc/<pid>/status for VmRSS and VmHWM in KiB.
func (a *agent) memKiB() (rss, hwm int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newSink(t *testing.T, addr string, f sink.Faults) *sink.Server {
	return sinktest.Start(t, addr, "tok", f)
}

func freeAddr(t *testing.T) string { return sinktest.FreeAddr(t) }

// payload is the part of a pushed sample the suite looks at.
type payload struct {
	CollectedAt string                     `json:"collected_at"`
	Errors      map[string]string          `json:"errors"`
	Data        map[string]json.RawMessage `json:"data"`
}

func decode(t *testing.T, ss []sink.Sample, event string) []payload {
	var out []payload
	for _, s := range ss {
		if s.Event != event {
			continue
		}
		var p payload
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			t.Fatalf("bad payload %s: %v", s.Payload, err)
		}
		out = append(out, p)
	}
	return out
}

var dumpRe = regexp.MustCompile(`(?s)===== [^ ]+ kind=(\w+) =====\n\{\n  "collected_at": "([^"]+)"`)

// dumped lists "kind collected_at" for every sample in the given dump files.
func dumped(files ...string) []string {
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range dumpRe.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	return out
}

// processes counts processes whose command line contains sub.
func processes(sub string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), sub) {
			n++
		}
	}
	return n
}

func killProcesses(sub string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), sub) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
