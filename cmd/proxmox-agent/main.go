// Command proxmox-agent is the Proxmox VE host agent: it collects host, ZFS
// and guest state on three cadences and pushes it to the monitor server.
//
//	proxmox-agent [run]          start the supervised daemon (default)
//	proxmox-agent once           collect every cadence once, print JSON, exit
//	proxmox-agent once --source NAME   run one source, print its cadence's JSON
//	proxmox-agent check-config   validate the config, exit 0 or 1
//	proxmox-agent version        print the version
//	proxmox-agent help           print usage (also -h, --help)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/logging"
	"github.com/proxmox-agent/proxmox-agent/internal/sdnotify"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	config    string
	dumpDir   string
	logFormat string
	logLevel  string
	source    string
	json      bool
	socket    string
	since     string
	until     string
	dryRun    bool
	spool     string
}

const usage = `usage: proxmox-agent [run|once|check-config|status|replay|version|help] [flags]

  run           start the agent (default)
  once          collect every cadence once, print the payloads as JSON, exit
                (--source NAME: run only that source)
  check-config  validate the config file; exit 0 if good, 1 with the reasons
  status        ask the running agent where delivery and collection stand
                (--json for scripts; exit 1 when no agent is running)
  replay FILE…  push every sample of a dump's samples.log to the server
                (--since/--until RFC 3339, --dry-run to list them;
                --spool FILE: the records still readable in a damaged
                spool file moved aside, spool.db.corrupt-<time>)
  version       print the version
  help          print this help

flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var f flags
	fs := flag.NewFlagSet("proxmox-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.StringVar(&f.config, "config", "", "config file (default $"+config.EnvPath+", else "+config.DefaultPath+")")
	fs.StringVar(&f.dumpDir, "dump-dir", "", "write the diagnostic dump here (overrides [debug] dump_dir)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json (overrides [log] format)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error (overrides [log] level)")
	fs.StringVar(&f.source, "source", "", "once only: run this one source (one of "+strings.Join(config.SourceNames, ", ")+")")
	fs.BoolVar(&f.json, "json", false, "status only: print the JSON document")
	fs.StringVar(&f.socket, "socket", "", "status only: the agent's socket (default: [status] socket of the config)")
	fs.StringVar(&f.since, "since", "", "replay only: samples collected at or after this RFC 3339 time")
	fs.StringVar(&f.until, "until", "", "replay only: samples collected before this RFC 3339 time")
	fs.BoolVar(&f.dryRun, "dry-run", false, "replay only: list what would be pushed, push nothing")
	fs.StringVar(&f.spool, "spool", "", "replay only: a damaged spool file moved aside (spool.db.corrupt-<time>): push the records still readable in it")
	if cmd == "help" || wantsHelp(args) {
		// Asked-for help is the output, not an error: stdout, exit 0.
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(positional) > 0 && cmd != "replay" {
		fmt.Fprintf(stderr, "unexpected argument %q\n", positional[0])
		fs.Usage()
		return 2
	}
	if msg := sourceFlagError(cmd, f.source); msg != "" {
		fmt.Fprintln(stderr, msg)
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "proxmox-agent", agentVersion())
		return 0
	case "check-config":
		return checkConfig(f, stdout, stderr)
	case "once":
		return once(f, stdout, stderr)
	case "status":
		return statusCmd(f, stdout, stderr)
	case "replay":
		return replayCmd(f, positional, stdout, stderr)
	case "run":
		return daemon(f, stderr)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("replay a.log --since T b.log"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// sourceFlagError says what is wrong with --source, or "". A usage error,
// checked before the config is read: the names are fixed.
func sourceFlagError(cmd, source string) string {
	switch {
	case source == "":
		return ""
	case cmd != "once":
		return "--source works only with once"
	}
	if err := config.CheckSourceName(source); err != nil {
		return err.Error()
	}
	return ""
}

// wantsHelp reports -h, -help or --help among the flags (before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func agentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// loadConfig resolves and loads the config, and builds the logger from it
// and the flags. The logger is usable even when the config is not.
func loadConfig(f flags, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	path := config.ResolvePath(f.config, os.Getenv)
	cfg, err := config.Load(path, os.Hostname)
	format, level := f.logFormat, f.logLevel
	if cfg != nil {
		if format == "" {
			format = cfg.Log.Format
		}
		if level == "" {
			level = cfg.Log.Level
		}
	}
	log, lerr := logging.New(stderr, format, level)
	if lerr != nil {
		log, _ = logging.New(stderr, "text", "info")
		log.Warn("bad log flag; using text/info", "err", lerr)
	}
	if cfg != nil {
		cfg.Version = agentVersion()
		if w := config.PermissionWarning(path); w != "" {
			log.Warn(w)
		}
		if f.dumpDir != "" {
			cfg.Debug.DumpDir = f.dumpDir
		}
	}
	return cfg, log, err
}

func checkConfig(f flags, stdout, stderr io.Writer) int {
	path := config.ResolvePath(f.config, os.Getenv)
	cfg, err := config.Load(path, os.Hostname)
	if err != nil {
		fmt.Fprintf(stderr, "config invalid: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
	if w := config.PermissionWarning(path); w != "" {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "config ok: %s (host_id=%s topic=%s server=%s)\n", path, cfg.HostID, cfg.Topic, cfg.RedactedURL())
	fmt.Fprintf(stdout, "sources: %s\n", switches(cfg.Sources))
	fmt.Fprintf(stdout, "spool: %s\nstatus socket: %s\n", spoolLine(cfg.Spool), orOff(cfg.Status.Socket))
	return 0
}

func spoolLine(s config.Spool) string {
	if s.Dir == "" {
		return "off (memory-only queue)"
	}
	return fmt.Sprintf("%s (at most %d MiB)", s.Dir, s.MaxBytes>>20)
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// switches renders [sources] as "host=on … cluster=off" in cadence order.
func switches(s config.Sources) string {
	parts := make([]string, len(config.SourceNames))
	for i, n := range config.SourceNames {
		state := "on"
		if !s.Enabled(n) {
			state = "off"
		}
		parts[i] = n + "=" + state
	}
	return strings.Join(parts, " ")
}

func daemon(f flags, stderr io.Writer) int {
	// First, before the config is read: a SIGTERM from here on is a clean
	// stop (exit 0), not death by signal. One that arrives while the Go
	// runtime is still starting still kills the process, which systemd
	// counts as a clean stop too.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	cfg, log, err := loadConfig(f, stderr)
	notify := sdnotify.FromEnv(os.Getenv)
	if err != nil {
		// As the Elixir agent did: stay up idle, so a package install with
		// no config yet does not crash-loop; check-config exits non-zero.
		// systemd still gets READY=1 and watchdog pings: idle is a state.
		log.Error("no config loaded; running idle until stopped", "err", err)
		_ = notify.Send(sdnotify.Ready + "\nSTATUS=idle: no usable config (see proxmox-agent check-config)")
		stop := watchdog(func(time.Duration) error { return nil }, notify, log)
		defer stop()
		for s := range sigs {
			if s != syscall.SIGHUP {
				return 0
			}
		}
	}
	log.Info("starting", "version", cfg.Version, "host_id", cfg.HostID, "server", cfg.RedactedURL(), "config", cfg.Path)
	tree, err := supervisor.Start(supervisor.Options{
		Config: cfg, Log: log,
		SystemOptions: []actor.ConfigOption{logging.ActorSystemOption(log)},
	})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := notify.Send(sdnotify.Ready); err != nil {
		log.Warn("cannot tell systemd we are ready", "err", err)
	}
	stopWatchdog := watchdog(tree.Alive, notify, log)
	defer stopWatchdog()
	stopStatus := serveStatus(cfg.Status.Socket, func() status.Doc { return tree.StatusDoc(cfg) }, log)
	defer stopStatus()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				tree.Reopen()
				continue
			}
			log.Info("stopping", "signal", s.String())
			_ = notify.Send(sdnotify.Stopping)
			stopped := make(chan struct{})
			go func() { tree.Stop(); close(stopped) }()
			select {
			case <-stopped:
				log.Info("stopped")
				return 0
			case <-time.After(10 * time.Second):
				log.Error("shutdown took longer than 10s; exiting anyway")
				return 1
			case s := <-sigs:
				log.Error("second signal during shutdown; exiting now", "signal", s.String())
				return 1
			}
		case <-tree.Done():
			log.Error("process tree stopped", "err", tree.Err())
			return 1
		}
	}
}

// watchdog feeds systemd's watchdog at half its interval, but only while
// alive (the tree's ping of every actor) succeeds: a wedged tree stops the
// pings and systemd restarts the service. It returns a function that stops
// feeding.
func watchdog(alive func(timeout time.Duration) error, notify sdnotify.Notifier, log *slog.Logger) func() {
	interval, ok := sdnotify.WatchdogInterval(os.Getenv)
	if !ok || !notify.Enabled() {
		return func() {}
	}
	log.Info("systemd watchdog enabled", "interval", interval)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		var sick statelog.Tracker
		sick.Every = 10 * time.Minute
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := alive(interval / 4); err != nil {
					sick.Fail(time.Now(), func(uint64) {
						log.Error("not feeding the systemd watchdog: process tree unresponsive", "err", err)
					})
					continue
				}
				sick.OK(func(uint64) { log.Info("process tree responsive again; feeding the watchdog") })
				if err := notify.Send(sdnotify.Watchdog); err != nil {
					log.Warn("watchdog ping failed", "err", err)
				}
			}
		}
	}()
	return func() { close(done) }
}

// once collects each cadence once, without connecting anywhere, and prints
// each payload. The dump is written when enabled, as in the daemon.
func once(f flags, stdout, stderr io.Writer) int {
	cfg, log, err := loadConfig(f, stderr)
	if err != nil {
		log.Error("cannot load config", "err", err)
		return 1
	}
	// stdout is the JSON; the switches go to the log, so a source missing
	// from the output is explained.
	switch off := cfg.Sources.Off(); {
	case f.source != "" && !cfg.Sources.Enabled(f.source):
		log.Warn("source is off in [sources]; running it because --source asked for it", "source", f.source)
	case f.source == "" && len(off) > 0:
		log.Info("sources switched off in [sources]", "off", strings.Join(off, ","))
	}
	out, cerr := supervisor.Once(supervisor.Options{
		Config: cfg, Log: log, Source: f.source,
		SystemOptions: []actor.ConfigOption{logging.ActorSystemOption(log)},
	})
	if cerr != nil {
		log.Error("cannot encode sample", "err", cerr)
	}
	// One JSON document keyed by cadence (fast, medium, slow sort in
	// cadence order), so `once | jq .fast.data.host` works.
	doc, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		log.Error("encode output", "err", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", doc); err != nil {
		log.Error("write stdout", "err", err)
		return 1
	}
	if cerr != nil {
		return 1
	}
	return 0
}
