package faultsuite

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// missingAtSink lists the dumped samples (of the given dump keys) the
// sink has not received.
func missingAtSink(t *testing.T, s *sink.Server, keys []string) []string {
	got := map[string]bool{}
	for _, k := range arrivals(t, s.Samples()) {
		got[k] = true
	}
	var missing []string
	for _, k := range keys {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	return missing
}

// Spool removed while running: the server is down and an operator (or a
// tmpfiles rule) removes spool.db under the running agent. The agent
// notices at its next commit, writes what it held to a new spool.db, logs
// it once, and goes on; after a restart with the server back, every
// sample it collected arrives (before: those collected since the removal
// were lost, 22 of 33).
func TestSpoolRemovedWhileRunning(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	cfg := testkit.Config{URL: "ws://" + addr + "/socket/websocket",
		DumpDir: filepath.Join(t.TempDir(), "dump"), SpoolDir: filepath.Join(t.TempDir(), "spool")}
	samplesLog := filepath.Join(cfg.DumpDir, "samples.log")
	a := testkit.StartAgent(t, testkit.Options{Config: cfg})
	testkit.Eventually(t, 20*time.Second, "three fast samples collected", func() bool { return fastDumped(t, samplesLog) >= 3 })
	if err := os.Remove(filepath.Join(cfg.SpoolDir, spool.FileName)); err != nil {
		t.Fatal(err)
	}
	removedAt := len(dumpedKeys(t, samplesLog))
	want := fastDumped(t, samplesLog) + 5
	testkit.Eventually(t, 20*time.Second, "five more fast samples collected", func() bool { return fastDumped(t, samplesLog) >= want })
	var doc status.Doc
	testkit.Eventually(t, 10*time.Second, "status counts the rewrite", func() bool {
		d, err := status.Fetch(a.StatusSocket, 2*time.Second)
		doc = d
		return err == nil && doc.Queue.Rewritten == 1
	})
	a.Stop()
	if n := a.Count("spool file removed while the agent runs"); n != 1 {
		t.Errorf("%d log lines about the removal, want 1:\n%s", n, a.Log())
	}
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	testkit.StartAgent(t, testkit.Options{Config: cfg})
	keys := dumpedKeys(t, samplesLog)
	var missing []string
	testkit.Eventually(t, 30*time.Second, "every sample collected before the restart at the sink", func() bool {
		missing = missingAtSink(t, s, keys)
		return len(missing) == 0
	})
	t.Logf("%d samples collected (%d before the removal, %d after), %d delivered after the restart, 0 lost",
		len(keys), removedAt, len(keys)-removedAt, len(keys)-len(missing))
}

// Damaged spool, salvaged: the agent is stopped with samples spooled (the
// server down), and spool.db is damaged (both meta pages zeroed, as a
// disk or a careless dd would). The next start moves it aside with one
// WARN line naming the file, the damage, where it is kept and how many
// records it still holds, and status shows the kept file; spool.Salvage
// reads the records back from it, read-only, and replayed they reach
// the server: nothing the first life collected is lost.
func TestDamagedSpoolSalvaged(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	cfg := testkit.Config{URL: "ws://" + addr + "/socket/websocket",
		DumpDir: filepath.Join(t.TempDir(), "dump"), SpoolDir: filepath.Join(t.TempDir(), "spool")}
	samplesLog := filepath.Join(cfg.DumpDir, "samples.log")
	a := testkit.StartAgent(t, testkit.Options{Config: cfg})
	testkit.Eventually(t, 30*time.Second, "eight fast samples collected", func() bool { return fastDumped(t, samplesLog) >= 8 })
	a.Stop()
	keys := dumpedKeys(t, samplesLog)
	path := filepath.Join(cfg.SpoolDir, spool.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[:min(len(b), 2*os.Getpagesize())]) // both meta pages: bbolt's page is the OS's
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	a = testkit.StartAgent(t, testkit.Options{Config: cfg})
	a.WaitLog("spool file damaged")
	var doc status.Doc
	testkit.Eventually(t, 10*time.Second, "status shows the kept file", func() bool {
		d, err := status.Fetch(a.StatusSocket, 2*time.Second)
		doc = d
		return err == nil && len(doc.Queue.Kept) == 1
	})
	a.Stop()
	kept, _ := filepath.Glob(path + ".corrupt-*")
	if len(kept) != 1 || !strings.HasPrefix(doc.Queue.Kept[0], kept[0]) || doc.Queue.Quarantined != 1 {
		t.Fatalf("kept %v, status %+v", kept, doc.Queue)
	}
	line := ""
	for _, l := range strings.Split(a.Log(), "\n") {
		if strings.Contains(l, "spool file damaged") {
			line = l
		}
	}
	for _, want := range []string{"WARN", "file=" + path, "kept=" + kept[0], "records_readable=", "replay --spool"} {
		if !strings.Contains(line, want) {
			t.Errorf("the WARN line lacks %q: %s", want, line)
		}
	}

	recs, rep, err := spool.Salvage(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	c, err := config.Load(testkit.WriteConfig(t, cfg), config.ProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := supervisor.Replay(supervisor.ReplayOptions{Config: c, Log: slog.New(slog.DiscardHandler), Total: len(recs),
		Samples: func(yield func(dump.LoggedSample) error) error {
			for _, r := range recs {
				if err := yield(dump.LoggedSample{Kind: r.Kind, CollectedAt: r.CollectedAt, Payload: r.Payload}); err != nil {
					return err
				}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if missing := missingAtSink(t, s, keys); len(missing) != 0 {
		t.Fatalf("%d of %d collected samples not delivered after the salvage: %v", len(missing), len(keys), missing)
	}
	t.Logf("%d samples collected, spool damaged (meta pages zeroed): salvaged %d (%d by page scan, %d unreadable), delivered %d, 0 lost; WARN line: %s",
		len(keys), rep.Readable, rep.Scanned, rep.Unreadable, sum.Delivered, line)
}
