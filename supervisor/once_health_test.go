package supervisor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// once --source runs each Proxmox health source alone on the fixture host
// (testdata/pve-health): its key and nothing else, no error.
func TestOnceSourceHealth(t *testing.T) {
	tree, err := filepath.Abs("../testdata/pve-health")
	if err != nil {
		t.Fatal(err)
	}
	cfgtool := filepath.Join(t.TempDir(), "corosync-cfgtool")
	script := "#!/bin/sh\ncat '" + tree + "/corosync-cfgtool-s.txt'\n"
	if err := os.WriteFile(cfgtool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"backups", "replication", "ha", "certificates", "subscription", "updates", "corosync"} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Node = "pve1"
			cfg.PVE.EtcDir, cfg.PVE.LibDir, cfg.PVE.LogDir = tree+"/etc-pve", tree+"/lib-pve-manager", tree+"/log-pve"
			cfg.PVE.AptListsDir, cfg.PVE.SubscriptionFile = tree+"/apt-lists", tree+"/subscription"
			cfg.Commands.CorosyncCfgtool = cfgtool
			out, err := Once(Options{Config: cfg, Log: discard, Source: name})
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Data   map[string]json.RawMessage `json:"data"`
				Errors map[string]string          `json:"errors"`
			}
			if err := json.Unmarshal(out["slow"], &p); err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || len(p.Data) != 1 || p.Data[name] == nil || len(p.Errors) != 0 {
				t.Errorf("%s", out["slow"])
			}
		})
	}
}
