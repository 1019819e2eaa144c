package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// Every command-line rule: the exit code, and what stdout and stderr say.
// A usage error is exit 2 and exactly one line on stderr, nothing on stdout.
func TestCommandLine(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring ("" = must be empty)
		stderr string // the one line's substring ("" = must be empty)
	}{
		{"--version", []string{"--version"}, 0, "proxmox-agent ", ""},
		{"-v", []string{"-v"}, 0, "proxmox-agent ", ""},
		{"version", []string{"version"}, 0, "proxmox-agent ", ""},
		{"--version extra", []string{"--version", "x"}, 2, "", `proxmox-agent: unexpected argument "x" after --version`},
		{"version takes no flags", []string{"version", "--json"}, 2, "", "proxmox-agent version: flag --json is not a flag of version (see proxmox-agent version --help)"},
		{"flag of another command", []string{"once", "--json", "--dry-run"}, 2, "",
			"proxmox-agent once: flag --json is not a flag of once (see proxmox-agent once --help)"},
		{"replay flag to once", []string{"once", "--dry-run"}, 2, "", "proxmox-agent once: flag --dry-run is not a flag of once"},
		{"source to run", []string{"run", "--source", "host"}, 2, "", "proxmox-agent run: flag --source is not a flag of run"},
		{"source to the default command", []string{"--source", "host"}, 2, "", "proxmox-agent run: flag --source is not a flag of run"},
		{"socket to check-config", []string{"check-config", "--socket", "/x"}, 2, "", "flag --socket is not a flag of check-config"},
		{"dump-dir to status", []string{"status", "--dump-dir", "/x"}, 2, "", "flag --dump-dir is not a flag of status"},
		{"version flag inside a command", []string{"once", "--version"}, 2, "", "flag --version is not a flag of once"},
		{"unknown flag", []string{"once", "--frobnicate"}, 2, "", "proxmox-agent once: unknown flag --frobnicate (see proxmox-agent once --help)"},
		{"unknown flag, single dash", []string{"-frobnicate"}, 2, "", "proxmox-agent run: unknown flag --frobnicate"},
		{"flag without value", []string{"once", "--source"}, 2, "", "proxmox-agent once: flag --source needs a value"},
		{"bad bool", []string{"status", "--json=maybe"}, 2, "", "proxmox-agent status: invalid boolean value"},
		{"extra argument", []string{"once", "extra"}, 2, "", `proxmox-agent once: unexpected argument "extra"`},
		{"unknown command", []string{"frobnicate"}, 2, "", `proxmox-agent: unknown command "frobnicate" (see proxmox-agent --help)`},
		{"bad log level", []string{"run", "--log-level", "verbose"}, 2, "", `proxmox-agent run: --log-level "verbose": want debug, info, warn or error`},
		{"bad log format", []string{"once", "--log-format=xml"}, 2, "", `proxmox-agent once: --log-format "xml": want text or json`},
		{"bad log level to replay", []string{"replay", "--log-level", "loud", "x.log"}, 2, "", "want debug, info, warn or error"},
		{"unknown source", []string{"once", "--source", "zpools"}, 2, "", `unknown source "zpools"; sources are host, zfs_pools`},
		{"replay needs a file", []string{"replay"}, 2, "", "proxmox-agent replay: name at least one samples.log"},
		{"help", []string{"help"}, 0, "usage: proxmox-agent [COMMAND]", ""},
		{"--help", []string{"--help"}, 0, "flags of run", ""},
		{"-h", []string{"-h"}, 0, "commands:", ""},
		{"help once", []string{"help", "once"}, 0, "usage: proxmox-agent once [FLAGS]", ""},
		{"help frob", []string{"help", "frob"}, 2, "", `proxmox-agent help: unknown command "frob"`},
		{"once --help", []string{"once", "--help"}, 0, "--source NAME", ""},
		{"replay --help", []string{"replay", "--help"}, 0, "usage: proxmox-agent replay [FLAGS] FILE…", ""},
		{"status -h", []string{"status", "-h"}, 0, "--socket PATH", ""},
		{"check-config --help", []string{"check-config", "--help"}, 0, "--config PATH", ""},
		{"version --help", []string{"version", "--help"}, 0, "usage: proxmox-agent version\n", ""},
		{"help after --", []string{"replay", "--", "--help"}, 1, "", "proxmox-agent replay: open --help"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout %q\nstderr %q", code, c.code, out.String(), errb.String())
			}
			checkStream(t, "stdout", out.String(), c.stdout, false)
			checkStream(t, "stderr", errb.String(), c.stderr, c.code == 2)
		})
	}
}

func checkStream(t *testing.T, name, got, want string, oneLine bool) {
	t.Helper()
	switch {
	case want == "" && got != "":
		t.Errorf("%s not empty: %q", name, got)
	case !strings.Contains(got, want):
		t.Errorf("%s %q lacks %q", name, got, want)
	case oneLine && strings.Count(got, "\n") != 1:
		t.Errorf("%s is not one line: %q", name, got)
	}
}

// The help of a command lists its flags and no other command's.
func TestCommandHelpListsOnlyItsFlags(t *testing.T) {
	for _, c := range commands() {
		var out bytes.Buffer
		if code := run([]string{c.name, "--help"}, &out, &out); code != 0 {
			t.Fatalf("%s --help: exit %d", c.name, code)
		}
		for name := range flagDefs {
			has := strings.Contains(out.String(), "--"+name+" ")
			own := false
			for _, n := range c.flags {
				own = own || n == name
			}
			if has != own {
				t.Errorf("%s --help: --%s listed %v, own %v:\n%s", c.name, name, has, own, out.String())
			}
		}
	}
}

