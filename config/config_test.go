package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func fixedHost(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

// testEnv is a process with hostname name, no credentials directory, and
// this test's uid.
func testEnv(name string) Env {
	return Env{Hostname: fixedHost(name), Getenv: func(string) string { return "" }, EUID: os.Geteuid()}
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ported from the seed's config_test "parses required fields" and
// "parses [debug] dump_dir when present".
func TestLoadSeedFixture(t *testing.T) {
	cfg, err := Load("testdata/seed.toml", testEnv("ignored"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server_url", cfg.ServerURL, "wss://monitor.example.com/socket/websocket"},
		{"token", cfg.Token, "test_token_123"},
		{"host_id", cfg.HostID, "pve-test-01"},
		{"fast", cfg.Intervals.FastSeconds, 15},
		{"medium", cfg.Intervals.MediumSeconds, 120},
		{"slow", cfg.Intervals.SlowSeconds, 600},
		{"dump_dir", cfg.Debug.DumpDir, "/tmp/proxmox-monitor-test"},
		{"topic", cfg.Topic, "agent:pve-test-01"},
		{"path", cfg.Path, "testdata/seed.toml"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// Ported from "dump_dir is nil when [debug] is absent" / "... set to empty
// string", plus the defaults every other key takes.
func TestDumpDirOffAndDefaults(t *testing.T) {
	cases := map[string]string{
		"absent": "server_url = \"wss://x/socket/websocket\"\ntoken = \"t\"\n",
		"empty":  "server_url = \"wss://x/socket/websocket\"\ntoken = \"t\"\n\n[debug]\ndump_dir = \"\"\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(writeTemp(t, body), testEnv("pve1.example.com"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Debug.DumpDir != "" {
				t.Errorf("dump_dir = %q, want off", cfg.Debug.DumpDir)
			}
			if cfg.HostID != "pve1" || cfg.Node != "pve1" || cfg.Topic != "agent:pve1" {
				t.Errorf("host defaults = %q %q %q, want short hostname pve1", cfg.HostID, cfg.Node, cfg.Topic)
			}
			if cfg.Intervals != (Intervals{30, 300, 1800}) {
				t.Errorf("intervals = %+v, want 30/300/1800", cfg.Intervals)
			}
			if cfg.Proc.Root != "/proc" || cfg.Commands.Zpool != "zpool" {
				t.Errorf("paths not defaulted: %+v %+v", cfg.Proc, cfg.Commands)
			}
		})
	}
}

// Ported from "returns error for missing file".
func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), testEnv("h"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestValidationNamesKeyAndLine(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string // substrings that must all appear in the error
	}{
		{"typo key", "server_url = \"wss://x/s\"\ntoken = \"t\"\n[intervals]\nfast_second = 5\n",
			[]string{"line 4", `unknown key "intervals.fast_second"`}},
		{"typo top-level", "server_url = \"wss://x/s\"\ntoken = \"t\"\nhostid = \"a\"\n",
			[]string{"line 3", `unknown key "hostid"`}},
		{"http scheme", "server_url = \"https://x/socket/websocket\"\ntoken = \"t\"\n",
			[]string{"line 1", "server_url", "ws:// or wss://"}},
		{"missing url", "token = \"t\"\n", []string{"server_url", "missing"}},
		{"empty token", "server_url = \"ws://x/s\"\ntoken = \"\"\n", []string{"line 2", "token", "missing or empty"}},
		{"zero interval", "server_url = \"ws://x/s\"\ntoken = \"t\"\n[intervals]\nslow_seconds = 0\n",
			[]string{"line 4", "intervals.slow_seconds", "positive"}},
		{"negative interval", "server_url = \"ws://x/s\"\ntoken = \"t\"\n[intervals]\nfast_seconds = -3\n",
			[]string{"intervals.fast_seconds", "got -3"}},
		{"wrong type", "server_url = \"ws://x/s\"\ntoken = \"t\"\n[intervals]\nfast_seconds = \"ten\"\n",
			[]string{"line 4", "fast_seconds"}},
		{"syntax error", "server_url = \"ws://x/s\ntoken = \"t\"\n", []string{"line 1"}},
		{"bad log format", "server_url = \"ws://x/s\"\ntoken = \"t\"\n[log]\nformat = \"xml\"\n",
			[]string{"line 4", "log.format"}},
		{"no host", "server_url = \"ws:///s\"\ntoken = \"t\"\n", []string{"server_url", "no host"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), fixedHost("h"))
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	_, err := Parse([]byte("[intervals]\nfast_seconds = 0\n"), fixedHost("h"))
	for _, w := range []string{"server_url", "token", "intervals.fast_seconds"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %s", err, w)
		}
	}
}

func TestHostnameFailureNamesHostID(t *testing.T) {
	_, err := Parse([]byte("server_url = \"ws://x/s\"\ntoken = \"t\"\n"),
		func() (string, error) { return "", errors.New("boom") })
	if err == nil || !strings.Contains(err.Error(), "host_id") {
		t.Fatalf("err = %v, want one naming host_id", err)
	}
	// An explicit host_id and node need no hostname.
	cfg, err := Parse([]byte("server_url = \"ws://x/s\"\ntoken = \"t\"\nhost_id = \"a\"\nnode = \"b\"\n"),
		func() (string, error) { return "", errors.New("boom") })
	if err != nil || cfg.HostID != "a" || cfg.Node != "b" {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
}

func TestResolvePath(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvPath {
				return v
			}
			return ""
		}
	}
	if got := ResolvePath("/a.toml", env("/b.toml")); got != "/a.toml" {
		t.Errorf("flag should win, got %s", got)
	}
	if got := ResolvePath("", env("/b.toml")); got != "/b.toml" {
		t.Errorf("env should win over default, got %s", got)
	}
	if got := ResolvePath("", env("")); got != DefaultPath {
		t.Errorf("default, got %s", got)
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("wss://u:pw@h/socket/websocket?token=s3cret&vsn=2.0.0")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "pw") {
		t.Errorf("secret leaked: %s", got)
	}
	if !strings.Contains(got, "vsn=2.0.0") {
		t.Errorf("non-secret params lost: %s", got)
	}
}

// The same bad file gives the same message every time, in the file's order,
// so an operator (or a diff of two check-config runs) sees no reshuffling.
func TestErrorsInStableOrder(t *testing.T) {
	src := []byte("server_url = \"ws://x/s\"\ntoken = \"t\"\n[commands]\nzpool = \"\"\nzfs = \"\"\npvesh = \"\"\nsmartctl = \"\"\n[proc]\nroot = \"\"\n")
	_, first := Parse(src, fixedHost("h"))
	if first == nil {
		t.Fatal("accepted")
	}
	keys := []string{"commands.zpool", "commands.zfs", "commands.pvesh", "commands.smartctl", "proc.root"}
	last := -1
	for _, k := range keys {
		i := strings.Index(first.Error(), k+":")
		if i < last {
			t.Fatalf("%s out of order in:\n%v", k, first)
		}
		last = i
	}
	for i := 0; i < 20; i++ {
		if _, err := Parse(src, fixedHost("h")); err.Error() != first.Error() {
			t.Fatalf("run %d differs:\n%v\nvs\n%v", i, err, first)
		}
	}
}

// Every bound the hardening asks for, each refused with its key and line,
// and no message ever carrying the token or the URL's userinfo.
func TestHardeningBounds(t *testing.T) {
	const head = "server_url = \"ws://127.0.0.1:4000/socket/websocket\"\ntoken = \"s3cret-tok\"\n"
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	cases := []struct {
		name, body string
		want       []string
	}{
		{"interval overflow", head + "[intervals]\nfast_seconds = 9999999999\n", []string{"line 4", "intervals.fast_seconds", "at most 86400"}},
		{"interval over a day", head + "[intervals]\nslow_seconds = 86401\n", []string{"intervals.slow_seconds"}},
		{"timeout over an hour", head + "[timeouts]\nzpool_seconds = 3601\n", []string{"line 4", "timeouts.zpool_seconds", "at most 3600"}},
		{"every timeout bounded", head + "[timeouts]\npvesh_seconds = 99999999999\nsmartctl_seconds = 4000\nzfs_seconds = 4000\n",
			[]string{"timeouts.pvesh_seconds", "timeouts.smartctl_seconds", "timeouts.zfs_seconds"}},
		{"reporter timers", head + "[reporter]\nheartbeat_seconds = 4000\nreply_timeout_seconds = 4000\nreconnect_max_seconds = 4000\n",
			[]string{"reporter.heartbeat_seconds", "reporter.reply_timeout_seconds", "reporter.reconnect_max_seconds"}},
		{"reconnect window zero", head + "[reporter]\nreconnect_max_seconds = 0\n", []string{"reporter.reconnect_max_seconds", "positive"}},
		{"queue size", head + "[reporter]\nqueue_max_samples = 1000000000\nqueue_max_bytes = 99999999999\n",
			[]string{"reporter.queue_max_samples", "reporter.queue_max_bytes"}},
		{"output cap", head + "[commands]\nmax_output_bytes = 99999999999\n", []string{"commands.max_output_bytes"}},
		{"empty host", "server_url = \"ws://:4000/s\"\ntoken = \"t\"\n", []string{"line 1", "server_url", "no host"}},
		{"port out of range", "server_url = \"ws://h:99999/s\"\ntoken = \"t\"\n", []string{"server_url", "port must be 1-65535"}},
		{"fragment", "server_url = \"ws://h/s#frag\"\ntoken = \"t\"\n", []string{"server_url", "fragment"}},
		{"control in host_id", head + "host_id = \"a\\u001b[31mb\"\n", []string{"line 3", "host_id", "control characters", `\x1b`}},
		{"newline in topic", head + "topic = \"agent:x\\nFAKE LOG LINE\"\n", []string{"topic", `\n`}},
		{"missing ca_file", head + "[tls]\nca_file = \"" + filepath.Join(dir, "nope.pem") + "\"\n", []string{"line 4", "tls.ca_file", "no such file"}},
		{"garbage ca_file", head + "[tls]\nca_file = \"" + garbage + "\"\n", []string{"tls.ca_file", "no PEM certificate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), fixedHost("h"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret-tok") {
				t.Errorf("token in error: %v", err)
			}
		})
	}
	if _, err := Parse([]byte(head+"[intervals]\nslow_seconds = 86400\n[timeouts]\nzpool_seconds = 3600\n"), fixedHost("h")); err != nil {
		t.Errorf("the bounds themselves refused: %v", err)
	}
}

