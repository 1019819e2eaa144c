package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const tokenHead = "server_url = \"wss://monitor.example.com/socket/websocket\"\nhost_id = \"h\"\n"

// secretFile writes body to a file of mode perm in dir and returns its path.
func secretFile(t *testing.T, dir, body string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func credEnv(dir string) Env {
	e := testEnv("h")
	e.Getenv = func(k string) string {
		if k == CredentialsEnv {
			return dir
		}
		return ""
	}
	return e
}

// Where the token comes from: inline, token_file (trailing newline trimmed),
// the systemd credential; and each way it is refused, with the key and the
// file named and the content never quoted.
func TestTokenSources(t *testing.T) {
	cases := []struct {
		name       string
		body       func(dir string) string // the config; dir holds "token"
		tokenFile  string                  // content of dir/token ("" = none)
		perm       os.FileMode
		credential bool // $CREDENTIALS_DIRECTORY = dir
		wantToken  string
		wantSource string
		wantErr    []string
	}{
		{name: "inline", body: func(string) string { return tokenHead + "token = \"s3cret\"\n" },
			wantToken: "s3cret", wantSource: "inline"},
		{name: "token_file", body: fileKey, tokenFile: "s3cret\n", perm: 0o600,
			wantToken: "s3cret", wantSource: "token_file "},
		{name: "token_file CRLF", body: fileKey, tokenFile: "s3cret\r\n", perm: 0o400,
			wantToken: "s3cret", wantSource: "token_file "},
		{name: "token_file group-readable", body: fileKey, tokenFile: "s3cret\n", perm: 0o640,
			wantErr: []string{"line 3: token_file:", "mode 0640", "chmod 600"}},
		{name: "token_file world-writable", body: fileKey, tokenFile: "s3cret\n", perm: 0o602,
			wantErr: []string{"token_file:", "mode 0602"}},
		{name: "token_file empty", body: fileKey, tokenFile: "\n", perm: 0o600,
			wantErr: []string{"line 3: token_file:", "is empty"}},
		{name: "token_file two lines", body: fileKey, tokenFile: "s3cret\nmore\n", perm: 0o600,
			wantErr: []string{"token_file:", "more than one line"}},
		{name: "token_file missing", body: func(dir string) string { return fileKey(filepath.Join(dir, "nope")) },
			wantErr: []string{"line 3: token_file:", "no such file"}},
		{name: "token_file a directory", body: func(dir string) string { return tokenHead + "token_file = \"" + dir + "\"\n" },
			wantErr: []string{"token_file:", "not a regular file"}},
		{name: "token_file relative", body: func(string) string { return tokenHead + "token_file = \"token\"\n" },
			wantErr: []string{"line 3: token_file: must be an absolute path"}},
		{name: "both set", body: func(dir string) string { return fileKey(dir) + "token = \"s3cret\"\n" }, tokenFile: "x\n", perm: 0o600,
			wantErr: []string{"line 3: token_file: token is set too (line 4); keep one of them"}},
		{name: "both set, inline empty", body: func(dir string) string { return fileKey(dir) + "token = \"\"\n" }, tokenFile: "x\n", perm: 0o600,
			wantErr: []string{"token is set too"}},
		{name: "credential", body: func(string) string { return tokenHead }, tokenFile: "s3cret\n", perm: 0o400, credential: true,
			wantToken: "s3cret", wantSource: "credential "},
		{name: "credential readable by others", body: func(string) string { return tokenHead }, tokenFile: "s3cret\n", perm: 0o644, credential: true,
			wantErr: []string{"token: credential:", "mode 0644"}},
		{name: "credential directory without token", body: func(string) string { return tokenHead }, credential: true,
			wantErr: []string{"token: missing", CredentialsEnv}},
		{name: "inline wins over credential", body: func(string) string { return tokenHead + "token = \"s3cret\"\n" }, tokenFile: "other\n", perm: 0o600, credential: true,
			wantToken: "s3cret", wantSource: "inline"},
		{name: "nothing", body: func(string) string { return tokenHead },
			wantErr: []string{"token: missing: set token or token_file, or pass the credential"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.tokenFile != "" {
				secretFile(t, dir, c.tokenFile, c.perm)
			}
			env := testEnv("h")
			if c.credential {
				env = credEnv(dir)
			}
			cfg, err := Load(writeTemp(t, c.body(dir)), env)
			if len(c.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted; token from %s", cfg.TokenSource)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("token in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Token != c.wantToken || !strings.HasPrefix(cfg.TokenSource, c.wantSource) || strings.Contains(cfg.TokenSource, "s3cret") {
				t.Errorf("token %q from %q, want %q from %q…", cfg.Token, cfg.TokenSource, c.wantToken, c.wantSource)
			}
		})
	}
}

func fileKey(dir string) string {
	p := dir
	if filepath.Base(dir) != "nope" {
		p = filepath.Join(dir, "token")
	}
	return tokenHead + "token_file = \"" + p + "\"\n"
}

// fakeStat is a FileInfo with an owner, for the owner rule without root.
type fakeStat struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeStat) Name() string       { return "token" }
func (f fakeStat) Size() int64        { return 7 }
func (f fakeStat) Mode() fs.FileMode  { return f.mode }
func (f fakeStat) ModTime() time.Time { return time.Time{} }
func (f fakeStat) IsDir() bool        { return f.mode.IsDir() }
func (f fakeStat) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

// The owner rule: root's or the agent's own file only; another user could
// swap the token (or read it, being its owner).
func TestCheckPrivateOwner(t *testing.T) {
	cases := []struct {
		st   fakeStat
		euid int
		want string
	}{
		{fakeStat{0o600, 0}, 0, ""},
		{fakeStat{0o600, 0}, 1000, ""},
		{fakeStat{0o400, 1000}, 1000, ""},
		{fakeStat{0o600, 1001}, 1000, "owned by uid 1001"},
		{fakeStat{0o600, 1001}, 0, "owned by uid 1001"},
		{fakeStat{0o660, 0}, 0, "mode 0660"},
		{fakeStat{fs.ModeNamedPipe | 0o600, 0}, 0, "not a regular file"},
	}
	for _, c := range cases {
		err := checkPrivate("/x/token", c.st, c.euid)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v euid %d: refused: %v", c.st, c.euid, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v euid %d: %v, want %q", c.st, c.euid, err, c.want)
		}
	}
}