// Shared flags still work where they belong: --config for check-config,
// once and the default command, flags after positional arguments (replay).
func TestSharedFlagsWhereTheyBelong(t *testing.T) {
	cfg := testkit.WriteRawConfig(t, goodConfig)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("check-config --config: exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	missing := filepath.Join(t.TempDir(), "samples.log")
	os.WriteFile(missing, nil, 0o600)
	if code := run([]string{"replay", missing, "--dry-run", "--config", cfg, "--since", "2026-01-01T00:00:00Z"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "0 samples would be pushed") {
		t.Fatalf("replay with interspersed flags: exit %d %q %q", code, out.String(), errb.String())
	}
}

// check-config says where the token came from, never the token: inline,
// token_file PATH, or the systemd credential in $CREDENTIALS_DIRECTORY.
func TestCheckConfigTokenSource(t *testing.T) {
	const head = "server_url = \"ws://127.0.0.1:9/socket/websocket\"\nhost_id = \"t1\"\n[spool]\ndir = \"\"\n[status]\nsocket = \"\"\n"
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body, credDir string
		code                int
		want                string
	}{
		{"inline", "token = \"secret-token\"\n" + head, "", 0, "token: inline in the config file"},
		{"token_file", "token_file = \"" + tokenPath + "\"\n" + head, "", 0, "token: from token_file " + tokenPath},
		{"credential", head, dir, 0, "token: from credential " + tokenPath},
		{"none", head, "", 1, "token: missing"},
		{"both", "token = \"secret-token\"\ntoken_file = \"" + tokenPath + "\"\n" + head, "", 1, "line 2: token_file: token is set too (line 1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", c.credDir)
			var out, errb bytes.Buffer
			code := run([]string{"check-config", "--config", testkit.WriteRawConfig(t, c.body)}, &out, &errb)
			all := out.String() + errb.String()
			if code != c.code || !strings.Contains(all, c.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, c.code, c.want, all)
			}
			if strings.Contains(all, "secret-token") {
				t.Errorf("token printed:\n%s", all)
			}
		})
	}
}

// check-config lists every error at once: a type error and a 64-bit
// overflow no longer hide the unknown keys and range errors.
func TestCheckConfigEveryError(t *testing.T) {
	body := goodConfig + "[intervals]\nfast_seconds = 99999999999999999999\nmedium_seconds = \"5\"\nslow_seconds = 0\nfast_second = 1\n"
	var out, errb bytes.Buffer
	code := run([]string{"check-config", "--config", testkit.WriteRawConfig(t, body)}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{
		"line 9: intervals.fast_seconds: 99999999999999999999 is out of range",
		"line 10: intervals.medium_seconds: must be an integer, got a string",
		"line 11: intervals.slow_seconds: must be a positive integer",
		`line 12: unknown key "intervals.fast_second"`,
	} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	if i, j := strings.Index(errb.String(), "line 11:"), strings.Index(errb.String(), "line 12:"); i < 0 || j < i {
		t.Errorf("not in the file's order:\n%s", errb.String())
	}
}

// The README's first command prints no warning: testdata/agent.toml is
// 0644 in a checkout and holds the demo token, which is public.
func TestReadmeFirstCommandWarnsNothing(t *testing.T) {
	cfg := filepath.Join(testkit.ModuleRoot(t), "testdata", "agent.toml")
	var out, errb bytes.Buffer
	if code := run([]string{"once", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("warning: %s", l)
		}
	}
}

// The same rules through the built binary: what an operator's shell sees
// (exit status, the streams), with the credential passed as systemd does.
func TestBinaryCommandLine(t *testing.T) {
	bin := testkit.BuildAgent(t)
	credDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(credDir, "token"), []byte("secret-token\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfg := testkit.WriteRawConfig(t, "server_url = \"ws://127.0.0.1:9/socket/websocket\"\nhost_id = \"t1\"\n")
	cases := []struct {
		args           []string
		env            string
		code           int
		stdout, stderr string
	}{
		{[]string{"--version"}, "", 0, "proxmox-agent ", ""},
		{[]string{"-v"}, "", 0, "proxmox-agent ", ""},
		{[]string{"once", "--json", "--dry-run"}, "", 2, "", "proxmox-agent once: flag --json is not a flag of once (see proxmox-agent once --help)\n"},
		{[]string{"--log-level", "verbose"}, "", 2, "", "proxmox-agent run: --log-level \"verbose\": want debug, info, warn or error (see proxmox-agent run --help)\n"},
		{[]string{"replay", "--help"}, "", 0, "usage: proxmox-agent replay", ""},
		{[]string{"check-config", "--config", cfg}, "CREDENTIALS_DIRECTORY=" + credDir, 0, "token: from credential " + filepath.Join(credDir, "token"), ""},
		{[]string{"check-config", "--config", cfg}, "CREDENTIALS_DIRECTORY=", 1, "", "token: missing"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = append(os.Environ(), "AGENT_CONFIG=", c.env)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("exit %d, want %d: %q %q", code, c.code, out.String(), errb.String())
			}
			checkStream(t, "stdout", out.String(), c.stdout, false)
			checkStream(t, "stderr", errb.String(), c.stderr, false)
			if strings.Contains(out.String()+errb.String(), "secret-token") {
				t.Error("token printed")
			}
		})
	}
}
