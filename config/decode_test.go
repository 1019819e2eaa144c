package config

import (
	"strings"
	"testing"
)

// check-config's promise: every error at once, type errors and numbers
// that do not fit in 64 bits included, each with its key and line, next to
// the unknown keys and range errors that were reported together already.
func TestEveryErrorAtOnce(t *testing.T) {
	body := strings.Join([]string{
		`server_url = "ws://127.0.0.1:4000/socket/websocket"`, // 1
		`token = "s3cret-tok"`,                                // 2
		`host_id = 7`,                                         // 3 type
		`[intervals]`,                                         // 4
		`fast_seconds = 99999999999999999999`,                 // 5 overflow
		`medium_seconds = "300"`,                              // 6 type
		`slow_seconds = 0`,                                    // 7 range
		`[timeouts]`,                                          // 8
		`zpool_seconds = -99999999999999999999`,               // 9 overflow, negative
		`zfs_seconds = 1.5`,                                   // 10 type
		`pvesh_secnds = 3`,                                    // 11 unknown
		`[reporter]`,                                          // 12
		`queue_max_bytes = 0x7fffffffffffffffff`,              // 13 overflow, hex
		`[log]`,                                               // 14
		`level = "verbose"`,                                   // 15 value
		`[tls]`,                                               // 16
		`insecure_skip_verify = "yes"`,                        // 17 type
		`[spool]`,                                             // 18
		`dir = ["a"]`,                                         // 19 type
	}, "\n") + "\n"
	_, err := Parse([]byte(body), fixedHost("h"))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"line 3: host_id: must be a string, got an integer",
		"line 5: intervals.fast_seconds: 99999999999999999999 is out of range",
		"line 6: intervals.medium_seconds: must be an integer, got a string",
		"line 7: intervals.slow_seconds: must be a positive integer",
		"line 9: timeouts.zpool_seconds: -99999999999999999999 is out of range",
		"line 10: timeouts.zfs_seconds: must be an integer, got a float",
		`line 11: unknown key "timeouts.pvesh_secnds"`,
		"line 13: reporter.queue_max_bytes: 0x7fffffffffffffffff is out of range",
		"line 15: log.level: must be debug, info, warn or error",
		"line 17: tls.insecure_skip_verify: must be true or false, got a string",
		"line 19: spool.dir: must be a string, got an array",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	// A key reported for its type or size is not reported again with its
	// placeholder value ("must be positive, got 0").
	if n := strings.Count(msg, "intervals.fast_seconds"); n != 1 {
		t.Errorf("fast_seconds reported %d times:\n%s", n, msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != 11 {
		t.Errorf("%d errors, want 11:\n%s", n, msg)
	}
	if strings.Contains(msg, "s3cret-tok") {
		t.Error("token in the error")
	}
}

// Type errors in tables, in inline tables, and tables of the wrong type:
// each named, none stopping the others, no panic.
func TestTypeErrorsInEveryShape(t *testing.T) {
	const head = "server_url = \"ws://h/s\"\ntoken = \"t\"\n"
	cases := []struct{ body, want string }{
		{head + "intervals = 5\n", "line 3: intervals: must be a table, got an integer"},
		{head + "intervals = { fast_seconds = \"x\" }\n", "line 3: intervals.fast_seconds: must be an integer, got a string"},
		{head + "intervals.fast_seconds = true\n", "line 3: intervals.fast_seconds: must be an integer, got true or false"},
		{head + "token_file = 1979-05-27\n", "line 3: token_file: must be a string, got a date or time"},
		{head + "[[intervals]]\nfast_seconds = 1\n", "intervals: must be a table, got an array"},
		{head + "server_url = 1\n", "line 3: Key \"<redacted>\" has already been defined"}, // a syntax error: the decoder's message, scrubbed
		{"server_url = \"ws://h/s\"\ntoken = 99999999999999999999\n", "line 2: token: 99999999999999999999 is out of range (an integer is at most"},
		{head + "[intervals]\nfast_seconds = 1e999\n", "line 4: intervals.fast_seconds: 1e999 is out of range"},
		{head + "[intervals]\nfast_seconds = [1, 99999999999999999999]\n", "line 4: intervals.fast_seconds: 99999999999999999999 is out of range"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.body), fixedHost("h"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
		if err != nil && strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%q: more than the one error:\n%v", c.body, err)
		}
	}
}

// A file of nothing but huge numbers: bounded work (a re-parse per number
// up to maxRangeFixes), then the decoder's message for the rest.
func TestManyOverflows(t *testing.T) {
	body := "server_url = \"ws://h/s\"\ntoken = \"t\"\n"
	for i := 0; i < 100; i++ {
		body += "k" + strings.Repeat("a", i) + " = 99999999999999999999\n"
	}
	_, err := Parse([]byte(body), fixedHost("h"))
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "is out of range"); n < maxRangeFixes {
		t.Errorf("%d overflows reported, want at least %d", n, maxRangeFixes)
	}
}

// FuzzParse: whatever the bytes, Parse returns a config or an error, never
// panics, and never quotes the token in the error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"server_url = \"ws://h/s\"\ntoken = \"s3cret\"\n",
		"server_url = \"ws://h/s\"\ntoken = \"s3cret\"\n[intervals]\nfast_seconds = 99999999999999999999\nslow_seconds = \"x\"\n",
		"intervals = { fast_seconds = [1, 2] }\n[[sources]]\nhost = 1\n",
		"token_file = \"/x\"\ntoken = \"s3cret\"\nx = 1e999\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, fixedHost("h"))
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v and err %v", cfg, err)
		}
		if err != nil && strings.Count(string(data), "s3cret") == 1 &&
			strings.Contains(string(data), `token = "s3cret"\n`) && strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("token in the error: %v", err)
		}
	})
}

