package procfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatBreakdown(t *testing.T) {
	s, err := ParseStat(mustRead(t, "pve9/stat"))
	want := CPUStat{User: 41234567, Nice: 52310, System: 12345678, Idle: 298765432, IOWait: 1876543, IRQ: 0, SoftIRQ: 654321, Steal: 0}
	if err != nil || s != want {
		t.Fatalf("%+v %v", s, err)
	}
	// Times agrees with the older ParseStatCPU on the same file.
	old, _ := ParseStatCPU(mustRead(t, "pve9/stat"))
	if s.Times() != old {
		t.Fatalf("Times %+v, ParseStatCPU %+v", s.Times(), old)
	}
	for _, c := range []struct{ name, in string }{
		{"empty", ""}, {"no cpu line", "cpu0 1 2 3 4\nintr 5\n"}, {"three fields", "cpu  1 2 3\n"},
		{"garbage", "cpu  a b c d e\n"}, {"negative", "cpu  -1 2 3 4\n"}, {"overflow", "cpu  99999999999999999999999 1 2 3\n"},
		{"binary", "\x00\xff\n"},
	} {
		if _, err := ParseStat([]byte(c.in)); err == nil {
			t.Errorf("%s: accepted %q", c.name, c.in)
		}
	}
	// A 2.6.x kernel with four fields: the rest are zero.
	if s, err := ParseStat([]byte("cpu  1 2 3 4\n")); err != nil || s != (CPUStat{User: 1, Nice: 2, System: 3, Idle: 4}) {
		t.Fatalf("short line: %+v %v", s, err)
	}
}

func TestShares(t *testing.T) {
	base := CPUStat{User: 1000, Nice: 100, System: 500, Idle: 8000, IOWait: 200, IRQ: 10, SoftIRQ: 90, Steal: 0}
	for _, c := range []struct {
		name string
		cur  CPUStat
		want CPUShares
		ok   bool
	}{
		// 1000 ticks: 250 user+50 nice, 100 system, 400 idle, 100 iowait, 50 irq+50 softirq.
		{"deltas", CPUStat{User: 1250, Nice: 150, System: 600, Idle: 8400, IOWait: 300, IRQ: 60, SoftIRQ: 140}, CPUShares{User: 30, System: 10, IOWait: 10, IRQ: 10, Idle: 40}, true},
		{"no time", base, CPUShares{}, false},
		{"user backwards", CPUStat{User: 999, Nice: 100, System: 600, Idle: 9000, IOWait: 200, IRQ: 10, SoftIRQ: 90}, CPUShares{}, false},
		// iowait stepped back by 50: counted as none, not a void sample.
		{"iowait drop", CPUStat{User: 1100, Nice: 100, System: 500, Idle: 8100, IOWait: 150, IRQ: 10, SoftIRQ: 90}, CPUShares{User: 50, Idle: 50}, true},
		{"steal", CPUStat{User: 1000, Nice: 100, System: 500, Idle: 8000, IOWait: 200, IRQ: 10, SoftIRQ: 90, Steal: 3}, CPUShares{Steal: 100}, true},
	} {
		got, ok := Shares(base, c.cur)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
	// Counters near the top of uint64: a sum that would overflow is no sample.
	if _, ok := Shares(CPUStat{}, CPUStat{User: 1 << 63, System: 1 << 63}); ok {
		t.Error("overflowing total accepted")
	}
}

func TestVmstatValue(t *testing.T) {
	v, ok, err := VmstatValue(mustRead(t, "pve9/vmstat"), "oom_kill")
	if v != 1 || !ok || err != nil {
		t.Fatalf("%d %v %v", v, ok, err)
	}
	for _, c := range []struct {
		in   string
		ok   bool
		fail bool
	}{
		{"", false, false}, {"pgfault 3\n", false, false}, {"oom_kill_extra 4\n", false, false},
		{"oom_kill x\n", false, true}, {"oom_kill\n", false, true}, {"oom_kill -1\n", false, true},
		{"oom_kill 7", true, false}, // no final newline
	} {
		_, ok, err := VmstatValue([]byte(c.in), "oom_kill")
		if ok != c.ok || (err != nil) != c.fail {
			t.Errorf("%q: ok %v err %v", c.in, ok, err)
		}
	}
}

func TestParsePressure(t *testing.T) {
	for _, c := range []struct {
		file string
		want Pressure
	}{
		{"pve9/pressure-cpu", Pressure{Some: &PSI{1.82, 1.47, 1.10, 5123456789}, Full: &PSI{}}},
		{"pve9/pressure-io", Pressure{Some: &PSI{4.61, 3.92, 2.75, 12345678901}, Full: &PSI{3.85, 3.30, 2.21, 10987654321}}},
		{"pve9/pressure-memory", Pressure{Some: &PSI{0, 0.02, 0, 87654321}, Full: &PSI{0, 0.01, 0, 76543210}}},
		{"old/pressure-cpu-5.11", Pressure{Some: &PSI{0, 0.12, 0.30, 123456}}},
	} {
		got, err := ParsePressure(mustRead(t, c.file))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v %+v %v", c.file, got.Some, got.Full, err)
		}
	}
	// A future line kind is skipped; field order does not matter.
	got, err := ParsePressure([]byte("some total=5 avg300=3 avg60=2 avg10=1\nstall avg10=9\n"))
	if err != nil || *got.Some != (PSI{1, 2, 3, 5}) || got.Full != nil {
		t.Fatalf("reordered: %+v %v", got, err)
	}
	for _, bad := range []string{
		"", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "some avg10=1.0 avg60=1.0 avg300=1.0\n",
		"some avg10=x avg60=0 avg300=0 total=0\n", "some avg10=NaN avg60=0 avg300=0 total=0\n",
		"some avg10=101 avg60=0 avg300=0 total=0\n", "some avg10=-1 avg60=0 avg300=0 total=0\n",
		"some avg10=1 avg60=0 avg300=0 total=-5\n", "some avg10 avg60=0 avg300=0 total=0\n",
		"some avg10=1.82 avg60=1.4", // truncated
	} {
		if p, err := ParsePressure([]byte(bad)); err == nil {
			t.Errorf("%q accepted: %+v", bad, p)
		}
	}
}

