package faultsuite

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// dumpedKeys lists the samples of a samples.log as "event collected_at".
func dumpedKeys(t *testing.T, path string) []string {
	t.Helper()
	fh, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	dump.ScanSamples(fh, func(s dump.LoggedSample) error {
		out = append(out, "metric:"+s.Kind+" "+dump.Timestamp(s.CollectedAt))
		return nil
	})
	return out
}

func fastDumped(t *testing.T, path string) int {
	n := 0
	for _, k := range dumpedKeys(t, path) {
		if strings.HasPrefix(k, "metric:fast ") {
			n++
		}
	}
	return n
}

// tearNewestCommit damages the newer of bbolt's two meta pages, as a power
// loss while it was being written would.
func tearNewestCommit(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.LittleEndian.Uint32(b[24:28]))
	txid := func(page int) uint64 { return binary.LittleEndian.Uint64(b[page*pageSize+64:]) }
	newer := 0
	if txid(1) > txid(0) {
		newer = 1
	}
	b[newer*pageSize+64] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The server is down; the agent is killed with SIGKILL twice, the second
// time with its newest spool commit torn by hand. When the server comes
// back, every sample the agent collected (per its own dump) reaches it, but
// for the one sample whose commit was torn, and first arrivals come in
// collected_at order.
func TestSpoolSurvivesSIGKILLAndATornCommit(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	cfg := testkit.Config{URL: "ws://" + addr + "/socket/websocket",
		DumpDir: filepath.Join(t.TempDir(), "dump"), SpoolDir: filepath.Join(t.TempDir(), "spool")}
	samplesLog := filepath.Join(cfg.DumpDir, "samples.log")
	var torn string
	for life := 0; life < 3; life++ {
		a := testkit.StartAgent(t, testkit.Options{Config: cfg})
		want := fastDumped(t, samplesLog) + 3
		testkit.Eventually(t, 20*time.Second, "three more fast samples collected", func() bool { return fastDumped(t, samplesLog) >= want })
		if life == 2 {
			break
		}
		a.Signal(syscall.SIGKILL)
		a.Wait(10 * time.Second)
		if life == 1 {
			keys := dumpedKeys(t, samplesLog)
			torn = keys[len(keys)-1]
			tearNewestCommit(t, filepath.Join(cfg.SpoolDir, spool.FileName))
		}
	}
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	var missing []string
	last := ""
	testkit.Eventually(t, 30*time.Second, "every dumped sample at the sink", func() bool {
		got := map[string]bool{}
		for _, k := range arrivals(t, s.Samples()) {
			got[k] = true
		}
		missing = missing[:0]
		for _, k := range dumpedKeys(t, samplesLog) {
			if !got[k] && k != torn {
				missing = append(missing, k)
			}
		}
		if now := fmt.Sprint(missing); len(s.Samples()) > 0 && now != last {
			last = now
			t.Logf("missing at the sink: %s", now) // for the failure's log
		}
		return len(missing) == 0
	})
	// Fast samples are collected one a second: their first arrivals must
	// come in the order they were collected.
	var firsts []string
	seen := map[string]bool{}
	for _, k := range arrivals(t, s.Samples()) {
		if !seen[k] && strings.HasPrefix(k, "metric:fast ") {
			firsts = append(firsts, k)
		}
		seen[k] = true
	}
	if !sort.StringsAreSorted(firsts) {
		t.Errorf("first arrivals out of collected_at order: %v", firsts)
	}
	t.Logf("%d samples collected over 3 lives (2 SIGKILLs), %d pushes received; the torn commit held %s (received anyway: %v)",
		len(dumpedKeys(t, samplesLog)), len(s.Samples()), torn, seen[torn])
}

// arrivals lists the samples a sink got, in arrival order, as
// "event collected_at".
func arrivals(t *testing.T, ss []sink.Sample) []string {
	t.Helper()
	var out []string
	for _, s := range ss {
		for _, p := range decode(t, []sink.Sample{s}, s.Event) {
			out = append(out, s.Event+" "+p.CollectedAt)
		}
	}
	return out
}
