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

// SIGHUP re-reads the config. A valid one applies at the next round (a
// source switched off disappears, a new server URL is connected to); an
// invalid one changes nothing, is logged with its line and shown by status.
func TestReloadOnSIGHUP(t *testing.T) {
	addrA, addrB := sinktest.FreeAddr(t), sinktest.FreeAddr(t)
	a1 := sinktest.Start(t, addrA, "tok", sink.Faults{})
	sockDir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	socket := filepath.Join(sockDir, "s.sock")
	base := testkit.Config{URL: "ws://" + addrA + "/socket/websocket", StatusSocket: socket, SpoolDir: filepath.Join(t.TempDir(), "spool")}
	path := testkit.WriteConfig(t, base)
	a := testkit.StartAgent(t, testkit.Options{Args: []string{"run", "--config", path}})
	if _, err := a1.WaitSamples(2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if keys := fastKeys(t, a1.Samples(), 0); len(keys) == 0 || !keys[0]["host"] {
		t.Fatalf("before reload: %v", keys)
	}

	// 1. Valid: host switched off.
	rewrite := func(c testkit.Config) {
		t.Helper()
		body, err := os.ReadFile(testkit.WriteConfig(t, c))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	off := base
	off.Extra = "[sources]\nhost = false\n"
	rewrite(off)
	a.Signal(syscall.SIGHUP)
	a.WaitLog("config reloaded")
	mark := len(a1.Samples())
	testkit.Eventually(t, 20*time.Second, "two fast samples after the reload", func() bool {
		return len(fastKeys(t, a1.Samples(), mark)) >= 2
	})
	for i, keys := range fastKeys(t, a1.Samples(), mark) {
		if keys["host"] {
			t.Errorf("fast sample %d after the reload still has host: %v", i, keys)
		}
		if !keys["agent"] {
			t.Errorf("fast sample %d lost agent: %v", i, keys)
		}
	}

	// 2. Invalid: nothing changes, the error names the line, status shows it.
	if err := os.WriteFile(path, []byte(strings.Replace(mustRead(t, path), "fast_seconds = 1", "fast_seconds = 0", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Signal(syscall.SIGHUP)
	a.WaitLog("config reload failed")
	if !a.Has("intervals.fast_seconds") || !a.Has("line ") {
		t.Errorf("the reload error does not name key and line:\n%s", a.Log())
	}
	d, err := status.Fetch(socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Config.ReloadError, "intervals.fast_seconds") || d.Config.Path != path || d.Config.LoadedAt.IsZero() {
		t.Errorf("status config: %+v", d.Config)
	}
	mark = len(a1.Samples())
	testkit.Eventually(t, 20*time.Second, "samples go on at the old interval", func() bool {
		return len(fastKeys(t, a1.Samples(), mark)) >= 2
	})

	// 3. A new server: the agent reconnects there, and status no longer
	// shows the failed reload.
	b := sinktest.Start(t, addrB, "tok", sink.Faults{})
	moved := off
	moved.URL = "ws://" + addrB + "/socket/websocket"
	rewrite(moved)
	a.Signal(syscall.SIGHUP)
	if _, err := b.WaitSamples(2, 20*time.Second); err != nil {
		t.Fatalf("the new server got nothing: %v\n%s", err, a.Log())
	}
	if d, err := status.Fetch(socket, 5*time.Second); err != nil || d.Config.ReloadError != "" || !strings.Contains(d.Server, addrB) {
		t.Errorf("status after a good reload: %+v %v", d.Config, err)
	}
	if code, _ := a.Stop(); code != 0 {
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
