package collect

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// The fixture host of ../../testdata/host/pve9 (see its README): a PVE 9
// host on kernel 6.14 with a bond, bridges, a VLAN, four hwmon chips,
// EDAC and KSM.
const (
	hostProc = "../../testdata/host/pve9/proc"
	hostSys  = "../../testdata/host/pve9/sys"
)

// procCopy is a writable copy of the fixture proc root with files
// replaced: the second snapshot of a rate test.
func procCopy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(hostProc)); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, 0o644)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t atomic.Pointer[time.Time] }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.set(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	return c
}
func (c *fakeClock) set(t time.Time)     { c.t.Store(&t) }
func (c *fakeClock) add(d time.Duration) { c.set(c.Now().Add(d)) }
func (c *fakeClock) Now() time.Time      { return *c.t.Load() }
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func netDev(lines ...string) map[string]string {
	return map[string]string{"net/dev": netDevHeader + strings.Join(lines, "\n") + "\n"}
}

const netDevHeader = "Inter-|   Receive                                                |  Transmit\n" +
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"

func netByName(t *testing.T, v any) map[string]NetIf {
	t.Helper()
	m := map[string]NetIf{}
	for _, n := range v.([]NetIf) {
		m[n.Name] = n
	}
	return m
}

func TestNetFixture(t *testing.T) {
	n := &Net{Proc: hostProc, Sys: hostSys, Exclude: config.DefaultNetExclude, Now: newClock().Now}
	v, err := n.Collect(context.Background())
	must(t, err)
	var names []string
	for _, i := range v.([]NetIf) {
		names = append(names, i.Name)
	}
	if strings.Join(names, " ") != "bond0 eno1 eno2 vmbr0 vmbr0.20" {
		t.Fatalf("interfaces %v", names)
	}
	m := netByName(t, v)
	for name, want := range map[string]string{
		"eno1":     `"kind":"physical","operstate":"up","speed_mbps":1000,"mtu":1500,"master":"bond0","rx_bytes_per_s":null,"tx_bytes_per_s":null,"rx_packets_per_s":null,"tx_packets_per_s":null,"rx_errors":0,"tx_errors":0,"rx_dropped":2041,"tx_dropped":0}`,
		"eno2":     `"kind":"physical","operstate":"down","speed_mbps":null,`,
		"vmbr0":    `"kind":"bridge","operstate":"up","speed_mbps":null,"mtu":1500,"master":null,`,
		"vmbr0.20": `"kind":"vlan",`,
		"bond0":    `"mode":"IEEE 802.3ad Dynamic link aggregation","slaves":[{"name":"eno1","mii_status":"up","link_failures":0},{"name":"eno2","mii_status":"down","link_failures":2}]}`,
	} {
		if got := jsonOf(t, m[name]); !strings.Contains(got, want) {
			t.Errorf("%s: %s\nwant it to contain %s", name, got, want)
		}
	}
	if !strings.Contains(jsonOf(t, m["bond0"]), `"kind":"bond","operstate":"up","speed_mbps":1000,"mtu":1500,"master":"vmbr0"`) {
		t.Errorf("bond0: %s", jsonOf(t, m["bond0"]))
	}
}

