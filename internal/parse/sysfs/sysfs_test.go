package sysfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFixtures(t *testing.T) {
	if got := Uevent(read(t, "uevent-bond0"), "DEVTYPE"); got != "bond" {
		t.Errorf("bond devtype %q", got)
	}
	if got := Uevent(read(t, "uevent-vlan"), "DEVTYPE"); got != "vlan" {
		t.Errorf("vlan devtype %q", got)
	}
	if got := Uevent(read(t, "uevent-vlan"), "INTERFACE"); got != "vmbr0.20" {
		t.Errorf("interface %q", got)
	}
	if _, ok := ParseSpeed(read(t, "speed-down")); ok {
		t.Error("speed -1 is a speed")
	}
	if c, ok := ParseMilliCelsius(read(t, "nvme-temp1_input")); !ok || c <= 0 || c > 100 {
		t.Errorf("composite %v %v", c, ok)
	}
	if c, ok := ParseMilliCelsius(read(t, "nvme-temp2_max")); ok {
		t.Errorf("NVMe placeholder max is %v °C", c)
	}
}

func TestValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{{"1000\n", 1000, true}, {"10\n", 10, true}, {"-1\n", 0, false}, {"0\n", 0, false}, {"4294967295\n", 0, false},
		{"", 0, false}, {"fast\n", 0, false}, {"100000\n", 100000, true}} {
		if v, ok := ParseSpeed([]byte(c.in)); v != c.want || ok != c.ok {
			t.Errorf("speed %q: %d %v", c.in, v, ok)
		}
	}
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{{"45000\n", 45, true}, {"-5500\n", -5.5, true}, {"65261850\n", 0, false}, {"-300000\n", 0, false},
		{"", 0, false}, {"x\n", 0, false}, {"1000000\n", 1000, true}, {"99999999999999999999\n", 0, false}} {
		if v, ok := ParseMilliCelsius([]byte(c.in)); v != c.want || ok != c.ok {
			t.Errorf("temp %q: %v %v", c.in, v, ok)
		}
	}
	if v, err := ParseUint([]byte(" 524288\n")); v != 524288 || err != nil {
		t.Errorf("uint %d %v", v, err)
	}
	for _, bad := range []string{"", "-1", "1.5", "0x10", "18446744073709551616"} {
		if _, err := ParseUint([]byte(bad)); err == nil {
			t.Errorf("uint %q accepted", bad)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"up\n": "up", "  Tctl \n": "Tctl", "a\x1b[31mb": "a?[31mb", "\xff\xfe": "?", "": "",
		strings.Repeat("é", 40): strings.Repeat("é", 32),
	} {
		if got := Text([]byte(in)); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHwmonName(t *testing.T) {
	for in, want := range map[string]HwmonAttr{
		"temp1_input": {"temp", 1, "input"}, "temp12_crit_alarm": {"temp", 12, "crit_alarm"}, "fan2_input": {"fan", 2, "input"},
		"in0_input": {"in", 0, "input"},
	} {
		if got, ok := ParseHwmonName(in); !ok || got != want {
			t.Errorf("%s: %+v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"name", "uevent", "temp_input", "1_input", "temp1", "temp1_", "temp99999_input", "power"} {
		if got, ok := ParseHwmonName(bad); ok {
			t.Errorf("%s accepted: %+v", bad, got)
		}
	}
}

func FuzzSysfsValues(f *testing.F) {
	for _, n := range []string{"uevent-bond0", "speed-down", "nvme-temp2_max"} {
		f.Add(read(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, ok := ParseMilliCelsius(b); ok && (c > MaxPlausibleC || c < -273.15) {
			t.Fatalf("implausible %v accepted", c)
		}
		if v, ok := ParseSpeed(b); ok && v == 0 {
			t.Fatal("zero speed")
		}
		for _, s := range []string{Text(b), Uevent(b, "DEVTYPE")} {
			if !utf8.ValidString(s) || len(s) > 64 || strings.ContainsAny(s, "\n\r\x00\x1b") {
				t.Fatalf("text %q", s)
			}
		}
		if a, ok := ParseHwmonName(string(b)); ok && (a.Type == "" || a.Item == "" || a.Index < 0) {
			t.Fatalf("%+v", a)
		}
	})
}
