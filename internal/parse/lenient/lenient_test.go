package lenient

import (
	"encoding/json"
	"testing"
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
