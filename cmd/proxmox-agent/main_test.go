package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

// TestMain builds the real binary once, for the tests that need signals.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proxmox-agent-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "proxmox-agent")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = "server_url = \"ws://127.0.0.1:9/socket/websocket\"\ntoken = \"secret-token\"\nhost_id = \"t1\"\n"

func TestCheckConfig(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		code     int
		contains []string
	}{
		{"good", goodConfig, 0, []string{"config ok", "host_id=t1"}},
		{"typo key", goodConfig + "[intervals]\nfast_second = 5\n", 1, []string{"line 5", "intervals.fast_second"}},
		{"bad url", "server_url = \"http://x/socket\"\ntoken = \"t\"\n", 1, []string{"line 1", "server_url"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check-config", "--config", writeConfig(t, c.body)}, &out, &errb)
			all := out.String() + errb.String()
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, all)
			}
			for _, s := range c.contains {
				if !strings.Contains(all, s) {
					t.Errorf("output lacks %q: %s", s, all)
				}
			}
			if strings.Contains(all, "secret-token") {
				t.Error("token printed")
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", filepath.Join(t.TempDir(), "missing.toml")}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "not found") {
		t.Fatalf("missing file: exit %d %s", code, errb.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"--no-such-flag"}, {"once", "extra"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "proxmox-agent ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

func TestOncePrintsEveryCadenceAndWritesDump(t *testing.T) {
	dumpDir := filepath.Join(t.TempDir(), "dump")
	var out, errb bytes.Buffer
	code := run([]string{"once", "--config", writeConfig(t, goodConfig), "--dump-dir", dumpDir}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc map[string]struct {
		CollectedAt string         `json:"collected_at"`
		Data        map[string]any `json:"data"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"fast", "medium", "slow"} {
		if doc[k].CollectedAt == "" || doc[k].Data == nil {
			t.Errorf("%s payload missing: %+v", k, doc[k])
		}
	}
	samples, err := os.ReadFile(filepath.Join(dumpDir, "samples.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fast", "medium", "slow"} {
		if !strings.Contains(string(samples), "kind="+k) {
			t.Errorf("samples.log lacks kind=%s", k)
		}
	}
}

// lineWatcher collects a process's stderr and lets a test wait for a line.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
	ch    chan struct{}
}

func watch(r io.Reader) *lineWatcher {
	w := &lineWatcher{ch: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *lineWatcher) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if w.has(sub) {
			return
		}
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("no log line with %q; got:\n%s", sub, w.all())
		}
	}
}

func (w *lineWatcher) has(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func (w *lineWatcher) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func startAgent(t *testing.T, args ...string) (*exec.Cmd, *lineWatcher) {
	t.Helper()
	return startAgentEnv(t, nil, args...)
}

func startAgentEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, *lineWatcher) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "AGENT_CONFIG="), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, watch(stderr)
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("still running %s after the signal", within)
		return -1
	}
}

func TestSIGTERMStopsCleanlyAndFlushesDump(t *testing.T) {
	dumpDir := filepath.Join(t.TempDir(), "dump")
	cmd, logs := startAgent(t, "run", "--config", writeConfig(t, goodConfig), "--dump-dir", dumpDir)
	logs.waitFor(t, "msg=starting")
	logs.waitFor(t, "diagnostic dump enabled")
	// SIGHUP reopens the dump files and the agent keeps running.
	cmd.Process.Signal(syscall.SIGHUP)
	logs.waitFor(t, "dump files reopened")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, logs.all())
	}
	if !logs.has("msg=stopped") {
		t.Errorf("no clean stop logged:\n%s", logs.all())
	}
	if strings.Contains(logs.all(), "secret-token") {
		t.Error("token in the log")
	}
	if _, err := os.Stat(filepath.Join(dumpDir, "samples.log")); err != nil {
		t.Error(err)
	}
}

func TestNoConfigStaysIdleUntilSignalled(t *testing.T) {
	cmd, logs := startAgent(t, "run", "--config", filepath.Join(t.TempDir(), "absent.toml"))
	logs.waitFor(t, "no config loaded")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("idle agent exit %d", code)
	}
}

func TestJSONLogFormat(t *testing.T) {
	cmd, logs := startAgent(t, "run", "--config", writeConfig(t, goodConfig), "--log-format", "json")
	logs.waitFor(t, `"msg":"starting"`)
	cmd.Process.Signal(syscall.SIGINT)
	waitExit(t, cmd, 5*time.Second)
	for _, l := range strings.Split(logs.all(), "\n") {
		if l != "" && !json.Valid([]byte(l)) {
			t.Errorf("non-JSON log line: %s", l)
		}
	}
}

// Under systemd (NOTIFY_SOCKET and WATCHDOG_USEC set), the agent sends
// READY=1 once the tree is up, WATCHDOG=1 while it is healthy, and
// STOPPING=1 on SIGTERM.
func TestSystemdNotifyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd, logs := startAgentEnv(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"},
		"run", "--config", writeConfig(t, goodConfig))
	want := func(m string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-msgs:
				if got == m {
					return
				}
			case <-deadline:
				t.Fatalf("no %s from the agent; log:\n%s", m, logs.all())
			}
		}
	}
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGTERM)
	want("STOPPING=1")
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// Idle (no config) under systemd: READY=1 and watchdog pings still go out,
// or systemd would kill an agent that is merely waiting to be configured.
func TestIdleUnderSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, _ := startAgentEnv(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"},
		"run", "--config", filepath.Join(t.TempDir(), "absent.toml"))
	seen := map[string]bool{}
	buf := make([]byte, 256)
	ln.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !seen["ready"] || !seen["watchdog"] {
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("got %v, then %v", seen, err)
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "READY=1") && strings.Contains(msg, "STATUS=idle") {
			seen["ready"] = true
		}
		if msg == "WATCHDOG=1" {
			seen["watchdog"] = true
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 5*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// help, -h and --help are a request, not a mistake: usage on stdout, exit 0.
// An unknown command still fails with exit 2 and usage on stderr.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"once", "--help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		if !strings.Contains(out.String(), "usage: proxmox-agent") || !strings.Contains(out.String(), "-config") {
			t.Errorf("%v: stdout lacks usage: %q", args, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errb.String())
	}
}
