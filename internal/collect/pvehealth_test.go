package collect

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
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