// Two rounds 30 s apart: exact rates; then a counter reset voids one
// round; then the rates come back.
func TestNetRates(t *testing.T) {
	clock := newClock()
	n := &Net{Proc: procCopy(t, netDev("  eno1: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0")), Sys: hostSys, Now: clock.Now}
	round := func(line string) NetIf {
		t.Helper()
		writeFiles(t, n.Proc, netDev(line))
		v, err := n.Collect(context.Background())
		must(t, err)
		return netByName(t, v)["eno1"]
	}
	first := round("  eno1: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0")
	if fv(first.RxBytesPerS).Valid || fv(first.TxPacketsPerS).Valid {
		t.Fatalf("first round has rates: %+v", first)
	}
	clock.add(30 * time.Second)
	second := round("  eno1: 31000 310 1 2 0 0 0 0 3500 35 3 4 0 0 0 0")
	want := [4]lenient.Float{lenient.F(1000), lenient.F(50), lenient.F(10), lenient.F(0.5)}
	if got := [4]lenient.Float{fv(second.RxBytesPerS), fv(second.TxBytesPerS), fv(second.RxPacketsPerS), fv(second.TxPacketsPerS)}; got != want {
		t.Fatalf("rates %+v, want %+v", got, want)
	}
	if second.RxErrors != 1 || second.RxDropped != 2 || second.TxErrors != 3 || second.TxDropped != 4 {
		t.Fatalf("counters %+v", second)
	}
	clock.add(30 * time.Second)
	// Driver reloaded: rx bytes smaller. The whole group is voided,
	// although tx bytes grew.
	reset := round("  eno1: 500 5 0 0 0 0 0 0 9000 90 0 0 0 0 0 0")
	if fv(reset.RxBytesPerS).Valid || fv(reset.TxBytesPerS).Valid || fv(reset.RxPacketsPerS).Valid || fv(reset.TxPacketsPerS).Valid {
		t.Fatalf("rates after a reset: %+v", reset)
	}
	clock.add(10 * time.Second)
	after := round("  eno1: 1500 15 0 0 0 0 0 0 9000 90 0 0 0 0 0 0")
	if fv(after.RxBytesPerS) != lenient.F(100) || fv(after.TxBytesPerS) != lenient.F(0) || fv(after.RxPacketsPerS) != lenient.F(1) {
		t.Fatalf("rates after the reset round: %+v", after)
	}
	// The clock did not move: no rate rather than a division by zero.
	same := round("  eno1: 1600 16 0 0 0 0 0 0 9000 90 0 0 0 0 0 0")
	if fv(same.RxBytesPerS).Valid {
		t.Fatalf("rate over 0 s: %+v", same)
	}
}

// Interface names are data: a name that would leave the sys root is never
// joined to it, and an interface that vanished between /proc/net/dev and
// its sysfs directory is left out. The previous counters of interfaces
// that are gone are forgotten.
func TestNetHostileNames(t *testing.T) {
	clock := newClock()
	proc := procCopy(t, netDev(
		"  eno1: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0",
		"  ..: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0",
		"  ../../../etc: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0",
		"  gone0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0"))
	n := &Net{Proc: proc, Sys: hostSys, Now: clock.Now}
	v, err := n.Collect(context.Background())
	must(t, err)
	if m := netByName(t, v); len(m) != 1 || m["eno1"].Name != "eno1" {
		t.Fatalf("%v", m)
	}
	for i := range 50 { // churn: tap devices come and go
		writeFiles(t, proc, netDev("  eno1: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0", "  tap"+string(rune('a'+i%26))+"x: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0"))
		_, err := n.Collect(context.Background())
		must(t, err)
	}
	if len(n.prev) != 1 {
		t.Fatalf("previous counters kept for %d interfaces", len(n.prev))
	}
}

func diskstats(lines ...string) map[string]string {
	return map[string]string{"diskstats": strings.Join(lines, "\n") + "\n"}
}

const (
	sdaT0 = "   8       0 sda 1000 0 20000 2000 5000 0 80000 10000 0 30000 40000 0 0 0 0 0 0"
	// 30 s later: +300 reads of 6000 sectors in 600 ms, +600 writes of
	// 12000 sectors in 3000 ms, 15 s of the 30 busy.
	sdaT30 = "   8       0 sda 1300 0 26000 2600 5600 0 92000 13000 0 45000 40000 0 0 0 0 0 0"
	sda1   = "   8       1 sda1 999 0 1 1 1 0 1 1 0 1 1 0 0 0 0 0 0"
	loop0  = "   7       0 loop0 5 0 5 5 5 0 5 5 0 5 5 0 0 0 0 0 0"
)

