package faultsuite

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// The sink is killed and restarted 20 times during a run. Nothing the
// agent collected (per its own dump) is lost, first arrivals come in order,
// the lost connection is logged, and the agent is back within its backoff
// schedule after each restart. In three rounds the sink stays away until
// the agent has collected two more samples, so queued samples must cross a
// restart; the other rounds keep the outages short and varied.
func TestSinkRestarted20Times(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	a := testkit.StartAgent(t, testkit.Options{Config: withDump(t, "ws://"+addr+"/socket/websocket")})
	samplesLog := filepath.Join(a.DumpDir, "samples.log")
	var got []sink.Sample
	var reconnects []time.Duration
	for i := 0; i < 20; i++ {
		if _, err := s.WaitSamples(1, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		s.Stop()
		got = append(got, s.Samples()...)
		if i%7 == 0 {
			before := fastCount(dumped(samplesLog))
			testkit.Eventually(t, 20*time.Second, "the agent to collect while the sink is away",
				func() bool { return fastCount(dumped(samplesLog)) >= before+2 })
		} else {
			time.Sleep(time.Duration(200+50*i%400) * time.Millisecond) // away for a varying while
		}
		up := time.Now()
		s = sinktest.Start(t, addr, "tok", sink.Faults{})
		testkit.Eventually(t, 15*time.Second, "reconnect", func() bool { return s.Connects.Load() > 0 })
		reconnects = append(reconnects, s.ConnectTimes()[0].Sub(up))
	}
	// Let the last sink catch up with everything collected so far.
	testkit.Eventually(t, 30*time.Second, "the queue to drain", func() bool {
		have := map[string]bool{}
		for _, p := range decode(t, append(got, s.Samples()...), "metric:fast") {
			have["fast "+p.CollectedAt] = true
		}
		want := dumped(samplesLog)
		for _, w := range want[:len(want)-1] { // the newest may still be in flight
			if strings.HasPrefix(w, "fast ") && !have[w] {
				return false
			}
		}
		return true
	})
	code, _ := a.Stop()
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !a.Has("connection lost") {
		t.Error("no connection-lost log line")
	}
	all := decode(t, append(got, s.Samples()...), "metric:fast")
	seen := map[string]int{}
	var firsts []string
	for _, p := range all {
		if seen[p.CollectedAt] == 0 {
			firsts = append(firsts, p.CollectedAt)
		}
		seen[p.CollectedAt]++
	}
	if !sort.StringsAreSorted(firsts) {
		t.Error("first arrivals out of order")
	}
	dups := len(all) - len(firsts)
	// A duplicate can only be a push whose ack died with a killed sink.
	if dups > 20 {
		t.Errorf("%d duplicates over 20 restarts", dups)
	}
	sort.Slice(reconnects, func(i, j int) bool { return reconnects[i] < reconnects[j] })
	t.Logf("collected %d fast samples, received %d (%d duplicates, from acks lost with a killed sink)", len(firsts), len(all), dups)
	// A killed sink refuses connections: the agent waits a random time
	// within its widest window, 1 s in the suite (testkit's
	// reconnect_max_seconds; 30 s by default), plus the dial's time.
	t.Logf("sink up -> agent connected: min %s, median %s, max %s (reconnect window 1 s)",
		reconnects[0].Round(time.Millisecond), reconnects[len(reconnects)/2].Round(time.Millisecond), reconnects[len(reconnects)-1].Round(time.Millisecond))
	if max := reconnects[len(reconnects)-1]; max > time.Second+2*time.Second {
		t.Errorf("a reconnect took %s, beyond the 1 s reconnect window", max)
	}
}

// A zpool that cannot be reaped (it leaves the process group and holds its
// output open, as one in D state does): fast samples keep coming on time
// with an error entry, and never more than one stuck zpool exists.
func TestStuckZpool(t *testing.T) {
	defer killProcesses("fakezpool-stuck")
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	cfg := withDump(t, s.URL())
	cfg.Extra = "[timeouts]\nzpool_seconds = 1\n"
	a := testkit.StartAgent(t, testkit.Options{Config: cfg, Env: []string{"FAKE_ZPOOL_HANG=unkillable", runMarker}})
	maxStuck := 0
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if n := processes("fakezpool-stuck"); n > maxStuck {
			maxStuck = n
		}
		time.Sleep(50 * time.Millisecond)
	}
	ps := decode(t, s.Samples(), "metric:fast")
	if len(ps) < 5 {
		t.Fatalf("only %d fast samples in 8s at a 1s cadence", len(ps))
	}
	var gaps []time.Duration
	stuckReported := 0
	for i, p := range ps {
		if !strings.Contains(p.Errors["zfs_pools"], "timed out") && !strings.Contains(p.Errors["zfs_pools"], "still stuck") {
			t.Errorf("sample %d: zfs_pools error %q", i, p.Errors["zfs_pools"])
		}
		if strings.Contains(p.Errors["zfs_pools"], "still stuck") {
			stuckReported++
		}
		if _, ok := p.Data["host"]; !ok {
			t.Errorf("sample %d lacks host", i)
		}
		if i > 0 {
			a, _ := time.Parse(time.RFC3339, ps[i-1].CollectedAt)
			b, _ := time.Parse(time.RFC3339, p.CollectedAt)
			gaps = append(gaps, b.Sub(a))
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	if maxStuck != 1 {
		t.Errorf("max stuck zpool processes = %d, want exactly 1", maxStuck)
	}
	// With a 1 s cadence and a 1 s zpool timeout, the first stuck round
	// overruns one tick (a counted skip); after that zpool is refused at once
	// ("still stuck") and every tick is on time.
	late := 0
	for _, g := range gaps {
		if g > 1500*time.Millisecond {
			late++
		}
	}
	if late > 1 || gaps[len(gaps)-1] > 2500*time.Millisecond {
		t.Errorf("fast samples late: gaps %v", gaps)
	}
	t.Logf("%d fast samples in 8s, gaps %s..%s, %d reported 'previous run still stuck', at most %d stuck zpool",
		len(ps), gaps[0], gaps[len(gaps)-1], stuckReported, maxStuck)
	a.Stop()
}

// zpool printing garbage, 50 MB, or failing: error entries, bounded memory,
// no crash.
func TestHostileZpoolOutput(t *testing.T) {
	for _, mode := range []string{"garbage", "huge", "fail"} {
		t.Run(mode, func(t *testing.T) {
			s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
			a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: s.URL()}, Env: []string{"FAKE_ZPOOL_MODE=" + mode}})
			got, err := s.WaitSamples(4, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, hwm := a.MemKiB()
			for _, p := range decode(t, got, "metric:fast") {
				if p.Errors["zfs_pools"] == "" {
					t.Errorf("no error entry: %+v", p.Errors)
				}
			}
			if !a.Alive() {
				t.Fatal("agent died")
			}
			msg := decode(t, got, "metric:fast")[0].Errors["zfs_pools"]
			t.Logf("%s: error entry %q; peak RSS %d MiB", mode, msg, hwm/1024)
			if hwm > 200*1024 {
				t.Errorf("peak RSS %d MiB", hwm/1024)
			}
			a.Stop()
		})
	}
}

