package zfs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigPool builds a pool of groups raidz2 vdevs of width disks each, as
// zpool status -j --json-flat-vdevs --json-int and as zpool status -p text.
func bigPool(groups, width int) (jsonOut, textOut []byte) {
	vdevs := map[string]any{"big": map[string]any{"name": "big", "vdev_type": "root", "guid": uint64(1) << 63, "class": "normal", "state": "ONLINE",
		"read_errors": 0, "write_errors": 0, "checksum_errors": 0}}
	var text strings.Builder
	text.WriteString("  pool: big\n state: ONLINE\n  scan: none requested\nconfig:\n\n\tNAME STATE READ WRITE CKSUM\n\tbig ONLINE 0 0 0\n")
	for g := 0; g < groups; g++ {
		gname := fmt.Sprintf("raidz2-%d", g)
		vdevs[gname] = map[string]any{"name": gname, "vdev_type": "raidz", "guid": g + 10, "class": "normal", "state": "ONLINE",
			"parent": "big", "read_errors": 0, "write_errors": 0, "checksum_errors": 0}
		fmt.Fprintf(&text, "\t  %s ONLINE 0 0 0\n", gname)
		for d := 0; d < width; d++ {
			dname := fmt.Sprintf("scsi-35000c500a%04d%03d", g, d)
			vdevs[dname] = map[string]any{"name": dname, "vdev_type": "disk", "guid": uint64(1)<<62 + uint64(g*1000+d), "class": "normal",
				"state": "ONLINE", "parent": gname, "read_errors": 0, "write_errors": 0, "checksum_errors": d % 3}
			fmt.Fprintf(&text, "\t    %s ONLINE 0 0 %d\n", dname, d%3)
		}
	}
	text.WriteString("\nerrors: No known data errors\n")
	doc := map[string]any{"output_version": map[string]any{"vers_major": 0}, "pools": map[string]any{"big": map[string]any{
		"name": "big", "state": "ONLINE", "pool_guid": uint64(1) << 63, "vdevs": vdevs, "error_count": 0}}}
	j, _ := json.Marshal(doc)
	return j, []byte(text.String())
}

// A 600-disk pool (60 raidz2 groups of 10): parse time of each path.
func BenchmarkParseLargePool(b *testing.B) {
	j, x := bigPool(60, 10)
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(j)))
		b.ReportAllocs()
		for b.Loop() {
			pools, err := ParseStatusJSON(j)
			if err != nil || len(pools[0].Vdevs) != 661 {
				b.Fatal(err)
			}
		}
	})
	b.Run("text", func(b *testing.B) {
		b.SetBytes(int64(len(x)))
		b.ReportAllocs()
		for b.Loop() {
			pools, err := ParseStatusText(x, time.UTC)
			if err != nil || len(pools[0].Vdevs) != 661 {
				b.Fatal(err)
			}
		}
	})
}

func TestLargePoolPathsAgree(t *testing.T) {
	j, x := bigPool(5, 4)
	a, err := ParseStatusJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseStatusText(x, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	a[0].GUID = b[0].GUID
	for i := range a[0].Vdevs {
		a[0].Vdevs[i].GUID = b[0].Vdevs[i].GUID
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("paths disagree:\n%s\n%s", ja, jb)
	}
}
