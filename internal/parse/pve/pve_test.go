package pve

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pvesh-cluster-resources.json imitates `pvesh get /cluster/resources
// --output-format json` on a two-node cluster with one node offline.
func TestParseGuestsKeepsThisNodesGuests(t *testing.T) {
	gs, err := ParseGuests(read(t, "pvesh-cluster-resources.json"), "pve1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, g := range gs {
		ids = append(ids, g.VMID.V)
	}
	if len(ids) != 5 || ids[0] != 100 || ids[4] != 9000 {
		t.Fatalf("vmids %v, want pve1's 100 101 102 103 9000", ids)
	}
	web := gs[0]
	if web.Name != "web01" || web.Type != "qemu" || web.Status != "running" || web.MaxCPU != lenient.F(4) ||
		web.Mem != lenient.U(6134272000) || web.DiskRead != lenient.U(5134237184) || len(web.Tags) != 2 {
		t.Errorf("%+v", web)
	}
	if gs[3].Type != "lxc" {
		t.Errorf("%+v", gs[3])
	}
	// hastate marks an HA-managed guest; onboot and snapshots are not in
	// /cluster/resources and stay null.
	if h0, h1 := gs[0].GuestHealth, gs[1].GuestHealth; *h0.HAManaged || !*h1.HAManaged || h1.OnBoot != nil || h1.Snapshots != nil || h1.OldestSnapshotSeconds != nil {
		t.Errorf("%+v %+v", h0, h1)
	}
	if gs, _ := ParseGuests(read(t, "pvesh-cluster-resources.json"), "nosuchnode"); len(gs) != 0 {
		t.Errorf("other node's guests: %v", gs)
	}
}

func TestParseGuestsHostileInput(t *testing.T) {
	for name, in := range map[string]string{"empty": "", "object": `{"data":[]}`, "truncated": `[{"type":"qemu"`, "garbage": "ipcc_send_rec[1] failed: Connection refused"} {
		if _, err := ParseGuests([]byte(in), "pve1"); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// Wrong types and numeric strings degrade per field, not per call.
	gs, err := ParseGuests([]byte(`[5,"x",{"type":"qemu","node":"pve1","vmid":"101","cpu":"0.5","mem":{"a":1},"name":100,"template":"1","tags":""}]`), "pve1")
	if err != nil || len(gs) != 1 {
		t.Fatalf("%v %v", gs, err)
	}
	g := gs[0]
	if g.VMID != lenient.U(101) || g.CPU != lenient.F(0.5) || g.Mem.Valid || g.Name != "100" || !g.Template || len(g.Tags) != 0 {
		t.Errorf("%+v", g)
	}
	b, _ := json.Marshal(g)
	if !strings.Contains(string(b), `"mem":null`) || !strings.Contains(string(b), `"tags":[]`) {
		t.Errorf("%s", b)
	}
}

func TestParseStorage(t *testing.T) {
	ss, err := ParseStorage(read(t, "pvesh-nodes-storage.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) < 3 || ss[0].Storage != "local" || ss[0].Type != "dir" || len(ss[0].Content) != 3 ||
		!ss[0].Enabled.V || ss[0].Total != lenient.U(742271246336) {
		t.Fatalf("%+v", ss)
	}
	if _, err := ParseStorage([]byte("storage 'x' is not online")); err == nil {
		t.Error("garbage accepted")
	}
}

// parseStorageTwoPass is ParseStorage as it was before issue 12, the
// reference for the one-pass decode.
func parseStorageTwoPass(b []byte) ([]Storage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, err
	}
	out := []Storage{}
	for _, it := range items {
		var r rawStorage
		if json.Unmarshal(it, &r) != nil || r.Storage == "" {
			continue
		}
		content := strings.Split(string(r.Content), ",")
		if r.Content == "" {
			content = []string{}
		}
		out = append(out, Storage{Storage: string(r.Storage), Type: string(r.Type), Content: content, StorageState: r.StorageState})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Storage < out[j].Storage })
	return out, nil
}

func TestParseStorageAgreesWithTwoPass(t *testing.T) {
	for _, in := range []string{
		string(read(t, "pvesh-nodes-storage.json")), ``, `null`, `[]`, `{}`, `"x"`, `[5,null,[],"s",{}]`,
		`[{"storage":"b","content":"images,rootdir","total":"5"},3,{"storage":"a","enabled":1,"type":{"x":1}}]`,
		`[{"storage":"a"}`,
	} {
		a, errA := ParseStorage([]byte(in))
		b, errB := parseStorageTwoPass([]byte(in))
		if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
			t.Errorf("%q: got %+v %v, reference %+v %v", in, a, errA, b, errB)
		}
	}
}

