package collect

import (
	"context"
	"slices"
	"time"
)

// statfsTimeout bounds the statfs of each mount in a filesystems round: a
// healthy one answers in microseconds, a hung one never.
const statfsTimeout = 5 * time.Second

// Constructors of the Registry's rows for the host files (issue 20). Each
// source gets the proc root of d.FS and the sys root of the config. zfs
// mounts are reported by filesystems only when zfs_datasets is off (it
// reports every dataset already).

func newHost(d *Deps) func(context.Context) (any, error) {
	clock := d.Timex
	if clock == nil {
		clock = SystemClock{}
	}
	return (&Host{FS: d.FS, Sys: d.Config.Sys.Root, Clock: clock, PageSize: d.PageSize}).Collect
}

func newPressure(d *Deps) func(context.Context) (any, error) {
	return (&Pressure{Proc: d.FS.Root, Dump: d.FS.Dump}).Collect
}

func newNet(d *Deps) func(context.Context) (any, error) {
	return (&Net{Proc: d.FS.Root, Sys: d.Config.Sys.Root, Exclude: d.Config.Net.Exclude, Dump: d.FS.Dump, Now: d.Now}).Collect
}

func newDiskIO(d *Deps) func(context.Context) (any, error) {
	return (&DiskIO{Proc: d.FS.Root, Sys: d.Config.Sys.Root, Exclude: d.Config.DiskIO.Exclude, Dump: d.FS.Dump, Now: d.Now}).Collect
}

func newSensors(d *Deps) func(context.Context) (any, error) {
	return (&Sensors{Sys: d.Config.Sys.Root, Dump: d.FS.Dump}).Collect
}

func newFilesystems(d *Deps) func(context.Context) (any, error) {
	return (&Filesystems{Proc: d.FS.Root, Exclude: d.Config.Filesystems.Exclude, Files: d.Files, Timeout: statfsTimeout,
		Dump: d.FS.Dump, IncludeZFS: slices.Contains(d.Off, "zfs_datasets")}).Collect
}
