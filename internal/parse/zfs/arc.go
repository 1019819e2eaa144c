package zfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// ARC is the arc payload: sizes in bytes, counters cumulative since the
// module was loaded (the server derives rates).
type ARC struct {
	Size            lenient.Uint `json:"size"`
	Target          lenient.Uint `json:"target"`
	Min             lenient.Uint `json:"min"`
	Max             lenient.Uint `json:"max"`
	Hits            lenient.Uint `json:"hits"`
	Misses          lenient.Uint `json:"misses"`
	MRUSize         lenient.Uint `json:"mru_size"`
	MFUSize         lenient.Uint `json:"mfu_size"`
	MetaUsed        lenient.Uint `json:"meta_used"`
	MemoryAvailable lenient.Int  `json:"memory_available"`
	L2Hits          lenient.Uint `json:"l2_hits"`
	L2Misses        lenient.Uint `json:"l2_misses"`
	L2Size          lenient.Uint `json:"l2_size"`
	L2ASize         lenient.Uint `json:"l2_asize"`
}

// ParseARCStats parses /proc/spl/kstat/zfs/arcstats: a kstat header line, a
// "name type data" line, then one "name type value" row per stat.
func ParseARCStats(b []byte) (ARC, error) {
	stats := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sawHeader := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "name" && f[1] == "type" {
			sawHeader = true
			continue
		}
		if sawHeader && len(f) == 3 {
			stats[f[0]] = f[2]
		}
	}
	if !sawHeader || len(stats) == 0 {
		return ARC{}, fmt.Errorf("arcstats: no \"name type data\" table in %d bytes", len(b))
	}
	if _, ok := stats["size"]; !ok {
		return ARC{}, fmt.Errorf("arcstats: no \"size\" row")
	}
	u := func(k string) lenient.Uint { return lenient.ParseUint(stats[k]) }
	return ARC{
		Size: u("size"), Target: u("c"), Min: u("c_min"), Max: u("c_max"),
		Hits: u("hits"), Misses: u("misses"), MRUSize: u("mru_size"), MFUSize: u("mfu_size"),
		MetaUsed: u("arc_meta_used"), MemoryAvailable: lenient.ParseInt(stats["memory_available_bytes"]),
		L2Hits: u("l2_hits"), L2Misses: u("l2_misses"), L2Size: u("l2_size"), L2ASize: u("l2_asize"),
	}, nil
}