func TestDiskIORates(t *testing.T) {
	clock := newClock()
	d := &DiskIO{Proc: procCopy(t, diskstats(sdaT0, sda1, loop0)), Sys: hostSys, Now: clock.Now}
	round := func(lines ...string) Disk {
		t.Helper()
		writeFiles(t, d.Proc, diskstats(lines...))
		v, err := d.Collect(context.Background())
		must(t, err)
		if ds := v.([]Disk); len(ds) != 1 || ds[0].Name != "sda" {
			t.Fatalf("disks %+v", ds)
		}
		return v.([]Disk)[0]
	}
	if first := round(sdaT0, sda1, loop0); fv(first.ReadsPerS).Valid || fv(first.UtilPct).Valid {
		t.Fatalf("first round has rates: %+v", first)
	}
	clock.add(30 * time.Second)
	got := round(sdaT30, sda1, loop0)
	want := `{"name":"sda","reads_per_s":10,"writes_per_s":20,"read_bytes_per_s":102400,"write_bytes_per_s":204800,"read_await_ms":2,"write_await_ms":5,"util_pct":50}`
	if jsonOf(t, got) != want {
		t.Fatalf("\n got %s\nwant %s", jsonOf(t, got), want)
	}
	// No I/O: awaits are 0, not a division by zero.
	clock.add(30 * time.Second)
	if idle := round(sdaT30, sda1, loop0); fv(idle.ReadAwaitMs) != lenient.F(0) || fv(idle.ReadsPerS) != lenient.F(0) || fv(idle.UtilPct) != lenient.F(0) {
		t.Fatalf("idle %+v", idle)
	}
	// io_ticks is 32 bits in the kernel: it wraps after 49.7 days.
	clock.add(30 * time.Second)
	if wrapped := round(strings.Replace(sdaT30, " 45000 ", " 100 ", 1), sda1, loop0); fv(wrapped.UtilPct).Valid || fv(wrapped.ReadsPerS).Valid {
		t.Fatalf("wrapped counter gave rates: %+v", wrapped)
	}
}

func TestDiskIOFixture(t *testing.T) {
	for _, c := range []struct {
		exclude []string
		want    string
	}{
		{nil, "dm-0 nvme0n1 sda sdb zd0"},
		{[]string{"zd*", "dm-*"}, "nvme0n1 sda sdb"},
	} {
		d := &DiskIO{Proc: hostProc, Sys: hostSys, Exclude: c.exclude, Now: newClock().Now}
		v, err := d.Collect(context.Background())
		must(t, err)
		var names []string
		for _, x := range v.([]Disk) {
			names = append(names, x.Name)
		}
		if strings.Join(names, " ") != c.want {
			t.Errorf("exclude %v: %v", c.exclude, names)
		}
	}
	// A disk hot-plugged after the first round is classified then.
	proc := procCopy(t, nil)
	sys := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(sys, "block", "sda"), 0o755))
	d := &DiskIO{Proc: proc, Sys: sys, Now: newClock().Now}
	writeFiles(t, proc, diskstats(sdaT0))
	_, err := d.Collect(context.Background())
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(sys, "block", "sdc"), 0o755))
	writeFiles(t, proc, diskstats(sdaT0, strings.Replace(sdaT0, "sda", "sdc", 1)))
	v, err := d.Collect(context.Background())
	must(t, err)
	if len(v.([]Disk)) != 2 {
		t.Fatalf("hot-plugged disk missing: %+v", v)
	}
}

func TestCPUBreakdownTwoRounds(t *testing.T) {
	proc := procCopy(t, map[string]string{"stat": "cpu  1000 100 500 8000 200 10 90 0 50 0\n"})
	h := &Host{FS: FS{Root: proc}}
	v, err := h.Collect(context.Background())
	must(t, err)
	if v.(HostData).CPU != nil {
		t.Fatalf("first round has a breakdown: %+v", v.(HostData).CPU)
	}
	// 1000 ticks: 300 user (50 of it nice, 40 of it guest), 100 system,
	// 400 idle, 100 iowait, 100 irq+softirq.
	writeFiles(t, proc, map[string]string{"stat": "cpu  1250 150 600 8400 300 60 140 0 90 0\n"})
	v, err = h.Collect(context.Background())
	must(t, err)
	want := CPUBreakdown{UserPct: 30, SystemPct: 10, IOWaitPct: 10, IRQPct: 10, IdlePct: 40}
	if got := v.(HostData); got.CPU == nil || *got.CPU != want || got.CPUBusyPct != lenient.F(50) {
		t.Fatalf("%+v %+v", got.CPU, got.CPUBusyPct)
	}
}

