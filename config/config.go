// Package config loads, defaults and validates the agent's TOML configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the packaged agent looks for its config when neither
// --config nor AGENT_CONFIG names one.
const DefaultPath = "/etc/proxmox-agent/agent.toml"

// EnvPath is the environment variable that names the config file (the Elixir
// agent used the same name, so existing unit files keep working).
const EnvPath = "AGENT_CONFIG"

// Config is the agent's whole configuration after defaults are applied.
type Config struct {
	ServerURL string `toml:"server_url"`
	Token     string `toml:"token"`
	// HostID names this host to the server; defaults to the short hostname.
	HostID string `toml:"host_id"`
	// Topic is the Phoenix channel topic; defaults to "agent:<host_id>".
	Topic string `toml:"topic"`
	// Node is the Proxmox node name to query; defaults to the short hostname.
	Node string `toml:"node"`

	Intervals Intervals `toml:"intervals"`
	Debug     Debug     `toml:"debug"`
	Timeouts  Timeouts  `toml:"timeouts"`
	Commands  Commands  `toml:"commands"`
	Proc      Proc      `toml:"proc"`
	Reporter  Reporter  `toml:"reporter"`
	TLS       TLS       `toml:"tls"`
	Log       Log       `toml:"log"`

	// Path is the file the config was loaded from ("" when built in code).
	Path string `toml:"-"`
	// Version is the agent's own version, set by main (join params, self-report).
	Version string `toml:"-"`
}

// Intervals are the three collection cadences, in seconds.
type Intervals struct {
	FastSeconds   int `toml:"fast_seconds"`
	MediumSeconds int `toml:"medium_seconds"`
	SlowSeconds   int `toml:"slow_seconds"`
}

// Debug holds the opt-in diagnostic dump settings.
type Debug struct {
	// DumpDir turns the dump on when non-empty.
	DumpDir string `toml:"dump_dir"`
}

// Timeouts bound every external command, per binary.
type Timeouts struct {
	ZpoolSeconds    int `toml:"zpool_seconds"`
	ZfsSeconds      int `toml:"zfs_seconds"`
	PveshSeconds    int `toml:"pvesh_seconds"`
	SmartctlSeconds int `toml:"smartctl_seconds"`
}

// Commands names the binaries the agent runs; a bare name is looked up in PATH.
type Commands struct {
	Zpool          string `toml:"zpool"`
	Zfs            string `toml:"zfs"`
	Pvesh          string `toml:"pvesh"`
	Smartctl       string `toml:"smartctl"`
	MaxOutputBytes int    `toml:"max_output_bytes"`
}

// Proc locates the proc filesystem, so tests can point it at testdata/.
type Proc struct {
	Root string `toml:"root"`
}

// Reporter tunes the Phoenix channel session and the offline queue.
type Reporter struct {
	HeartbeatSeconds    int `toml:"heartbeat_seconds"`
	ReplyTimeoutSeconds int `toml:"reply_timeout_seconds"`
	QueueMaxSamples     int `toml:"queue_max_samples"`
	QueueMaxBytes       int `toml:"queue_max_bytes"`
}

