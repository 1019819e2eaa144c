package lenient

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeTable(t *testing.T) {
	cases := []struct {
		in string
		u  Uint
		f  Float
		b  Bool
		s  String
	}{
		{`42`, U(42), F(42), Bool{}, "42"},
		{`"42"`, U(42), F(42), Bool{}, "42"},
		{`18446744073709551615`, U(18446744073709551615), F(1.8446744073709552e19), Bool{}, "18446744073709551615"},
		{`"1.00"`, U(1), F(1), Bool{}, "1.00"},
		{`"-"`, Uint{}, Float{}, Bool{}, "-"},
		{`null`, Uint{}, Float{}, Bool{}, ""},
		{`{"x":1}`, Uint{}, Float{}, Bool{}, ""},
		{`[1]`, Uint{}, Float{}, Bool{}, ""},
		{`-3`, Uint{}, F(-3), Bool{}, "-3"},
		{`1`, U(1), F(1), Bool{V: true, Valid: true}, "1"},
		{`true`, Uint{}, Float{}, Bool{V: true, Valid: true}, "true"},
		{`"0"`, U(0), F(0), Bool{V: false, Valid: true}, "0"},
		{`1e400`, Uint{}, Float{}, Bool{}, "1e400"},
		{`"a\"b"`, Uint{}, Float{}, Bool{}, `a"b`},
		{`"\u0034\u0032"`, U(42), F(42), Bool{}, "42"},
		{`"vm-é"`, Uint{}, Float{}, Bool{}, "vm-é"},
		{"\"\xff\"", Uint{}, Float{}, Bool{}, "\ufffd"},
		{`123456789012345678901234567890`, Uint{}, F(1.2345678901234568e29), Bool{}, "123456789012345678901234567890"},
	}
	for _, c := range cases {
		var u Uint
		var f Float
		var b Bool
		var s String
		for _, target := range []any{&u, &f, &b, &s} {
			if err := json.Unmarshal([]byte(c.in), target); err != nil {
				t.Fatalf("%s into %T: %v", c.in, target, err)
			}
		}
		if u != c.u || f != c.f || b != c.b || s != c.s {
			t.Errorf("%s: got %v %v %v %q, want %v %v %v %q", c.in, u, f, b, s, c.u, c.f, c.b, c.s)
		}
	}
}

func TestMarshal(t *testing.T) {
	v := struct {
		A Uint
		B Uint
		C Float
		D Bool
		E Int
	}{A: U(18446744073709551615), C: F(0.5), D: Bool{V: true, Valid: true}, E: Int{V: -2, Valid: true}}
	b, _ := json.Marshal(v)
	if string(b) != `{"A":18446744073709551615,"B":null,"C":0.5,"D":true,"E":-2}` {
		t.Fatal(string(b))
	}
}

// The decoders as they were before the plain-string fast path (issue 12):
// the reference the fast path must agree with.
func refLiteral(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) != nil {
			return ""
		}
		return s
	case '{', '[', 'n':
		return ""
	}
	return string(b)
}

func refString(b []byte) String {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err == nil {
			return String(v)
		}
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[' || string(b) == "null") {
		return ""
	}
	return String(b)
}

func refBool(b []byte) Bool {
	switch refLiteral(b) {
	case "true", "1":
		return Bool{V: true, Valid: true}
	case "false", "0":
		return Bool{V: false, Valid: true}
	}
	return Bool{}
}

// agreeWithReference decodes in with every type, directly through
// UnmarshalJSON (so that input json.Unmarshal would reject is covered too),
// and compares with the reference.
func agreeWithReference(t *testing.T, in []byte) {
	t.Helper()
	var u Uint
	var i Int
	var f Float
	var b Bool
	var s String
	for _, m := range []json.Unmarshaler{&u, &i, &f, &b, &s} {
		if err := m.UnmarshalJSON(in); err != nil {
			t.Fatalf("%q into %T: %v", in, m, err)
		}
	}
	lit := refLiteral(in)
	if u != ParseUint(lit) || i != ParseInt(lit) || f != ParseFloat(lit) || b != refBool(in) || s != refString(in) {
		t.Errorf("%q: got %v %v %v %v %q, reference %v %v %v %v %q", in, u, i, f, b, s,
			ParseUint(lit), ParseInt(lit), ParseFloat(lit), refBool(in), refString(in))
	}
}

