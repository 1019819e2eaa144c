package zfs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Dataset is one filesystem or volume in the zfs_datasets payload.
type Dataset struct {
	Name          string        `json:"name"`
	Type          string        `json:"type"` // filesystem, volume
	Used          lenient.Uint  `json:"used"`
	Available     lenient.Uint  `json:"available"`
	Referenced    lenient.Uint  `json:"referenced"`
	CompressRatio lenient.Float `json:"compressratio"`
}

// DatasetPropertiesJSON and DatasetColumnsText are the properties (zfs
// list -o) that ParseDatasetsJSON and ParseDatasetsText expect, in order.
const (
	DatasetPropertiesJSON = "name,used,avail,refer,compressratio"
	DatasetColumnsText    = "name,type,used,avail,refer,compressratio"
)

type jsonDatasets struct {
	Datasets map[string]struct {
		Name       lenient.String `json:"name"`
		Type       lenient.String `json:"type"`
		Properties map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"properties"`
	} `json:"datasets"`
}

// ParseDatasetsJSON parses `zfs list -j --json-int ...` (OpenZFS >= 2.3).
func ParseDatasetsJSON(b []byte) ([]Dataset, error) {
	out := []Dataset{}
	if strings.TrimSpace(string(b)) == "" {
		return out, nil
	}
	var doc jsonDatasets
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("zfs list: invalid JSON: %w", err)
	}
	if doc.Datasets == nil {
		return nil, fmt.Errorf("zfs list: no \"datasets\" object in the output")
	}
	for key, d := range doc.Datasets {
		name := string(d.Name)
		if name == "" {
			name = key
		}
		prop := func(k string) string {
			var s lenient.String
			_ = json.Unmarshal(d.Properties[k].Value, &s)
			return string(s)
		}
		out = append(out, Dataset{
			Name: name, Type: strings.ToLower(string(d.Type)),
			Used: lenient.ParseUint(prop("used")), Available: lenient.ParseUint(prop("available")),
			Referenced: lenient.ParseUint(prop("referenced")), CompressRatio: ratio(prop("compressratio")),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ParseDatasetsText parses `zfs list -H -p -t filesystem,volume -o
// name,type,used,avail,refer,compressratio` (OpenZFS 2.2).
func ParseDatasetsText(b []byte) ([]Dataset, error) {
	out := []Dataset{}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("zfs list: line %d: want 6 columns, got %d", i+1, len(f))
		}
		out = append(out, Dataset{
			Name: f[0], Type: strings.ToLower(f[1]), Used: lenient.ParseUint(f[2]), Available: lenient.ParseUint(f[3]),
			Referenced: lenient.ParseUint(f[4]), CompressRatio: ratio(f[5]),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func ratio(s string) lenient.Float { return lenient.ParseFloat(strings.TrimSuffix(s, "x")) }

// Version is the ZFS userland and kernel module versions.
type Version struct {
	Userland string `json:"userland"`
	Kernel   string `json:"kernel"`
}

// ParseVersion parses `zfs version` (same text on 2.2 and 2.3):
// "zfs-2.3.4-pve1" then "zfs-kmod-2.3.4-pve1".
func ParseVersion(b []byte) (Version, error) {
	var v Version
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "zfs-kmod-"):
			v.Kernel = strings.TrimPrefix(line, "zfs-kmod-")
		case strings.HasPrefix(line, "zfs-"):
			v.Userland = strings.TrimPrefix(line, "zfs-")
		}
	}
	if v.Userland == "" && v.Kernel == "" {
		return v, fmt.Errorf("zfs version: unrecognised output %q", firstLine(b))
	}
	return v, nil
}

// MajorMinor returns the userland's "2.3" part, or "" when unknown.
func (v Version) MajorMinor() string {
	parts := strings.SplitN(v.Userland, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
