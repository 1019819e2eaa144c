package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// TestMain lets testkit remove the agent binary it builds for the tests
// that need a real process (signals, systemd notify).
func TestMain(m *testing.M) { testkit.Main(m) }

// goodConfig turns the spool and the status socket off: their packaged
// paths are the machine's, not a test's.
const goodConfig = "server_url = \"ws://127.0.0.1:9/socket/websocket\"\ntoken = \"secret-token\"\nhost_id = \"t1\"\n" +
	"[spool]\ndir = \"\"\n[status]\nsocket = \"\"\n"

func TestCheckConfig(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		code     int
		contains []string
	}{
		{"good", goodConfig, 0, []string{"config ok", "host_id=t1"}},
		{"typo key", goodConfig + "[intervals]\nfast_second = 5\n", 1, []string{"line 9", "intervals.fast_second"}},
		{"bad url", "server_url = \"http://x/socket\"\ntoken = \"t\"\n", 1, []string{"line 1", "server_url"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check-config", "--config", testkit.WriteRawConfig(t, c.body)}, &out, &errb)
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
	code := run([]string{"once", "--config", testkit.WriteRawConfig(t, goodConfig), "--dump-dir", dumpDir}, &out, &errb)
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

// startAgent runs the binary with args and extra environment.
func startAgent(t *testing.T, env []string, args ...string) *testkit.Agent {
	t.Helper()
	return testkit.StartAgent(t, testkit.Options{Args: args, Env: env})
}

func TestSIGTERMStopsCleanlyAndFlushesDump(t *testing.T) {
	dumpDir := filepath.Join(t.TempDir(), "dump")
	a := startAgent(t, nil, "run", "--config", testkit.WriteRawConfig(t, goodConfig), "--dump-dir", dumpDir)
	a.WaitLog("msg=starting")
	a.WaitLog("diagnostic dump enabled")
	// SIGHUP reopens the dump files and the agent keeps running.
	a.Signal(syscall.SIGHUP)
	a.WaitLog("dump files reopened")
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(5 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, a.Log())
	}
	if !a.Has("msg=stopped") {
		t.Errorf("no clean stop logged:\n%s", a.Log())
	}
	if strings.Contains(a.Log(), "secret-token") {
		t.Error("token in the log")
	}
	if _, err := os.Stat(filepath.Join(dumpDir, "samples.log")); err != nil {
		t.Error(err)
	}
}

func TestNoConfigStaysIdleUntilSignalled(t *testing.T) {
	a := startAgent(t, nil, "run", "--config", filepath.Join(t.TempDir(), "absent.toml"))
	a.WaitLog("no config loaded")
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(5 * time.Second); code != 0 {
		t.Fatalf("idle agent exit %d", code)
	}
}

func TestJSONLogFormat(t *testing.T) {
	a := startAgent(t, nil, "run", "--config", testkit.WriteRawConfig(t, goodConfig), "--log-format", "json")
	a.WaitLog(`"msg":"starting"`)
	a.Signal(syscall.SIGINT)
	a.Wait(5 * time.Second)
	for _, l := range strings.Split(a.Log(), "\n") {
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
	a := startAgent(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"},
		"run", "--config", testkit.WriteRawConfig(t, goodConfig))
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
				t.Fatalf("no %s from the agent; log:\n%s", m, a.Log())
			}
		}
	}
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	a.Signal(syscall.SIGTERM)
	want("STOPPING=1")
	if code := a.Wait(5 * time.Second); code != 0 {
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
	a := startAgent(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"},
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
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(5 * time.Second); code != 0 {
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

// once --source with a name that is not a source is a usage error: exit 2,
// and the message lists the names an operator can use.
func TestOnceUnknownSource(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"once", "--source", "zpools", "--config", testkit.WriteRawConfig(t, goodConfig)}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "zpools") || !strings.Contains(errb.String(), "zfs_pools") || out.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
