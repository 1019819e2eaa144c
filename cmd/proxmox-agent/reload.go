package main

import (
	"log/slog"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/collect"
	"github.com/proxmox-agent/proxmox-agent/internal/logging"
	"github.com/proxmox-agent/proxmox-agent/supervisor"
)

// reload re-reads the config on SIGHUP. A config that does not load
// changes nothing: one error line names the file, key and line, and status
// shows it. One that loads is applied from each cadence's next round; the
// settings that need a restart are named. The command-line flags keep
// their precedence over the file.
func reload(f flags, tree *supervisor.Tree, level *slog.LevelVar, log *slog.Logger) {
	path := tree.Config().Path
	cfg, err := config.Load(path, config.ProcessEnv(), collect.ConfigOption())
	if err != nil {
		// Recorded before it is logged: whoever reads the log line and asks
		// status finds the error there.
		tree.ReloadFailed(err)
		log.Error("config reload failed; running on with the config loaded before", "file", path,
			"err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	cfg.Version = tree.Config().Version
	if f.dumpDir != "" {
		cfg.Debug.DumpDir = f.dumpDir
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	restart, err := tree.Reload(cfg, 10*time.Second)
	if err != nil {
		tree.ReloadFailed(err)
		log.Error("config reload failed", "file", path, "err", err)
		return
	}
	if f.logLevel == "" {
		if l, err := logging.ParseLevel(cfg.Log.Level); err == nil {
			level.Set(l)
		}
	}
	log.Info("config reloaded", "file", path, "sources_off", strings.Join(collect.Off(cfg), ","))
	if len(restart) > 0 {
		log.Warn("changed settings take effect only after a restart", "keys", strings.Join(restart, ","))
	}
}