// The dump directory on a full disk, then removed while running: warnings,
// rate-limited, and the samples keep flowing.
func TestDumpDiskFullAndRemoved(t *testing.T) {
	// A real full disk: a 64 KiB tmpfs, nearly filled. (A symlink to
	// /dev/full no longer works: the writer refuses planted links.)
	dir := filepath.Join(t.TempDir(), "dump")
	os.MkdirAll(dir, 0o750)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs for a full disk (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 60<<10), 0o600)
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: s.URL(), DumpDir: dir}})
	if _, err := s.WaitSamples(4, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// One warning per file when it starts failing, not one per round.
	if n := a.Count("dump write failed"); n < 1 || n > 2 {
		t.Errorf("%d 'dump write failed' warnings for a full disk over 4 rounds, want 1 per file", n)
	}
	os.Remove(filepath.Join(dir, "commands.log"))
	os.Remove(filepath.Join(dir, "samples.log"))
	before := len(s.Samples())
	if _, err := s.WaitSamples(before+3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if !a.Alive() {
		t.Fatal("agent died")
	}
	code, _ := a.Stop()
	t.Logf("full disk: %d warning(s); files removed: samples kept flowing (%d pushed); exit %d", a.Count("dump write failed"), len(s.Samples()), code)
	if code != 0 {
		t.Errorf("exit %d", code)
	}
}

// logrotate-style rename then SIGHUP: new entries go to a new file, and
// every sample pushed is in one of the two files.
func TestSIGHUPRotation(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	a := testkit.StartAgent(t, testkit.Options{Config: withDump(t, s.URL())})
	if _, err := s.WaitSamples(2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	cur, old := filepath.Join(a.DumpDir, "samples.log"), filepath.Join(a.DumpDir, "samples.log.1")
	if err := os.Rename(cur, old); err != nil {
		t.Fatal(err)
	}
	a.Signal(syscall.SIGHUP)
	testkit.Eventually(t, 10*time.Second, "a new samples.log", func() bool { return len(dumped(cur)) >= 2 })
	code, _ := a.Stop()
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	inDump := map[string]bool{}
	for _, d := range dumped(old, cur) {
		inDump[d] = true
	}
	for _, p := range decode(t, s.Samples(), "metric:fast") {
		if !inDump["fast "+p.CollectedAt] {
			t.Errorf("pushed sample %s in neither dump file", p.CollectedAt)
		}
	}
	t.Logf("rotated: %d entries in the old file, %d in the new; %d pushed", len(dumped(old)), len(dumped(cur)), len(s.Samples()))
}

// SIGTERM while a push waits for its reply: exit 0 within 5 s, dump flushed.
func TestSIGTERMDuringPush(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{ReplyDelay: 3 * time.Second})
	a := testkit.StartAgent(t, testkit.Options{Config: withDump(t, s.URL())})
	if _, err := s.WaitSamples(1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	code, took := a.Stop()
	if code != 0 || took > 5*time.Second {
		t.Fatalf("exit %d after %s", code, took)
	}
	b, _ := os.ReadFile(filepath.Join(a.DumpDir, "samples.log"))
	entries := strings.Split(string(b), "===== ")[1:]
	last := entries[len(entries)-1]
	var v any
	body := last[strings.Index(last, "\n")+1:]
	if !strings.HasSuffix(body, "}\n\n") || json.Unmarshal([]byte(body), &v) != nil {
		t.Errorf("last dump entry torn: %q", body)
	}
	t.Logf("SIGTERM with a push in flight: exit %d in %s; %d dump entries, last one whole", code, took.Round(time.Millisecond), len(entries))
}

// Malformed and oversized frames from the server: the connection is
// dropped and re-established, and the process survives.
func TestMalformedAndOversizedFrames(t *testing.T) {
	for name, f := range map[string]sink.Faults{"malformed": {MalformedAfter: 2}, "oversized": {OversizedAfter: 2}} {
		t.Run(name, func(t *testing.T) {
			s := sinktest.Start(t, "127.0.0.1:0", "tok", f)
			a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: s.URL()}})
			testkit.Eventually(t, 20*time.Second, "three connections", func() bool { return s.Connects.Load() >= 3 })
			if !a.Alive() {
				t.Fatal("agent died")
			}
			if len(s.Samples()) == 0 {
				t.Error("nothing delivered between the bad frames")
			}
			t.Logf("%s: %d connections, %d samples delivered, 'connection lost' logged %d times", name, s.Connects.Load(), len(s.Samples()), a.Count("connection lost"))
			a.Stop()
		})
	}
}