type fakeTimex struct {
	state int
	tx    unix.Timex
	err   error
}

func (f fakeTimex) Adjtimex(buf *unix.Timex) (int, error) { *buf = f.tx; return f.state, f.err }

func TestHostAdditions(t *testing.T) {
	h := &Host{FS: FS{Root: hostProc}, Sys: hostSys, PageSize: 4096,
		Clock: fakeTimex{state: unix.TIME_OK, tx: unix.Timex{Offset: -1500, Maxerror: 250000, Status: 0}}}
	v, err := h.Collect(context.Background())
	must(t, err)
	d := v.(HostData)
	if d.OOMKills != lenient.U(1) || d.KSMSharedBytes != lenient.U(524288*4096) || d.EDAC == nil || *d.EDAC != (EDACCounts{3, 0}) {
		t.Fatalf("%+v %+v %+v", d.OOMKills, d.KSMSharedBytes, d.EDAC)
	}
	if d.Time == nil || *d.Time != (TimeSync{Synced: true, OffsetSeconds: -0.0015, MaxErrorSeconds: 0.25}) {
		t.Fatalf("time %+v", d.Time)
	}
	for _, c := range []struct {
		name string
		fx   fakeTimex
		want *TimeSync
	}{
		{"unsynced", fakeTimex{state: unix.TIME_ERROR, tx: unix.Timex{Status: unix.STA_UNSYNC, Maxerror: 16000000}}, &TimeSync{MaxErrorSeconds: 16}},
		{"nanoseconds", fakeTimex{state: unix.TIME_OK, tx: unix.Timex{Status: unix.STA_NANO, Offset: 2500}}, &TimeSync{Synced: true, OffsetSeconds: 2.5e-6}},
		{"failed", fakeTimex{err: syscall.EPERM}, nil},
	} {
		h := &Host{FS: FS{Root: hostProc}, Clock: c.fx}
		v, err := h.Collect(context.Background())
		must(t, err)
		if got := v.(HostData).Time; (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	// A host without EDAC, KSM or oom_kill (a VM on an old kernel): those
	// are null or absent, the rest is there.
	bare := t.TempDir()
	h = &Host{FS: FS{Root: procCopy(t, map[string]string{"vmstat": "pgfault 1\n"})}, Sys: bare}
	v, err = h.Collect(context.Background())
	must(t, err)
	got := jsonOf(t, v)
	if strings.Contains(got, "edac") || !strings.Contains(got, `"oom_kills":null,"ksm_shared_bytes":null`) || !strings.Contains(got, `"mem_total":`) {
		t.Fatalf("%s", got)
	}
}

func TestPressure(t *testing.T) {
	p := &Pressure{Proc: hostProc}
	v, err := p.Collect(context.Background())
	must(t, err)
	want := `{"cpu":{"some":{"avg10":1.82,"avg60":1.47,"avg300":1.1,"total_us":5123456789},"full":{"avg10":0,"avg60":0,"avg300":0,"total_us":0}},` +
		`"memory":{"some":{"avg10":0,"avg60":0.02,"avg300":0,"total_us":87654321},"full":{"avg10":0,"avg60":0.01,"avg300":0,"total_us":76543210}},` +
		`"io":{"some":{"avg10":4.61,"avg60":3.92,"avg300":2.75,"total_us":12345678901},"full":{"avg10":3.85,"avg60":3.3,"avg300":2.21,"total_us":10987654321}}}`
	if got := jsonOf(t, v); got != want {
		t.Fatalf("%s", got)
	}
	// No PSI: absent, not failed. A garbled file: failed, naming it.
	noPSI := procCopy(t, nil)
	must(t, os.RemoveAll(filepath.Join(noPSI, "pressure")))
	if _, err := (&Pressure{Proc: noPSI}).Collect(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("no PSI: %v", err)
	}
	bad := procCopy(t, map[string]string{"pressure/io": "some avg10=x\n"})
	if _, err := (&Pressure{Proc: bad}).Collect(context.Background()); err == nil || errors.Is(err, ErrAbsent) || !strings.Contains(err.Error(), "pressure/io") {
		t.Fatalf("garbled: %v", err)
	}
}

func TestSensorsFixture(t *testing.T) {
	s := &Sensors{Sys: hostSys}
	v, err := s.Collect(context.Background())
	must(t, err)
	want := `{"temps":[` +
		`{"chip":"acpitz","hwmon":"hwmon0","label":"temp1","temp_c":16.8,"max_c":null,"crit_c":20.8},` +
		`{"chip":"nvme","hwmon":"hwmon1","label":"Composite","temp_c":44.85,"max_c":84.85,"crit_c":84.85},` +
		`{"chip":"nvme","hwmon":"hwmon1","label":"Sensor 1","temp_c":44.85,"max_c":null,"crit_c":null},` +
		`{"chip":"nvme","hwmon":"hwmon1","label":"Sensor 2","temp_c":52.85,"max_c":null,"crit_c":null},` +
		`{"chip":"k10temp","hwmon":"hwmon2","label":"Tctl","temp_c":48.75,"max_c":null,"crit_c":null},` +
		`{"chip":"k10temp","hwmon":"hwmon2","label":"Tccd1","temp_c":45.5,"max_c":null,"crit_c":null},` +
		`{"chip":"nct6775","hwmon":"hwmon3","label":"SYSTIN","temp_c":31,"max_c":80,"crit_c":null},` +
		`{"chip":"nct6775","hwmon":"hwmon3","label":"CPUTIN","temp_c":36.5,"max_c":80,"crit_c":null}],` +
		`"fans":[{"chip":"nct6775","hwmon":"hwmon3","label":"fan1","rpm":1132},{"chip":"nct6775","hwmon":"hwmon3","label":"fan2","rpm":0}]}`
	if got := jsonOf(t, v); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	// The second round reads the inputs only, and gives the same.
	if got := jsonOf(t, must2(s.Collect(context.Background()))); got != want {
		t.Fatalf("second round %s", got)
	}
	if _, err := (&Sensors{Sys: t.TempDir()}).Collect(context.Background()); !errors.Is(err, ErrAbsent) {
		t.Fatalf("no hwmon class: %v", err)
	}
}

func must2(v any, err error) any {
	if err != nil {
		panic(err)
	}
	return v
}

// Hostile hwmon trees: attributes in device/ (old drivers), gaps, a FIFO
// where an input should be (must not block; left out, as it cannot be
// read), garbage values, a chip that vanishes between rounds (its held
// files are closed), a chip numbered 10 after 2.
func TestSensorsHostile(t *testing.T) {
	sys := t.TempDir()
	writeFiles(t, sys, map[string]string{
		"class/hwmon/hwmon2/name": "it87\n", "class/hwmon/hwmon2/temp7_input": "garbage\n", "class/hwmon/hwmon2/temp7_label": "\x1b[2Jsys\n",
		"class/hwmon/hwmon10/device/name": "w83627\n", "class/hwmon/hwmon10/device/temp1_input": "40000\n",
		"class/hwmon/hwmon10/device/fan3_input": "900\n", "class/hwmon/hwmon10/device/fan3_label": "rear\n",
	})
	must(t, unix.Mkfifo(filepath.Join(sys, "class/hwmon/hwmon2/temp8_input"), 0o644))
	s := &Sensors{Sys: sys}
	done := make(chan any)
	go func() { v, _ := s.Collect(context.Background()); done <- v }()
	var v any
	select {
	case v = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO input blocked the source")
	}
	want := `{"temps":[{"chip":"it87","hwmon":"hwmon2","label":"?[2Jsys","temp_c":null,"max_c":null,"crit_c":null},` +
		`{"chip":"w83627","hwmon":"hwmon10","label":"temp1","temp_c":40,"max_c":null,"crit_c":null}],` +
		`"fans":[{"chip":"w83627","hwmon":"hwmon10","label":"rear","rpm":900}]}`
	if got := jsonOf(t, v); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	held := s.r.held.len()
	must(t, os.RemoveAll(filepath.Join(sys, "class/hwmon/hwmon10")))
	// On sysfs a removed chip's held inputs fail (ENODEV) and the chips
	// are listed again at once; a removed regular file keeps reading, so
	// here the periodic listing finds it gone.
	for range sensorRescanRounds - 1 {
		_, err := s.Collect(context.Background())
		must(t, err)
	}
	v, err := s.Collect(context.Background())
	must(t, err)
	if len(v.(SensorsData).Fans) != 0 || s.chips["hwmon10"] != nil || s.r.held.len() != held-2 {
		t.Fatalf("vanished chip: %+v, %d files held (were %d)", v, s.r.held.len(), held)
	}
}

// fakeStatfs answers statfs from a table; a path in hang blocks until
// release is closed.
type fakeStatfs struct {
	mu      sync.Mutex
	calls   map[string]int
	hang    string
	release chan struct{}
}

func (f *fakeStatfs) statfs(path string, st *unix.Statfs_t) error {
	f.mu.Lock()
	f.calls[path]++
	f.mu.Unlock()
	if path == f.hang {
		<-f.release
	}
	*st = unix.Statfs_t{Bsize: 4096, Frsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 300, Files: 500, Ffree: 100}
	return nil
}

func (f *fakeStatfs) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func TestFilesystemsFixture(t *testing.T) {
	fake := &fakeStatfs{calls: map[string]int{}}
	for _, c := range []struct {
		zfs     bool
		exclude []string
		want    []string
	}{
		{false, nil, []string{"/", "/boot/efi", "/mnt/backup disk"}},
		{true, nil, []string{"/", "/boot/efi", "/rpool", "/rpool/data", "/rpool/data/subvol-101-disk-0", "/mnt/backup disk"}},
		{false, []string{"/boot/*", "/mnt/*"}, []string{"/"}},
	} {
		f := &Filesystems{Proc: hostProc, Files: &SlowFS{StatfsFunc: fake.statfs}, Timeout: time.Second, IncludeZFS: c.zfs, Exclude: c.exclude}
		v, err := f.Collect(context.Background())
		must(t, err)
		var got []string
		for _, fs := range v.([]Filesystem) {
			got = append(got, fs.MountPoint)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("zfs %v exclude %v: %q", c.zfs, c.exclude, got)
		}
		if c.zfs || c.exclude != nil {
			continue
		}
		want := `{"mountpoint":"/","device":"/dev/mapper/pve-root","fstype":"ext4","size":4096000,"used":2457600,"avail":1228800,"inodes":500,"inodes_free":100,"readonly":false}`
		if got := jsonOf(t, v.([]Filesystem)[0]); got != want {
			t.Errorf("root %s", got)
		}
	}
}

// A mount whose statfs hangs (dead NFS server, stuck FUSE daemon): the
// round returns by the timeout with the other mounts measured, the next
// round does not start a second statfs on it, and once it answers it is
// measured again.
func TestFilesystemsHungStatfs(t *testing.T) {
	fake := &fakeStatfs{calls: map[string]int{}, hang: "/mnt/backup disk", release: make(chan struct{})}
	files := &SlowFS{StatfsFunc: fake.statfs}
	f := &Filesystems{Proc: hostProc, Files: files, Timeout: 100 * time.Millisecond}
	round := func() map[string]Filesystem {
		t.Helper()
		start := time.Now()
		v, err := f.Collect(context.Background())
		must(t, err)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("round took %s", took)
		}
		m := map[string]Filesystem{}
		for _, fs := range v.([]Filesystem) {
			m[fs.MountPoint] = fs
		}
		return m
	}
	// Through the medium round itself, beside another source: the round
	// ends by the statfs timeout, with both sources' data.
	r := NewRound("medium", []Source{
		{Name: "filesystems", Timeout: 5 * time.Second, Collect: f.Collect},
		{Name: "other", Timeout: 5 * time.Second, Collect: func(context.Context) (any, error) { return "ok", nil }},
	}, nil, nil)
	start := time.Now()
	res := r.Run(start)
	if took := time.Since(start); took > 3*time.Second || len(res.Sample.Errors) != 0 || res.Sample.Data["other"] != "ok" {
		t.Fatalf("medium round took %s: errors %v", took, res.Sample.Errors)
	}
	m := map[string]Filesystem{}
	for _, fs := range res.Sample.Data["filesystems"].([]Filesystem) {
		m[fs.MountPoint] = fs
	}
	if hung := m["/mnt/backup disk"]; hung.Size.Valid || !strings.Contains(hung.Error, "timed out") || !m["/"].Size.Valid {
		t.Fatalf("first round %+v", m)
	}
	for range 3 {
		m = round()
		if hung := m["/mnt/backup disk"]; !strings.Contains(hung.Error, "still stuck") || !m["/boot/efi"].Size.Valid {
			t.Fatalf("later round %+v", m)
		}
	}
	if n := fake.count("/mnt/backup disk"); n != 1 || files.Stuck() != 1 {
		t.Fatalf("%d statfs calls on the hung mount, %d stuck", n, files.Stuck())
	}
	close(fake.release)
	deadline := time.Now().Add(10 * time.Second)
	for files.Outstanding() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the released statfs never returned")
		}
		time.Sleep(time.Millisecond)
	}
	if m = round(); !m["/mnt/backup disk"].Size.Valid {
		t.Fatalf("after release %+v", m["/mnt/backup disk"])
	}
}