// TLS adjusts certificate verification for wss:// servers.
type TLS struct {
	CAFile             string `toml:"ca_file"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
}

// Log selects the log level (debug, info, warn, error) and format (text, json).
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Defaults returns a Config with every optional key at its default. HostID,
// Node and Topic are filled from hostname by applyDefaults.
func Defaults() Config {
	return Config{
		Intervals: Intervals{FastSeconds: 30, MediumSeconds: 300, SlowSeconds: 1800},
		Timeouts: Timeouts{
			ZpoolSeconds: 10, ZfsSeconds: 10,
			PveshSeconds: 30, SmartctlSeconds: 20,
		},
		Commands: Commands{
			Zpool: "zpool", Zfs: "zfs", Pvesh: "pvesh", Smartctl: "smartctl",
			MaxOutputBytes: 16 << 20,
		},
		Proc: Proc{Root: "/proc"},
		Reporter: Reporter{
			HeartbeatSeconds: 30, ReplyTimeoutSeconds: 10,
			QueueMaxSamples: 2000, QueueMaxBytes: 64 << 20,
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// ResolvePath picks the config file: the flag, else $AGENT_CONFIG, else DefaultPath.
func ResolvePath(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// ErrNotFound is wrapped by Load when the config file does not exist.
var ErrNotFound = errors.New("config file not found")

// Load reads, decodes, defaults and validates the file at path. hostname
// supplies the default host_id and node (the short form is used).
func Load(path string, hostname func() (string, error)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, hostname)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes TOML bytes into a validated Config.
func Parse(data []byte, hostname func() (string, error)) (*Config, error) {
	cfg := Defaults()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, err
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("%sunknown key %q", linePrefix(data, k), k.String()))
	}
	if err := cfg.applyDefaults(hostname); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.validate(data)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

func (c *Config) applyDefaults(hostname func() (string, error)) error {
	if c.HostID == "" || c.Node == "" {
		h, err := hostname()
		if err != nil {
			return fmt.Errorf("host_id: not set and hostname unavailable: %w", err)
		}
		short, _, _ := strings.Cut(h, ".")
		if c.HostID == "" {
			c.HostID = short
		}
		if c.Node == "" {
			c.Node = short
		}
	}
	if c.Topic == "" {
		c.Topic = "agent:" + c.HostID
	}
	return nil
}

func (c *Config) validate(data []byte) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", linePrefix(data, toml.Key(strings.Split(key, "."))), key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.ServerURL) == "" {
		bad("server_url", "missing or empty (e.g. wss://monitor.example.com/socket/websocket)")
	} else if u, err := url.Parse(c.ServerURL); err != nil {
		bad("server_url", "not a URL: %v", err)
	} else if u.Scheme != "ws" && u.Scheme != "wss" {
		bad("server_url", "scheme must be ws:// or wss://, got %q", u.Scheme)
	} else if u.Host == "" {
		bad("server_url", "has no host")
	}
	if strings.TrimSpace(c.Token) == "" {
		bad("token", "missing or empty")
	}
	positive := []struct {
		key string
		v   int
	}{
		{"intervals.fast_seconds", c.Intervals.FastSeconds},
		{"intervals.medium_seconds", c.Intervals.MediumSeconds},
		{"intervals.slow_seconds", c.Intervals.SlowSeconds},
		{"timeouts.zpool_seconds", c.Timeouts.ZpoolSeconds},
		{"timeouts.zfs_seconds", c.Timeouts.ZfsSeconds},
		{"timeouts.pvesh_seconds", c.Timeouts.PveshSeconds},
		{"timeouts.smartctl_seconds", c.Timeouts.SmartctlSeconds},
		{"commands.max_output_bytes", c.Commands.MaxOutputBytes},
		{"reporter.heartbeat_seconds", c.Reporter.HeartbeatSeconds},
		{"reporter.reply_timeout_seconds", c.Reporter.ReplyTimeoutSeconds},
		{"reporter.queue_max_samples", c.Reporter.QueueMaxSamples},
		{"reporter.queue_max_bytes", c.Reporter.QueueMaxBytes},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, "must be a positive integer, got %d", p.v)
		}
	}
	// A slice, not a map: errors come out in the file's order every time.
	for _, p := range []struct{ key, v string }{
		{"commands.zpool", c.Commands.Zpool}, {"commands.zfs", c.Commands.Zfs},
		{"commands.pvesh", c.Commands.Pvesh}, {"commands.smartctl", c.Commands.Smartctl},
		{"proc.root", c.Proc.Root},
	} {
		if strings.TrimSpace(p.v) == "" {
			bad(p.key, "must not be empty")
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return errs
}

// linePrefix finds the line that defines key in the TOML source, so errors
// can point at it ("line 7: "). BurntSushi/toml records key positions but
// does not export them, so this scans the table headers and assignments.
func linePrefix(data []byte, key toml.Key) string {
	if len(key) == 0 {
		return ""
	}
	table := strings.Join(key[:len(key)-1], ".")
	leaf := key[len(key)-1]
	current := ""
	for i, line := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "[") {
			h := strings.Trim(s, "[] \t")
			if j := strings.Index(h, "#"); j >= 0 {
				h = strings.TrimSpace(strings.Trim(h[:j], "] \t"))
			}
			current = h
			if current == strings.Join(key, ".") {
				return fmt.Sprintf("line %d: ", i+1)
			}
			continue
		}
		name, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		if current == table && name == leaf {
			return fmt.Sprintf("line %d: ", i+1)
		}
		if current == "" && name == strings.Join(key, ".") {
			return fmt.Sprintf("line %d: ", i+1)
		}
	}
	return ""
}

// Interval returns a cadence's period by kind ("fast", "medium", "slow").
func (c *Config) Interval(kind string) time.Duration {
	switch kind {
	case "fast":
		return time.Duration(c.Intervals.FastSeconds) * time.Second
	case "medium":
		return time.Duration(c.Intervals.MediumSeconds) * time.Second
	case "slow":
		return time.Duration(c.Intervals.SlowSeconds) * time.Second
	}
	return 0
}

// Seconds converts a config seconds value to a Duration.
func Seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// PermissionWarning reports, when the file is readable by group or others,
// a message saying so: the file holds the token.
func PermissionWarning(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Sprintf("config %s has mode %04o and holds the token; chmod 600 it", path, mode)
	}
	return ""
}

// RedactedURL returns the server URL with any token query value masked, for logs.
func (c *Config) RedactedURL() string { return RedactURL(c.ServerURL) }

// RedactURL masks the values of token-like query parameters and userinfo.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable url>"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "token") {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
