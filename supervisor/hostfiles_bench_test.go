package supervisor

// The fast round's cost with the issue-20 sources (pressure, net, diskio,
// sensors, and the host additions) on a big host: 32 interfaces, 24 disks
// with 4 partitions each, 12 hwmon chips, generated under a temp dir, next
// to the same round without them, in one run:
//
//	go test ./supervisor -run '^$' -bench 'FastHostFiles' -benchmem -count 3

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
)

// bigHost writes a proc and a sys root under dir: testdata/proc's files
// for today's sources, and the host files of a big hypervisor.
func bigHost(tb testing.TB, dir string) (proc, sys string) {
	tb.Helper()
	proc, sys = filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	if err := os.CopyFS(proc, os.DirFS("../testdata/proc")); err != nil {
		tb.Fatal(err)
	}
	files, links := map[string]string{}, map[string]string{}
	bigNet(files, links)
	bigDisks(files)
	bigHwmon(files, links)
	files["sys/kernel/mm/ksm/pages_sharing"] = "524288\n"
	files["sys/devices/system/edac/mc/mc0/ce_count"], files["sys/devices/system/edac/mc/mc0/ue_count"] = "3\n", "0\n"
	writeTree(tb, dir, files, links)
	return proc, sys
}

// bigNet is 32 interfaces: 4 bonds of two NICs each, 4 bridges on them, 8
// VLANs and 16 NICs in all.
func bigNet(files, links map[string]string) {
	var dev strings.Builder
	dev.WriteString("Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	for i := range 32 {
		name, devtype, master := fmt.Sprintf("enp%ds0", i), "", ""
		switch {
		case i < 4:
			name, devtype = fmt.Sprintf("bond%d", i), "bond"
			files["proc/net/bonding/"+name] = "Bonding Mode: IEEE 802.3ad Dynamic link aggregation\nMII Status: up\n\nSlave Interface: enp" + fmt.Sprint(8+2*i) + "s0\nMII Status: up\nLink Failure Count: 0\n\nSlave Interface: enp" + fmt.Sprint(9+2*i) + "s0\nMII Status: up\nLink Failure Count: 1\n"
			master = fmt.Sprintf("vmbr%d", i)
		case i < 8:
			name, devtype = fmt.Sprintf("vmbr%d", i-4), "bridge"
		case i < 16:
			master = fmt.Sprintf("bond%d", (i-8)/2)
		case i < 24:
			name, devtype = fmt.Sprintf("vmbr0.%d", i), "vlan"
		}
		d := "sys/devices/virtual/net/" + name
		if devtype == "" {
			d = fmt.Sprintf("sys/devices/pci0000:00/0000:00:%02x.0/net/%s", i, name)
			links[d+"/device"] = "../.."
		}
		links["sys/class/net/"+name] = "../../" + strings.TrimPrefix(d, "sys/")
		files[d+"/uevent"] = fmt.Sprintf("INTERFACE=%s\nIFINDEX=%d\n", name, i+2)
		if devtype != "" {
			files[d+"/uevent"] += "DEVTYPE=" + devtype + "\n"
		}
		files[d+"/operstate"], files[d+"/speed"], files[d+"/mtu"] = "up\n", "10000\n", "9000\n"
		if master != "" {
			links[d+"/master"] = "../" + master
		}
		fmt.Fprintf(&dev, "%8s: %d %d 0 3 0 0 0 0 %d %d 0 0 0 0 0 0\n", name, 1e12+i, 1e9+i, 5e11+i, 4e8+i)
	}
	files["proc/net/dev"] = dev.String()
}

// bigDisks is 24 disks of 4 partitions each, and 8 loop devices.
func bigDisks(files map[string]string) {
	var ds strings.Builder
	for i := range 24 {
		name := "sd" + string(rune('a'+i))
		files["sys/block/"+name+"/queue/logical_block_size"] = "512\n"
		fmt.Fprintf(&ds, "   8 %7d %s 1288203 412011 61203810 901234 9123456 3412987 398765432 23456789 0 12098765 24358023 0 0 0 0 812345 401234\n", i*16, name)
		for p := 1; p <= 4; p++ {
			fmt.Fprintf(&ds, "   8 %7d %s%d 312 0 10120 88 0 0 0 0 0 120 88 0 0 0 0 0 0\n", i*16+p, name, p)
		}
	}
	for i := range 8 {
		fmt.Fprintf(&ds, "   7 %7d loop%d 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", i, i)
	}
	files["proc/diskstats"] = ds.String()
}

// bigHwmon is 12 chips of 4 temperatures (with label, max, crit) and 2
// fans each.
func bigHwmon(files, links map[string]string) {
	for i := range 12 {
		d := fmt.Sprintf("sys/devices/platform/chip.%d/hwmon/hwmon%d", i, i)
		links[fmt.Sprintf("sys/class/hwmon/hwmon%d", i)] = "../../" + strings.TrimPrefix(d, "sys/")
		files[d+"/name"] = "nct6775\n"
		for t := 1; t <= 4; t++ {
			files[fmt.Sprintf("%s/temp%d_input", d, t)] = fmt.Sprint(30000+t*1000, "\n")
			files[fmt.Sprintf("%s/temp%d_label", d, t)] = fmt.Sprint("Sensor ", t, "\n")
			files[fmt.Sprintf("%s/temp%d_max", d, t)] = "80000\n"
			files[fmt.Sprintf("%s/temp%d_crit", d, t)] = "95000\n"
		}
		files[d+"/fan1_input"], files[d+"/fan2_input"] = "1200\n", "0\n"
	}
}

