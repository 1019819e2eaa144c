package supervisor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
)

// once --source runs one source, even one [sources] turns off, and prints
// only its cadence with only that key; an unknown name is an error that
// lists the names, and nothing runs.
func TestOnceSource(t *testing.T) {
	cfg := testConfig(t)
	cfg.PVE.EtcDir = "../testdata/pmxcfs/pve9"
	cfg.Sources = config.Sources{"cluster": false}
	out, err := Once(Options{Config: cfg, Log: discard, Source: "cluster"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out["slow"] == nil {
		t.Fatalf("cadences %v, want only slow", keys(out))
	}
	var p struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors map[string]string          `json:"errors"`
	}
	if err := json.Unmarshal(out["slow"], &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Data) != 1 || len(p.Errors) != 0 || !strings.Contains(string(p.Data["cluster"]), `"name":"lab"`) {
		t.Errorf("payload %s", out["slow"])
	}
	if !collect.Enabled(cfg, "guests") || collect.Enabled(cfg, "cluster") {
		t.Error("Once changed the caller's config")
	}
	_, err = Once(Options{Config: cfg, Log: discard, Source: "gusts"})
	if err == nil || !strings.Contains(err.Error(), `unknown source "gusts"; sources are host, zfs_pools`) {
		t.Errorf("unknown source: %v", err)
	}
}

// Without --source, a switched-off source is absent from once's output.
func TestOnceLeavesOutSwitchedOffSources(t *testing.T) {
	cfg := testConfig(t)
	cfg.PVE.EtcDir = "../testdata/pmxcfs/pve9"
	cfg.Sources = config.Sources{"cluster": false, "host": false}
	out, err := Once(Options{Config: cfg, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	for kind, body := range out {
		var p struct {
			Data   map[string]json.RawMessage `json:"data"`
			Errors map[string]string          `json:"errors"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"cluster", "host"} {
			if _, in := p.Data[name]; in {
				t.Errorf("%s: %s in data", kind, name)
			}
			if _, in := p.Errors[name]; in {
				t.Errorf("%s: %s in errors", kind, name)
			}
		}
	}
	// The self-report says which are off, in cadence order.
	if !strings.Contains(string(out["fast"]), `"sources_off":["host","cluster"]`) {
		t.Errorf("self-report: %s", out["fast"])
	}
	if !strings.Contains(string(out["fast"]), `"agent"`) {
		t.Errorf("fast lost its other sources: %s", out["fast"])
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
