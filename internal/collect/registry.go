package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
)

// Spec declares one source: everything the agent knows about it is in its
// row of Registry. [sources] validation, check-config, once --source, the
// self-report and the docs' source list all derive from the table, so adding
// a source is one row, one file and its parser.
type Spec struct {
	// Name is the payload key and the [sources] switch.
	Name string
	// Cadence is fast, medium or slow.
	Cadence string
	// Default is whether the source runs when [sources] does not name it.
	Default bool
	// Timeout bounds one run of the source, from the config's timeouts.
	Timeout func(c *config.Config) time.Duration
	// New builds the source's collect function. It is called once per
	// collector start (and again after a config reload), so the function it
	// returns may keep state between rounds; a round never runs it twice at
	// once.
	New func(d *Deps) func(ctx context.Context) (any, error)
	// Doc is one line for check-config, --help and the docs.
	Doc string
}

// Deps is what a source is built from.
type Deps struct {
	Config *config.Config
	// Run runs commands (timeout, single-flight, dump).
	Run Runner
	// FS reads files under the proc root.
	FS FS
	// Files is the hang-proof, single-flight reader for /etc/pve.
	Files *SlowFS
	Log   *slog.Logger
	// Env is the process's wiring; nil in tests.
	Env *Env
	// Now is the clock for rates and ages: time.Now in production.
	Now func() time.Time
	// Loc is the zone of the local times commands and logs print
	// (zpool status, vzdump logs): time.Local in production. Tests pass
	// one rather than change time.Local, which a source left running by an
	// earlier test may be reading.
	Loc *time.Location
	// Off lists the sources switched off, for the self-report.
	Off []string
	// Timex reads the kernel clock's discipline (nil: adjtimex(2)).
	Timex Adjtimexer
	// PageSize is the memory page size (0: the system's).
	PageSize int
}

// ErrAbsent marks a source that does not apply to this host (a standalone
// node has no HA, a kernel without PSI has no pressure). Wrapped in a
// source's error, the round leaves the source out of the payload: neither
// data nor an error entry.
var ErrAbsent = errors.New("not present on this host")

// fixed returns a Timeout that ignores the config.
func fixed(d time.Duration) func(*config.Config) time.Duration {
	return func(*config.Config) time.Duration { return d }
}