func TestGuestPressure(t *testing.T) {
	g := &Guests{CgroupRoot: hostSys + "/fs/cgroup"}
	gs := g.withPressure([]pve.Guest{
		{VMID: lenient.U(100), Type: "qemu", Status: "running"},
		{VMID: lenient.U(101), Type: "lxc", Status: "running"},
		{VMID: lenient.U(102), Type: "qemu", Status: "stopped"},
		{VMID: lenient.U(103), Type: "qemu", Status: "running"}, // no cgroup (cgroup v1)
	})
	var got []string
	for _, x := range gs {
		got = append(got, jsonOf(t, x.Pressure))
	}
	if got[0] == "null" || got[1] == "null" || got[2] != "null" || got[3] != "null" {
		t.Fatalf("%v", got)
	}
	if !strings.Contains(jsonOf(t, gs[0]), `"vmid":100,`) || !strings.HasPrefix(got[0], `{"cpu_some_avg10":`) {
		t.Fatalf("%s", jsonOf(t, gs[0]))
	}
}

// fixedEnv makes the golden payloads independent of the machine: a clock
// discipline and statfs answers that are the same everywhere.
func fixedEnv(cfg *config.Config) *Env {
	env := &Env{Config: cfg, PageSize: 4096, Timex: fakeTimex{state: unix.TIME_OK, tx: unix.Timex{Offset: 12, Maxerror: 5000, Status: unix.STA_PLL}}}
	env.Files().StatfsFunc = func(path string, st *unix.Statfs_t) error {
		*st = unix.Statfs_t{Bsize: 4096, Frsize: 4096, Blocks: 25 << 20, Bfree: 15 << 20, Bavail: 14 << 20, Files: 6 << 20, Ffree: 5 << 20}
		return nil
	}
	return env
}

