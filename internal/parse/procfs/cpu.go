package procfs

import (
	"bytes"
	"fmt"
	"math"
)

// CPUStat is the aggregate "cpu" line of /proc/stat, in USER_HZ ticks.
// guest and guest_nice are left out: the kernel already counts them in
// user and nice. Kernels before 2.6.11 print fewer fields; the missing ones
// are zero.
type CPUStat struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// ParseStat parses the aggregate cpu line of /proc/stat (the first line
// on every kernel; found by name all the same).
func ParseStat(b []byte) (CPUStat, error) {
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		name, fields := nextField(line)
		if string(name) != "cpu" {
			continue
		}
		var v [8]uint64
		n := uints(fields, v[:])
		if n < 4 {
			return CPUStat{}, fmt.Errorf("stat: cpu line %q has %d numeric fields, want at least 4", clip(line), n)
		}
		return CPUStat{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
	}
	return CPUStat{}, fmt.Errorf("stat: no aggregate cpu line in %q", clip(b))
}

// Times is the busy/total pair BusyPercent works on.
func (c CPUStat) Times() CPUTimes {
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return CPUTimes{Busy: busy, Total: busy + c.Idle + c.IOWait}
}

// CPUShares is how the CPU time between two samples was spent, in percent
// of all CPUs' time: user includes nice, irq includes softirq.
type CPUShares struct {
	User, System, IOWait, Steal, IRQ, Idle float64
}

// Shares compares two samples. It reports false when no time passed or a
// counter went backwards (a CPU taken offline takes its ticks with it);
// idle and iowait are the exception: the kernel's iowait accounting is
// approximate and is known to step back a little, so a drop there counts
// as no time rather than voiding the sample.
func Shares(prev, cur CPUStat) (CPUShares, bool) {
	var d [8]uint64
	pv := [8]uint64{prev.User, prev.Nice, prev.System, prev.Idle, prev.IOWait, prev.IRQ, prev.SoftIRQ, prev.Steal}
	cv := [8]uint64{cur.User, cur.Nice, cur.System, cur.Idle, cur.IOWait, cur.IRQ, cur.SoftIRQ, cur.Steal}
	var total uint64
	for i := range d {
		switch {
		case cv[i] >= pv[i]:
			d[i] = cv[i] - pv[i]
		case i == 3 || i == 4: // idle, iowait
			d[i] = 0
		default:
			return CPUShares{}, false
		}
		if total+d[i] < total {
			return CPUShares{}, false
		}
		total += d[i]
	}
	if total == 0 {
		return CPUShares{}, false
	}
	pct := func(ticks uint64) float64 {
		return math.Round(float64(ticks)/float64(total)*10000) / 100
	}
	return CPUShares{
		User: pct(d[0] + d[1]), System: pct(d[2]), IOWait: pct(d[4]),
		Steal: pct(d[7]), IRQ: pct(d[5] + d[6]), Idle: pct(d[3]),
	}, true
}

// VmstatValue returns key's value in /proc/vmstat ("oom_kill 3"): false
// when the key is absent (oom_kill appeared in 4.13), an error when its
// value is not a counter.
func VmstatValue(b []byte, key string) (uint64, bool, error) {
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		name, val := nextField(line)
		if string(name) != key {
			continue
		}
		f, _ := nextField(val)
		v, ok := atou(f)
		if !ok {
			return 0, false, fmt.Errorf("vmstat: %s value %q is not a counter", key, clip(bytes.TrimSpace(val)))
		}
		return v, true, nil
	}
	return 0, false, nil
}
