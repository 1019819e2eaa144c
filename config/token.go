package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"github.com/BurntSushi/toml"
)

// Where the token came from, for check-config (never the token itself).
const (
	TokenInline     = "inline"
	TokenFromFile   = "token_file"
	TokenCredential = "credential"
)

// CredentialsEnv is the variable systemd sets to the directory of the
// unit's credentials (LoadCredential=, SetCredential=).
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// CredentialName is the credential the agent reads its token from when the
// config has neither token nor token_file: LoadCredential=token:PATH.
const CredentialName = "token"

// DemoToken is the token of the project's loopback sink (cmd/phoenix-sink)
// and its demo configs. It is printed in the README and kept in git, so it
// is no secret: a file holding it need not be private.
const DemoToken = "dev-token"

// maxTokenBytes bounds a token file: a token is tens of bytes; a cap keeps
// a mistaken path (a log, a disk image) from being read whole.
const maxTokenBytes = 64 << 10

// Env is what Load takes from the process: the hostname (default host_id
// and node), the environment (the credentials directory) and the effective
// uid that secret files must belong to (or root).
type Env struct {
	Hostname func() (string, error)
	Getenv   func(string) string
	EUID     int
	// PackagedTokenFile is the file the packaged unit passes as the
	// credential. Read when neither key is set and no credential directory
	// is there: check-config run by hand on a packaged host sees the token
	// the service will get. "" turns the fallback off.
	PackagedTokenFile string
}

// PackagedTokenFile is where the .deb installs the token (a 0600 conffile).
const PackagedTokenFile = "/etc/proxmox-agent/token"

// ProcessEnv is the running process's Env.
func ProcessEnv() Env {
	return Env{Hostname: os.Hostname, Getenv: os.Getenv, EUID: os.Geteuid(), PackagedTokenFile: PackagedTokenFile}
}

// resolveToken fills c.Token from token_file or the systemd credential when
// the config has no inline token, and records where it came from. The
// errors name the key and file, never the content.
func (c *Config) resolveToken(env Env, lines keyIndex) error {
	switch {
	case c.Token != "" && c.TokenFile != "":
		return nil // reported by validate
	case c.Token != "":
		c.TokenSource = TokenInline
		return nil
	case c.TokenFile != "":
		tok, err := readSecret(c.TokenFile, env.EUID)
		if err != nil {
			return fmt.Errorf("%stoken_file: %w", lines.prefix(toml.Key{"token_file"}), err)
		}
		c.Token, c.TokenSource = tok, TokenFromFile+" "+c.TokenFile
		return nil
	}
	dir := ""
	if env.Getenv != nil {
		dir = env.Getenv(CredentialsEnv)
	}
	if dir == "" {
		return c.packagedToken(env)
	}
	p := filepath.Join(dir, CredentialName)
	tok, err := readSecret(p, env.EUID)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("token: missing: neither token nor token_file is set and $%s has no credential %q", CredentialsEnv, CredentialName)
	}
	if err != nil {
		return fmt.Errorf("token: credential: %w", err)
	}
	c.Token, c.TokenSource = tok, TokenCredential+" "+p
	return nil
}

// packagedToken reads the packaged token file when no credential directory
// is set (a command run by hand on a packaged host), with the checks of a
// token_file.
func (c *Config) packagedToken(env Env) error {
	missing := errors.New("token: missing: set token or token_file, or pass the credential \"token\" (systemd LoadCredential=token:PATH)")
	if env.PackagedTokenFile == "" {
		return missing
	}
	tok, err := readSecret(env.PackagedTokenFile, env.EUID)
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		return fmt.Errorf("token: the packaged token file: %w", err)
	}
	c.Token, c.TokenSource = tok, TokenFromFile+" "+env.PackagedTokenFile+" (the unit's credential)"
	return nil
}

// readSecret reads a token from path: a regular file of the agent's user
// (or root), readable by nobody else, one line (the trailing newline
// trimmed), not empty. The content never appears in an error.
func readSecret(path string, euid int) (string, error) {
	b, err := readRegular(path, maxTokenBytes, func(st fs.FileInfo) error { return checkPrivate(path, st, euid) })
	if err != nil {
		return "", err
	}
	tok := strings.TrimRight(string(b), "\r\n")
	switch {
	case strings.TrimSpace(tok) == "":
		return "", fmt.Errorf("%s is empty", path)
	case strings.ContainsFunc(tok, unicode.IsControl):
		return "", fmt.Errorf("%s holds more than one line or control characters: want the token alone", path)
	}
	return tok, nil
}

// checkPrivate refuses a secret file that is not a regular file, that
// another user owns (root excepted) or that its group or others may read or
// write: the same rules as the config file, enforced because the file
// holds nothing but the secret.
func checkPrivate(path string, st fs.FileInfo, euid int) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if msg := ownerProblem(st, euid); msg != "" {
		return fmt.Errorf("%s %s", path, msg)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: group or others may read it; chmod 600 it", path, mode)
	}
	return nil
}

// ownerProblem says why st's owner may not hold a secret of this process
// ("" when it is root or euid): another user could replace the file.
func ownerProblem(st fs.FileInfo, euid int) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if uid := int(sys.Uid); uid != 0 && uid != euid {
		return fmt.Sprintf("is owned by uid %d, not by root or the agent's user (uid %d); chown it", uid, euid)
	}
	return ""
}

// permissionWarnings says what is wrong with the config file's owner and
// mode, when the config holds its token inline: the owner check always,
// the mode check only for a token that is a secret. A config whose token
// comes from token_file or a credential holds no secret and may be 0644;
// so may the checkout's demo configs, whose token (DemoToken) is public and
// goes to a server on loopback only.
func (c *Config) permissionWarnings(env Env) []string {
	if c.Path == "" {
		return nil
	}
	st, err := os.Stat(c.Path)
	if err != nil {
		return nil
	}
	var w []string
	if msg := ownerProblem(st, env.EUID); msg != "" {
		w = append(w, fmt.Sprintf("config %s %s", c.Path, msg))
	}
	if c.TokenSource != TokenInline {
		return w
	}
	if c.Token == DemoToken {
		if !loopbackURL(c.ServerURL) {
			w = append(w, fmt.Sprintf("config %s: token is the public demo token of the checkout; the server should not accept it", c.Path))
		}
		return w
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		w = append(w, fmt.Sprintf("config %s has mode %04o and holds the token; chmod 600 it (or move the token to token_file)", c.Path, mode))
	}
	return w
}

// loopbackURL reports whether raw's host is localhost or a loopback address.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
