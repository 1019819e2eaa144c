package zfs

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// The fixtures' text was printed in a UTC+2 zone (Europe, summer).
var fixtureZone = time.FixedZone("CEST", 2*3600)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func find(t *testing.T, p Pool, name string) Vdev {
	t.Helper()
	for _, v := range p.Vdevs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no vdev %s in %s", name, p.Name)
	return Vdev{}
}

// Fixtures: zpool-status-*.json imitate `zpool status -j --json-flat-vdevs
// --json-int` of OpenZFS 2.3; *.txt the text of `zpool status -p` (2.2).
func TestParseStatusJSONDegraded(t *testing.T) {
	pools, err := ParseStatusJSON(read(t, "zpool-status-degraded.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 {
		t.Fatalf("%d pools", len(pools))
	}
	p := pools[0]
	if p.Name != "tank" || p.State != "DEGRADED" || p.GUID != lenient.U(3920273586464696295) {
		t.Errorf("pool %s %s %v", p.Name, p.State, p.GUID)
	}
	if !strings.HasPrefix(p.Status, "One or more devices are faulted") || strings.Contains(p.Status, "\t") {
		t.Errorf("status %q", p.Status)
	}
	if p.Scan == nil || p.Scan.Function != "SCRUB" || p.Scan.State != "FINISHED" || p.Scan.Progress != lenient.F(100) ||
		p.Scan.Start != lenient.U(1760221442) || p.Scan.End != lenient.U(1760255893) {
		t.Errorf("scan %+v", p.Scan)
	}
	bad := find(t, p, "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K2KLMNO3")
	if bad.State != "FAULTED" || bad.WriteErrors != lenient.U(1842) || bad.Reason != "too many errors" ||
		bad.Parent != "raidz1-0" || bad.Type != "disk" || bad.GUID != lenient.U(6982750226085199860) {
		t.Errorf("faulted disk %+v", bad)
	}
	// Flat mode's nested copies of children are not listed twice.
	if len(p.Vdevs) != 6 {
		t.Errorf("%d vdevs, want root + raidz + 4 disks", len(p.Vdevs))
	}
	if p.Vdevs[0].Type != "root" || p.Vdevs[1].Name != "raidz1-0" {
		t.Errorf("order: %s, %s", p.Vdevs[0].Name, p.Vdevs[1].Name)
	}
}

func TestRawCompactEqualsPretty(t *testing.T) {
	a, err1 := ParseStatusJSON(read(t, "zpool-status-healthy-mirror.json"))
	b, err2 := ParseStatusJSON(read(t, "zpool-status-healthy-mirror.raw-compact.json"))
	if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("%v %v", err1, err2)
	}
	// GUIDs above 2^63 stay exact.
	if a[0].GUID != lenient.U(17068583395379267683) {
		t.Errorf("guid %v", a[0].GUID)
	}
}

