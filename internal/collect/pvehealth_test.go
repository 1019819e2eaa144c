package collect

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/payload"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// The Proxmox health fixture host: see testdata/pve-health/README.md.
const (
	healthTree = "../../testdata/pve-health"
	healthEtc  = healthTree + "/etc-pve"
)

// healthT0 is the fixture host's "now" (2025-10-15T03:46:40Z): the HA
// status was written at it, the last backup ran an hour and a half before.
var healthT0 = time.Unix(1760500000, 0).UTC()

// healthConfig points every Proxmox path at the fixture host, with the
// apt lists' mtimes set (git keeps none): the newest an hour before T0.
func healthConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := testConfig(t.(*testing.T))
	cfg.PVE.EtcDir, cfg.PVE.LibDir, cfg.PVE.LogDir = healthEtc, healthTree+"/lib-pve-manager", healthTree+"/log-pve"
	cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = healthTree+"/apt-lists", healthTree+"/subscription"
	setListTimes(t)
	return cfg
}

func setListTimes(t testing.TB) {
	t.Helper()
	for name, age := range map[string]time.Duration{
		"deb.debian.org_debian_dists_trixie_InRelease":           3 * time.Hour,
		"download.proxmox.com_debian_pve_dists_trixie_InRelease": time.Hour,
		"lock": 0, // apt's lock file: newer, and not a list
	} {
		at := healthT0.Add(-age)
		if err := os.Chtimes(filepath.Join(healthTree, "apt-lists", name), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// healthRound runs one slow round of the Proxmox health sources (and
// cluster) on cfg with the clock at T0 and the host's zone UTC (the
// fixture's task logs are in UTC), and returns the payload.
func healthRound(t *testing.T, cfg *config.Config, run Runner, env *Env) *messages.Sample {
	t.Helper()
	old := time.Local
	time.Local = time.UTC
	defer func() { time.Local = old }()
	for _, off := range []string{"storage", "disks", "node"} {
		cfg.Sources[off] = false // pvesh and smartctl: covered by slow.json
	}
	fs := FS{Root: "../../testdata/proc"}
	if env != nil {
		fs.Dump = env.Dump
	}
	s := CollectOnce("slow", buildAt("slow", cfg, run, fs, env, func() time.Time { return healthT0 }), slog.New(slog.DiscardHandler))
	s.CollectedAt = healthT0
	return s
}

// The fixture host (two-node cluster with HA, replication, two backup
// jobs, a failed guest backup, uncovered guests, three certificates,
// pending updates, a link down) gives this slow payload, byte for byte.
func TestHealthGolden(t *testing.T) {
	cfg := healthConfig(t)
	cfg.Sources = config.Sources{}
	s := healthRound(t, cfg, &fakeRun{}, nil)
	b, err := payload.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "slow-pve-health.json", payload.Indent(b))
	if len(s.Errors) != 0 {
		t.Errorf("errors: %v", s.Errors)
	}
}
