package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// fastKeys returns the data keys of the fast samples a sink holds from
// index from on.
func fastKeys(t *testing.T, ss []sink.Sample, from int) []map[string]bool {
	t.Helper()
	var out []map[string]bool
	for _, s := range ss[from:] {
		if s.Event != "metric:fast" {
			continue
		}
		var p struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for k := range p.Data {
			keys[k] = true
		}
		out = append(out, keys)
	}
	return out
}

// reloadRig is an agent on a config file the test rewrites, with a status
// socket to ask.
type reloadRig struct {
	t      *testing.T
	a      *testkit.Agent
	path   string
	socket string
	base   testkit.Config
}

func startReloadRig(t *testing.T, url string) *reloadRig {
	sockDir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	r := &reloadRig{t: t, socket: filepath.Join(sockDir, "s.sock")}
	r.base = testkit.Config{URL: url, StatusSocket: r.socket, SpoolDir: filepath.Join(t.TempDir(), "spool")}
	r.path = testkit.WriteConfig(t, r.base)
	r.a = testkit.StartAgent(t, testkit.Options{Args: []string{"run", "--config", r.path}})
	return r
}

// rewrite puts c's config in the agent's file.
func (r *reloadRig) rewrite(body string) {
	r.t.Helper()
	if err := os.WriteFile(r.path, []byte(body), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *reloadRig) configOf(c testkit.Config) string {
	return mustRead(r.t, testkit.WriteConfig(r.t, c))
}

// waitFast waits for n fast samples at index from on, and returns them.
func waitFast(t *testing.T, s *sink.Server, from, n int) []map[string]bool {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, "fast samples", func() bool {
		return len(fastKeys(t, s.Samples(), from)) >= n
	})
	return fastKeys(t, s.Samples(), from)
}

// SIGHUP re-reads the config. A valid one applies at the next round (a
// source switched off disappears, a new server URL is connected to); an
// invalid one changes nothing, is logged with its line and shown by status.
func TestReloadOnSIGHUP(t *testing.T) {
	addrA, addrB := sinktest.FreeAddr(t), sinktest.FreeAddr(t)
	a1 := sinktest.Start(t, addrA, "tok", sink.Faults{})
	r := startReloadRig(t, "ws://"+addrA+"/socket/websocket")
	if keys := waitFast(t, a1, 0, 1); !keys[0]["host"] {
		t.Fatalf("before reload: %v", keys)
	}

	// 1. Valid: host switched off.
	off := r.base
	off.Extra = "[sources]\nhost = false\n"
	r.rewrite(r.configOf(off))
	r.a.Signal(syscall.SIGHUP)
	r.a.WaitLog("config reloaded")
	// A round that started before the reload may still land after the log
	// line: the rounds after it are the ones the reload governs.
	mark := len(a1.Samples())
	for i, keys := range waitFast(t, a1, mark, 3)[1:] {
		if keys["host"] || !keys["agent"] {
			t.Errorf("fast sample %d after the reload: %v", i, keys)
		}
	}

	// 2. Invalid: nothing changes, the error names the line, status shows it.
	r.rewrite(strings.Replace(mustRead(t, r.path), "fast_seconds = 1", "fast_seconds = 0", 1))
	r.a.Signal(syscall.SIGHUP)
	r.a.WaitLog("config reload failed")
	if !r.a.Has("intervals.fast_seconds") || !r.a.Has("line ") {
		t.Errorf("the reload error does not name key and line:\n%s", r.a.Log())
	}
	d, err := status.Fetch(r.socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Config.ReloadError, "intervals.fast_seconds") || d.Config.Path != r.path || d.Config.LoadedAt.IsZero() {
		t.Errorf("status config: %+v", d.Config)
	}
	waitFast(t, a1, len(a1.Samples()), 2) // samples go on at the old interval

	// 3. A new server: the agent reconnects there, and status no longer
	// shows the failed reload.
	b := sinktest.Start(t, addrB, "tok", sink.Faults{})
	moved := off
	moved.URL = "ws://" + addrB + "/socket/websocket"
	r.rewrite(r.configOf(moved))
	r.a.Signal(syscall.SIGHUP)
	if _, err := b.WaitSamples(2, 20*time.Second); err != nil {
		t.Fatalf("the new server got nothing: %v\n%s", err, r.a.Log())
	}
	if d, err := status.Fetch(r.socket, 5*time.Second); err != nil || d.Config.ReloadError != "" || !strings.Contains(d.Server, addrB) {
		t.Errorf("status after a good reload: %+v %v", d.Config, err)
	}
	if code, _ := r.a.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An agent idling on a config it could not load starts once the file is
// fixed and SIGHUP is sent, without a restart.
func TestIdleAgentStartsOnReload(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	good := testkit.WriteConfig(t, testkit.Config{URL: "ws://" + addr + "/socket/websocket"})
	body := mustRead(t, good)
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte(body+"fast_secondz = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := testkit.StartAgent(t, testkit.Options{Args: []string{"run", "--config", path}})
	a.WaitLog("running idle")
	a.Signal(syscall.SIGHUP)
	a.WaitLog("still idle")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Signal(syscall.SIGHUP)
	if _, err := s.WaitSamples(1, 20*time.Second); err != nil {
		t.Fatalf("no sample after the fixed config was reloaded: %v\n%s", err, a.Log())
	}
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
