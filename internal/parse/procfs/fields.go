package procfs

import "bytes"

// Allocation-free helpers for the fast cadence's files: the fast round
// reads /proc/stat, /proc/diskstats and /proc/net/dev every 30 s (every
// second in tests), so their parsers work on the bytes in place instead of
// building a string per field.

// nextLine returns the first line of b (without its newline) and the rest.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// nextField skips leading spaces and tabs and returns the next field and
// what follows it.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

// atou parses a decimal without sign; false on anything else or overflow.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// uints parses up to len(dst) decimal fields of b into dst and returns how
// many it parsed; it stops at the first field that is not a number.
func uints(b []byte, dst []uint64) int {
	n := 0
	for n < len(dst) {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			break
		}
		v, ok := atou(f)
		if !ok {
			break
		}
		dst[n] = v
		n++
	}
	return n
}
