// Package pve parses `pvesh get ... --output-format json` output. Proxmox
// prints some numbers as strings and orders arrays at random, so decoding
// is lenient and results are sorted.
package pve

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Guest is one VM or container of this node, from /cluster/resources (the
// only pvesh path that carries real cpu, diskread and diskwrite).
type Guest struct {
	VMID     lenient.Uint `json:"vmid"`
	Name     string       `json:"name"`
	Type     string       `json:"type"` // qemu, lxc
	Status   string       `json:"status"`
	Template bool         `json:"template"`
	Usage
	Tags []string `json:"tags"`
	Lock string   `json:"lock"`
	GuestHealth
	// Pressure is the guest's cgroup pressure, filled by the collection
	// layer for running guests; null for a stopped guest and where the
	// cgroup v2 files are missing (cgroup v1, a kernel without PSI).
	Pressure *GuestPressure `json:"pressure"`
}

// GuestPressure is the 10-second averages of a guest's cgroup v2 pressure
// files ({cpu,memory,io}.pressure), in percent of wall time; a field is
// null when its line or file is missing.
type GuestPressure struct {
	CPUSomeAvg10    *float64 `json:"cpu_some_avg10"`
	MemorySomeAvg10 *float64 `json:"memory_some_avg10"`
	MemoryFullAvg10 *float64 `json:"memory_full_avg10"`
	IOSomeAvg10     *float64 `json:"io_some_avg10"`
	IOFullAvg10     *float64 `json:"io_full_avg10"`
}

// GuestHealth is what the guests payload adds for Proxmox health checks.
// /cluster/resources carries only hastate, so the pvesh path leaves onboot
// and the snapshot fields null; the pmxcfs path fills them from the
// guest's config.
type GuestHealth struct {
	OnBoot    *bool `json:"onboot"`
	HAManaged *bool `json:"ha_managed"`
	// Snapshots counts the guest's snapshots; OldestSnapshotSeconds is the
	// age of the oldest (null when there is none with a snaptime).
	Snapshots             *uint64 `json:"snapshots"`
	OldestSnapshotSeconds *int64  `json:"oldest_snapshot_seconds"`
}

// Usage is a guest's resource figures, the same in pvesh's output and in
// the payload (embedded, so its fields sit flat in both).
type Usage struct {
	CPU       lenient.Float `json:"cpu"` // fraction of maxcpu
	MaxCPU    lenient.Float `json:"maxcpu"`
	Mem       lenient.Uint  `json:"mem"`
	MaxMem    lenient.Uint  `json:"maxmem"`
	Disk      lenient.Uint  `json:"disk"`
	MaxDisk   lenient.Uint  `json:"maxdisk"`
	NetIn     lenient.Uint  `json:"netin"`
	NetOut    lenient.Uint  `json:"netout"`
	DiskRead  lenient.Uint  `json:"diskread"`
	DiskWrite lenient.Uint  `json:"diskwrite"`
	Uptime    lenient.Uint  `json:"uptime"`
}

type rawResource struct {
	Type     lenient.String `json:"type"`
	Node     lenient.String `json:"node"`
	VMID     lenient.Uint   `json:"vmid"`
	Name     lenient.String `json:"name"`
	Status   lenient.String `json:"status"`
	Template lenient.Bool   `json:"template"`
	Usage
	Tags lenient.String `json:"tags"`
	Lock lenient.String `json:"lock"`
	// HAState is set for an HA-managed guest (its requested state).
	HAState lenient.String `json:"hastate"`
}

// ParseGuests parses /cluster/resources and keeps node's qemu and lxc
// entries, sorted by vmid. Entries that are not objects are skipped.
//
// The array is decoded in one json.Unmarshal (issue 12: decoding it into
// raw items first and then each item again took twice the time). An
// element that is not an object is left zero (node "", never kept) and
// makes Unmarshal return an *UnmarshalTypeError after it has decoded the
// rest; every field is lenient, so that error can only come from such an
// element or from a document that is not an array at all (items nil).
func ParseGuests(b []byte, node string) ([]Guest, error) {
	var items []rawResource
	if err := json.Unmarshal(b, &items); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || items == nil {
			return nil, fmt.Errorf("pvesh /cluster/resources: want a JSON array: %w", err)
		}
	}
	out := []Guest{}
	for i := range items {
		r := &items[i]
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

// Bool returns a pointer to v, for the nullable payload fields.
func Bool(v bool) *bool { return &v }

// SplitTags turns a tags property, "prod;web" (Proxmox also accepts , and
// space), into a list; the pvesh and the pmxcfs paths must split alike.
func SplitTags(s string) []string {
	tags := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
	if tags == nil {
		return []string{}
	}
	return tags
}

// Storage is one storage as this node sees it.
type Storage struct {
	Storage string   `json:"storage"`
	Type    string   `json:"type"`
	Content []string `json:"content"`
	StorageState
}

// StorageState is a storage's flags and space, the same in pvesh's output
// and in the payload.
type StorageState struct {
	Enabled lenient.Bool `json:"enabled"`
	Active  lenient.Bool `json:"active"`
	Shared  lenient.Bool `json:"shared"`
	Total   lenient.Uint `json:"total"`
	Used    lenient.Uint `json:"used"`
	Avail   lenient.Uint `json:"avail"`
}

type rawStorage struct {
	Storage lenient.String `json:"storage"`
	Type    lenient.String `json:"type"`
	Content lenient.String `json:"content"`
	StorageState
}

// ParseStorage parses /nodes/<node>/storage, sorted by storage id. It
// decodes in one pass like ParseGuests: an element that is not an object
// decodes to a zero item (no storage id, skipped).
func ParseStorage(b []byte) ([]Storage, error) {
	var items []rawStorage
	if err := json.Unmarshal(b, &items); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || items == nil {
			return nil, fmt.Errorf("pvesh /nodes/<node>/storage: want a JSON array: %w", err)
		}
	}
	out := []Storage{}
	for _, r := range items {
		if r.Storage == "" {
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

// Version is /nodes/<node>/version.
type Version struct {
	Version string `json:"version"`
	Release string `json:"release"`
	RepoID  string `json:"repoid"`
}

// ParseVersion parses /nodes/<node>/version.
func ParseVersion(b []byte) (Version, error) {
	var raw struct {
		Version lenient.String `json:"version"`
		Release lenient.String `json:"release"`
		RepoID  lenient.String `json:"repoid"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Version{}, fmt.Errorf("pvesh /nodes/<node>/version: %w", err)
	}
	if raw.Version == "" {
		return Version{}, fmt.Errorf("pvesh /nodes/<node>/version: no version field")
	}
	return Version{string(raw.Version), string(raw.Release), string(raw.RepoID)}, nil
}
