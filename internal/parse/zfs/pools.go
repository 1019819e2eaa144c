// Package zfs parses OpenZFS command output and kstats into the agent's
// payload types. Every parser is a pure function from bytes to structs; the
// JSON (OpenZFS >= 2.3) and text (2.2, every Proxmox VE 8) paths produce the
// same shape and, for the same pool, the same values.
package zfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Pool is one pool in the zfs_pools payload.
type Pool struct {
	Name          string        `json:"name"`
	State         string        `json:"state"`
	GUID          lenient.Uint  `json:"guid"`
	Status        string        `json:"status"`
	Action        string        `json:"action"`
	Size          lenient.Uint  `json:"size"`
	Alloc         lenient.Uint  `json:"alloc"`
	Free          lenient.Uint  `json:"free"`
	Fragmentation lenient.Uint  `json:"fragmentation"`
	Capacity      lenient.Uint  `json:"capacity"`
	Dedup         lenient.Float `json:"dedup"`
	Scan          *Scan         `json:"scan"`
	ErrorCount    lenient.Uint  `json:"error_count"`
	Vdevs         []Vdev        `json:"vdevs"`
}

// Scan is the last or current scrub/resilver.
type Scan struct {
	Function string        `json:"function"` // SCRUB, RESILVER
	State    string        `json:"state"`    // SCANNING, FINISHED, CANCELED
	Progress lenient.Float `json:"progress_pct"`
	Errors   lenient.Uint  `json:"errors"`
	Start    lenient.Uint  `json:"start_time"` // unix seconds
	End      lenient.Uint  `json:"end_time"`   // unix seconds; unknown while scanning
}

// Vdev is one vdev: the root (named like the pool), a group (mirror, raidz,
// draid, spare, replacing) or a leaf (disk, file).
type Vdev struct {
	Name           string       `json:"name"`
	Type           string       `json:"type"`
	Class          string       `json:"class"` // normal, special, dedup, log, cache, spare
	State          string       `json:"state"`
	Parent         string       `json:"parent"`
	GUID           lenient.Uint `json:"guid"`
	ReadErrors     lenient.Uint `json:"read_errors"`
	WriteErrors    lenient.Uint `json:"write_errors"`
	ChecksumErrors lenient.Uint `json:"checksum_errors"`
	// Reason says why a vdev is not healthy ("too many errors",
	// "was /dev/sdc1"); "" when there is none.
	Reason string `json:"reason"`
}

// Sizes are a pool's capacity figures from zpool list.
type Sizes struct {
	Size, Alloc, Free, Fragmentation, Capacity lenient.Uint
	Dedup                                      lenient.Float
	Health                                     string
}

type jsonStatus struct {
	Pools map[string]jsonPool `json:"pools"`
}

type jsonPool struct {
	Name       lenient.String      `json:"name"`
	State      lenient.String      `json:"state"`
	GUID       lenient.Uint        `json:"pool_guid"`
	Status     lenient.String      `json:"status"`
	Action     lenient.String      `json:"action"`
	Scan       *jsonScan           `json:"scan_stats"`
	Vdevs      map[string]jsonVdev `json:"vdevs"`
	ErrorCount lenient.Uint        `json:"error_count"`
}

type jsonScan struct {
	Function  lenient.String `json:"function"`
	State     lenient.String `json:"state"`
	Start     lenient.Uint   `json:"start_time"`
	End       lenient.Uint   `json:"end_time"`
	ToExamine lenient.Uint   `json:"to_examine"`
	Examined  lenient.Uint   `json:"examined"`
	Issued    lenient.Uint   `json:"issued"`
	Errors    lenient.Uint   `json:"errors"`
}

type jsonVdev struct {
	Name       lenient.String `json:"name"`
	Type       lenient.String `json:"vdev_type"`
	GUID       lenient.Uint   `json:"guid"`
	Path       lenient.String `json:"path"`
	Class      lenient.String `json:"class"`
	State      lenient.String `json:"state"`
	Parent     lenient.String `json:"parent"`
	Read       lenient.Uint   `json:"read_errors"`
	Write      lenient.Uint   `json:"write_errors"`
	Checksum   lenient.Uint   `json:"checksum_errors"`
	Aux        lenient.String `json:"aux"`
	NotPresent lenient.Uint   `json:"not_present"`
	Was        lenient.String `json:"was"`
}

