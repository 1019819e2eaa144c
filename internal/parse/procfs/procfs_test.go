package procfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadAvg(t *testing.T) {
	l, err := ParseLoadAvg(mustRead(t, "loadavg"))
	if err != nil || l != (LoadAvg{lenient.F(0.12), lenient.F(0.34), lenient.F(0.56)}) {
		t.Fatalf("%+v %v", l, err)
	}
	// NaN and Inf have no JSON form: unknown (null), the other fields kept.
	l, err = ParseLoadAvg([]byte("NaN +Inf 0.5 1/2 3\n"))
	if err != nil || l.Load1.Valid || l.Load5.Valid || l.Load15 != lenient.F(0.5) {
		t.Fatalf("non-finite loadavg: %+v %v", l, err)
	}
	for _, bad := range []string{"", "0.1 0.2", "a b c d", "-1 0 0", "\x00\x00\x00"} {
		if _, err := ParseLoadAvg([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMeminfo(t *testing.T) {
	m, err := ParseMeminfo(mustRead(t, "meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if m["MemTotal"] != 65786044*1024 || m["HugePages_Total"] != 0 || m["SwapFree"] != 8388604*1024 {
		t.Errorf("%v", m)
	}
	for _, bad := range []string{"", "garbage", "MemFree: 12 kB\n", "MemTotal: x kB"} {
		if _, err := ParseMeminfo([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUptime(t *testing.T) {
	u, err := ParseUptime(mustRead(t, "uptime"))
	if err != nil || u != 1209853 {
		t.Fatalf("%d %v", u, err)
	}
	for _, bad := range []string{"", "x 1", "-5 1"} {
		if _, err := ParseUptime([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStatAndBusy(t *testing.T) {
	a, err := ParseStatCPU(mustRead(t, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseStatCPU(mustRead(t, "stat.next"))
	if err != nil {
		t.Fatal(err)
	}
	// user +1000, idle +800, iowait +100; guest +50 is inside user, not added.
	pct, ok := BusyPercent(a, b)
	if !ok || pct != 52.63 {
		t.Fatalf("busy %v %v", pct, ok)
	}
	if _, ok := BusyPercent(b, a); ok {
		t.Error("backwards counters gave a value")
	}
	if _, ok := BusyPercent(a, a); ok {
		t.Error("no progress gave a value")
	}
	for _, bad := range []string{"", "cpu 1 2", "cpu a b c d e", "intr 5"} {
		if _, err := ParseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCPUInfo(t *testing.T) {
	ci, err := ParseCPUInfo(mustRead(t, "cpuinfo"))
	if err != nil || ci.Count != 2 || ci.Model != "AMD EPYC 7302P 16-Core Processor" {
		t.Fatalf("%+v %v", ci, err)
	}
	if _, err := ParseCPUInfo([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
}
