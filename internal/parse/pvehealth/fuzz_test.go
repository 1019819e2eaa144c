package pvehealth

import (
	"strings"
	"testing"
	"time"
)

// One fuzz target per file kind; each runs every parser of that kind.
// The bar: no panic, no hang, and the invariants the collectors rely on.

func FuzzSectionConfigs(f *testing.F) {
	f.Add(read(f, "etc-pve/jobs.cfg"))
	f.Add(read(f, "etc-pve/replication.cfg"))
	f.Add(read(f, "etc-pve/ha/resources.cfg"))
	f.Add([]byte("pool:prod::1,2:local:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, j := range ParseJobs(b) {
			if j.ID == "" || strings.ContainsAny(j.ID, " \t\n") {
				t.Fatalf("job id %q", j.ID)
			}
		}
		for _, j := range ParseReplicationConfig(b) {
			if j.VMID == 0 || j.Schedule == "" {
				t.Fatalf("%+v", j)
			}
		}
		for _, r := range ParseHAResources(b) {
			if r.Requested == "" {
				t.Fatalf("%+v", r)
			}
		}
		ParsePools(b)
	})
}

func FuzzTaskIndex(f *testing.F) {
	f.Add(read(f, "log-pve/tasks/index"))
	f.Add(read(f, "log-pve/tasks/active"))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(ts []Task, ended bool) {
			for _, task := range ts {
				if ended && (task.End <= 0 || task.Type != "vzdump") {
					t.Fatalf("%+v", task)
				}
				if name, ok := task.LogName(); ok && strings.Count(name, "/") != 1 {
					t.Fatalf("log name %q", name)
				}
			}
		}
		check(ParseTaskIndex(b, "vzdump"), true)
		check(ParseActiveTasks(b, ""), false)
		ParseUPID(string(b))
	})
}

func FuzzVzdumpLog(f *testing.F) {
	f.Add(read(f, "log-pve/tasks/0/UPID:pve1:000023FF:0000B3FB:68EF01B0:vzdump::root@pam:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := ParseVzdumpLog(b, time.UTC)
		seen := map[uint64]bool{}
		for _, g := range l.Guests {
			if seen[g.VMID] || (g.Status != "ok" && g.Status != "failed" && g.Status != "running") {
				t.Fatalf("%+v", l.Guests)
			}
			seen[g.VMID] = true
		}
	})
}

func FuzzStateFiles(f *testing.F) {
	for _, name := range []string{"lib-pve-manager/jobs/vzdump-backup-3a9f1c2e-5d7b.json", "lib-pve-manager/pve-replication-state.json",
		"etc-pve/ha/manager_status", "etc-pve/nodes/pve1/lrm_status", "lib-pve-manager/pkgupdates"} {
		f.Add(read(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseJobState(b); err == nil && s.State == "" {
			t.Fatal("job state without a state")
		}
		ParseReplicationState(b)
		if m, err := ParseManagerStatus(b); err == nil && (m.Nodes == nil || m.Services == nil) {
			t.Fatal("nil maps")
		}
		ParseLRMStatus(b)
		if u, err := ParseUpdates(b); err == nil {
			for _, p := range u {
				if p.Name == "" {
					t.Fatal("package without a name")
				}
			}
		}
	})
}

func FuzzCertificate(f *testing.F) {
	f.Add(read(f, "etc-pve/nodes/pve1/pveproxy-ssl.pem"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCertificate(b); err == nil && c.NotAfter.IsZero() {
			t.Fatal("certificate without an expiry")
		}
	})
}

func FuzzSubscription(f *testing.F) {
	f.Add(read(f, "subscription"))
	f.Add(read(f, "subscription.legacy-perl"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSubscription(b)
		if err == nil && (s.Status == "" || s.Status != strings.ToLower(s.Status)) {
			t.Fatalf("%+v", s)
		}
	})
}

func FuzzCorosyncStatus(f *testing.F) {
	f.Add(read(f, "corosync-cfgtool-s.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		links, err := ParseCorosyncStatus(b)
		for _, l := range links {
			if err != nil || l.Status == "" {
				t.Fatalf("%+v %v", links, err)
			}
		}
	})
}