// Registry is every source the agent has, in cadence order (fast, medium,
// slow) and, within a cadence, in payload order.
var Registry = []Spec{
	{Name: "host", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newHost,
		Doc: "load, memory, CPU busy and uptime from /proc"},
	{Name: "zfs_pools", Cadence: "fast", Default: true, Timeout: zpoolTimeout, New: newZFSPools,
		Doc: "ZFS pools: health, capacity, vdev errors, scrub (zpool)"},
	{Name: "arc", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newARC,
		Doc: "ZFS ARC size and hit ratio (/proc/spl/kstat/zfs/arcstats)"},
	{Name: "agent", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newAgent,
		Doc: "the agent's self-report: version, queue, restarts, stuck commands"},
	{Name: "pressure", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newPressure,
		Doc: "pressure stall information for cpu, memory and io (/proc/pressure)"},
	{Name: "net", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newNet,
		Doc: "network interfaces: state, speed, bond slaves, traffic rates (/proc/net/dev, /sys/class/net)"},
	{Name: "diskio", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newDiskIO,
		Doc: "whole disks: IOPS, throughput, await, utilisation (/proc/diskstats)"},
	{Name: "sensors", Cadence: "fast", Default: true, Timeout: fixed(5 * time.Second), New: newSensors,
		Doc: "temperatures and fans (/sys/class/hwmon)"},
	{Name: "guests", Cadence: "medium", Default: true, Timeout: guestsTimeout, New: newGuests,
		Doc: "VMs and containers of this node (/etc/pve, else pvesh)"},
	{Name: "zfs_datasets", Cadence: "medium", Default: true, Timeout: zfsTimeout, New: newDatasets,
		Doc: "ZFS datasets and zvols: used, available, quota (zfs list)"},
	{Name: "filesystems", Cadence: "medium", Default: true, Timeout: fixed(statfsTimeout + time.Second), New: newFilesystems,
		Doc: "local filesystems: size, used, free inodes (/proc/self/mountinfo, statfs)"},
	{Name: "storage", Cadence: "slow", Default: true, Timeout: pveshTimeout, New: newStorage,
		Doc: "Proxmox storages of this node (pvesh)"},
	{Name: "disks", Cadence: "slow", Default: true, Timeout: smartTimeout, New: newDisks,
		Doc: "SMART health of every disk (smartctl)"},
	{Name: "node", Cadence: "slow", Default: true, Timeout: pveshTimeout, New: newNode,
		Doc: "Proxmox and ZFS versions, kernel (pvesh, zfs)"},
	{Name: "cluster", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newCluster,
		Doc: "cluster membership and quorum (/etc/pve/.members)"},
	{Name: "backups", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newBackups,
		Doc: "vzdump jobs, each guest's last backup, guests no job covers (jobs.cfg, task index and logs)"},
	{Name: "replication", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newReplication,
		Doc: "storage replication jobs of this node's guests and their state (replication.cfg)"},
	{Name: "ha", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newHA,
		Doc: "HA manager, node and service states, this node's LRM (/etc/pve/ha)"},
	{Name: "certificates", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newCertificates,
		Doc: "expiry of the cluster CA, the node and the pveproxy certificates"},
	{Name: "subscription", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newSubscription,
		Doc: "subscription status, level and due date (/etc/subscription; never the key)"},
	{Name: "updates", Cadence: "slow", Default: true, Timeout: pmxcfsTimeout, New: newUpdates,
		Doc: "pending package updates and the age of the apt lists (pkgupdates)"},
	{Name: "corosync", Cadence: "slow", Default: true, Timeout: corosyncTimeout, New: newCorosync,
		Doc: "corosync link state per node, on a cluster node (corosync-cfgtool -s)"},
}

// Lookup returns the row called name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Registry {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Names lists every source in cadence order: the keys of [sources] and of
// the payload.
func Names() []string {
	names := make([]string, len(Registry))
	for i, s := range Registry {
		names[i] = s.Name
	}
	return names
}

// CheckSourceName returns an error listing the valid names when name is
// not a source (once --source).
func CheckSourceName(name string) error {
	if _, ok := Lookup(name); !ok {
		return fmt.Errorf("unknown source %s; sources are %s", strconv.Quote(name), strings.Join(Names(), ", "))
	}
	return nil
}

// Enabled reports whether the source called name runs under cfg: its
// [sources] switch when the file sets one, else its default. An unknown
// name is off.
func Enabled(cfg *config.Config, name string) bool {
	s, ok := Lookup(name)
	if !ok {
		return false
	}
	if on, set := cfg.Sources[name]; set {
		return on
	}
	return s.Default
}

// Off lists the sources that do not run under cfg, in cadence order.
func Off(cfg *config.Config) []string {
	var off []string
	for _, s := range Registry {
		if !Enabled(cfg, s.Name) {
			off = append(off, s.Name)
		}
	}
	return off
}

// Only returns switches that turn every source off but name (once --source).
func Only(name string) config.Sources {
	sw := config.Sources{}
	for _, s := range Registry {
		sw[s.Name] = s.Name == name
	}
	return sw
}

// ConfigOption makes config.Load and config.Parse refuse a [sources] key
// that names no source of the Registry.
func ConfigOption() config.Option { return config.KnownSources(Names()) }

// Switches renders the sources as "host=on … cluster=off" in cadence order.
func Switches(cfg *config.Config) string {
	parts := make([]string, len(Registry))
	for i, s := range Registry {
		state := "on"
		if !Enabled(cfg, s.Name) {
			state = "off"
		}
		parts[i] = s.Name + "=" + state
	}
	return strings.Join(parts, " ")
}