// The text path and the JSON path give the same pool, GUIDs aside (text
// output has none).
func TestTextMatchesJSON(t *testing.T) {
	cases := []struct {
		json, text, listJSON, listText string
		patch                          func(fromJSON []Pool)
	}{
		{"zpool-status-degraded.json", "zpool-status-degraded-p.txt", "zpool-list.json", "zpool-list-Hp.txt", nil},
		{"zpool-status-mixed.json", "zpool-status-mixed.txt", "", "zpool-list-mixed-Hp.txt", func(p []Pool) {
			// Differences of the sources, not of the parsers: JSON gives
			// scan errors while scanning and may omit a draid's state.
			p[0].Scan.Errors = lenient.Uint{}
			for i := range p[0].Vdevs {
				if p[0].Vdevs[i].Type == "draid" {
					p[0].Vdevs[i].State = "ONLINE"
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			fromJSON, err := ParseStatusJSON(read(t, c.json))
			if err != nil {
				t.Fatal(err)
			}
			fromText, err := ParseStatusText(read(t, c.text), fixtureZone)
			if err != nil {
				t.Fatal(err)
			}
			sizesText, err := ParseListText(read(t, c.listText))
			if err != nil {
				t.Fatal(err)
			}
			sizesJSON := sizesText
			if c.listJSON != "" {
				if sizesJSON, err = ParseListJSON(read(t, c.listJSON)); err != nil {
					t.Fatal(err)
				}
			}
			fromJSON = MergeSizes(fromJSON, sizesJSON)
			fromText = MergeSizes(fromText, sizesText)
			for i := range fromJSON {
				fromJSON[i].GUID = lenient.Uint{}
				for j := range fromJSON[i].Vdevs {
					fromJSON[i].Vdevs[j].GUID = lenient.Uint{}
				}
			}
			if c.patch != nil {
				c.patch(fromJSON)
			}
			a, _ := json.MarshalIndent(fromJSON, "", " ")
			b, _ := json.MarshalIndent(fromText, "", " ")
			if string(a) != string(b) {
				t.Errorf("JSON path:\n%s\ntext path:\n%s", a, b)
			}
		})
	}
}

func TestMixedPoolClassesAndReasons(t *testing.T) {
	pools, err := ParseStatusJSON(read(t, "zpool-status-mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := pools[0]
	if p.ErrorCount != lenient.U(2) {
		t.Errorf("error_count %v", p.ErrorCount)
	}
	if p.Scan.Function != "RESILVER" || p.Scan.State != "SCANNING" || p.Scan.Progress != lenient.F(45.3) || p.Scan.End.Valid {
		t.Errorf("scan %+v", p.Scan)
	}
	want := map[string][4]string{ // type, class, state, parent
		"draid1:2d:4c:0s-1":   {"draid", "normal", "", "fast"},
		"mirror-2":            {"mirror", "special", "ONLINE", ""},
		"ssd-s2":              {"disk", "special", "ONLINE", "mirror-2"},
		"ssd-log":             {"disk", "log", "ONLINE", ""},
		"ssd-cache":           {"disk", "cache", "ONLINE", ""},
		"hdd-spare":           {"disk", "spare", "AVAIL", ""},
		"5462018117302948351": {"disk", "normal", "UNAVAIL", "replacing-1"},
		"replacing-1":         {"replacing", "normal", "ONLINE", "mirror-0"},
	}
	for name, w := range want {
		v := find(t, p, name)
		if got := [4]string{v.Type, v.Class, v.State, v.Parent}; got != w {
			t.Errorf("%s: %v, want %v", name, got, w)
		}
	}
	if v := find(t, p, "5462018117302948351"); v.Reason != "was /dev/disk/by-id/nvme-old-part1" {
		t.Errorf("reason %q", v.Reason)
	}
	if v := find(t, p, "ssd-s2"); v.WriteErrors != lenient.U(7) {
		t.Errorf("numeric string not decoded: %v", v.WriteErrors)
	}
	if v := find(t, p, "hdd-spare"); v.ReadErrors.Valid {
		t.Errorf("spare has counters: %+v", v)
	}
	var order []string
	for _, v := range p.Vdevs {
		order = append(order, v.Name)
	}
	wantOrder := "fast draid1:2d:4c:0s-1 mirror-0 nvme-a replacing-1 5462018117302948351 nvme-new mirror-2 ssd-s1 ssd-s2 ssd-log ssd-cache hdd-spare"
	if strings.Join(order, " ") != wantOrder {
		t.Errorf("order\n %s\nwant\n %s", strings.Join(order, " "), wantOrder)
	}
}

func TestStatusJSONBadInput(t *testing.T) {
	cases := map[string]string{
		"empty":     "",
		"truncated": string(read(t, "zpool-status-degraded.json")[:500]),
		"garbage":   "\x00\xffnot json",
		"array":     "[1,2,3]",
		"no pools":  `{"output_version":{}}`,
	}
	for name, in := range cases {
		if _, err := ParseStatusJSON([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Wrong types inside a pool degrade to unknown values, not an error.
	pools, err := ParseStatusJSON([]byte(`{"pools":{"p":{"name":7,"state":["x"],"pool_guid":"abc","vdevs":{"p":{"vdev_type":{},"read_errors":"-"}},"scan_stats":{"function":"SCRUB","state":"SCANNING","issued":5,"to_examine":0}}}}`))
	if err != nil || len(pools) != 1 || pools[0].Name != "7" || pools[0].GUID.Valid || pools[0].Scan.Progress.Valid {
		t.Fatalf("%+v %v", pools, err)
	}
	if pools, err := ParseStatusJSON([]byte(`{"pools":{}}`)); err != nil || len(pools) != 0 {
		t.Fatalf("no pools: %v %v", pools, err)
	}
}

func TestStatusTextBadInput(t *testing.T) {
	if pools, err := ParseStatusText([]byte("no pools available\n"), time.UTC); err != nil || len(pools) != 0 {
		t.Errorf("no pools: %v %v", pools, err)
	}
	if _, err := ParseStatusText([]byte("garbage\x00\nmore garbage"), time.UTC); err == nil {
		t.Error("garbage accepted")
	}
	pools, err := ParseStatusText(read(t, "zpool-status-truncated.txt"), time.UTC)
	if err != nil || len(pools) != 1 || len(pools[0].Vdevs) != 2 {
		t.Fatalf("truncated: %+v %v", pools, err)
	}
	if v := pools[0].Vdevs[0]; v.ReadErrors.Valid || v.State != "ONLINE" {
		t.Errorf("short row: %+v", v)
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]lenient.Uint{"0": lenient.U(0), "1842": lenient.U(1842), "1.80K": lenient.U(1800),
		"2M": lenient.U(2000000), "-": {}, "K": {}, "x1K": {}} {
		if got := parseCount(in); got != want {
			t.Errorf("%s: %v want %v", in, got, want)
		}
	}
}

func TestScanText(t *testing.T) {
	cases := []struct {
		in   []string
		want *Scan
	}{
		{[]string{"none requested"}, nil},
		{[]string{"scrub canceled on Sun Oct 12 09:58:13 2025"}, &Scan{Function: "SCRUB", State: "CANCELED", End: lenient.U(1760255893)}},
		{[]string{"resilvered 1.2T in 1 days 01:00:00 with 3 errors on Sun Oct 12 09:58:13 2025"},
			&Scan{Function: "RESILVER", State: "FINISHED", Progress: lenient.F(100), Errors: lenient.U(3), End: lenient.U(1760255893), Start: lenient.U(1760255893 - 90000)}},
		{[]string{"scrub paused since Sun Oct 12 09:58:13 2025"}, &Scan{Function: "SCRUB", State: "UNKNOWN"}},
		{[]string{"scrub repaired 0B in 00:00:01 with 0 errors on garbage date"}, &Scan{Function: "SCRUB", State: "FINISHED", Progress: lenient.F(100), Errors: lenient.U(0)}},
	}
	for _, c := range cases {
		got := parseScanText(c.in, fixtureZone)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestListParsers(t *testing.T) {
	j, err := ParseListJSON(read(t, "zpool-list.json"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseListText(read(t, "zpool-list-Hp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, x) {
		t.Errorf("list JSON %+v\ntext %+v", j, x)
	}
	if j["tank"].Capacity != lenient.U(44) || j["tank"].Dedup != lenient.F(1) || j["rpool"].Size != lenient.U(996432412672) {
		t.Errorf("tank %+v", j["tank"])
	}
	if m, err := ParseListJSON(nil); err != nil || len(m) != 0 {
		t.Errorf("empty list output (no pools): %v %v", m, err)
	}
	if _, err := ParseListJSON([]byte("{garbage")); err == nil {
		t.Error("garbage list JSON accepted")
	}
	if _, err := ParseListText([]byte("rpool\t1\t2\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: %v", err)
	}
	m, err := ParseListText(read(t, "zpool-list-mixed-Hp.txt"))
	if err != nil || m["fast"].Fragmentation.Valid {
		t.Errorf("'-' frag: %+v %v", m, err)
	}
}

func TestMergeSizesAddsPoolsOnlyInList(t *testing.T) {
	pools := MergeSizes([]Pool{{Name: "a"}}, map[string]Sizes{"a": {Size: lenient.U(1)}, "b": {Health: "ONLINE", Size: lenient.U(2)}})
	if len(pools) != 2 || pools[0].Size != lenient.U(1) || pools[1].Name != "b" || pools[1].State != "ONLINE" {
		t.Fatalf("%+v", pools)
	}
}

func FuzzParseStatusJSON(f *testing.F) {
	for _, n := range []string{"zpool-status-degraded.json", "zpool-status-mixed.json", "zpool-status-healthy-mirror.raw-compact.json"} {
		f.Add(read(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pools, err := ParseStatusJSON(b)
		if err == nil {
			if _, err := json.Marshal(pools); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzParseStatusText(f *testing.F) {
	for _, n := range []string{"zpool-status-degraded.txt", "zpool-status-mixed.txt", "zpool-status-truncated.txt"} {
		f.Add(read(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pools, err := ParseStatusText(b, time.UTC)
		if err == nil {
			if _, err := json.Marshal(pools); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Without -p, zpool abbreviates counters: the parser still reads them.
func TestTextWithoutPAbbreviatedCounters(t *testing.T) {
	pools, err := ParseStatusText(read(t, "zpool-status-degraded.txt"), fixtureZone)
	if err != nil {
		t.Fatal(err)
	}
	if v := find(t, pools[0], "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K2KLMNO3"); v.WriteErrors != lenient.U(1800) {
		t.Errorf("1.80K read as %v", v.WriteErrors)
	}
}
