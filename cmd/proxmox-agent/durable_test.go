package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// received lists every sample a sink got as "event collected_at".
func received(t *testing.T, ss []sink.Sample) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range ss {
		var p struct {
			CollectedAt string `json:"collected_at"`
		}
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out[s.Event+" "+p.CollectedAt]++
	}
	return out
}

// dumpedSamples lists every sample of a samples.log as "event collected_at".
func dumpedSamples(t *testing.T, path string) []string {
	t.Helper()
	fh, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // not written yet
	}
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	if _, err := dump.ScanSamples(fh, func(s dump.LoggedSample) error {
		out = append(out, "metric:"+s.Kind+" "+dump.Timestamp(s.CollectedAt))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// An outage longer than a tiny memory queue (no spool) loses samples; the
// dump still has them, and replay delivers every one through the same
// client and delivery rules, then exits 0 with a summary.
func TestReplayDeliversWhatATinyQueueDropped(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	dir := t.TempDir()
	a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{
		URL: "ws://" + addr + "/socket/websocket", DumpDir: dir, SpoolDir: "-", QueueMaxSamples: 2}})
	samplesLog := filepath.Join(dir, "samples.log")
	testkit.Eventually(t, 20*time.Second, "8 samples collected while the server is away", func() bool {
		return len(dumpedSamples(t, samplesLog)) >= 8
	})
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	if _, err := s.WaitSamples(2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
	all := dumpedSamples(t, samplesLog)
	before := received(t, s.Samples())
	if len(before) >= len(all) {
		t.Fatalf("nothing was dropped (%d of %d arrived): the test needs a loss", len(before), len(all))
	}
	// A torn last entry, as when the file is copied while being written.
	fh, _ := os.OpenFile(samplesLog, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("===== 2026-11-29T10:00:00.000Z kind=fast =====\n{\n  \"collected_at\": \"2026-11-29T10:")
	fh.Close()

	cfg := testkit.WriteConfig(t, testkit.Config{URL: s.URL(), SpoolDir: "-"})
	var out, errb bytes.Buffer
	code := run([]string{"replay", samplesLog, "--config", cfg}, &out, &errb)
	if code != 0 {
		t.Fatalf("replay exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	got := received(t, s.Samples())
	for _, k := range all {
		if got[k] == 0 {
			t.Errorf("%s is in the dump but never reached the server", k)
		}
	}
	if want := fmt.Sprintf("replayed %d of %d", len(all), len(all)); !strings.Contains(out.String(), want) {
		t.Errorf("summary: %s", out.String())
	}
	if !strings.Contains(errb.String(), "cut short") {
		t.Errorf("no note about the torn entry: %s", errb.String())
	}
}

// --dry-run lists what --since/--until select and pushes nothing; a bad
// time is a usage error.
func TestReplayDryRunAndWindow(t *testing.T) {
	var buf []byte
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		ts := at.Add(time.Duration(i) * time.Minute)
		buf = dump.AppendSample(buf, &dump.SampleRecord{At: ts, Kind: "fast",
			Payload: []byte(`{"collected_at": "` + dump.Timestamp(ts) + `", "data": {}}`)})
	}
	file := filepath.Join(t.TempDir(), "samples.log")
	os.WriteFile(file, buf, 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"replay", "--dry-run", "--since", "2026-11-29T10:01:00Z", "--until", "2026-11-29T10:03:00Z", file,
		"--config", testkit.WriteRawConfig(t, goodConfig)}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "2 samples would be pushed") ||
		!strings.Contains(out.String(), "2026-11-29T10:01:00.000Z") || strings.Contains(out.String(), "10:03:00") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"replay", "--since", "yesterday", file}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "RFC 3339") {
		t.Fatalf("bad --since: exit %d %s", code, errb.String())
	}
	if code := run([]string{"replay"}, &out, &errb); code != 2 {
		t.Fatalf("no file: exit %d", code)
	}
	// A careless argument: a device that never ends, a FIFO that blocks.
	fifo := filepath.Join(t.TempDir(), "fifo")
	syscall.Mkfifo(fifo, 0o600)
	for _, bad := range []string{"/dev/zero", fifo} {
		errb.Reset()
		if code := run([]string{"replay", "--dry-run", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not a regular file") {
			t.Fatalf("%s: exit %d %s", bad, code, errb.String())
		}
	}
}

// status against a running agent: the session, the queue and every
// source; --json for scripts; exit 1 with a clear message without an agent.
func TestStatusOfARunningAgent(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: s.URL()}})
	if _, err := s.WaitSamples(3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	testkit.Eventually(t, 10*time.Second, "status answers with a joined session", func() bool {
		out.Reset()
		errb.Reset()
		return run([]string{"status", "--socket", a.StatusSocket}, &out, &errb) == 0 && strings.Contains(out.String(), "joined for")
	})
	for _, want := range []string{"ws://127.0.0.1:", " samples, ", "spool " + filepath.Join(a.SpoolDir, "spool.db"),
		"fast", "host", "zfs_pools", "guests"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"status", "--json", "--socket", a.StatusSocket}, &out, &errb); code != 0 {
		t.Fatalf("--json exit %d: %s", code, errb.String())
	}
	var d status.Doc
	if err := json.Unmarshal(out.Bytes(), &d); err != nil || !d.Joined || len(d.Cadences) != 3 || len(d.Sources) == 0 || d.PID != a.Pid() {
		t.Fatalf("--json: %v %+v", err, d)
	}
	a.Stop()
	errb.Reset()
	if code := run([]string{"status", "--socket", a.StatusSocket}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no agent is running") {
		t.Fatalf("no agent: exit %d %s", code, errb.String())
	}
}