// A URL that does not parse, a syntax error on the token line, or a URL
// with userinfo never puts the secret into the message.
func TestErrorsNeverCarrySecrets(t *testing.T) {
	for _, body := range []string{
		"server_url = \"ws://user:pa55word@h:x/s?token=s3cret-tok\"\ntoken = \"t\"\n",
		"server_url = \"ws://user:pa55word@h/s\\u0001?token=s3cret-tok\"\ntoken = \"t\"\n",
		"server_url = \"%zz://user:pa55word@h?token=s3cret-tok\"\ntoken = \"t\"\n",
		"server_url = \"ws://h/s\"\ntoken = s3cret-tok\n",
		"server_url = ws://user:pa55word@h/s\ntoken = \"t\"\n",
	} {
		_, err := Parse([]byte(body), fixedHost("h"))
		if err == nil {
			t.Errorf("accepted %q", body)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-tok") || strings.Contains(err.Error(), "pa55word") {
			t.Errorf("secret in error for %q: %v", body, err)
		}
	}
}

func TestRedactURLMalformed(t *testing.T) {
	for _, raw := range []string{
		"wss://h/s?token=%zz-s3cret",
		"wss://h/s?vsn=2.0.0&token=s3cret;x=1",
		"wss://h/s?TOKEN=s3cret",
		"wss://h/s?my%74oken=s3cret",
		"wss://user:s3cret@h/s",
		"wss://h/s?token=s3cret#frag",
		"%zz://s3cret",
	} {
		if got := RedactURL(raw); strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q", raw, got)
		}
	}
	if got := RedactURL("wss://h/s?vsn=2.0.0&token=x"); !strings.Contains(got, "vsn=2.0.0") || !strings.HasPrefix(got, "wss://h/s?") {
		t.Errorf("non-secret parts lost: %s", got)
	}
}

func TestLoadRefusesNonRegularAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo, testEnv("h")); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	if _, err := Load("/dev/zero", testEnv("h")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
	if _, err := Load(dir, testEnv("h")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	os.WriteFile(big, append([]byte("server_url = \"ws://h/s\"\ntoken = \"t\"\n"), bytes.Repeat([]byte("# pad\n"), MaxFileBytes/6+10)...), 0o600)
	if _, err := Load(big, testEnv("h")); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

func manyUnknownKeys(n int) []byte {
	var b strings.Builder
	b.WriteString("server_url = \"ws://h/s\"\ntoken = \"t\"\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "k%d = 1\n", i)
	}
	return []byte(b.String())
}

// Every one of many unknown keys is reported with its own line.
func TestManyUnknownKeysEachWithItsLine(t *testing.T) {
	_, err := Parse(manyUnknownKeys(2000), fixedHost("h"))
	for _, w := range []string{`line 3: unknown key "k0"`, `line 2002: unknown key "k1999"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error lacks %q", w)
		}
	}
}

// BenchmarkManyUnknownKeys is 20,000 unknown keys: 36 s when the line
// lookup rescanned the file per key, linear now.
func BenchmarkManyUnknownKeys(b *testing.B) {
	src := manyUnknownKeys(20000)
	for b.Loop() {
		if _, err := Parse(src, fixedHost("h")); err == nil {
			b.Fatal("accepted")
		}
	}
}

const minimal = "server_url = \"ws://a/s\"\ntoken = \"t\"\n"

// [sources]: the file's switches are kept as written; with KnownSources a
// mistake is named with key and line, and every unknown name is reported.
func TestSourceSwitches(t *testing.T) {
	known := KnownSources([]string{"host", "guests", "disks", "zfs_datasets"})
	cfg, err := Parse([]byte(minimal), fixedHost("h"), known)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 0 {
		t.Errorf("switches set by nothing: %v", cfg.Sources)
	}
	if cfg.PVE.EtcDir != "/etc/pve" || cfg.Timeouts.PmxcfsSeconds != 5 {
		t.Errorf("pve defaults: %+v %d", cfg.PVE, cfg.Timeouts.PmxcfsSeconds)
	}
	cfg, err = Parse([]byte(minimal+"[sources]\ndisks = false\nzfs_datasets = false\nhost = true\n"), fixedHost("h"), known)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Sources) != "map[disks:false host:true zfs_datasets:false]" {
		t.Errorf("switches = %v", cfg.Sources)
	}
	for body, want := range map[string]string{
		minimal + "[sources]\ngusts = false\n":                    `line 4: unknown key "sources.gusts" (sources are host, guests, disks, zfs_datasets)`,
		minimal + "[sources]\nhost = false\nb = true\na = true\n": "line 5: unknown key \"sources.b\"",
		minimal + "[sources]\nhost = \"no\"\n":                    `line 4: sources.host: must be true or false, got a string`,
		minimal + "[pve]\netc_dir = \"\"\n":                       `line 4: pve.etc_dir: must not be empty`,
		minimal + "[timeouts]\npmxcfs_seconds = 99999\n":          `line 4: timeouts.pmxcfs_seconds: must be a positive integer of at most 3600`,
		minimal + "[timeouts]\npmxcfs_seconds = -1\n":             `line 4: timeouts.pmxcfs_seconds`,
		"server_url = \"ws://a/s\"\ntoken = \"tok\"\n[x]\n":       `unknown key "x"`,
	} {
		_, err := Parse([]byte(body), fixedHost("h"), known)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "tok\"") {
			t.Errorf("token in error: %v", err)
		}
	}
	// Two unknown names: both reported, in the file's order.
	_, err = Parse([]byte(minimal+"[sources]\nzz = true\naa = true\n"), fixedHost("h"), known)
	if err == nil || strings.Index(err.Error(), "sources.zz") > strings.Index(err.Error(), "sources.aa") || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("two unknown: %v", err)
	}
	// Without KnownSources (a caller that has no registry) any name passes.
	if _, err := Parse([]byte(minimal+"[sources]\ngusts = false\n"), fixedHost("h")); err != nil {
		t.Errorf("no KnownSources: %v", err)
	}
}

func TestSpoolAndStatusKeys(t *testing.T) {
	const head = "server_url = \"ws://h/s\"\ntoken = \"t\"\n"
	cfg, err := Parse([]byte(head), fixedHost("h"))
	if err != nil || cfg.Spool.Dir != DefaultSpoolDir || cfg.Spool.MaxBytes != 256<<20 || cfg.Status.Socket != DefaultStatusSocket {
		t.Fatalf("defaults: %+v %+v %v", cfg.Spool, cfg.Status, err)
	}
	cfg, err = Parse([]byte(head+"[spool]\ndir = \"\"\n[status]\nsocket = \"\"\n"), fixedHost("h"))
	if err != nil || cfg.Spool.Dir != "" || cfg.Status.Socket != "" {
		t.Fatalf("off: %+v %v", cfg, err)
	}
	for body, want := range map[string]string{
		head + "[spool]\ndir = \"relative/spool\"\n":                        "line 4: spool.dir: must be an absolute path",
		head + "[spool]\nmax_bytes = 0\n":                                   "spool.max_bytes",
		head + "[spool]\nmax_bytes = 99999999999999\n":                      "spool.max_bytes",
		head + "[status]\nsocket = \"s.sock\"\n":                            "status.socket",
		head + "[status]\nsocket = \"/" + strings.Repeat("x", 120) + "\"\n": "at most 107 bytes",
	} {
		if _, err := Parse([]byte(body), fixedHost("h")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// status reads the socket from a file the full loader refuses.
func TestStatusSocketOfABrokenConfig(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"[intervals]\nfast_seconds = 0\n[status]\nsocket = \"/run/x.sock\"\n": "/run/x.sock",
		"nosuchkey = 1\n":           DefaultStatusSocket,
		"[status]\nsocket = \"\"\n": "",
	} {
		p := filepath.Join(dir, "agent.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := StatusSocketOf(p)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", body, got, err, want)
		}
	}
	if _, err := StatusSocketOf(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("a missing file is not reported")
	}
}

// A ca_file that is a FIFO or a device is refused at once: Load runs on
// every SIGHUP, and a read that never ends would freeze the daemon's
// signal loop.
func TestCAFileThatNeverEnds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ca.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ca := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse([]byte("server_url = \"wss://a/s\"\ntoken = \"t\"\n[tls]\nca_file = \""+ca+"\"\n"), fixedHost("h"))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "tls.ca_file") || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v", ca, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: Parse did not return", ca)
		}
	}
}