func TestParseDiskstats(t *testing.T) {
	ds, err := ParseDiskstats(mustRead(t, "pve9/diskstats"), nil, nil)
	if err != nil || len(ds) != 14 {
		t.Fatalf("%d lines, %v", len(ds), err)
	}
	sda := ds[0]
	if string(sda.Name) != "sda" || sda.Major != 8 || sda.ReadIOs != 1288203 || sda.ReadSectors != 61203810 || sda.ReadMs != 901234 ||
		sda.WriteIOs != 9123456 || sda.WriteSectors != 398765432 || sda.WriteMs != 23456789 || sda.IOMs != 12098765 || sda.WeightedMs != 24358023 {
		t.Fatalf("sda %+v", sda)
	}
	for _, c := range []struct {
		file  string
		names string
	}{{"old/diskstats-4.15", "sda sda1"}, {"old/diskstats-5.4", "sda nvme0n1"}} {
		ds, err := ParseDiskstats(mustRead(t, c.file), nil, nil)
		if err != nil || names(ds) != c.names || ds[0].IOMs != 9876 {
			t.Errorf("%s: %q %+v %v", c.file, names(ds), ds, err)
		}
	}
}

func TestParseDiskstatsDamaged(t *testing.T) {
	// A torn last line costs that line only; dst is reused.
	buf := make([]DiskStat, 0, 4)
	ds, err := ParseDiskstats([]byte("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 16 sdb 1 2 3"), buf, nil)
	if err != nil || names(ds) != "sda" || &ds[0] != &buf[:1][0] {
		t.Fatalf("torn: %q %v", names(ds), err)
	}
	// keep filters by name before the counters are parsed.
	ds, err = ParseDiskstats(mustRead(t, "pve9/diskstats"), nil, func(n []byte) bool { return string(n) == "sdb" || string(n) == "zd0" })
	if err != nil || names(ds) != "sdb zd0" || ds[1].WriteIOs != 7890123 {
		t.Fatalf("keep: %q %v", names(ds), err)
	}
	if ds, err := ParseDiskstats([]byte("7 0 loop0 x\n"), nil, func([]byte) bool { return false }); err != nil || len(ds) != 0 {
		t.Fatalf("all filtered: %v %v", ds, err)
	}
	if ds, err := ParseDiskstats(nil, nil, nil); err != nil || len(ds) != 0 {
		t.Fatalf("empty: %v %v", ds, err)
	}
	for _, bad := range []string{"garbage\n", "8 0 sda 1 2 3\n", "x 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", "8 0  \n", "8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n"} {
		if ds, err := ParseDiskstats([]byte(bad), nil, nil); err == nil {
			t.Errorf("%q accepted: %+v", bad, ds)
		}
	}
}

