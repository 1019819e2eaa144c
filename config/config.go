// Package config loads, defaults and validates the agent's TOML configuration.
package config

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

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
	// Token authenticates the agent to the server. Inline here, or read
	// by Load from TokenFile or the systemd credential "token".
	Token string `toml:"token"`
	// TokenFile names a file holding the token (mode 0600, owned by root
	// or the agent's user), so the config itself holds no secret.
	TokenFile string `toml:"token_file"`
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
	PVE       PVE       `toml:"pve"`
	Sources   Sources   `toml:"sources"`
	Reporter  Reporter  `toml:"reporter"`
	Spool     Spool     `toml:"spool"`
	Status    Status    `toml:"status"`
	TLS       TLS       `toml:"tls"`
	Log       Log       `toml:"log"`
	HostFiles

	// Path is the file the config was loaded from ("" when built in code).
	Path string `toml:"-"`
	// Version is the agent's own version, set by main (join params, self-report).
	Version string `toml:"-"`
	// TokenSource says where Load found the token: "inline",
	// "token_file PATH" or "credential PATH". Never the token.
	TokenSource string `toml:"-"`
	// Warnings are what Load found wrong but not fatal (the config file's
	// mode and owner), for the caller to log.
	Warnings []string `toml:"-"`
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
	// PmxcfsSeconds bounds the reads of one source from /etc/pve: they are
	// FUSE reads that block for as long as pmxcfs is stuck.
	PmxcfsSeconds int `toml:"pmxcfs_seconds"`
	// CorosyncSeconds bounds corosync-cfgtool -s (the corosync source).
	CorosyncSeconds int `toml:"corosync_seconds"`
}

// Commands names the binaries the agent runs; a bare name is looked up in PATH.
type Commands struct {
	Zpool    string `toml:"zpool"`
	Zfs      string `toml:"zfs"`
	Pvesh    string `toml:"pvesh"`
	Smartctl string `toml:"smartctl"`
	// CorosyncCfgtool is corosync-cfgtool, run by the corosync source.
	CorosyncCfgtool string `toml:"corosync_cfgtool"`
	MaxOutputBytes  int    `toml:"max_output_bytes"`
}

// Proc locates the proc filesystem, so tests can point it at testdata/.
type Proc struct {
	Root string `toml:"root"`
}

// PVE locates the Proxmox VE cluster filesystem, so tests can point it at
// testdata/.
type PVE struct {
	// EtcDir is where pmxcfs is mounted. The guests and cluster sources read
	// it directly; guests fall back to pvesh when it cannot be read.
	EtcDir string `toml:"etc_dir"`
	// LibDir is pve-manager's state (job states, replication state,
	// pkgupdates): the backups, replication and updates sources.
	LibDir string `toml:"lib_dir"`
	// LogDir holds the task index and task logs (tasks/): the backups source.
	LogDir string `toml:"log_dir"`
	// AptListsDir is apt's lists directory, whose newest mtime dates the
	// last apt update: the updates source.
	AptListsDir string `toml:"apt_lists_dir"`
	// SubscriptionFile is the subscription status: the subscription source.
	SubscriptionFile string `toml:"subscription_file"`
}

// Sources holds the [sources] switches as the file sets them: a source the
// file does not name keeps its default from the registry
// (internal/collect.Registry). A switched-off source is absent from the
// payload and runs no command.
type Sources map[string]bool

// Option adjusts what Parse and Load accept.
type Option func(*options)

type options struct {
	sources []string // nil: any [sources] key is accepted
}

// KnownSources makes Parse refuse a [sources] key that is not one of names
// (the registry's; internal/collect.ConfigOption passes them).
func KnownSources(names []string) Option {
	return func(o *options) { o.sources = names }
}

// unknown returns an error for each switch that names no source of known,
// in the file's order; nil known accepts every name.
func (s Sources) unknown(known []string, lines keyIndex) []error {
	if known == nil {
		return nil
	}
	var bad []string
	for name := range s {
		if !slices.Contains(known, name) {
			bad = append(bad, name)
		}
	}
	line := func(n string) int { return lines["sources."+n] }
	slices.SortFunc(bad, func(a, b string) int { return cmp.Or(cmp.Compare(line(a), line(b)), cmp.Compare(a, b)) })
	errs := make([]error, len(bad))
	for i, n := range bad {
		errs[i] = fmt.Errorf("%sunknown key %q (sources are %s)", lines.prefix(toml.Key{"sources", n}), printable("sources."+n), strings.Join(known, ", "))
	}
	return errs
}