func TestFastPathsAgreeWithReference(t *testing.T) {
	for _, in := range []string{
		// plain
		`"web01"`, `""`, `"42"`, `"1.00"`, `"-"`, `" 7 "`, `"1"`, `"true"`, `"\u007f"`, "\"a\x7fb\"",
		// escapes
		`"a\"b"`, `"a\\b"`, `"\u0041\u00e9"`, `"\n"`, `"\/"`, `"\ud83d\ude00"`, `"\ud800"`, `"4\u0032"`,
		// unicode and invalid UTF-8
		`"vm-é"`, `"日本"`, "\"\xff\xfe\"", "\"a\xc3\"",
		// numbers, big and odd
		`0`, `-0`, `42`, `-3`, `1.5`, `1e3`, `1E-7`, `18446744073709551615`, `18446744073709551616`,
		`9223372036854775807`, `-9223372036854775809`, `1e400`, `-1e400`, `123456789012345678901234567890`,
		`"18446744073709551615"`, `"1e400"`,
		// other scalars and containers, with surrounding space
		`true`, `false`, `null`, ` null `, `{"x":1}`, `[1]`, `[]`, "\t\"x\"\n", ` 5 `,
		// garbage that json.Unmarshal would reject before UnmarshalJSON
		``, ` `, `"`, `"a`, `a"`, `"a"b"`, `"a` + "\x01" + `b"`, `"\x"`, `nul`, `-`, `1.2.3`, `0x10`, `NaN`, `Inf`,
	} {
		agreeWithReference(t, []byte(in))
	}
}

func FuzzFastPaths(f *testing.F) {
	for _, in := range []string{`"web01"`, `"a\"b"`, `"\u00e9"`, `18446744073709551615`, `"1.00"`, `null`, `{"a":1}`, "\"\xff\""} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		agreeWithReference(t, in)
		// Through the decoder as well, as the parsers use it.
		var s String
		var r struct{ V String }
		if json.Unmarshal(in, &s) == nil {
			if json.Unmarshal([]byte(`{"V":`+string(in)+`}`), &r) != nil || r.V != s {
				t.Errorf("%q: in a field %q, alone %q", in, r.V, s)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(`[{"name":"web01","status":"running","vmid":"101","mem":6134272000,"cpu":0.0123,"template":0}]`)
	var v []struct {
		Name     String `json:"name"`
		Status   String `json:"status"`
		VMID     Uint   `json:"vmid"`
		Mem      Uint   `json:"mem"`
		CPU      Float  `json:"cpu"`
		Template Bool   `json:"template"`
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := json.Unmarshal(in, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// Float's own formatting is encoding/json's, digit for digit.
func TestFloatFormatIsJSONs(t *testing.T) {
	for _, v := range []float64{0, -0.0, 1, -1, 0.1, 1.5, 100, 1e20, 1e21, 1.5e21, 1e-6, 9.99e-7, 1e-7, 123456789.125, 5e-324,
		math.MaxFloat64, -math.MaxFloat64, 0.30000000000000004, 2.5e-10, 44.85, 65261.85} {
		want, _ := json.Marshal(v)
		got, _ := F(v).MarshalJSON()
		if string(got) != string(want) {
			t.Errorf("%v: %s, want %s", v, got, want)
		}
	}
}

func FuzzFloatFormat(f *testing.F) {
	f.Add(1.5)
	f.Add(1e-7)
	f.Fuzz(func(t *testing.T, v float64) {
		got, _ := F(v).MarshalJSON()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if string(got) != "null" {
				t.Fatalf("%v: %s", v, got)
			}
			return
		}
		if want, _ := json.Marshal(v); string(got) != string(want) {
			t.Fatalf("%v: %s, want %s", v, got, want)
		}
	})
}

func TestText(t *testing.T) {
	long := strings.Repeat("x", TextMax-1) + "é" + "tail"
	cases := []struct{ in, want string }{
		{"", ""},
		{"ERROR: job errors", "ERROR: job errors"},
		{strings.Repeat("a", TextMax), strings.Repeat("a", TextMax)},
		{strings.Repeat("a", TextMax+1), strings.Repeat("a", TextMax) + Clipped},
		{long, strings.Repeat("x", TextMax-1) + Clipped}, // never half a character
		{strings.Repeat("b", 1500000), strings.Repeat("b", TextMax) + Clipped},
	}
	for _, c := range cases {
		got := Text(c.in)
		if got != c.want {
			t.Errorf("Text(%d bytes) = %d bytes %.20q…, want %d bytes", len(c.in), len(got), got, len(c.want))
		}
		if !utf8.ValidString(got) {
			t.Errorf("Text(%d bytes) is not valid UTF-8", len(c.in))
		}
	}
}
