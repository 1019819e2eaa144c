// Command proxmox-agent is the Proxmox VE host agent: it collects host, ZFS
// and guest state on three cadences and pushes it to the monitor server.
//
//	proxmox-agent [run]          start the supervised daemon (default)
//	proxmox-agent once           collect every cadence once, print JSON, exit
//	proxmox-agent once --source NAME   run one source, print its cadence's JSON
//	proxmox-agent check-config   validate the config, exit 0 or 1
//	proxmox-agent status         ask the running agent how it stands
//	proxmox-agent replay FILE…   push the samples of dump files
//	proxmox-agent version        print the version (also --version, -v)
//	proxmox-agent help [CMD]     print usage (also -h, --help, CMD --help)
//
// The command line is parsed in cli.go; each command has its own flags.
package main

import (
	"encoding/json"
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
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/logging"
	"github.com/proxmox-agent/proxmox-agent/internal/sdnotify"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
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
	cfg, log, _, err := loadLeveled(f, stderr)
	return cfg, log, err
}

// loadLeveled is loadConfig, also returning the logger's level for reloads.
func loadLeveled(f flags, stderr io.Writer) (*config.Config, *slog.Logger, *slog.LevelVar, error) {
	path := config.ResolvePath(f.config, os.Getenv)
	cfg, err := config.Load(path, config.ProcessEnv(), collect.ConfigOption())
	format, level := f.logFormat, f.logLevel
	if cfg != nil {
		if format == "" {
			format = cfg.Log.Format
		}
		if level == "" {
			level = cfg.Log.Level
		}
	}
	log, lv, lerr := logging.NewLeveled(stderr, format, level)
	if lerr != nil {
		log, lv, _ = logging.NewLeveled(stderr, "text", "info")
		log.Warn("bad log flag; using text/info", "err", lerr)
	}
	if cfg != nil {
		cfg.Version = agentVersion()
		for _, w := range cfg.Warnings {
			log.Warn(w)
		}
		if f.dumpDir != "" {
			cfg.Debug.DumpDir = f.dumpDir
		}
	}
	return cfg, log, lv, err
}

func checkConfig(f flags, stdout, stderr io.Writer) int {
	path := config.ResolvePath(f.config, os.Getenv)
	cfg, err := config.Load(path, config.ProcessEnv(), collect.ConfigOption())
	if err != nil {
		fmt.Fprintf(stderr, "config invalid: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "config ok: %s (host_id=%s topic=%s server=%s)\n", path, cfg.HostID, cfg.Topic, cfg.RedactedURL())
	fmt.Fprintf(stdout, "token: %s\n", tokenLine(cfg.TokenSource))
	fmt.Fprintf(stdout, "sources: %s\n", collect.Switches(cfg))
	fmt.Fprintf(stdout, "spool: %s\nstatus socket: %s\n", spoolLine(cfg.Spool), orOff(cfg.Status.Socket))
	return 0
}

// tokenLine says where the token came from; never the token.
func tokenLine(source string) string {
	if source == config.TokenInline {
		return "inline in the config file"
	}
	return "from " + source
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

func daemon(f flags, stderr io.Writer) int {
	// First, before the config is read: a SIGTERM from here on is a clean
	// stop (exit 0), not death by signal. One that arrives while the Go
	// runtime is still starting still kills the process, which systemd
	// counts as a clean stop too.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	cfg, log, level, err := loadLeveled(f, stderr)
	notify := sdnotify.FromEnv(os.Getenv)
	if err != nil {
		if cfg, log, level = idle(f, sigs, notify, log, err, stderr); cfg == nil {
			return 0
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
	stopStatus := serveStatus(cfg.Status.Socket, tree.StatusDoc, log)
	defer stopStatus()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(f, tree, level, log)
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

// idle waits without a usable config, as the Elixir agent did: a package
// installed with no config yet does not crash-loop, and check-config exits
// non-zero. systemd still gets READY=1 and watchdog pings: idle is a state.
// A SIGHUP (systemctl reload, after fixing the file) loads the config
// again; idle returns it once it loads, or nil when a stop signal came.
func idle(f flags, sigs <-chan os.Signal, notify sdnotify.Notifier, log *slog.Logger, err error, stderr io.Writer) (*config.Config, *slog.Logger, *slog.LevelVar) {
	log.Error("no config loaded; running idle until stopped or reloaded", "err", err)
	_ = notify.Send(sdnotify.Ready + "\nSTATUS=idle: no usable config (see proxmox-agent check-config)")
	stop := watchdog(func(time.Duration) error { return nil }, notify, log)
	defer stop()
	for s := range sigs {
		if s != syscall.SIGHUP {
			return nil, nil, nil
		}
		cfg, newLog, level, err := loadLeveled(f, stderr)
		if err != nil {
			log.Error("config reload failed; still idle", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		_ = notify.Send("STATUS=starting")
		return cfg, newLog, level
	}
	return nil, nil, nil
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
	switch off := collect.Off(cfg); {
	case f.source != "" && !collect.Enabled(cfg, f.source):
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
