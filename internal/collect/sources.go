// Package sources wires the data sources into each cadence: which source
// runs on fast, medium and slow, with which binary, path and timeout. Each
// source lives in its own file and only runs commands or reads files; the
// parsing is in zfs, pve, smart and procfs.
package collect

import (
	"context"
	"log/slog"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// Runner runs one command; *runner.Runner is the real one, tests use fakes.
type Runner interface {
	Run(ctx context.Context, timeout time.Duration, name string, args ...string) runner.Result
}

// slack is added to a source's timeout on top of its commands' timeouts:
// the runner may wait up to its grace period to reap a killed child.
const slack = runner.DefaultGrace + time.Second

// For returns the sources of cadence kind, built from env.
func For(kind string, env *Env) []Source {
	return Build(kind, env.Config, env.Runner, FS{Root: env.Config.Proc.Root, Dump: env.Dump}, env)
}

// Kinds maps each source to its cadence; Build must agree (a test checks).
var Kinds = map[string]string{
	"host": "fast", "zfs_pools": "fast", "arc": "fast", "agent": "fast",
	"guests": "medium", "zfs_datasets": "medium",
	"storage": "slow", "disks": "slow", "node": "slow", "cluster": "slow",
}

// Build is For with the runner and proc root passed in, so tests point them
// at fakes and testdata. Sources switched off in cfg.Sources are left out:
// they run nothing and are absent from the payload.
func Build(kind string, cfg *config.Config, run Runner, fs FS, env *Env) []Source {
	var on []Source
	for _, s := range build(kind, cfg, run, fs, env) {
		if cfg.Sources.Enabled(s.Name) {
			on = append(on, s)
		}
	}
	return on
}

func build(kind string, cfg *config.Config, run Runner, fs FS, env *Env) []Source {
	t := cfg.Timeouts
	zpoolT, zfsT := config.Seconds(t.ZpoolSeconds), config.Seconds(t.ZfsSeconds)
	pveshT, smartT := config.Seconds(t.PveshSeconds), config.Seconds(t.SmartctlSeconds)
	pmxcfsT := config.Seconds(t.PmxcfsSeconds)
	log := slog.New(slog.DiscardHandler)
	if env != nil && env.Log != nil {
		log = env.Log
	}
	files := env.Files()
	if env == nil {
		files.Dump = fs.Dump
	}
	switch kind {
	case "fast":
		pools := &ZFSPools{Zpool: zfsTool{Run: run, Path: cfg.Commands.Zpool, Timeout: zpoolT, Log: log}, FS: fs, Loc: time.Local}
		return []Source{
			{Name: "host", Timeout: 5 * time.Second, Collect: (&Host{FS: fs}).Collect},
			{Name: "zfs_pools", Timeout: 2*zpoolT + slack, Collect: pools.Collect},
			{Name: "arc", Timeout: 5 * time.Second, Collect: (&ARC{FS: fs}).Collect},
			{Name: "agent", Timeout: 5 * time.Second, Collect: (&Agent{Env: env, Version: cfg.Version}).Collect},
		}
	case "medium":
		guests := &Guests{Run: run, Pvesh: cfg.Commands.Pvesh, Node: cfg.Node, Timeout: pveshT,
			EtcDir: cfg.PVE.EtcDir, Files: files, ReadTimeout: pmxcfsT, Log: log}
		if env != nil && env.Stats != nil {
			guests.Used = func(path string) { env.Stats.GuestsSource.Store(&path) }
		}
		return []Source{
			{Name: "guests", Timeout: pmxcfsT + pveshT + slack, Collect: guests.Collect},
			{Name: "zfs_datasets", Timeout: 2*zfsT + slack, Collect: (&Datasets{Zfs: zfsTool{Run: run, Path: cfg.Commands.Zfs, Timeout: zfsT, Log: log}}).Collect},
		}
	case "slow":
		return []Source{
			{Name: "storage", Timeout: pveshT + slack, Collect: (&Storage{Run: run, Pvesh: cfg.Commands.Pvesh, Node: cfg.Node, Timeout: pveshT}).Collect},
			{Name: "disks", Timeout: 2*smartT + slack, Collect: (&Disks{Run: run, Smartctl: cfg.Commands.Smartctl, Timeout: smartT}).Collect},
			{Name: "node", Timeout: pveshT + slack, Collect: (&Node{Run: run, Pvesh: cfg.Commands.Pvesh, Zfs: cfg.Commands.Zfs,
				Node: cfg.Node, FS: fs, PveshTimeout: pveshT, ZfsTimeout: zfsT}).Collect},
			{Name: "cluster", Timeout: pmxcfsT + time.Second, Collect: (&Cluster{EtcDir: cfg.PVE.EtcDir, Files: files, Timeout: pmxcfsT}).Collect},
		}
	}
	return nil
}

// output returns stdout of a successful command, or its error.
func output(res runner.Result) ([]byte, error) {
	if err := res.Err(); err != nil {
		return nil, err
	}
	return res.Stdout, nil
}
