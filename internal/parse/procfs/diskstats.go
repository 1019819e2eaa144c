package procfs

import "fmt"

// DiskStat is one line of /proc/diskstats. Sectors are 512 bytes whatever
// the device's block size; the *Ms fields are milliseconds held in 32 bits
// by the kernel (they wrap after about 49.7 days); InFlight is a gauge.
// Name points into the parsed bytes: copy it to keep it.
type DiskStat struct {
	Major, Minor uint64
	Name         []byte
	ReadIOs      uint64
	ReadMerges   uint64
	ReadSectors  uint64
	ReadMs       uint64
	WriteIOs     uint64
	WriteMerges  uint64
	WriteSectors uint64
	WriteMs      uint64
	InFlight     uint64
	IOMs         uint64 // time the device had I/O in flight: utilisation
	WeightedMs   uint64
}

// ParseDiskstats appends the lines of /proc/diskstats to dst (reuse it
// between rounds to parse without allocating); when keep is not nil, only
// the devices it keeps (partitions, loop devices make most of the file:
// their counters are not even parsed). A line that is not
// "major minor name" and at least 11 counters (4.18 prints 15, 5.5 and
// later 17) is skipped: a torn last line must not cost the other devices.
// An input with lines but not one valid line is an error.
func ParseDiskstats(b []byte, dst []DiskStat, keep func(name []byte) bool) ([]DiskStat, error) {
	lines, bad, valid := 0, []byte(nil), 0
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		var v [2]uint64
		if f, _ := nextField(line); len(f) == 0 {
			continue // blank
		}
		lines++
		if uints(line, v[:]) != 2 {
			bad = line
			continue
		}
		_, r := nextField(line)
		_, r = nextField(r)
		name, r := nextField(r)
		var c [11]uint64
		if len(name) == 0 {
			bad = line
			continue
		}
		if keep != nil && !keep(name) {
			valid++ // not checked further: not wanted
			continue
		}
		if uints(r, c[:]) != 11 {
			bad = line
			continue
		}
		valid++
		dst = append(dst, DiskStat{Major: v[0], Minor: v[1], Name: name,
			ReadIOs: c[0], ReadMerges: c[1], ReadSectors: c[2], ReadMs: c[3],
			WriteIOs: c[4], WriteMerges: c[5], WriteSectors: c[6], WriteMs: c[7],
			InFlight: c[8], IOMs: c[9], WeightedMs: c[10]})
	}
	if lines > 0 && valid == 0 {
		return dst, fmt.Errorf("diskstats: no valid line (last bad: %q)", clip(bad))
	}
	return dst, nil
}

// NetDevStat is one interface's line of /proc/net/dev. rx_dropped is the
// kernel's rx_dropped plus rx_missed_errors (what net-procfs prints).
// Name points into the parsed bytes: copy it to keep it.
type NetDevStat struct {
	Name                                    []byte
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ParseNetDev appends the interfaces of /proc/net/dev to dst (reuse it
// between rounds). The two header lines, and any line that is not
// "name: 16 counters", are skipped; an input with lines but not one valid
// interface is an error.
func ParseNetDev(b []byte, dst []NetDevStat) ([]NetDevStat, error) {
	lines, bad := 0, []byte(nil)
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		name, counters, ok := cutByte(line, ':')
		if !ok {
			continue // header or blank
		}
		lines++
		name, tail := nextField(name)
		if f, _ := nextField(tail); len(name) == 0 || len(f) != 0 {
			bad = line
			continue
		}
		var c [16]uint64
		if uints(counters, c[:]) < 12 { // old kernels: no compressed/multicast tail on tx
			bad = line
			continue
		}
		dst = append(dst, NetDevStat{Name: name,
			RxBytes: c[0], RxPackets: c[1], RxErrors: c[2], RxDropped: c[3],
			TxBytes: c[8], TxPackets: c[9], TxErrors: c[10], TxDropped: c[11]})
	}
	if lines > 0 && len(dst) == 0 {
		return dst, fmt.Errorf("net/dev: no valid interface line (last bad: %q)", clip(bad))
	}
	return dst, nil
}