// ParseStatusJSON parses `zpool status -j --json-flat-vdevs --json-int`.
// Sizes are filled in later from zpool list (MergeSizes).
func ParseStatusJSON(b []byte) ([]Pool, error) {
	var doc jsonStatus
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("zpool status: invalid JSON: %w", err)
	}
	if doc.Pools == nil {
		return nil, errors.New("zpool status: no \"pools\" object in the output")
	}
	pools := make([]Pool, 0, len(doc.Pools))
	for key, jp := range doc.Pools {
		name := string(jp.Name)
		if name == "" {
			name = key
		}
		p := Pool{
			Name: name, State: string(jp.State), GUID: jp.GUID,
			Status: cleanText(string(jp.Status)), Action: cleanText(string(jp.Action)),
			ErrorCount: jp.ErrorCount, Vdevs: []Vdev{},
		}
		if s := jp.Scan; s != nil && s.Function != "" && s.Function != "NONE" {
			p.Scan = &Scan{Function: string(s.Function), State: string(s.State), Errors: s.Errors, Start: s.Start}
			switch p.Scan.State {
			case "FINISHED":
				p.Scan.Progress = lenient.F(100)
				p.Scan.End = s.End
			case "CANCELED":
				p.Scan.End = s.End
				p.Scan.Progress = percent(s.Issued, s.ToExamine)
			default:
				p.Scan.Progress = percent(s.Issued, s.ToExamine)
			}
		}
		for vkey, jv := range jp.Vdevs {
			p.Vdevs = append(p.Vdevs, jsonToVdev(vkey, jv, name))
		}
		sortVdevs(p.Vdevs)
		pools = append(pools, p)
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools, nil
}

func jsonToVdev(key string, jv jsonVdev, pool string) Vdev {
	name := string(jv.Name)
	if name == "" {
		name = key
	}
	v := Vdev{
		Name: name, Type: string(jv.Type), Class: normClass(string(jv.Class)),
		State: normState(string(jv.State)), Parent: string(jv.Parent), GUID: jv.GUID,
		ReadErrors: jv.Read, WriteErrors: jv.Write, ChecksumErrors: jv.Checksum,
	}
	if v.Type == "" {
		v.Type = typeFromName(name, pool)
	}
	if v.Class == "" {
		v.Class = "normal"
	}
	switch {
	case jv.Was != "":
		v.Reason = "was " + string(jv.Was)
	case jv.Aux != "":
		v.Reason = auxText(string(jv.Aux))
	case jv.NotPresent.Valid && jv.NotPresent.V != 0:
		v.Reason = "not present"
	}
	return v
}

// normState maps the raw vdev_state enum of JSON output to the words text
// output prints, so both paths agree.
func normState(s string) string {
	switch s {
	case "CANT_OPEN":
		return "UNAVAIL"
	case "HEALTHY":
		return "ONLINE"
	}
	return s
}

func normClass(c string) string {
	switch strings.ToLower(c) {
	case "logs", "log", "embedded_log":
		return "log"
	case "cache", "l2cache":
		return "cache"
	case "spare", "spares":
		return "spare"
	}
	return strings.ToLower(c)
}

// auxText renders vdev_aux_t the way zpool status's text does.
func auxText(aux string) string {
	switch aux {
	case "ERR_EXCEEDED":
		return "too many errors"
	case "OPEN_FAILED":
		return "cannot open"
	case "CORRUPT_DATA":
		return "corrupted data"
	case "NO_REPLICAS":
		return "insufficient replicas"
	case "BAD_GUID_SUM":
		return "missing device"
	case "TOO_SMALL":
		return "device too small"
	case "BAD_LABEL":
		return "invalid label"
	case "VERSION_NEWER", "VERSION_OLDER", "UNSUP_FEAT":
		return "unsupported version or feature"
	case "SPARED":
		return "currently in use"
	case "EXTERNAL", "EXTERNAL_PERSIST":
		return "external device fault"
	case "SPLIT_POOL":
		return "split into new pool"
	case "ASHIFT_TOO_BIG":
		return "ashift too big"
	}
	return strings.ToLower(strings.ReplaceAll(aux, "_", " "))
}

// typeFromName guesses a vdev type from its name, for text output and for
// JSON entries (draid) that lack vdev_type.
func typeFromName(name, pool string) string {
	base, _, _ := strings.Cut(name, "-")
	switch {
	case name == pool:
		return "root"
	case strings.HasPrefix(name, "draid"):
		return "draid"
	case strings.HasPrefix(base, "raidz"):
		return "raidz"
	case base == "mirror", base == "spare", base == "replacing", base == "indirect", base == "hole":
		return base
	case strings.HasPrefix(name, "/"):
		return "file"
	}
	return "disk"
}

var classRank = map[string]int{"normal": 0, "special": 1, "dedup": 2, "log": 3, "cache": 4, "spare": 5}

