package collect

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
)

// benchTree writes a big host: 200 guests on pve1, 10 backup jobs of 20
// guests each (last night's run of each has its log), a 50,000-line task
// index (vzdump runs every night for a month among other tasks), 20
// replication jobs and the fixture host's other files.
func benchTree(b *testing.B) *config.Config {
	b.Helper()
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(healthTree)); err != nil {
		b.Fatal(err)
	}
	put := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var vmlist, jobs, repl strings.Builder
	vmlist.WriteString("{\n\"version\": 9,\n\"ids\": {\n")
	for i := range 200 {
		sep := ","
		if i == 199 {
			sep = ""
		}
		fmt.Fprintf(&vmlist, "\"%d\": {\"node\": \"pve1\", \"type\": \"qemu\", \"version\": %d}%s\n", 1000+i, i+1, sep)
	}
	vmlist.WriteString("}\n}\n")
	put("etc-pve/.vmlist", vmlist.String())
	for i := range 20 {
		fmt.Fprintf(&repl, "local: %d-0\n\ttarget pve2\n\n", 1000+i)
	}
	put("etc-pve/replication.cfg", repl.String())

	end := healthT0.Add(-time.Hour).Unix()
	var index strings.Builder
	other := []string{"qmstart", "vncproxy", "qmstop", "vzstart", "aptupdate", "qmsnapshot"}
	lines := 0
	for day := 29; day >= 0; day-- {
		for j := range 10 {
			start := end - int64(day)*86400 - int64(10-j)*600
			upid := fmt.Sprintf("UPID:pve1:%08X:%08X:%08X:vzdump::root@pam:", 4000+j, 90000+j, start)
			fmt.Fprintf(&index, "%s %08X OK\n", upid, start+300)
			lines++
			if day != 0 {
				continue
			}
			var log, vmids strings.Builder
			for g := range 20 {
				vmid := 1000 + j*20 + g
				fmt.Fprintf(&vmids, ",%d", vmid)
				fmt.Fprintf(&log, "INFO: Starting Backup of VM %d (qemu)\nINFO: Backup started at %s\n", vmid, time.Unix(start+int64(g*10), 0).UTC().Format(time.DateTime))
				for range 20 {
					log.WriteString("INFO: 100% (100.0 GiB of 100.0 GiB) in 4m 2s, read: 423.1 MiB/s, write: 190.3 MiB/s\n")
				}
				fmt.Fprintf(&log, "INFO: archive file size: 1.%02dGB\nINFO: Finished Backup of VM %d (00:00:10)\nINFO: Backup finished at %s\n", g, vmid, time.Unix(start+int64(g*10+9), 0).UTC().Format(time.DateTime))
			}
			log.WriteString("TASK OK\n")
			put(fmt.Sprintf("log-pve/tasks/%X/%s", start%16, upid), log.String())
			id := fmt.Sprintf("backup-job%02d", j)
			fmt.Fprintf(&jobs, "vzdump: %s\n\tschedule 02:00\n\tstorage nas\n\tvmid %s\n\n", id, vmids.String()[1:])
			put("lib-pve-manager/jobs/vzdump-"+id+".json", fmt.Sprintf(`{"state":"stopped","msg":"OK","upid":"%s"}`, upid))
		}
		for lines < 50000*(30-day)/30 {
			start := end - int64(day)*86400 + int64(lines%80000)
			fmt.Fprintf(&index, "UPID:pve1:%08X:%08X:%08X:%s:%d:root@pam: %08X OK\n", lines, lines, start, other[lines%len(other)], 1000+lines%200, start+5)
			lines++
		}
	}
	put("etc-pve/jobs.cfg", jobs.String())
	put("log-pve/tasks/index", index.String())
	os.Remove(filepath.Join(dir, "log-pve/tasks/index.1"))
	if n := strings.Count(index.String(), "\n"); n < 50000 {
		b.Fatalf("index has %d lines", n)
	}

	cfg := healthConfig(b)
	cfg.PVE.EtcDir, cfg.PVE.LibDir, cfg.PVE.LogDir = dir+"/etc-pve", dir+"/lib-pve-manager", dir+"/log-pve"
	cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = dir+"/apt-lists", dir+"/subscription"
	cfg.Sources = config.Sources{"storage": false, "disks": false, "node": false}
	return cfg
}

// BenchmarkHealthSlowRound is one slow round of the Proxmox health sources
// and cluster on benchTree (corosync-cfgtool answered in-process: the
// command's own cost is corosync's). cpu-ms/op is the process's CPU time
// per round, every goroutine included.
func BenchmarkHealthSlowRound(b *testing.B) {
	cfg := benchTree(b)
	srcs := buildAt("slow", cfg, &fakeRun{}, FS{Root: "../../testdata/proc"}, nil, func() time.Time { return healthT0 }, time.UTC)
	log := slog.New(slog.DiscardHandler)
	s := CollectOnce("slow", srcs, log)
	if len(s.Errors) != 0 || len(s.Data) != 8 {
		b.Fatalf("errors %v, %d sources", s.Errors, len(s.Data))
	}
	bd := s.Data["backups"].(BackupsData)
	for _, g := range bd.Guests {
		if g.Status == nil || *g.Status != "ok" || g.Job == nil {
			b.Fatalf("guest %d not resolved: %+v", g.VMID, g)
		}
	}
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		CollectOnce("slow", srcs, log)
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