// Reporter tunes the Phoenix channel session and the offline queue.
type Reporter struct {
	HeartbeatSeconds    int `toml:"heartbeat_seconds"`
	ReplyTimeoutSeconds int `toml:"reply_timeout_seconds"`
	QueueMaxSamples     int `toml:"queue_max_samples"`
	QueueMaxBytes       int `toml:"queue_max_bytes"`
	// ReconnectMaxSeconds is the widest reconnect window: after a lost
	// server each agent waits a random time up to it, so a fleet does
	// not rejoin a restarted server in the same second.
	ReconnectMaxSeconds int `toml:"reconnect_max_seconds"`
}

// Spool keeps samples on disk until they are delivered, so a restart or a
// crash during a server outage loses nothing.
type Spool struct {
	// Dir holds the spool; "" keeps the queue in memory only.
	Dir string `toml:"dir"`
	// MaxBytes bounds it; beyond it the oldest samples are dropped and
	// counted.
	MaxBytes int `toml:"max_bytes"`
}

// Status is where the running agent answers `proxmox-agent status`.
type Status struct {
	// Socket is the Unix socket path; "" turns it off.
	Socket string `toml:"socket"`
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
			PmxcfsSeconds: 5, CorosyncSeconds: 10,
		},
		Commands: Commands{
			Zpool: "zpool", Zfs: "zfs", Pvesh: "pvesh", Smartctl: "smartctl",
			CorosyncCfgtool: "corosync-cfgtool",
			MaxOutputBytes:  16 << 20,
		},
		Proc: Proc{Root: "/proc"},
		PVE: PVE{EtcDir: "/etc/pve", LibDir: "/var/lib/pve-manager", LogDir: "/var/log/pve",
			AptListsDir: "/var/lib/apt/lists", SubscriptionFile: "/etc/subscription"},
		Reporter: Reporter{
			HeartbeatSeconds: 30, ReplyTimeoutSeconds: 10,
			QueueMaxSamples: 2000, QueueMaxBytes: 64 << 20,
			ReconnectMaxSeconds: 30,
		},
		Spool:  Spool{Dir: DefaultSpoolDir, MaxBytes: 256 << 20},
		Status: Status{Socket: DefaultStatusSocket},
		Log:    Log{Level: "info", Format: "text"},

		HostFiles: defaultHostFiles(),
	}
}

// Where the packaged agent keeps its spool and its status socket (the
// unit's StateDirectory and RuntimeDirectory).
const (
	DefaultSpoolDir     = "/var/lib/proxmox-agent/spool"
	DefaultStatusSocket = "/run/proxmox-agent/status.sock"
)

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

// MaxFileBytes bounds the config file: a real one is a few hundred bytes,
// and a cap keeps /dev/zero or a runaway generator from eating memory.
const MaxFileBytes = 1 << 20

