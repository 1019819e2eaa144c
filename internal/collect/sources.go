// Package collect runs the data sources of each cadence: the Registry
// declares them, each lives in a file of its own and only runs commands or
// reads files; the parsing is in internal/parse.
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

// Build is For with the runner and proc root passed in, so tests point them
// at fakes and testdata. Sources switched off in cfg.Sources are left out:
// they run nothing and are absent from the payload.
func Build(kind string, cfg *config.Config, run Runner, fs FS, env *Env) []Source {
	return buildAt(kind, cfg, run, fs, env, time.Now, time.Local)
}

// buildAt is Build with the sources' clock passed in (tests fix it, so
// ages and days_left in golden payloads do not move).
func buildAt(kind string, cfg *config.Config, run Runner, fs FS, env *Env, now func() time.Time, loc *time.Location) []Source {
	d := &Deps{Config: cfg, Run: run, FS: fs, Env: env, Log: slog.New(slog.DiscardHandler), Now: now, Loc: loc, Off: Off(cfg)}
	if env != nil && env.Log != nil {
		d.Log = env.Log
	}
	if env != nil {
		d.Timex, d.PageSize = env.Timex, env.PageSize
	}
	d.Files = env.Files()
	if env == nil {
		d.Files.Dump = fs.Dump
	}
	var on []Source
	for _, s := range Registry {
		if s.Cadence == kind && Enabled(cfg, s.Name) {
			on = append(on, Source{Name: s.Name, Timeout: s.Timeout(cfg), Collect: s.New(d)})
		}
	}
	return on
}

// Timeouts of the sources that run commands or read /etc/pve: their
// commands' timeouts plus the runner's grace to reap a killed child.
func zpoolTimeout(c *config.Config) time.Duration {
	return 2*config.Seconds(c.Timeouts.ZpoolSeconds) + slack
}
func zfsTimeout(c *config.Config) time.Duration {
	return 2*config.Seconds(c.Timeouts.ZfsSeconds) + slack
}
func pveshTimeout(c *config.Config) time.Duration {
	return config.Seconds(c.Timeouts.PveshSeconds) + slack
}
func smartTimeout(c *config.Config) time.Duration {
	return 2*config.Seconds(c.Timeouts.SmartctlSeconds) + slack
}
func guestsTimeout(c *config.Config) time.Duration {
	return config.Seconds(c.Timeouts.PmxcfsSeconds) + config.Seconds(c.Timeouts.PveshSeconds) + slack
}

// Constructors of the Registry's rows.

func newARC(d *Deps) func(context.Context) (any, error) { return (&ARC{FS: d.FS}).Collect }

func newAgent(d *Deps) func(context.Context) (any, error) {
	return (&Agent{Env: d.Env, Version: d.Config.Version, Off: d.Off}).Collect
}

func newZFSPools(d *Deps) func(context.Context) (any, error) {
	return (&ZFSPools{Zpool: d.zpool(), FS: d.FS, Loc: d.Loc}).Collect
}

func newDatasets(d *Deps) func(context.Context) (any, error) {
	return (&Datasets{Zfs: d.zfs()}).Collect
}

func newGuests(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	g := &Guests{Run: d.Run, Pvesh: c.Commands.Pvesh, Node: c.Node, Timeout: config.Seconds(c.Timeouts.PveshSeconds),
		EtcDir: c.PVE.EtcDir, Files: d.Files, ReadTimeout: config.Seconds(c.Timeouts.PmxcfsSeconds), Log: d.Log, Now: d.Now,
		CgroupRoot: c.Sys.CgroupRoot()}
	if d.Env != nil && d.Env.Stats != nil {
		stats := d.Env.Stats
		g.Used = func(path string) { stats.GuestsSource.Store(&path) }
	}
	return g.Collect
}

func newStorage(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Storage{Run: d.Run, Pvesh: c.Commands.Pvesh, Node: c.Node, Timeout: config.Seconds(c.Timeouts.PveshSeconds)}).Collect
}

func newDisks(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Disks{Run: d.Run, Smartctl: c.Commands.Smartctl, Timeout: config.Seconds(c.Timeouts.SmartctlSeconds)}).Collect
}

func newNode(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Node{Run: d.Run, Pvesh: c.Commands.Pvesh, Zfs: c.Commands.Zfs, Node: c.Node, FS: d.FS,
		PveshTimeout: config.Seconds(c.Timeouts.PveshSeconds), ZfsTimeout: config.Seconds(c.Timeouts.ZfsSeconds)}).Collect
}

func newCluster(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Cluster{EtcDir: c.PVE.EtcDir, Files: d.Files, Timeout: config.Seconds(c.Timeouts.PmxcfsSeconds)}).Collect
}

func (d *Deps) zpool() zfsTool {
	return zfsTool{Run: d.Run, Path: d.Config.Commands.Zpool, Timeout: config.Seconds(d.Config.Timeouts.ZpoolSeconds), Log: d.Log}
}

func (d *Deps) zfs() zfsTool {
	return zfsTool{Run: d.Run, Path: d.Config.Commands.Zfs, Timeout: config.Seconds(d.Config.Timeouts.ZfsSeconds), Log: d.Log}
}

// output returns stdout of a successful command, or its error.
func output(res runner.Result) ([]byte, error) {
	if err := res.Err(); err != nil {
		return nil, err
	}
	return res.Stdout, nil
}