// fv is a nullable payload number as a lenient.Float, for comparisons.
func fv(p *float64) lenient.Float {
	if p == nil {
		return lenient.Float{}
	}
	return lenient.F(*p)
}

// A config reload builds new sources and drops the old ones: the files an
// old source kept open are closed once it is garbage, so reloads do not
// leak descriptors.
func TestHeldFilesClosedWithTheirSource(t *testing.T) {
	s := &Sensors{Sys: hostSys}
	_, err := s.Collect(context.Background())
	must(t, err)
	held := s.r.held
	if held.len() != 10 { // 8 temperatures, 2 fans
		t.Fatalf("%d files held", held.len())
	}
	s = nil
	deadline := time.Now().Add(10 * time.Second)
	for held.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d files still open after their source was dropped", held.len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// A held input that stops reading (on sysfs: ENODEV, the chip was
// removed, maybe rebound under the same hwmonN) is opened afresh at once,
// and the chip's name and labels are read again the next round. A
// directory put in place of the held descriptor (dup2: the number stays
// the source's) stands in for ENODEV here: its pread fails with EISDIR.
func TestSensorsReopenRescans(t *testing.T) {
	sys := t.TempDir()
	writeFiles(t, sys, map[string]string{"class/hwmon/hwmon0/name": "old\n", "class/hwmon/hwmon0/temp1_input": "40000\n"})
	s := &Sensors{Sys: sys}
	_, err := s.Collect(context.Background())
	must(t, err)
	c := s.chips["hwmon0"]
	writeFiles(t, sys, map[string]string{"class/hwmon/hwmon0/name": "new\n", "class/hwmon/hwmon0/temp1_input": "41000\n"})
	dir, err := unix.Open(sys, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	must(t, unix.Dup2(dir, c.temps[0].h.fd))
	unix.Close(dir)
	v, err := s.Collect(context.Background())
	must(t, err)
	if got := v.(SensorsData).Temps; len(got) != 1 || *got[0].TempC != 41 || got[0].Chip != "old" || c.scanned != 0 {
		t.Fatalf("reopened round: %s", jsonOf(t, v))
	}
	v, err = s.Collect(context.Background())
	must(t, err)
	if got := v.(SensorsData).Temps; len(got) != 1 || got[0].Chip != "new" {
		t.Fatalf("round after: %s", jsonOf(t, v))
	}
}

// An input that fails on every read (a driver answering EIO or ENODATA;
// a directory in its place here, whose pread fails with EISDIR) costs one
// rescan, to tell it from a chip that went away, and is then skipped until
// the periodic rescan instead of listing the chips and rescanning the chip
// every fast round. Its neighbours keep reading; once it reads again, the
// periodic rescan brings it back.
func TestSensorsFailingInputSkippedUntilRescan(t *testing.T) {
	sys := t.TempDir()
	writeFiles(t, sys, map[string]string{"class/hwmon/hwmon0/name": "k10temp\n", "class/hwmon/hwmon0/temp1_input": "40000\n"})
	bad := filepath.Join(sys, "class/hwmon/hwmon0/temp2_input")
	must(t, os.Mkdir(bad, 0o755))
	s := &Sensors{Sys: sys}
	rounds := []struct {
		n                      int
		temps                  int
		minScanned, maxScanned uint64 // the round of the chip's last scan
		maxListed              uint64 // and of the last listing, at most
		description            string
	}{
		{3, 1, 2, 2, 3, "the first failure rescans the chip and lists the chips once"},
		{10, 1, 2, 2, 3, "then no rescan and no listing, round after round"},
		{sensorRescanRounds, 1, sensorRescanRounds, sensorRescanRounds + 13, sensorRescanRounds + 13, "the periodic rescan tries again, and skips again"},
	}
	for _, r := range rounds {
		var v any
		var err error
		for range r.n {
			v, err = s.Collect(context.Background())
			must(t, err)
		}
		c := s.chips["hwmon0"]
		// 0 is "rescan (list) next round": that must not be pending either.
		if got := v.(SensorsData).Temps; len(got) != r.temps || c.scanned < r.minScanned || c.scanned > r.maxScanned || s.listed == 0 || s.listed > r.maxListed {
			t.Fatalf("%s (round %d): %d temps, scanned at %d, listed at %d", r.description, s.round, len(got), c.scanned, s.listed)
		}
	}
	must(t, os.Remove(bad))
	writeFiles(t, sys, map[string]string{"class/hwmon/hwmon0/temp2_input": "45000\n"})
	var v any
	var err error
	for range sensorRescanRounds {
		v, err = s.Collect(context.Background())
		must(t, err)
	}
	if got := v.(SensorsData).Temps; len(got) != 2 || *got[1].TempC != 45 {
		t.Fatalf("mended input not read after the periodic rescan: %s", jsonOf(t, v))
	}
}