// sortVdevs orders vdevs depth-first from the root, top levels by class
// (normal, special, dedup, log, cache, spare) and siblings by name, so the
// JSON map and the text tree give the same list.
func sortVdevs(vs []Vdev) {
	byName := make(map[string]*Vdev, len(vs))
	for i := range vs {
		byName[vs[i].Name] = &vs[i]
	}
	keys := make(map[string][]string, len(vs))
	var path func(v *Vdev, depth int) []string
	path = func(v *Vdev, depth int) []string {
		if k, ok := keys[v.Name]; ok {
			return k
		}
		var k []string
		if p, ok := byName[v.Parent]; ok && v.Parent != v.Name && depth < 64 {
			k = append(append([]string(nil), path(p, depth+1)...), v.Name)
		} else {
			rank := 0
			if v.Type != "root" {
				rank = 1 + classRank[v.Class]
			}
			k = []string{fmt.Sprintf("%02d", rank), v.Name}
		}
		keys[v.Name] = k
		return k
	}
	// Sort the positions, not the vdevs: a stable sort moves elements
	// many times, and moving a Vdev (ten pointer fields) with write
	// barriers was a fifth of ParseStatusJSON on a 600-disk pool.
	order := make([]int, len(vs))
	for i := range vs {
		path(&vs[i], 0)
		order[i] = i
	}
	ks := make([][]string, len(vs))
	for i := range vs {
		ks[i] = keys[vs[i].Name]
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := ks[i], ks[j]
		for n := 0; n < len(a) && n < len(b); n++ {
			if c := strings.Compare(a[n], b[n]); c != 0 {
				return c
			}
		}
		return len(a) - len(b)
	})
	sorted := make([]Vdev, len(vs))
	for to, from := range order {
		sorted[to] = vs[from]
	}
	copy(vs, sorted)
}

func percent(part, whole lenient.Uint) lenient.Float {
	if !part.Valid || !whole.Valid || whole.V == 0 {
		return lenient.Float{}
	}
	p := float64(part.V) / float64(whole.V) * 100
	if p > 100 {
		p = 100
	}
	return lenient.F(float64(int64(p*100)) / 100) // two decimals, as zpool prints
}

// cleanText joins zpool's tab-indented continuation lines into one line.
func cleanText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

type jsonList struct {
	Pools map[string]struct {
		Name       lenient.String `json:"name"`
		Properties map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"properties"`
	} `json:"pools"`
}

// ParseListJSON parses `zpool list -j --json-int`. Empty output (no pools)
// returns an empty map.
func ParseListJSON(b []byte) (map[string]Sizes, error) {
	out := map[string]Sizes{}
	if len(strings.TrimSpace(string(b))) == 0 {
		return out, nil
	}
	var doc jsonList
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("zpool list: invalid JSON: %w", err)
	}
	for key, p := range doc.Pools {
		name := string(p.Name)
		if name == "" {
			name = key
		}
		prop := func(k string) string {
			var s lenient.String
			_ = json.Unmarshal(p.Properties[k].Value, &s)
			return string(s)
		}
		out[name] = Sizes{
			Size: lenient.ParseUint(prop("size")), Alloc: lenient.ParseUint(prop("allocated")),
			Free: lenient.ParseUint(prop("free")), Fragmentation: lenient.ParseUint(prop("fragmentation")),
			Capacity: lenient.ParseUint(prop("capacity")), Dedup: lenient.ParseFloat(prop("dedupratio")),
			Health: prop("health"),
		}
	}
	return out, nil
}

// ListColumns is the -o argument ParseListText expects.
const ListColumns = "name,size,alloc,free,frag,cap,dedup,health"

// ParseListText parses `zpool list -H -p -o name,size,alloc,free,frag,cap,dedup,health`:
// tab-separated, one pool a line, "-" for unknown.
func ParseListText(b []byte) (map[string]Sizes, error) {
	out := map[string]Sizes{}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			f = strings.Fields(line)
		}
		if len(f) != 8 {
			return nil, fmt.Errorf("zpool list: line %d: want 8 columns (%s), got %d", i+1, ListColumns, len(f))
		}
		out[f[0]] = Sizes{
			Size: lenient.ParseUint(f[1]), Alloc: lenient.ParseUint(f[2]), Free: lenient.ParseUint(f[3]),
			Fragmentation: lenient.ParseUint(strings.TrimSuffix(f[4], "%")),
			Capacity:      lenient.ParseUint(strings.TrimSuffix(f[5], "%")),
			Dedup:         lenient.ParseFloat(strings.TrimSuffix(f[6], "x")), Health: f[7],
		}
	}
	return out, nil
}

// MergeSizes copies zpool list figures into the pools from zpool status.
// A pool that list knows and status does not (imported between the two
// calls) is added with its health as state.
func MergeSizes(pools []Pool, sizes map[string]Sizes) []Pool {
	seen := map[string]bool{}
	for i := range pools {
		p := &pools[i]
		seen[p.Name] = true
		if s, ok := sizes[p.Name]; ok {
			p.Size, p.Alloc, p.Free = s.Size, s.Alloc, s.Free
			p.Fragmentation, p.Capacity, p.Dedup = s.Fragmentation, s.Capacity, s.Dedup
		}
	}
	var extra []string
	for name := range sizes {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		s := sizes[name]
		pools = append(pools, Pool{Name: name, State: s.Health, Size: s.Size, Alloc: s.Alloc, Free: s.Free,
			Fragmentation: s.Fragmentation, Capacity: s.Capacity, Dedup: s.Dedup, Vdevs: []Vdev{}})
	}
	return pools
}