func names[T DiskStat | NetDevStat](xs []T) string {
	var n []string
	for _, x := range xs {
		switch v := any(x).(type) {
		case DiskStat:
			n = append(n, string(v.Name))
		case NetDevStat:
			n = append(n, string(v.Name))
		}
	}
	return strings.Join(n, " ")
}

func TestParseNetDev(t *testing.T) {
	nd, err := ParseNetDev(mustRead(t, "pve9/net-dev"), nil)
	if err != nil || names(nd) != "eno1 eno2 bond0 vmbr0 vmbr0.20 tap100i0 fwbr100i0 veth101i0 lo" {
		t.Fatalf("%q %v", names(nd), err)
	}
	want := NetDevStat{Name: []byte("eno1"), RxBytes: 48123456789, RxPackets: 61234567, RxDropped: 2041, TxBytes: 9876543210, TxPackets: 23456789}
	if !reflect.DeepEqual(nd[0], want) {
		t.Fatalf("eno1 %+v", nd[0])
	}
	// Linux 2.4 printed no space after the colon.
	if nd, err := ParseNetDev([]byte("eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"), nil); err != nil || nd[0].TxBytes != 9 || nd[0].TxDropped != 12 {
		t.Fatalf("no space: %+v %v", nd, err)
	}
	if nd, err := ParseNetDev([]byte("Inter-|   Receive\n face |bytes\n"), nil); err != nil || len(nd) != 0 {
		t.Fatalf("headers only: %+v %v", nd, err)
	}
	for _, bad := range []string{"eth0: 1 2 3\n", "eth0 x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "eth0: a b\n"} {
		if nd, err := ParseNetDev([]byte(bad), nil); err == nil {
			t.Errorf("%q accepted: %+v", bad, nd)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo(mustRead(t, "pve9/mountinfo"))
	if err != nil || len(ms) != 23 {
		t.Fatalf("%d mounts, %v", len(ms), err)
	}
	byPoint := map[string]Mount{}
	for _, m := range ms {
		byPoint[m.MountPoint] = m
	}
	root := byPoint["/"]
	if root.FSType != "ext4" || root.Source != "/dev/mapper/pve-root" || root.MajorMinor != "252:0" || root.Root != "/" || root.ReadOnly() {
		t.Fatalf("root %+v", root)
	}
	if m, ok := byPoint["/mnt/backup disk"]; !ok || m.FSType != "xfs" || m.Source != "/dev/sdb1" {
		t.Fatalf("escaped space: %+v", byPoint)
	}
	if m := byPoint["/etc/pve"]; m.FSType != "fuse" {
		t.Fatalf("pmxcfs %+v", m)
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	// Optional fields (none, several), every escape the kernel writes, ro.
	in := `36 35 98:0 /mnt1 /mnt/a\011b\012c\134d ro,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue
37 35 98:0 / /x rw - btrfs /dev/sdc ro
38 35 98:0 / /bad\400 rw - ext4 /dev/sdd rw`
	ms, err := ParseMountinfo([]byte(in))
	if err != nil || len(ms) != 3 {
		t.Fatalf("%+v %v", ms, err)
	}
	if ms[0].MountPoint != "/mnt/a\tb\nc\\d" || ms[0].Root != "/mnt1" || ms[0].FSType != "ext3" || !ms[0].ReadOnly() || ms[0].Super != "rw,errors=continue" {
		t.Fatalf("escapes %+v", ms[0])
	}
	if !ms[1].ReadOnly() || ms[1].Super != "ro" {
		t.Fatalf("superblock ro %+v", ms[1])
	}
	if ms[2].MountPoint != `/bad\400` {
		t.Fatalf("not a byte: %q", ms[2].MountPoint)
	}
	if ms, err := ParseMountinfo(nil); err != nil || len(ms) != 0 {
		t.Fatalf("empty %v %v", ms, err)
	}
	for _, bad := range []string{"garbage\n", "1 2 3:4 / /a rw\n", "1 2 3:4 / /a rw -\n", "x 2 3:4 / /a rw - ext4 /dev/a rw\n", "1 2 34 / /a rw - ext4 /dev/a rw\n"} {
		if ms, err := ParseMountinfo([]byte(bad)); err == nil {
			t.Errorf("%q accepted: %+v", bad, ms)
		}
	}
}

func TestParseBonding(t *testing.T) {
	for _, c := range []struct {
		file string
		want Bond
	}{
		{"pve9/bonding-bond0", Bond{Mode: "IEEE 802.3ad Dynamic link aggregation", MIIStatus: "up",
			Slaves: []BondSlave{{"eno1", "up", 0}, {"eno2", "down", 2}}}},
		{"old/bonding-active-backup", Bond{Mode: "fault-tolerance (active-backup)", MIIStatus: "up",
			Slaves: []BondSlave{{"enp1s0f0", "up", 0}, {"enp1s0f1", "up", 7}}}},
	} {
		got, err := ParseBonding(mustRead(t, c.file))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v %v", c.file, got, err)
		}
	}
	// Truncated in a slave block: the slaves so far are kept.
	b := mustRead(t, "pve9/bonding-bond0")
	got, err := ParseBonding(b[:strings.Index(string(b), "Link Failure Count: 2")])
	if err != nil || len(got.Slaves) != 2 || got.Slaves[1].MIIStatus != "down" || got.Slaves[1].LinkFailures != 0 {
		t.Fatalf("truncated: %+v %v", got, err)
	}
	for _, bad := range []string{"", "garbage", "Slave Interface: eno1\nMII Status: up\n"} {
		if got, err := ParseBonding([]byte(bad)); err == nil {
			t.Errorf("%q accepted: %+v", bad, got)
		}
	}
}

// FuzzHostFiles feeds the same bytes to every parser of a host file: none
// may panic, hang or return something that breaks the invariants the
// collectors rely on.
func FuzzHostFiles(f *testing.F) {
	for _, name := range []string{"pve9/stat", "pve9/pressure-io", "pve9/diskstats", "pve9/net-dev", "pve9/vmstat", "pve9/mountinfo", "pve9/bonding-bond0", "old/diskstats-4.15"} {
		f.Add(mustRead(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseStat(b); err == nil {
			Shares(CPUStat{}, s)
			Shares(s, CPUStat{})
		}
		if p, err := ParsePressure(b); err == nil && (p.Some == nil || p.Some.Avg10 < 0 || p.Some.Avg10 > 100) {
			t.Fatalf("pressure %+v", p)
		}
		ds, _ := ParseDiskstats(b, nil, nil)
		ParseDiskstats(b, nil, func(n []byte) bool { return len(n) > 2 })
		for _, d := range ds {
			if len(d.Name) == 0 || strings.ContainsAny(string(d.Name), " \t\n") {
				t.Fatalf("disk name %q", d.Name)
			}
		}
		nd, _ := ParseNetDev(b, nil)
		for _, d := range nd {
			if len(d.Name) == 0 || strings.ContainsAny(string(d.Name), " \t\n:") {
				t.Fatalf("interface name %q", d.Name)
			}
		}
		VmstatValue(b, "oom_kill")
		ms, _ := ParseMountinfo(b)
		for _, m := range ms {
			if m.MountPoint == "" || m.FSType == "" {
				t.Fatalf("mount %+v", m)
			}
		}
		ParseBonding(b)
	})
}
