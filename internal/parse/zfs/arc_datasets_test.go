package zfs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// arcstats-zfs-2.3.txt imitates /proc/spl/kstat/zfs/arcstats.
func TestParseARCStats(t *testing.T) {
	a, err := ParseARCStats(read(t, "arcstats-zfs-2.3.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != lenient.U(6720918120) || a.Target != lenient.U(6735413248) || a.Min != lenient.U(2104818176) ||
		a.Hits != lenient.U(1893457210) || a.Misses != lenient.U(25418733) || a.L2Hits != lenient.U(0) ||
		a.MemoryAvailable.V != 6813331456 {
		t.Errorf("%+v", a)
	}
	bad := map[string]string{
		"empty":     "",
		"garbage":   "\x00\x01 binary",
		"no table":  "13 1 0x01 147 39984 5933112390 1209853911870411\n",
		"truncated": "13 1 0x01 147\nname type data\nhits 4 12\n",
	}
	for name, in := range bad {
		if _, err := ParseARCStats([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A row with a non-numeric value is unknown, not an error.
	a, err = ParseARCStats([]byte("x\nname type data\nsize 4 banana\nhits 4 5\n"))
	if err != nil || a.Size.Valid || a.Hits != lenient.U(5) {
		t.Errorf("%+v %v", a, err)
	}
}

// zfs-list-datasets.json imitates `zfs list -j --json-int -t filesystem,volume
// -o name,used,avail,refer,compressratio`; the -Hp.txt file the text form.
func TestDatasetsJSONMatchesText(t *testing.T) {
	j, err := ParseDatasetsJSON(read(t, "zfs-list-datasets.json"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseDatasetsText(read(t, "zfs-list-datasets-Hp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, x) {
		t.Fatalf("JSON %+v\ntext %+v", j, x)
	}
	if len(j) != 7 || j[0].Name != "rpool" || j[0].Type != "filesystem" || j[1].CompressRatio != lenient.F(1.45) {
		t.Errorf("%+v", j[:2])
	}
	var vols int
	for _, d := range j {
		if d.Type == "volume" {
			vols++
		}
	}
	if vols == 0 {
		t.Error("no volumes parsed")
	}
	if _, err := ParseDatasetsJSON([]byte(`{"datasets":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
	if _, err := ParseDatasetsJSON([]byte(`{"output_version":{}}`)); err == nil {
		t.Error("no datasets key accepted")
	}
	if _, err := ParseDatasetsText([]byte("a\tb\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: %v", err)
	}
	if d, err := ParseDatasetsJSON(nil); err != nil || len(d) != 0 {
		t.Errorf("empty: %v %v", d, err)
	}
}

func TestParseVersion(t *testing.T) {
	v, err := ParseVersion(read(t, "zfs-version.txt"))
	if err != nil || v != (Version{"2.3.4-pve1", "2.3.4-pve1"}) || v.MajorMinor() != "2.3" {
		t.Fatalf("%+v %v", v, err)
	}
	v, _ = ParseVersion(read(t, "zfs-version-2.2.txt"))
	if v.MajorMinor() != "2.2" {
		t.Errorf("%+v", v)
	}
	if _, err := ParseVersion([]byte("command not understood")); err == nil {
		t.Error("garbage accepted")
	}
}