func TestParseVersion(t *testing.T) {
	v, err := ParseVersion(read(t, "pvesh-nodes-version.json"))
	if err != nil || v.Version != "9.0.10" || v.Release != "9.0" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := ParseVersion([]byte(`{}`)); err == nil {
		t.Error("empty object accepted")
	}
}

func BenchmarkParseGuests1000(b *testing.B) {
	in := read(b, "pvesh-cluster-resources-1000.json")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		gs, err := ParseGuests(in, "pve3")
		if err != nil || len(gs) == 0 {
			b.Fatal(err)
		}
	}
}

// parseGuestsTwoPass is ParseGuests as it was before issue 12 (the array
// into raw items, then each item on its own): the reference the one-pass
// decode must agree with.
func parseGuestsTwoPass(b []byte, node string) ([]Guest, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, err
	}
	out := []Guest{}
	for _, it := range items {
		var r rawResource
		if json.Unmarshal(it, &r) != nil {
			continue
		}
		if string(r.Node) != node || (r.Type != "qemu" && r.Type != "lxc") {
			continue
		}
		out = append(out, Guest{
			VMID: r.VMID, Name: string(r.Name), Type: string(r.Type), Status: string(r.Status),
			Template: r.Template.V, Usage: r.Usage, Tags: SplitTags(string(r.Tags)),
			Lock: string(r.Lock), GuestHealth: GuestHealth{HAManaged: Bool(r.HAState != "")},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID.V < out[j].VMID.V })
	return out, nil
}

// agreesWithTwoPass fails unless ParseGuests and the reference both fail
// or both return the same guests.
func agreesWithTwoPass(t *testing.T, in []byte, node string) {
	t.Helper()
	a, errA := ParseGuests(in, node)
	b, errB := parseGuestsTwoPass(in, node)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%q: error %v, reference %v", in, errA, errB)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%q: got %+v, reference %+v", in, a, b)
	}
}

func TestParseGuestsAgreesWithTwoPass(t *testing.T) {
	for _, f := range []string{"pvesh-cluster-resources-1000.json", "pvesh-cluster-resources.json"} {
		for _, node := range []string{"pve1", "pve3", ""} {
			agreesWithTwoPass(t, read(t, f), node)
		}
	}
	for _, in := range []string{
		``, `null`, `[]`, `{}`, `"x"`, `5`, `[null]`, `[[1]]`, `[5,"x",true,null,[],{}]`,
		`[{"type":"qemu","node":"pve1","vmid":1},7,{"type":"lxc","node":"pve1","vmid":"2"}]`,
		`[{"type":"qemu","node":"pve1","vmid":1,"type":"lxc"}]`,
		`[{"type":"qemu","node":"pve1","vmid":1,"mem":[1,2],"name":{"a":"b"},"tags":"a;b"}]`,
		`[{"type":"qemu","node":"pve1","vmid":1}`,
	} {
		agreesWithTwoPass(t, []byte(in), "pve1")
	}
}

func FuzzParseGuests(f *testing.F) {
	f.Add(read(f, "pvesh-cluster-resources.json"))
	f.Add([]byte(`[{"type":"lxc","node":"pve1","vmid":1e30}]`))
	f.Add([]byte(`[5,"x",{"type":"qemu","node":"pve1","vmid":"101","name":"a\u00e9"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		gs, err := ParseGuests(b, "pve1")
		if err == nil {
			if _, err := json.Marshal(gs); err != nil {
				t.Fatal(err)
			}
		}
		agreesWithTwoPass(t, b, "pve1")
	})
}

func BenchmarkParseStorage(b *testing.B) {
	in := read(b, "pvesh-nodes-storage.json")
	b.ReportAllocs()
	for b.Loop() {
		if ss, err := ParseStorage(in); err != nil || len(ss) == 0 {
			b.Fatal(err)
		}
	}
}
