// Package sysfs parses the one-value files of /sys the host sources read
// (network interface attributes, hwmon sensors, EDAC and KSM counters):
// bytes in, typed values out. Listing directories and reading the files
// is the collection layer's job.
package sysfs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ParseUint parses a decimal counter file ("1234\n").
func ParseUint(b []byte) (uint64, error) {
	s := bytes.TrimSpace(b)
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a counter", clip(s))
	}
	return v, nil
}

// ParseInt parses a signed decimal file ("-1\n", "45000\n").
func ParseInt(b []byte) (int64, error) {
	s := bytes.TrimSpace(b)
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", clip(s))
	}
	return v, nil
}

// ParseSpeed parses an interface's speed file, in Mb/s: false for -1 (no
// link), 0, or anything that is not a positive number. Some drivers print
// 4294967295 ((u32)-1, SPEED_UNKNOWN) instead of -1: unknown too.
func ParseSpeed(b []byte) (uint64, bool) {
	v, err := ParseInt(b)
	if err != nil || v <= 0 || v >= 1<<32-1 {
		return 0, false
	}
	return uint64(v), true
}

// MaxPlausibleC bounds a temperature: above it a reading is a placeholder,
// not a measurement. NVMe drives report 65261.85 °C (0xFFFF - 273.15 K ...
// in millidegrees: 65261850) for a threshold they do not set.
const MaxPlausibleC = 1000

// ParseMilliCelsius parses a hwmon temperature file (millidegrees Celsius)
// into degrees; false when the value is not a number or is a placeholder
// (above MaxPlausibleC, or below absolute zero).
func ParseMilliCelsius(b []byte) (float64, bool) {
	v, err := ParseInt(b)
	if err != nil {
		return 0, false
	}
	c := float64(v) / 1000
	if c > MaxPlausibleC || c < -273.15 {
		return 0, false
	}
	return c, true
}

// Uevent returns key's value in a uevent file ("DEVTYPE=bond"), "" when
// absent.
func Uevent(b []byte, key string) string {
	for rest := b; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		if k, v, ok := bytes.Cut(line, []byte("=")); ok && string(k) == key {
			return Text(v)
		}
	}
	return ""
}

// Text is a one-line attribute (operstate, a label, a chip name) as
// printable text: surrounding space trimmed, control and invalid bytes
// replaced, at most 64 bytes, so a hostile driver cannot forge log lines
// or bloat the payload.
func Text(b []byte) string {
	s := strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("?"))))
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") // drops a rune cut in half
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// HwmonAttr is a hwmon file name taken apart: "temp3_input" is type
// "temp", index 3, item "input".
type HwmonAttr struct {
	Type  string
	Index int
	Item  string
}

// ParseHwmonName splits a hwmon attribute file name; false for names of
// another shape (name, uevent, device, power).
func ParseHwmonName(name string) (HwmonAttr, bool) {
	typ, item, ok := strings.Cut(name, "_")
	if !ok || item == "" {
		return HwmonAttr{}, false
	}
	i := len(typ)
	for i > 0 && typ[i-1] >= '0' && typ[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(typ) || len(typ)-i > 4 {
		return HwmonAttr{}, false
	}
	n, err := strconv.Atoi(typ[i:])
	if err != nil {
		return HwmonAttr{}, false
	}
	return HwmonAttr{Type: typ[:i], Index: n, Item: item}, true
}

func clip(b []byte) string {
	s := string(b)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
