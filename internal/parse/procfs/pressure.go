package procfs

import (
	"fmt"
	"math"
	"strconv"
)

// PSI is one line of a pressure file: the share of wall time in which some
// (or all, "full") tasks stalled on the resource, averaged over 10, 60 and
// 300 seconds, in percent, and the total stall time in microseconds.
type PSI struct {
	Avg10   float64 `json:"avg10"`
	Avg60   float64 `json:"avg60"`
	Avg300  float64 `json:"avg300"`
	TotalUs uint64  `json:"total_us"`
}

// Pressure is a /proc/pressure/{cpu,memory,io} file, or a cgroup v2
// {cpu,memory,io}.pressure file (same format). Full is nil when the file
// has no full line (cpu before 5.13).
type Pressure struct {
	Some *PSI `json:"some"`
	Full *PSI `json:"full,omitempty"`
}

// ParsePressure parses "some avg10=1.82 avg60=1.47 avg300=1.10 total=5123"
// and an optional "full ..." line. Lines of another kind are skipped (the
// kernel may add one); a some or full line with a missing or malformed
// field is an error, as is a file without a some line.
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		kind, fields := nextField(line)
		var dst **PSI
		switch string(kind) {
		case "some":
			dst = &p.Some
		case "full":
			dst = &p.Full
		default:
			continue
		}
		v, err := parsePSI(fields)
		if err != nil {
			return Pressure{}, fmt.Errorf("pressure: %s line %q: %w", kind, clip(line), err)
		}
		*dst = &v
	}
	if p.Some == nil {
		return Pressure{}, fmt.Errorf("pressure: no some line in %q", clip(b))
	}
	return p, nil
}

func parsePSI(b []byte) (PSI, error) {
	var v PSI
	var seen int
	for {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			break
		}
		key, val, ok := cutByte(f, '=')
		if !ok {
			return PSI{}, fmt.Errorf("field %q is not key=value", clip(f))
		}
		switch string(key) {
		case "avg10", "avg60", "avg300":
			x, err := strconv.ParseFloat(string(val), 64)
			if err != nil || x < 0 || x > 100 || math.IsNaN(x) {
				return PSI{}, fmt.Errorf("%s=%q is not a percentage", key, clip(val))
			}
			switch key[3] {
			case '1':
				v.Avg10, seen = x, seen|1
			case '6':
				v.Avg60, seen = x, seen|2
			default:
				v.Avg300, seen = x, seen|4
			}
		case "total":
			x, ok := atou(val)
			if !ok {
				return PSI{}, fmt.Errorf("total=%q is not a counter", clip(val))
			}
			v.TotalUs, seen = x, seen|8
		}
	}
	if seen != 15 {
		return PSI{}, fmt.Errorf("want avg10, avg60, avg300 and total")
	}
	return v, nil
}

func cutByte(b []byte, sep byte) (before, after []byte, ok bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}
