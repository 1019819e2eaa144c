// Package pmxcfs parses the files the Proxmox VE cluster filesystem serves
// under /etc/pve: .vmlist, .members, .rrd and guest configs. Together they
// are what `pvesh get /cluster/resources` is built from, so Guests rebuilds
// its guest entries without running Perl. Every rule here mirrors the
// emitting code (pmxcfs status.c) or the Perl that reads it (PVE::Cluster
// rrd_dump, PVE::API2Tools extract_vm_stats), because the payload must be
// field for field what the pvesh path gives.
package pmxcfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
)

// VMEntry is one guest of the cluster as .vmlist lists it.
type VMEntry struct {
	VMID uint64
	Node string
	Type string // qemu, lxc (openvz on very old clusters)
}

// ParseVMList parses /etc/pve/.vmlist and returns the guests sorted by vmid.
// pmxcfs omits "ids" when the cluster has no guest, so only "version" is
// required; an id that is not a number is skipped, as Perl's "$vmid + 0"
// would make it 0, which no guest has.
func ParseVMList(b []byte) ([]VMEntry, error) {
	var raw struct {
		Version *json.RawMessage `json:"version"`
		IDs     map[string]struct {
			Node lenient.String `json:"node"`
			Type lenient.String `json:"type"`
		} `json:"ids"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf(".vmlist: want a JSON object: %w", err)
	}
	if raw.Version == nil {
		return nil, errors.New(".vmlist: no version field")
	}
	out := make([]VMEntry, 0, len(raw.IDs))
	for id, e := range raw.IDs {
		vmid, err := strconv.ParseUint(id, 10, 64)
		if err != nil || vmid == 0 {
			continue
		}
		out = append(out, VMEntry{VMID: vmid, Node: string(e.Node), Type: string(e.Type)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out, nil
}

// ConfigPath is the guest's config below /etc/pve, as pmxcfs's
// vminfo_to_path builds it; false for a type without one.
func (v VMEntry) ConfigPath() (string, bool) {
	dir, ok := map[string]string{"qemu": "qemu-server", "lxc": "lxc"}[v.Type]
	if !ok || v.Node == "" || strings.ContainsAny(v.Node, "/\x00") || v.Node == "." || v.Node == ".." {
		return "", false
	}
	return "nodes/" + v.Node + "/" + dir + "/" + strconv.FormatUint(v.VMID, 10) + ".conf", true
}

// RRDFields is one .rrd line's values after the key. A value is nil where
// the file says "U" (undefined), as Perl's rrd_dump maps "U" to undef.
type RRDFields []*string

// RRD is /etc/pve/.rrd: the latest status line of every node, guest and
// storage the cluster heard from in the last few minutes, by key.
type RRD map[string]RRDFields

// ParseRRD parses /etc/pve/.rrd the way PVE::Cluster::rrd_dump does: one
// "key:value:value…" line per object; a last line without its newline is
// ignored (pmxcfs always ends lines, so that is a cut-off read), as are
// lines with an empty key or fewer than two values. A later line for the
// same key wins. Empty input is an empty RRD: pmxcfs drops lines older
// than about five minutes, so after a cluster-wide outage there may be none
// (every guest is then "unknown", as pvesh says). Non-empty input without
// a single status line is an error: that is not what pmxcfs writes.
func ParseRRD(b []byte) (RRD, error) {
	out := RRD{}
	if len(b) == 0 {
		return out, nil
	}
	for {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			break
		}
		line := string(b[:nl])
		b = b[nl+1:]
		fields := perlSplit(line)
		if len(fields) < 3 || fields[0] == "" || fields[0] == "0" {
			continue
		}
		vals := make(RRDFields, len(fields)-1)
		for i, f := range fields[1:] {
			if f != "U" {
				vals[i] = &f
			}
		}
		out[fields[0]] = vals
	}
	if len(out) == 0 {
		return nil, errors.New(".rrd: no status line")
	}
	return out, nil
}

// perlSplit is Perl's split(/:/, $s): trailing empty fields are dropped.
func perlSplit(s string) []string {
	f := strings.Split(s, ":")
	for len(f) > 0 && f[len(f)-1] == "" {
		f = f[:len(f)-1]
	}
	return f
}

var newVMKey = regexp.MustCompile(`^pve-vm-\d\d?.\d/(\d+)$`)

// VMs returns each guest's status line by vmid: the PVE 8 key
// (pve2.3-vm/<vmid>) if present, else a PVE 9+ key (pve-vm-<version>/<vmid>),
// the order PVE::API2Tools::get_rrd_key looks them up in. Where several 9+
// versions exist for one guest (Perl takes whichever its hash yields first)
// the greatest key wins, so the result does not depend on map order.
func (r RRD) VMs() map[uint64]RRDFields {
	out := map[uint64]RRDFields{}
	newKey := map[uint64]string{}
	for k, d := range r {
		if id, ok := strings.CutPrefix(k, "pve2.3-vm/"); ok {
			if vmid, err := strconv.ParseUint(id, 10, 64); err == nil {
				out[vmid] = d
				newKey[vmid] = "\xff" // an old key beats every new one
			}
			continue
		}
		m := newVMKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		vmid, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || k <= newKey[vmid] {
			continue
		}
		out[vmid], newKey[vmid] = d, k
	}
	return out
}

// value is field i, or nil when it is "U" or missing.
func (f RRDFields) value(i int) *string {
	if i < len(f) {
		return f[i]
	}
	return nil
}

// GuestConfig is what the guests source takes from a guest's config:
// tags and lock (as /cluster/resources has them), onboot, and the guest's
// snapshots. Empty strings mean absent.
type GuestConfig struct {
	Tags string
	Lock string
	// OnBoot is the current section's "onboot" (absent is false, Proxmox's
	// default).
	OnBoot bool
	// Snapshots counts the snapshot sections; OldestSnaptime is the
	// smallest "snaptime" among them (unix seconds, 0 when none has one).
	Snapshots      uint64
	OldestSnaptime int64
}

// ParseGuestConfig reads tags, lock and onboot from the current section of
// a qemu-server or lxc config, with pmxcfs's own rules
// (_get_property_values): a property line starts with "key:" at column
// one, its value is trimmed and an empty value counts as absent; the first
// line starting with "[" ends the current section; only newline-terminated
// lines count (pmxcfs adds the final newline itself); a later line for the
// same key wins. The later sections are counted as snapshots with
// PVE::QemuServer / PVE::LXC::Config's rule ("[name]" with name
// [a-z][a-z0-9_-]+, case-insensitive; [PENDING] and "[special:…]" or
// "[pve:pending]" are not snapshots). Any bytes parse: a config is free
// text to this reader.
func ParseGuestConfig(b []byte) GuestConfig {
	var c GuestConfig
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b[:len(b):len(b)], '\n')
	}
	current, snap := true, false
	for {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return c
		}
		line := b[:nl]
		b = b[nl+1:]
		if len(line) > 0 && line[0] == '[' {
			current = false
			snap = isSnapshotHeader(line)
			if snap {
				c.Snapshots++
			}
			continue
		}
		if !current {
			if v, ok := property(line, "snaptime"); ok && snap {
				if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > 0 && (c.OldestSnaptime == 0 || t < c.OldestSnaptime) {
					c.OldestSnaptime = t
				}
			}
			continue
		}
		if v, ok := property(line, "tags"); ok {
			c.Tags = v
		}
		if v, ok := property(line, "lock"); ok {
			c.Lock = v
		}
		if v, ok := property(line, "onboot"); ok {
			c.OnBoot = v == "1"
		}
	}
}

var snapshotHeader = regexp.MustCompile(`(?i)^\[([a-z][a-z0-9_\-]+)\]\s*$`)

func isSnapshotHeader(line []byte) bool {
	m := snapshotHeader.FindSubmatch(line)
	return m != nil && !strings.EqualFold(string(m[1]), "pending")
}

// property is the value of a "key: value" line, mirroring
// _get_property_value_from_line (C isspace: space, \t, \n, \v, \f, \r).
func property(line []byte, key string) (string, bool) {
	if len(line) <= len(key)+1 || line[len(key)] != ':' || string(line[:len(key)]) != key {
		return "", false
	}
	v := strings.Trim(string(line[len(key)+1:]), " \t\n\v\f\r")
	// C stops at the first NUL: the value is a C string.
	if i := strings.IndexByte(v, 0); i >= 0 {
		v = strings.TrimRight(v[:i], " \t\n\v\f\r")
	}
	return v, v != ""
}

// Guests builds node's qemu and lxc entries as /cluster/resources reports
// them, sorted by vmid: stats from the guest's .rrd line
// (PVE::API2Tools::extract_vm_stats: "U" and missing values are 0, status
// "unknown" and no stats at all when the guest has no line), tags and lock
// from its config (confs, by vmid; a guest without one has neither).
// Template comes from the .rrd line as in Perl, not from the config.
func Guests(vmlist []VMEntry, rrd RRD, confs map[uint64]GuestConfig, node string) []pve.Guest {
	out := []pve.Guest{}
	stats := rrd.VMs()
	for _, e := range vmlist {
		if e.Node != node || (e.Type != "qemu" && e.Type != "lxc") {
			continue
		}
		g := pve.Guest{VMID: lenient.U(e.VMID), Type: e.Type, Status: "unknown", Tags: []string{}}
		if d, ok := stats[e.VMID]; ok {
			g.Name, g.Status = text(d.value(1)), text(d.value(2))
			g.Template = number(d.value(3)) == "1"
			g.Usage = usage(d)
		}
		c := confs[e.VMID]
		g.Tags, g.Lock = pve.SplitTags(c.Tags), c.Lock
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID.V < out[j].VMID.V })
	return out
}

// usage maps a guest line's fields (after the key: uptime, name, status,
// template, ctime, maxcpu, cpu, maxmem, mem, maxdisk, disk, netin, netout,
// diskread, diskwrite) the way extract_vm_stats does.
func usage(d RRDFields) pve.Usage {
	u := func(i int) lenient.Uint { return lenient.ParseUint(number(d.value(i))) }
	return pve.Usage{
		Uptime: u(0), MaxCPU: lenient.ParseFloat(number(d.value(5))), CPU: lenient.ParseFloat(number(d.value(6))),
		MaxMem: u(7), Mem: u(8), MaxDisk: u(9), Disk: u(10),
		NetIn: u(11), NetOut: u(12), DiskRead: u(13), DiskWrite: u(14),
	}
}

// text is a string field; undef is JSON null, which the pvesh parser reads as "".
func text(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var perlNumPrefix = regexp.MustCompile(`^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`)

// number is "($v || 0) + 0" in Perl: undef, "" and "0" are 0; otherwise
// the numeric prefix of the string (Perl numifies "12abc" to 12 and "abc"
// to 0), as the text JSON would carry. Canonicalised through float
// formatting only where Perl would do the same (a decimal point or an
// exponent), so integers stay exact.
func number(s *string) string {
	if s == nil {
		return "0"
	}
	m := strings.TrimSpace(perlNumPrefix.FindString(*s))
	if m == "" {
		return "0"
	}
	m = strings.TrimPrefix(m, "+")
	_, errU := strconv.ParseUint(m, 10, 64)
	_, errI := strconv.ParseInt(m, 10, 64)
	if strings.ContainsAny(m, ".eE") || (errU != nil && errI != nil) {
		// A float, or an integer too big for Perl's IV/UV: an NV, printed
		// with 15 significant digits.
		f, err := strconv.ParseFloat(m, 64)
		if err != nil {
			return "0"
		}
		return strconv.FormatFloat(f, 'g', 15, 64)
	}
	if t := strings.TrimLeft(strings.TrimPrefix(m, "-"), "0"); t == "" {
		return "0"
	}
	return m
}

// Members is /etc/pve/.members: this node's name and, when the node is in
// a cluster, the cluster and its nodes.
type Members struct {
	NodeName string
	// Cluster is nil on a standalone node (pmxcfs writes no cluster block).
	Cluster *ClusterInfo
	Nodes   []MemberNode // sorted by name
}

// ClusterInfo is the cluster block of .members.
type ClusterInfo struct {
	Name    string
	Nodes   lenient.Uint // configured nodes, online or not
	Quorate bool
}

// MemberNode is one node of the nodelist.
type MemberNode struct {
	Name   string
	ID     lenient.Uint
	Online bool
}

// ParseMembers parses /etc/pve/.members (pmxcfs cfs_create_memberlist_msg).
// The file must be a JSON object naming this node.
func ParseMembers(b []byte) (Members, error) {
	var raw struct {
		NodeName lenient.String `json:"nodename"`
		Cluster  *struct {
			Name    lenient.String `json:"name"`
			Nodes   lenient.Uint   `json:"nodes"`
			Quorate lenient.Bool   `json:"quorate"`
		} `json:"cluster"`
		NodeList map[string]struct {
			ID     lenient.Uint `json:"id"`
			Online lenient.Bool `json:"online"`
		} `json:"nodelist"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Members{}, fmt.Errorf(".members: want a JSON object: %w", err)
	}
	if raw.NodeName == "" {
		return Members{}, errors.New(".members: no nodename field")
	}
	m := Members{NodeName: string(raw.NodeName), Nodes: []MemberNode{}}
	if raw.Cluster != nil {
		m.Cluster = &ClusterInfo{Name: string(raw.Cluster.Name), Nodes: raw.Cluster.Nodes, Quorate: raw.Cluster.Quorate.V}
	}
	for name, n := range raw.NodeList {
		m.Nodes = append(m.Nodes, MemberNode{Name: name, ID: n.ID, Online: n.Online.V})
	}
	sort.Slice(m.Nodes, func(i, j int) bool { return m.Nodes[i].Name < m.Nodes[j].Name })
	return m, nil
}
