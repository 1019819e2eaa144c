package supervisor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/collect"
)

var updateOnceHost = flag.Bool("update-once-host", false, "rewrite testdata/once-host.json")

// fixedTimex is a clock disciplined by NTP, the same on every machine.
type fixedTimex struct{}

func (fixedTimex) Adjtimex(buf *unix.Timex) (int, error) {
	*buf = unix.Timex{Offset: -250, Maxerror: 12000, Status: unix.STA_PLL}
	return unix.TIME_OK, nil
}

// once over the fixture host (testdata/host/pve9: [proc] root and [sys]
// root pointed at it): the issue-20 keys of its payload, byte for byte.
// once has no previous round, so every rate is null. statfs and adjtimex
// are faked: they ask the machine the test runs on, not the roots.
func TestOnceHostFilesGolden(t *testing.T) {
	cfg := testConfig(t)
	cfg.Node = "pve1"
	cfg.Proc.Root = "../testdata/host/pve9/proc"
	cfg.Sys.Root = "../testdata/host/pve9/sys"
	cfg.PVE.EtcDir = "../testdata/pmxcfs/pve9"
	bin, _ := filepath.Abs("../testdata/fakebin")
	cfg.Commands.Zpool, cfg.Commands.Zfs = filepath.Join(bin, "zpool"), filepath.Join(bin, "zfs")
	cfg.Commands.Pvesh, cfg.Commands.Smartctl = filepath.Join(bin, "pvesh"), filepath.Join(bin, "smartctl")
	sources := func(kind string, env *collect.Env) []collect.Source {
		env.Timex, env.PageSize = fixedTimex{}, 4096
		env.Files().StatfsFunc = func(path string, st *unix.Statfs_t) error {
			*st = unix.Statfs_t{Bsize: 4096, Frsize: 4096, Blocks: 1 << 24, Bfree: 1 << 23, Bavail: 1 << 22, Files: 1 << 20, Ffree: 1 << 19}
			return nil
		}
		return collect.For(kind, env)
	}
	out, err := Once(Options{Config: cfg, Log: discard, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{"fast": {"host", "pressure", "net", "diskio", "sensors"}, "medium": {"filesystems", "guests"}}
	got := map[string]map[string]json.RawMessage{}
	for kind, names := range keys {
		var p struct {
			Data   map[string]json.RawMessage `json:"data"`
			Errors map[string]string          `json:"errors"`
		}
		if err := json.Unmarshal(out[kind], &p); err != nil {
			t.Fatal(err)
		}
		got[kind] = map[string]json.RawMessage{}
		for _, n := range names {
			if p.Errors[n] != "" || p.Data[n] == nil {
				t.Errorf("%s: %s missing (error %q)", kind, n, p.Errors[n])
			}
			got[kind][n] = p.Data[n]
		}
		if g := got[kind]["guests"]; g != nil { // only what this test is about: the rest has its own goldens
			var gs []struct {
				VMID     json.RawMessage `json:"vmid"`
				Pressure json.RawMessage `json:"pressure"`
			}
			if err := json.Unmarshal(g, &gs); err != nil {
				t.Fatal(err)
			}
			got[kind]["guests"], _ = json.Marshal(gs)
		}
	}
	body, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/once-host.json"
	if *updateOnceHost {
		if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, append(body, '\n')) {
		t.Errorf("%s differs (go test ./supervisor -run OnceHostFiles -update-once-host to accept):\n%s", path, body)
	}
}
