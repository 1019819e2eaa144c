// Package lenient has JSON number types for hostile command output: a value
// that is a number on one host and a numeric string ("42", "1.00") or a
// placeholder ("-") on another decodes without error, and anything that is
// not a number becomes "unknown" (null) instead of failing the whole parse.
package lenient

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Uint is a non-negative integer that may be unknown. Integers are parsed
// from the literal, so 64-bit GUIDs stay exact (never through float64).
type Uint struct {
	V     uint64
	Valid bool
}

// U returns a known Uint.
func U(v uint64) Uint { return Uint{V: v, Valid: true} }

// UnmarshalJSON accepts numbers and numeric strings; anything else is unknown.
func (u *Uint) UnmarshalJSON(b []byte) error {
	*u = ParseUint(string(literal(b)))
	return nil
}

// MarshalJSON writes the number, or null when unknown.
func (u Uint) MarshalJSON() ([]byte, error) {
	if !u.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendUint(nil, u.V, 10), nil
}

// ParseUint reads "123", "123.0", "1e3"; "-", "", "none" and negatives are unknown.
func ParseUint(s string) Uint {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return U(v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f >= math.MaxUint64 {
		return Uint{}
	}
	return U(uint64(f))
}

// Int is a signed integer that may be unknown.
type Int struct {
	V     int64
	Valid bool
}

// UnmarshalJSON accepts numbers and numeric strings; anything else is unknown.
func (i *Int) UnmarshalJSON(b []byte) error {
	*i = ParseInt(string(literal(b)))
	return nil
}

// ParseInt reads "-12", "3.0", "1e3"; anything else is unknown.
func ParseInt(s string) Int {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Int{V: v, Valid: true}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < math.MaxInt64 {
		return Int{V: int64(f), Valid: true}
	}
	return Int{}
}

// MarshalJSON writes the number, or null when unknown.
func (i Int) MarshalJSON() ([]byte, error) {
	if !i.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, i.V, 10), nil
}

// Float is a number that may be unknown.
type Float struct {
	V     float64
	Valid bool
}

// F returns a known Float; NaN and ±Inf have no JSON form and are unknown.
func F(v float64) Float {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Float{}
	}
	return Float{V: v, Valid: true}
}

// UnmarshalJSON accepts numbers and numeric strings; anything else is unknown.
func (f *Float) UnmarshalJSON(b []byte) error {
	*f = ParseFloat(string(literal(b)))
	return nil
}

// ParseFloat reads a decimal; "-", "", NaN and Inf are unknown.
func ParseFloat(s string) Float {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return Float{}
	}
	return F(v)
}

// MarshalJSON writes the number, or null when unknown.
func (f Float) MarshalJSON() ([]byte, error) {
	if !f.Valid || math.IsNaN(f.V) || math.IsInf(f.V, 0) {
		return []byte("null"), nil
	}
	return appendFloat(make([]byte, 0, 24), f.V), nil
}

// appendFloat formats v exactly as encoding/json does a float64 (ES6
// number formatting), without a nested json.Marshal: payloads carry
// hundreds of rates per round.
func appendFloat(b []byte, v float64) []byte {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' { // clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// Bool is a flag that Proxmox writes as 0/1, true/false or "1".
type Bool struct {
	V     bool
	Valid bool
}

// UnmarshalJSON accepts booleans, 0/1 and their string forms.
func (b *Bool) UnmarshalJSON(data []byte) error {
	switch string(literal(data)) {
	case "true", "1":
		*b = Bool{V: true, Valid: true}
	case "false", "0":
		*b = Bool{V: false, Valid: true}
	default:
		*b = Bool{}
	}
	return nil
}

// MarshalJSON writes true/false, or null when unknown.
func (b Bool) MarshalJSON() ([]byte, error) {
	if !b.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendBool(nil, b.V), nil
}

// String is text that may arrive as a number (a VM named 100).
type String string

// UnmarshalJSON accepts strings and scalars; objects and arrays become "".
func (s *String) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if v, ok := plainString(b); ok {
		*s = String(v)
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err == nil {
			*s = String(v)
			return nil
		}
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[' || string(b) == "null") {
		*s = ""
		return nil
	}
	*s = String(b)
	return nil
}

// literal returns a JSON scalar's text: a string's contents, a number's
// digits; nil for null, objects and arrays. It returns a slice of b when it
// can, so that the numeric types parse without allocating: the callers'
// string(literal(b)) does not escape.
func literal(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		if v, ok := plainString(b); ok {
			return v
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		return []byte(s)
	case '{', '[', 'n':
		return nil
	}
	return b
}

// plainString returns the contents of a quoted JSON string that needs no
// decoding: printable ASCII without escapes. Nearly every string in the
// commands' output is one, and a nested json.Unmarshal (validation,
// reflection, an allocation) for each was a tenth of a round's parse time
// (issue 12). Anything else (escapes, UTF-8 that may need replacing,
// control bytes, a stray quote) is left to json.Unmarshal, so the result
// is the same either way.
func plainString(b []byte) ([]byte, bool) {
	n := len(b)
	if n < 2 || b[0] != '"' || b[n-1] != '"' {
		return nil, false
	}
	for _, c := range b[1 : n-1] {
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return b[1 : n-1], true
}

// TextMax is the most bytes Text keeps of a free-text field taken from a
// host's files (a job's last message, a backup or replication error): a
// real message is a line or two, and a runaway one (a 1.5 MB vzdump error
// line) must not ride along in every sample.
const TextMax = 1024

// Clipped ends a text that Text shortened, so the reader knows it was cut.
const Clipped = "…"

// Text returns s, or its first TextMax bytes (cut at a UTF-8 character
// boundary) followed by Clipped when it is longer.
func Text(s string) string {
	if len(s) <= TextMax {
		return s
	}
	n := TextMax
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + Clipped
}
