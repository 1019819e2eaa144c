// Package procfs parses the /proc files the host and node sources read:
// bytes in, typed structs out. Reading (and recording the read in the dump)
// is the collection layer's job.
package procfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// LoadAvg is /proc/loadavg's three averages; a field the kernel wrote as
// something without a JSON number form (NaN, Inf) is unknown.
type LoadAvg struct{ Load1, Load5, Load15 lenient.Float }

// ParseLoadAvg parses "0.12 0.34 0.56 1/200 3000".
func ParseLoadAvg(b []byte) (LoadAvg, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return LoadAvg{}, fmt.Errorf("loadavg: want 3 numbers, got %q", clip(b))
	}
	var v [3]lenient.Float
	for i := range v {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil || x < 0 {
			return LoadAvg{}, fmt.Errorf("loadavg: field %d %q is not a load", i+1, clip([]byte(f[i])))
		}
		v[i] = lenient.F(x)
	}
	return LoadAvg{v[0], v[1], v[2]}, nil
}

// ParseMeminfo parses /proc/meminfo into bytes (kB values multiplied by
// 1024; unitless values such as HugePages_Total kept as they are).
func ParseMeminfo(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[strings.TrimSpace(key)] = v
	}
	if _, ok := out["MemTotal"]; !ok {
		return nil, fmt.Errorf("meminfo: no MemTotal in %q", clip(b))
	}
	return out, nil
}

// ParseUptime parses /proc/uptime's first field, in whole seconds.
func ParseUptime(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("uptime: empty")
	}
	x, err := strconv.ParseFloat(f[0], 64)
	if err != nil || x < 0 {
		return 0, fmt.Errorf("uptime: %q is not seconds", f[0])
	}
	return uint64(x), nil
}

// CPUTimes is the first "cpu" line of /proc/stat, in jiffies.
type CPUTimes struct {
	Busy, Total uint64
}

// ParseStatCPU parses the aggregate cpu line: busy is everything but idle
// and iowait; guest time is already part of user and nice, so it is left out
// of the total.
func ParseStatCPU(b []byte) (CPUTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return CPUTimes{}, fmt.Errorf("stat: cpu line has %d fields", len(f)-1)
		}
		var t CPUTimes
		for i, s := range f[1:] {
			if i >= 8 { // guest, guest_nice
				break
			}
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("stat: cpu field %d %q: %w", i+1, s, err)
			}
			t.Total += v
			if i != 3 && i != 4 { // idle, iowait
				t.Busy += v
			}
		}
		return t, nil
	}
	return CPUTimes{}, fmt.Errorf("stat: no aggregate cpu line")
}

// BusyPercent is the CPU busy share between two samples, or false when the
// counters did not advance (or went backwards, after a counter reset).
func BusyPercent(prev, cur CPUTimes) (float64, bool) {
	if cur.Total <= prev.Total || cur.Busy < prev.Busy {
		return 0, false
	}
	pct := float64(cur.Busy-prev.Busy) / float64(cur.Total-prev.Total) * 100
	return float64(int64(pct*100+0.5)) / 100, true
}

// CPUInfo is the processor model and logical CPU count.
type CPUInfo struct {
	Model string `json:"cpu_model"`
	Count int    `json:"cpu_count"`
}

// ParseCPUInfo parses /proc/cpuinfo.
func ParseCPUInfo(b []byte) (CPUInfo, error) {
	var ci CPUInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			ci.Count++
		case "model name":
			if ci.Model == "" {
				ci.Model = strings.TrimSpace(val)
			}
		}
	}
	if ci.Count == 0 {
		return ci, fmt.Errorf("cpuinfo: no processor entries")
	}
	return ci, nil
}

func clip(b []byte) string {
	s := string(b)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