// The same rule on a real file, where the test may chown (as root): a
// token_file of another user is refused as the config would be warned of.
func TestTokenFileOwnedByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root; TestCheckPrivateOwner covers the rule")
	}
	dir := t.TempDir()
	p := secretFile(t, dir, "s3cret\n", 0o600)
	if err := os.Chown(p, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeTemp(t, fileKey(dir))
	_, err := Load(cfgPath, testEnv("h"))
	if err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
		t.Fatalf("err = %v", err)
	}
	// The config itself of another user: loaded, with a warning.
	os.WriteFile(p, []byte("s3cret\n"), 0o600)
	os.Chown(p, 0, 0)
	os.Chown(cfgPath, 4242, 4242)
	cfg, err := Load(cfgPath, testEnv("h"))
	if err != nil || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "owned by uid 4242") {
		t.Fatalf("cfg %+v err %v", cfg, err)
	}
}

// A FIFO named as token_file is refused at once, not waited on.
func TestTokenFileFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "token"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(writeTemp(t, fileKey(dir)), testEnv("h")); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO token_file")
	}
}

// The config's mode is warned of only when it holds a secret token: not
// with token_file or a credential, not for the checkout's public demo token
// sent to loopback. The packaged case (a real token inline, 0644) still is.
func TestPermissionWarnings(t *testing.T) {
	dir := t.TempDir()
	tokenPath := secretFile(t, dir, "s3cret\n", 0o600)
	cases := []struct {
		name, body string
		env        Env
		want       string // "" = no warning
	}{
		{"inline secret", tokenHead + "token = \"s3cret\"\n", testEnv("h"), "has mode 0644 and holds the token"},
		{"token_file", tokenHead + "token_file = \"" + tokenPath + "\"\n", testEnv("h"), ""},
		{"credential", tokenHead, credEnv(dir), ""},
		{"demo token to loopback", "server_url = \"ws://127.0.0.1:4000/socket/websocket\"\ntoken = \"dev-token\"\n", testEnv("h"), ""},
		{"demo token to localhost", "server_url = \"ws://localhost:4000/socket/websocket\"\ntoken = \"dev-token\"\n", testEnv("h"), ""},
		{"demo token to a server", "server_url = \"wss://monitor.example.com/s\"\ntoken = \"dev-token\"\n", testEnv("h"), "public demo token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, c.body)
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p, c.env)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(cfg.Warnings, "\n")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("warnings %q, want %q", got, c.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Error("token in a warning")
			}
			os.Chmod(p, 0o600)
			if cfg, _ := Load(p, c.env); c.name == "inline secret" && len(cfg.Warnings) != 0 {
				t.Errorf("0600: warned %q", cfg.Warnings)
			}
		})
	}
}

// The checkout's demo configs load without a single warning whatever mode
// git gave them: the first commands of the README print none.
func TestDemoConfigsWarnNothing(t *testing.T) {
	for _, name := range []string{"agent.toml", "agent-demo.toml"} {
		p := filepath.Join("..", "testdata", name)
		cfg, err := Load(p, testEnv("h"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: %q", name, cfg.Warnings)
		}
	}
}

// Run by hand on a packaged host (no $CREDENTIALS_DIRECTORY), the agent
// reads the file the unit passes as the credential, with the same checks;
// without that file the token is missing as before.
func TestPackagedTokenFileFallback(t *testing.T) {
	dir := t.TempDir()
	packaged := filepath.Join(dir, "token")
	body := []byte(tokenHead)
	env := Env{Hostname: func() (string, error) { return "h", nil }, Getenv: func(string) string { return "" },
		EUID: os.Geteuid(), PackagedTokenFile: packaged}
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env); err == nil || !strings.Contains(err.Error(), "token: missing") {
		t.Fatalf("no packaged file: %v", err)
	}
	if err := os.WriteFile(packaged, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("a readable packaged file: %v", err)
	}
	if err := os.Chmod(packaged, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, env)
	if err != nil || cfg.Token != "s3cret" || !strings.Contains(cfg.TokenSource, packaged) {
		t.Fatalf("packaged file: %v %q", err, cfg.TokenSource)
	}
}
