package pmxcfs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// The fixture trees are shared with internal/collect's tests; see
// testdata/pmxcfs/README.md for what produced each.
const trees = "../../../testdata/pmxcfs/"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(trees, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseVMList(t *testing.T) {
	vms, err := ParseVMList(read(t, "pve9/.vmlist"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 5 || vms[0] != (VMEntry{110, "pve1", "qemu"}) || vms[2].Type != "lxc" || vms[4] != (VMEntry{210, "pve2", "qemu"}) {
		t.Fatalf("%+v", vms)
	}
	// pmxcfs writes no "ids" when the cluster has no guest.
	if vms, err := ParseVMList([]byte("{\n\"version\": 3\n\n}\n")); err != nil || len(vms) != 0 {
		t.Errorf("no guests: %v %v", vms, err)
	}
	if vms, _ := ParseVMList([]byte(`{"version":1,"ids":{"x":{"node":"a"},"0":{},"7":{"node":5,"type":["q"]}}}`)); len(vms) != 1 || vms[0] != (VMEntry{7, "5", ""}) {
		t.Errorf("odd ids: %+v", vms)
	}
}

func TestParseVMListHostileInput(t *testing.T) {
	full := read(t, "pve9/.vmlist")
	for name, in := range map[string][]byte{
		"empty": nil, "truncated": full[:len(full)/2], "garbage": []byte("Transport endpoint is not connected"),
		"no version": []byte(`{"ids":{}}`), "array": []byte(`[]`),
	} {
		if _, err := ParseVMList(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestParseRRDBothFormats(t *testing.T) {
	for _, tree := range []string{"pve9", "pve8"} {
		rrd, err := ParseRRD(read(t, tree+"/.rrd"))
		if err != nil {
			t.Fatal(err)
		}
		vms := rrd.VMs()
		if len(vms) != 5 {
			t.Fatalf("%s: %d guests", tree, len(vms))
		}
		d := vms[110]
		if text(d.value(1)) != "gitlab" || number(d.value(6)) != "0.0734511" || number(d.value(8)) != "9663676416" {
			t.Errorf("%s: 110 = %v", tree, d)
		}
		if stopped := vms[111]; stopped.value(6) != nil || number(stopped.value(6)) != "0" {
			t.Errorf("%s: U is not undefined: %v", tree, stopped)
		}
	}
}

// Perl's rrd_dump: a cut-off last line, an empty key and a line with one
// value are skipped; a later line wins; the old key beats the new one.
func TestParseRRDLines(t *testing.T) {
	in := "pve-vm-9.0/5:1:a:running\n:x:y\nfoo:1\npve-vm-9.0/5:2:b:running\npve-vm-9.0/6:1:c:running:0::\npve2.3-vm/6:9:old:stopped\npve-vm-9.0/7:1:cut"
	rrd, err := ParseRRD([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	vms := rrd.VMs()
	if len(vms) != 2 || text(vms[5].value(1)) != "b" || text(vms[6].value(1)) != "old" {
		t.Errorf("%v", vms)
	}
	if _, ok := rrd["foo"]; ok {
		t.Error("one-value line kept")
	}
	if len(rrd["pve-vm-9.0/6"]) != 4 {
		t.Errorf("trailing empty fields kept: %d", len(rrd["pve-vm-9.0/6"]))
	}
}

func TestParseRRDHostileInput(t *testing.T) {
	for name, in := range map[string]string{"truncated": "pve-vm-9.0/110:86211:gitl", "garbage": "\x00\x01binary\n", "one field": "a:b\n"} {
		if _, err := ParseRRD([]byte(in)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// Empty: nothing heard from in five minutes, not a broken file.
	if rrd, err := ParseRRD(nil); err != nil || len(rrd) != 0 {
		t.Errorf("empty: %v %v", rrd, err)
	}
}

// "($v || 0) + 0", as Perl numifies.
func TestNumberIsPerlNumification(t *testing.T) {
	s := func(v string) *string { return &v }
	for in, want := range map[*string]string{
		nil: "0", s(""): "0", s("0"): "0", s("12"): "12", s("12abc"): "12", s("abc"): "0", s(" 7"): "7",
		s("0.50"): "0.5", s("1e3"): "1000", s("-3"): "-3", s("+4"): "4", s("1.0"): "1", s("007"): "007",
		s("0.12345678901234567"): "0.123456789012346", s("99999999999999999999"): "1e+20",
	} {
		if got := number(in); got != want {
			t.Errorf("number(%q) = %q, want %q", text(in), got, want)
		}
	}
}

func TestParseGuestConfigCurrentSectionOnly(t *testing.T) {
	c := ParseGuestConfig(read(t, "pve8/nodes/pve1/qemu-server/110.conf"))
	if c != (GuestConfig{Tags: "dev;git", Snapshots: 1, OldestSnaptime: 1760000000}) {
		t.Errorf("110: %+v (a [PENDING] or snapshot value leaked)", c)
	}
	if c := ParseGuestConfig(read(t, "pve9/nodes/pve1/lxc/112.conf")); c != (GuestConfig{Lock: "backup"}) {
		t.Errorf("112: %+v", c)
	}
	for in, want := range map[string]GuestConfig{
		"tags:  a b \t\r\n":            {Tags: "a b"},
		"tags:\nlock: \n":              {},
		" tags: indented\n":            {},
		"tags: one\ntags: two\n":       {Tags: "two"},
		"lock: migrate":                {Lock: "migrate"}, // pmxcfs adds the last newline
		"tagsx: no\nlock:backup\n":     {Lock: "backup"},
		"[snap]\ntags: x\n":            {Snapshots: 1},
		"onboot: 1\n[s1]\nonboot: 0\n": {OnBoot: true, Snapshots: 1},
		"onboot: 0\n":                  {},
		"onboot: yes\n":                {}, // Perl's boolean format refuses it; Proxmox boots nothing
		"[aa]\nsnaptime: 20\n[PENDING]\nsnaptime: 5\n[b]\nsnaptime: 1\n[bb]\nsnaptime: 10\n[special:cloudinit]\nsnaptime: 1\n": {Snapshots: 2, OldestSnaptime: 10},
		"[Pending]\n[pve:pending]\n[1bad]\n[ok-1_x] \nsnaptime: x\n":                                                           {Snapshots: 1},
		"tags: a\x00b\n":               {Tags: "a"},
		"":                             {},
		"\xff\xfe garbage\nlock: ok\n": {Lock: "ok"},
	} {
		if got := ParseGuestConfig([]byte(in)); got != want {
			t.Errorf("%q: %+v, want %+v", in, got, want)
		}
	}
}

// The Proxmox health fixture (testdata/pve-health, PVE 9 format): onboot
// and two snapshot sections, the oldest first in the file.
func TestParseGuestConfigSnapshots(t *testing.T) {
	for name, want := range map[string]GuestConfig{
		"qemu-server/110.conf": {Tags: "dev;git", OnBoot: true, Snapshots: 2, OldestSnaptime: 1759290400},
		"qemu-server/111.conf": {}, // onboot 0 and a [PENDING] section
		"lxc/112.conf":         {OnBoot: true},
	} {
		b, err := os.ReadFile("../../../testdata/pve-health/etc-pve/nodes/pve1/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := ParseGuestConfig(b); got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

func TestParseMembers(t *testing.T) {
	m, err := ParseMembers(read(t, "pve9/.members"))
	if err != nil {
		t.Fatal(err)
	}
	if m.NodeName != "pve1" || m.Cluster == nil || m.Cluster.Name != "lab" || !m.Cluster.Quorate || m.Cluster.Nodes != lenient.U(2) ||
		len(m.Nodes) != 2 || m.Nodes[1] != (MemberNode{"pve2", lenient.U(2), true}) {
		t.Fatalf("%+v", m)
	}
	// A standalone node: pmxcfs writes only nodename and version.
	m, err = ParseMembers([]byte("{\n\"nodename\": \"solo\",\n\"version\": 0\n}\n"))
	if err != nil || m.Cluster != nil || len(m.Nodes) != 0 || m.NodeName != "solo" {
		t.Errorf("standalone: %+v %v", m, err)
	}
	full := read(t, "pve9/.members")
	for name, in := range map[string][]byte{"empty": nil, "truncated": full[:60], "garbage": []byte("ipcc_send_rec failed"), "no nodename": []byte(`{"version":1}`)} {
		if _, err := ParseMembers(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// Guests over the PVE 9 tree gives what pvesh's /cluster/resources gives
// for the same state (the collect package proves it on whole payloads).
func TestGuestsMatchClusterResources(t *testing.T) {
	for _, tree := range []string{"pve9", "pve8"} {
		t.Run(tree, func(t *testing.T) {
			vms, err := ParseVMList(read(t, tree+"/.vmlist"))
			if err != nil {
				t.Fatal(err)
			}
			rrd, err := ParseRRD(read(t, tree+"/.rrd"))
			if err != nil {
				t.Fatal(err)
			}
			confs := map[uint64]GuestConfig{}
			for _, v := range vms {
				p, _ := v.ConfigPath()
				if b, err := os.ReadFile(filepath.Join(trees, tree, p)); err == nil {
					confs[v.VMID] = ParseGuestConfig(b)
				}
			}
			got, _ := json.Marshal(Guests(vms, rrd, confs, "pve1"))
			want, err := pve.ParseGuests(read(t, tree+"/cluster-resources.guests.json"), "pve1")
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				// ha_managed comes from hastate here; on the file path the
				// collector fills it (and onboot, snapshots) from other files.
				want[i].GuestHealth = pve.GuestHealth{}
			}
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("files:\n%s\npvesh:\n%s", got, wantJSON)
			}
		})
	}
}

func TestGuestWithoutRRDLineIsUnknown(t *testing.T) {
	gs := Guests([]VMEntry{{5, "n", "lxc"}, {6, "n", "openvz"}, {7, "other", "qemu"}}, RRD{}, map[uint64]GuestConfig{5: {Tags: "a;b", Lock: "backup"}}, "n")
	if len(gs) != 1 {
		t.Fatalf("%+v", gs)
	}
	b, _ := json.Marshal(gs[0])
	if !strings.Contains(string(b), `"status":"unknown"`) || !strings.Contains(string(b), `"cpu":null`) ||
		!strings.Contains(string(b), `"tags":["a","b"]`) || !strings.Contains(string(b), `"name":""`) {
		t.Errorf("%s", b)
	}
}

func BenchmarkParseRRD(b *testing.B) {
	in := read(b, "pve9/.rrd")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRRD(in); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseVMList(f *testing.F) {
	f.Add(read(f, "pve9/.vmlist"))
	f.Add([]byte(`{"version":1,"ids":{"18446744073709551616":{"node":"pve1","type":"lxc"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vms, err := ParseVMList(b)
		if err == nil {
			for _, v := range vms {
				if v.VMID == 0 {
					t.Fatalf("vmid 0 kept: %+v", vms)
				}
			}
		}
	})
}

func FuzzParseRRD(f *testing.F) {
	f.Add(read(f, "pve9/.rrd"))
	f.Add(read(f, "pve8/.rrd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rrd, err := ParseRRD(b)
		if err != nil {
			return
		}
		vms := make([]VMEntry, 0)
		for id := range rrd.VMs() {
			vms = append(vms, VMEntry{VMID: id, Node: "pve1", Type: "qemu"})
		}
		if _, err := json.Marshal(Guests(vms, rrd, nil, "pve1")); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseGuestConfig(f *testing.F) {
	f.Add(read(f, "pve8/nodes/pve1/qemu-server/110.conf"))
	f.Add([]byte("lock: backup"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := ParseGuestConfig(b)
		// Trimmed as pmxcfs's C does (isspace, ASCII only): a Unicode space
		// such as U+2001 is part of the value there, and so here.
		if strings.ContainsAny(c.Tags+c.Lock, "\n\x00") || strings.Trim(c.Tags, " \t\n\v\f\r") != c.Tags {
			t.Fatalf("%+v", c)
		}
	})
}

func FuzzParseMembers(f *testing.F) {
	f.Add(read(f, "pve9/.members"))
	f.Add([]byte(`{"nodename":"solo","version":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseMembers(b); err == nil && m.NodeName == "" {
			t.Fatal("accepted without a node name")
		}
	})
}