// 200 clients against one sink that restarts once: their reconnects spread
// over time thanks to jitter instead of arriving as one spike. The window
// is cut to 5 s to keep the suite short; phoenix.TestFleetOfClientsRejoinsSpreadOut holds
// 1,000 clients to the default 30 s one on a fake clock.
func TestReconnectStorm200(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	var clients []*phoenix.Client
	for i := 0; i < 200; i++ {
		c, err := phoenix.New(phoenix.Options{URL: "ws://" + addr + "/socket/websocket", Token: "tok",
			Topic: fmt.Sprintf("agent:storm-%d", i), Handler: nopHandler{}, Backoff: phoenix.Backoff{Max: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	testkit.Eventually(t, 30*time.Second, "200 connections", func() bool { return s.Connects.Load() >= 200 })
	s.Stop()
	restart := time.Now()
	s = sinktest.Start(t, addr, "tok", sink.Faults{})
	testkit.Eventually(t, 30*time.Second, "200 reconnections", func() bool { return s.Connects.Load() >= 200 })
	const bucket = 100 * time.Millisecond
	hist := map[int]int{}
	maxB, maxN := 0, 0
	for _, at := range s.ConnectTimes() {
		b := int(at.Sub(restart) / bucket)
		hist[b]++
		if hist[b] > maxN {
			maxN = hist[b]
		}
		if b > maxB {
			maxB = b
		}
	}
	var sb strings.Builder
	for b := 0; b <= maxB; b++ {
		fmt.Fprintf(&sb, "\n  %4d-%4d ms %3d %s", b*100, (b+1)*100, hist[b], strings.Repeat("#", hist[b]))
	}
	t.Logf("reconnects after the sink restart, per 100 ms:%s", sb.String())
	if maxN > 100 {
		t.Errorf("%d of 200 reconnects in one 100 ms bucket: no spread", maxN)
	}
}

// fastCount is how many entries of dumped are fast samples.
func fastCount(entries []string) int {
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e, "fast ") {
			n++
		}
	}
	return n
}

type nopHandler struct{}

func (nopHandler) Connected(uint64)                      {}
func (nopHandler) Joined(uint64)                         {}
func (nopHandler) JoinRefused(uint64, string)            {}
func (nopHandler) Left(uint64, string)                   {}
func (nopHandler) Disconnected(uint64, error)            {}
func (nopHandler) Written(uint64, string)                {}
func (nopHandler) Replied(uint64, string, phoenix.Reply) {}