// Every field kind of Config is type-checked before the final decode,
// embedded tables ([diskio] from HostFiles) and array elements included, so
// one type error neither hides the others nor the range and glob errors,
// and each carries the line of the file, never of a re-encoded copy.
func TestTypeErrorsOfListsAndMaps(t *testing.T) {
	const head = "server_url = \"ws://h/s\"\ntoken = \"t\"\n"
	cases := []struct {
		name, body string
		want       []string
	}{
		{"string for a list, with a range error after it",
			head + "[diskio]\nexclude = \"dm-*\"\n[intervals]\nslow_seconds = -5\n",
			[]string{"line 4: diskio.exclude: must be an array, got a string", "line 6: intervals.slow_seconds: must be a positive integer"}},
		{"bad element next to a bad glob",
			head + "[net]\nexclude = [\"[\", 5]\n",
			[]string{"line 4: net.exclude: element 2 must be a string, got an integer", `line 4: net.exclude: "[" is not a glob`}},
		{"table for a list", head + "filesystems.exclude = { a = 1 }\n",
			[]string{"line 3: filesystems.exclude: must be an array, got a table"}},
		{"nested array in a list", head + "[diskio]\nexclude = [[\"a\"]]\n",
			[]string{"line 4: diskio.exclude: element 1 must be a string, got an array"}},
		{"embedded table of the wrong type", head + "sys = 3\n",
			[]string{"line 3: sys: must be a table, got an integer"}},
		{"embedded string key", head + "[sys]\nroot = 1\n",
			[]string{"line 4: sys.root: must be a string, got an integer"}},
		{"array of tables for a list", head + "[[diskio.exclude]]\na = 1\n",
			[]string{"line 3: diskio.exclude: element 1 must be a string, got a table"}},
		{"map of switches", head + "[sources]\nhost = \"no\"\n",
			[]string{"line 4: sources.host: must be true or false, got a string"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), fixedHost("h"))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("missing %q in:\n%s", w, msg)
				}
			}
			if n := strings.Count(msg, "\n") + 1; n != len(c.want) {
				t.Errorf("%d errors, want %d:\n%s", n, len(c.want), msg)
			}
			if strings.Contains(msg, "decode config") || strings.Contains(msg, "last key") {
				t.Errorf("error from the re-encoded buffer:\n%s", msg)
			}
		})
	}
}
