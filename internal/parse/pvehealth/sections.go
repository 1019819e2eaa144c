// Package pvehealth parses the files and command output behind the Proxmox
// health sources: vzdump jobs and their task logs, replication, HA,
// certificates, the subscription, pending updates and corosync links. Each
// parser is a pure function of bytes; the rules mirror the Perl (or C, or
// Rust) that writes or reads each file, named in each parser's comment.
package pvehealth

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// Section is one section of a PVE::SectionConfig file (jobs.cfg,
// replication.cfg, ha/resources.cfg): "type: id" and its properties.
type Section struct {
	Type, ID string
	Props    map[string]string
}

var (
	sectionHeader = regexp.MustCompile(`^(\S+):\s*(\S+)\s*$`)
	sectionProp   = regexp.MustCompile(`^\s+(\S+)(?:\s+(.*\S))?\s*$`)
)

// parseSections reads a section config file with PVE::SectionConfig's
// parse_config rules: comment lines (first non-blank "#") are skipped; a
// section starts at a "type: id" line and runs to the next empty line; a
// property line is indented "key value"; a line that fits neither is
// ignored (Perl warns and goes on); the first definition of a key wins
// (Perl refuses a duplicate). Any bytes parse.
func parseSections(b []byte) []Section {
	var out []Section
	var cur *Section
	for len(b) > 0 {
		line := b
		if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
			line, b = b[:nl], b[nl+1:]
		} else {
			b = nil
		}
		s := string(line)
		if strings.HasPrefix(strings.TrimLeft(s, " \t\r\v\f"), "#") {
			continue
		}
		// Perl's "while ($line = ...)" ends a section at a false line:
		// "" and, quirk for quirk, "0".
		if s == "" || s == "0" {
			cur = nil
			continue
		}
		if cur != nil {
			if m := sectionProp.FindStringSubmatch(s); m != nil {
				if _, dup := cur.Props[m[1]]; !dup {
					cur.Props[m[1]] = m[2]
				}
			}
			continue
		}
		if m := sectionHeader.FindStringSubmatch(s); m != nil {
			out = append(out, Section{Type: m[1], ID: m[2], Props: map[string]string{}})
			cur = &out[len(out)-1]
		}
	}
	return out
}

// flag is a SectionConfig boolean: absent is def, "0" false, anything
// that Perl's boolean parser takes as true ("1", "on", "yes", "true") true.
func flag(props map[string]string, key string, def bool) bool {
	v, ok := props[key]
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true":
		return true
	}
	return false
}

// vmidList splits a PVE vmid list ("100,101 102;103") into vmids, in
// order, dropping what is not a vmid (PVE's pve-vmid-list format).
func vmidList(s string) []uint64 {
	out := []uint64{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == 0 }) {
		if v, err := strconv.ParseUint(f, 10, 64); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}