// Load reads, decodes, defaults and validates the file at path, and
// resolves the token: inline, else token_file, else the systemd credential
// "token" in $CREDENTIALS_DIRECTORY. env.Hostname supplies the default
// host_id and node (the short form is used). The file must be a regular
// file (a FIFO would block the agent's start, a device never end) of at
// most MaxFileBytes. Every problem is reported at once, each with its key
// and line; cfg.Warnings holds what is wrong but not fatal.
func Load(path string, env Env, opts ...Option) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := parse(data, env.Hostname, func(c *Config, lines keyIndex) error {
		return c.resolveToken(env, lines)
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Path = path
	cfg.Warnings = cfg.permissionWarnings(env)
	return cfg, nil
}

func readFile(path string) ([]byte, error) {
	data, err := readRegular(path, MaxFileBytes, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}

// readRegular reads the regular file at path, at most max bytes. Every
// file the config names (the config itself, token_file, ca_file) is read
// this way: a FIFO is refused at once (opened O_NONBLOCK, then its type
// checked) rather than waited on, and a device or a runaway file is not
// read without end, so neither can hang a start or a reload. vet, when
// set, checks the opened file's info as well (owner, mode).
func readRegular(path string, max int, vet func(fs.FileInfo) error) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if vet != nil {
		if err := vet(st); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// Parse decodes TOML bytes into a validated Config. It reads no file: the
// config needs token or token_file, and a token_file is only checked for
// being an absolute path (Load reads it, and also accepts a systemd
// credential in place of both).
func Parse(data []byte, hostname func() (string, error), opts ...Option) (*Config, error) {
	return parse(data, hostname, nil, opts)
}

// parse is Parse with a token resolver (nil: none), whose error is
// reported with the others.
func parse(data []byte, hostname func() (string, error), resolve func(*Config, keyIndex) error, opts []Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg := Defaults()
	lines := keyLines(data)
	undecoded, errs, reported, fatal := decodeAll(data, &cfg, lines)
	if fatal {
		return nil, errors.Join(errs...)
	}
	for _, k := range undecoded {
		errs = append(errs, fmt.Errorf("%sunknown key %q", lines.prefix(k), printable(k.String())))
	}
	errs = append(errs, cfg.Sources.unknown(o.sources, lines)...)
	if err := cfg.applyDefaults(hostname); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.validate(lines, reported, resolve == nil)...)
	if resolve != nil && !reported["token"] && !reported["token_file"] {
		if err := resolve(&cfg, lines); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(inFileOrder(errs)...)
	}
	return &cfg, nil
}

// inFileOrder sorts errors by their "line N: " prefix, so an operator reads
// them top to bottom; those without a line (a key not in the file) come
// first, in the order found.
func inFileOrder(errs []error) []error {
	type numbered struct {
		line int
		err  error
	}
	ns := make([]numbered, len(errs))
	for i, e := range errs {
		ns[i].err = e
		if rest, ok := strings.CutPrefix(e.Error(), "line "); ok {
			digits, _, _ := strings.Cut(rest, ":")
			ns[i].line, _ = strconv.Atoi(digits)
		}
	}
	sort.SliceStable(ns, func(i, j int) bool { return ns[i].line < ns[j].line })
	for i := range ns {
		errs[i] = ns[i].err
	}
	return errs
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

// validate checks every key but those already reported (a wrong type, an
// out-of-range number): their value is a placeholder. needToken: no
// resolver will look for a credential, so token or token_file must be set.
func (c *Config) validate(lines keyIndex, reported map[string]bool, needToken bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		if reported[key] {
			return
		}
		errs = append(errs, fmt.Errorf("%s%s: %s", lines.prefix(toml.Key(strings.Split(key, "."))), key, fmt.Sprintf(format, args...)))
	}
	if msg := checkServerURL(c.ServerURL); msg != "" {
		bad("server_url", "%s", msg)
	}
	errs = append(errs, c.validateToken(lines, reported, needToken)...)
	for _, p := range []struct{ key, v string }{{"host_id", c.HostID}, {"topic", c.Topic}, {"node", c.Node}} {
		if p.v != printable(p.v) {
			bad(p.key, "must be printable text without control characters, got %s", printable(p.v))
		}
	}
	for _, b := range c.bounds() {
		if b.v <= 0 || b.v > b.max {
			bad(b.key, "must be a positive integer of at most %d (%s), got %d", b.max, b.what, b.v)
		}
	}
	if d := c.Spool.Dir; d != "" && !filepath.IsAbs(d) {
		bad("spool.dir", "must be an absolute path (or \"\" for a memory-only queue), got %s", printable(d))
	}
	if p := c.Status.Socket; p != "" && (!filepath.IsAbs(p) || len(p) > 107) {
		bad("status.socket", "must be an absolute path of at most 107 bytes (or \"\" for none), got %s", printable(p))
	}
	if c.TLS.CAFile != "" {
		if err := checkCAFile(c.TLS.CAFile); err != nil {
			bad("tls.ca_file", "%v", err)
		}
	}
	// A slice, not a map: errors come out in the file's order every time.
	for _, p := range []struct{ key, v string }{
		{"commands.zpool", c.Commands.Zpool}, {"commands.zfs", c.Commands.Zfs},
		{"commands.pvesh", c.Commands.Pvesh}, {"commands.smartctl", c.Commands.Smartctl},
		{"proc.root", c.Proc.Root}, {"pve.etc_dir", c.PVE.EtcDir},
		{"commands.corosync_cfgtool", c.Commands.CorosyncCfgtool},
		{"pve.lib_dir", c.PVE.LibDir}, {"pve.log_dir", c.PVE.LogDir},
		{"pve.apt_lists_dir", c.PVE.AptListsDir}, {"pve.subscription_file", c.PVE.SubscriptionFile},
	} {
		if strings.TrimSpace(p.v) == "" {
			bad(p.key, "must not be empty")
		}
	}
	c.HostFiles.validate(bad)
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

// validateToken checks token and token_file as written (Load then reads
// the file or the credential).
func (c *Config) validateToken(lines keyIndex, reported map[string]bool, needToken bool) []error {
	at := func(key string) string { return lines.prefix(toml.Key{key}) }
	_, inline := lines["token"]
	switch {
	case reported["token"] || reported["token_file"]:
		return nil
	case c.TokenFile != "" && (c.Token != "" || inline):
		return []error{fmt.Errorf("%stoken_file: token is set too (%s); keep one of them", at("token_file"), strings.TrimSuffix(at("token"), ": "))}
	case c.TokenFile != "" && !filepath.IsAbs(c.TokenFile):
		return []error{fmt.Errorf("%stoken_file: must be an absolute path, got %s", at("token_file"), printable(c.TokenFile))}
	case c.TokenFile != "":
		return nil
	case inline && strings.TrimSpace(c.Token) == "":
		return []error{fmt.Errorf("%stoken: missing or empty", at("token"))}
	case inline && strings.ContainsFunc(c.Token, unicode.IsControl):
		return []error{fmt.Errorf("%stoken: holds control characters", at("token"))}
	case needToken && c.Token == "":
		return []error{errors.New("token: missing: set token or token_file")}
	}
	return nil
}

// keyIndex maps each key the TOML source defines (dotted, "intervals.fast_seconds",
// and each table header) to the line that first defines it, so errors can
// point at it ("line 7: "). BurntSushi/toml records key positions but does
// not export them. Built in one pass, so a file with thousands of unknown
// keys is reported in linear time.
type keyIndex map[string]int

func keyLines(data []byte) keyIndex {
	idx := keyIndex{}
	current := ""
	for i, line := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "[") {
			h := strings.Trim(s, "[] \t")
			if j := strings.Index(h, "#"); j >= 0 {
				h = strings.TrimSpace(strings.Trim(h[:j], "] \t"))
			}
			current = h
			idx.add(current, i+1)
			continue
		}
		name, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		if current != "" {
			name = current + "." + name
		}
		idx.add(name, i+1)
	}
	return idx
}

func (idx keyIndex) add(key string, line int) {
	if _, ok := idx[key]; !ok {
		idx[key] = line
	}
}

// prefix is "line N: " for a key the source defines, else for its nearest
// parent that it defines (a key inside an inline table), else "".
func (idx keyIndex) prefix(key toml.Key) string {
	for i := len(key); i > 0; i-- {
		if n, ok := idx[strings.Join(key[:i], ".")]; ok {
			return fmt.Sprintf("line %d: ", n)
		}
	}
	return ""
}

// Upper bounds: far above any sane setting, low enough that a typo or an
// overflow (9999999999 seconds is a negative time.Duration) is refused.
const (
	maxIntervalSeconds = 24 * 60 * 60
	maxTimeoutSeconds  = 60 * 60
	maxQueueSamples    = 1_000_000
	maxQueueBytes      = 4 << 30
	maxOutputBytes     = 1 << 30
	maxSpoolBytes      = 64 << 30
)

type bound struct {
	key    string
	v, max int
	what   string
}

func (c *Config) bounds() []bound {
	return []bound{
		{"intervals.fast_seconds", c.Intervals.FastSeconds, maxIntervalSeconds, "a day"},
		{"intervals.medium_seconds", c.Intervals.MediumSeconds, maxIntervalSeconds, "a day"},
		{"intervals.slow_seconds", c.Intervals.SlowSeconds, maxIntervalSeconds, "a day"},
		{"timeouts.zpool_seconds", c.Timeouts.ZpoolSeconds, maxTimeoutSeconds, "an hour"},
		{"timeouts.zfs_seconds", c.Timeouts.ZfsSeconds, maxTimeoutSeconds, "an hour"},
		{"timeouts.pvesh_seconds", c.Timeouts.PveshSeconds, maxTimeoutSeconds, "an hour"},
		{"timeouts.smartctl_seconds", c.Timeouts.SmartctlSeconds, maxTimeoutSeconds, "an hour"},
		{"timeouts.pmxcfs_seconds", c.Timeouts.PmxcfsSeconds, maxTimeoutSeconds, "an hour"},
		{"timeouts.corosync_seconds", c.Timeouts.CorosyncSeconds, maxTimeoutSeconds, "an hour"},
		{"commands.max_output_bytes", c.Commands.MaxOutputBytes, maxOutputBytes, "1 GiB"},
		{"reporter.heartbeat_seconds", c.Reporter.HeartbeatSeconds, maxTimeoutSeconds, "an hour"},
		{"reporter.reply_timeout_seconds", c.Reporter.ReplyTimeoutSeconds, maxTimeoutSeconds, "an hour"},
		{"reporter.queue_max_samples", c.Reporter.QueueMaxSamples, maxQueueSamples, "a million"},
		{"reporter.queue_max_bytes", c.Reporter.QueueMaxBytes, maxQueueBytes, "4 GiB"},
		{"reporter.reconnect_max_seconds", c.Reporter.ReconnectMaxSeconds, maxTimeoutSeconds, "an hour"},
		{"spool.max_bytes", c.Spool.MaxBytes, maxSpoolBytes, "64 GiB"},
	}
}

// checkServerURL says what is wrong with raw, or "". The message never
// quotes the URL: it may hold a password or a token.
func checkServerURL(raw string) string {
	if strings.TrimSpace(raw) == "" {
		return "missing or empty (e.g. wss://monitor.example.com/socket/websocket)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return fmt.Sprintf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Sprintf("scheme must be ws:// or wss://, got %s", printable(u.Scheme))
	case u.Opaque != "" || u.Hostname() == "":
		return "has no host"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a #fragment"
	case strings.ContainsFunc(raw, unicode.IsControl):
		return "contains control characters"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port must be 1-65535, got %s", printable(p))
		}
	}
	return ""
}

