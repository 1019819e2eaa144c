package supervisor

import (
	"encoding/json"
	"strings"
	"testing"
)

// once --source runs one source, even one [sources] turns off, and prints
// only its cadence with only that key; an unknown name is an error that
// lists the names, and nothing runs.
func TestOnceSource(t *testing.T) {
	cfg := testConfig(t)
	cfg.PVE.EtcDir = "../testdata/pmxcfs/pve9"
	cfg.Sources.Cluster = false
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
	if !cfg.Sources.Enabled("guests") || cfg.Sources.Enabled("cluster") {
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
	cfg.Sources.Cluster, cfg.Sources.Host = false, false
	out, err := Once(Options{Config: cfg, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	for kind, body := range out {
		if strings.Contains(string(body), `"cluster"`) || strings.Contains(string(body), `"host"`) {
			t.Errorf("%s: %s", kind, body)
		}
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
