package collect

import (
	"context"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
)

// Constructors and timeouts of the Proxmox health rows of the Registry.
// Each source reads its files under one pmxcfs_seconds budget for the
// whole round (the reads share a context), plus a second to hand over.

func pmxcfsTimeout(c *config.Config) time.Duration {
	return config.Seconds(c.Timeouts.PmxcfsSeconds) + time.Second
}

func corosyncTimeout(c *config.Config) time.Duration {
	return config.Seconds(c.Timeouts.PmxcfsSeconds) + config.Seconds(c.Timeouts.CorosyncSeconds) + slack
}

func pmxcfsRead(c *config.Config) time.Duration { return config.Seconds(c.Timeouts.PmxcfsSeconds) }

func newBackups(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Backups{EtcDir: c.PVE.EtcDir, LibDir: c.PVE.LibDir, LogDir: c.PVE.LogDir, Node: c.Node,
		Files: d.Files, Timeout: pmxcfsRead(c), Loc: d.Loc}).Collect
}

func newReplication(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Replication{EtcDir: c.PVE.EtcDir, LibDir: c.PVE.LibDir, Node: c.Node, Files: d.Files, Timeout: pmxcfsRead(c)}).Collect
}

func newHA(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&HA{EtcDir: c.PVE.EtcDir, Node: c.Node, Files: d.Files, Timeout: pmxcfsRead(c), Now: d.Now}).Collect
}

func newCertificates(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Certificates{EtcDir: c.PVE.EtcDir, Node: c.Node, Files: d.Files, Timeout: pmxcfsRead(c), Now: d.Now}).Collect
}

func newSubscription(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Subscription{Path: c.PVE.SubscriptionFile, Files: d.Files, Timeout: pmxcfsRead(c)}).Collect
}

func newUpdates(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Updates{LibDir: c.PVE.LibDir, ListsDir: c.PVE.AptListsDir, Files: d.Files, Timeout: pmxcfsRead(c), Now: d.Now}).Collect
}

func newCorosync(d *Deps) func(context.Context) (any, error) {
	c := d.Config
	return (&Corosync{Run: d.Run, Cfgtool: c.Commands.CorosyncCfgtool, Timeout: config.Seconds(c.Timeouts.CorosyncSeconds),
		EtcDir: c.PVE.EtcDir, Files: d.Files, ReadTimeout: pmxcfsRead(c)}).Collect
}