// checkCAFile loads the CA bundle as the reporter will, so a missing or
// garbled file fails check-config rather than every connection attempt.
func checkCAFile(path string) error {
	b, err := readRegular(path, maxCABytes, nil)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// maxCABytes bounds a CA bundle: the whole system bundle is about 200 KiB.
const maxCABytes = 16 << 20

// printable quotes s for an error message with control characters escaped,
// so a config value cannot forge log lines or terminal escapes.
func printable(s string) string {
	q := strconv.QuoteToGraphic(s)
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}

var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)

// scrubSecrets removes quoted fragments from a TOML syntax error about the
// token or server_url line: the parser quotes what it found there.
func scrubSecrets(data []byte, line int, msg string) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return msg
	}
	name, _, _ := strings.Cut(strings.TrimSpace(lines[line-1]), "=")
	switch strings.Trim(strings.TrimSpace(name), `"'`) {
	case "token", "server_url":
		return quoted.ReplaceAllString(msg, `"<redacted>"`)
	}
	return msg
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

// RedactedURL returns the server URL with any token query value masked, for logs.
func (c *Config) RedactedURL() string { return RedactURL(c.ServerURL) }

// RedactURL masks userinfo and the values of token-like query parameters.
// It works on the raw text, so a malformed pair ("token=%zz", which
// url.Query drops) is masked too; a URL that does not parse at all is not
// echoed.
func RedactURL(raw string) string {
	base, query, hasQuery := strings.Cut(raw, "?")
	if frag := strings.Index(query, "#"); frag >= 0 {
		query = query[:frag]
	}
	if u, err := url.Parse(base); err != nil {
		return "<unparseable url>"
	} else if u.User != nil {
		u.User = url.User("REDACTED")
		base = u.String()
	}
	if !hasQuery {
		return base
	}
	pairs := strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if strings.Contains(strings.ToLower(k), "token") {
			pairs[i] = k + "=REDACTED"
		}
	}
	return base + "?" + strings.Join(pairs, "&")
}

// StatusSocketOf reads only [status] socket from the config file at path,
// ignoring every other key and error: `proxmox-agent status` must find a
// running agent even when the file has since been broken (a failed reload
// is exactly when status has something to say). It returns the default
// when the file does not set it, and an error when the file cannot be read
// or is not TOML at all.
func StatusSocketOf(path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return DefaultStatusSocket, err
	}
	var only struct {
		Status struct {
			Socket *string `toml:"socket"`
		} `toml:"status"`
	}
	if _, err := toml.Decode(string(data), &only); err != nil {
		return DefaultStatusSocket, fmt.Errorf("%s: %w", path, err)
	}
	if only.Status.Socket == nil {
		return DefaultStatusSocket, nil
	}
	return *only.Status.Socket, nil
}