// writeTree writes files and symlinks (name: target) under dir.
func writeTree(tb testing.TB, dir string, files, links map[string]string) {
	tb.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			tb.Fatal(err)
		}
	}
}

// hostFilesSources are the issue-20 fast sources.
var hostFilesSources = []string{"pressure", "net", "diskio", "sensors"}

func bigHostConfig(b *testing.B, on bool) *config.Config {
	cfg := benchConfig(b, "ws://127.0.0.1:1/socket/websocket")
	cfg.Proc.Root, cfg.Sys.Root = bigHost(b, b.TempDir())
	cfg.Sources = config.Sources{}
	for _, n := range hostFilesSources {
		cfg.Sources[n] = on
	}
	return cfg
}

// BenchmarkFastHostFiles is one fast round and its encode (as
// BenchmarkRound/noexec/fast) on the big host: "today" with the new
// sources off, "with-host-files" with them on; the difference is their
// cost. The host source's additions (vmstat, KSM, EDAC, adjtimex) are in
// both: "host-additions" measures them alone.
func BenchmarkFastHostFiles(b *testing.B) {
	for _, v := range []struct {
		name string
		on   bool
	}{{"today", false}, {"with-host-files", true}} {
		b.Run(v.name, func(b *testing.B) {
			cfg := bigHostConfig(b, v.on)
			env := Wire(cfg, nil, nil, discard)
			env.ReporterStatus = joinedStatus
			round := collect.NewRound("fast", sourcesFor(false)("fast", env), nil, discard)
			round.Run(time.Now())
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := 0; i < b.N; i++ {
				s := round.Run(time.Now()).Sample
				if len(s.Errors) > 0 {
					b.Fatalf("round errors: %v", s.Errors)
				}
				if v.on && len(s.Data) != 8 {
					b.Fatalf("%d sources", len(s.Data))
				}
				if _, err := payload.Encode(s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
	b.Run("host-additions", func(b *testing.B) {
		cfg := bigHostConfig(b, false)
		plain := &collect.Host{FS: collect.FS{Root: cfg.Proc.Root}}
		full := &collect.Host{FS: collect.FS{Root: cfg.Proc.Root}, Sys: cfg.Sys.Root, Clock: collect.SystemClock{}}
		for _, h := range []*collect.Host{plain, full} {
			if _, err := h.Collect(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNow()
		var extra time.Duration
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			_, _ = plain.Collect(b.Context())
			t1 := time.Now()
			_, _ = full.Collect(b.Context())
			extra += time.Since(t1) - t1.Sub(t0)
		}
		b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op(both)")
		b.ReportMetric(float64(extra.Microseconds())/1000/float64(b.N), "extra-wall-ms/op")
	})
}

// BenchmarkHostFilesSource is each new fast source's collect alone on the
// big host, and the JSON encoding of what it returned.
func BenchmarkHostFilesSource(b *testing.B) {
	for _, name := range hostFilesSources {
		b.Run(name, func(b *testing.B) {
			cfg := bigHostConfig(b, true)
			env := Wire(cfg, nil, nil, discard)
			var src collect.Source
			for _, s := range collect.For("fast", env) {
				if s.Name == name {
					src = s
				}
			}
			v, err := src.Collect(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			b.Run("collect", func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuNow()
				for b.Loop() {
					if _, err := src.Collect(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuNow()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			})
			b.Run("encode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := json.Marshal(v); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// The new fast sources allocate the same per round after hours as after
// minutes: no state that grows with uptime (previous counters, held files,
// static attributes are bounded by the host's devices). Windows of 240
// rounds hold whole rescan cycles (20 rounds for interfaces, 120 for
// chips), so their averages compare like with like.
func TestHostFilesAllocationsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2000 rounds")
	}
	cfg := benchConfig(t, "ws://127.0.0.1:1/socket/websocket")
	cfg.Proc.Root, cfg.Sys.Root = bigHost(t, t.TempDir())
	env := Wire(cfg, nil, nil, discard)
	var srcs []collect.Source
	for _, s := range collect.For("fast", env) {
		if slices.Contains(hostFilesSources, s.Name) || s.Name == "host" {
			srcs = append(srcs, s)
		}
	}
	if len(srcs) != 5 {
		t.Fatalf("%d sources", len(srcs))
	}
	// AllocsPerRun counts the whole process's allocations, but with
	// GOMAXPROCS at 1 while it runs, so a goroutine left by another test
	// barely shares the window; the margin absorbs what it still adds.
	run := func(n int) float64 {
		return testing.AllocsPerRun(n, func() {
			for _, s := range srcs {
				if _, err := s.Collect(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	run(240)
	early := run(240)
	run(1500)
	late := run(240)
	if late > early*1.05+2 {
		t.Fatalf("allocations per round grew from %.1f to %.1f", early, late)
	}
	t.Logf("allocations per round: %.1f early, %.1f after 2000 rounds", early, late)
}
