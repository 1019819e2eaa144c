package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pmxcfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pve"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// Guest sources, as the self-report names the path of the last sample.
const (
	GuestsFromPmxcfs = "pmxcfs"
	GuestsFromPvesh  = "pvesh"
)

// Guests is the guests source: this node's VMs and containers. It reads
// them from the cluster filesystem (a few small file reads) and falls back
// to pvesh (a Perl process, about a second of CPU) when the files cannot be
// read. The files are tried again every round: when pmxcfs is absent that
// costs one failed open, and when it is stuck the single-flight read
// answers "previous read still stuck" at once, so retrying is always cheap
// and the source returns to the files as soon as they work.
type Guests struct {
	Run     Runner
	Pvesh   string
	Node    string
	Timeout time.Duration // pvesh's

	// EtcDir is where pmxcfs is mounted; "" or a nil Files means pvesh only.
	EtcDir      string
	Files       *SlowFS
	ReadTimeout time.Duration // for all of one round's file reads together
	Log         *slog.Logger
	// Used, when set, is told which path produced each sample.
	Used func(path string)
	// CgroupRoot is the cgroup v2 mount (<sys root>/fs/cgroup) that
	// running guests' pressure is read from; "" leaves pressure null.
	CgroupRoot string
	// Now is the clock for snapshot ages (nil: time.Now).
	Now func() time.Time

	mu      sync.Mutex
	filesOK *bool // nil until the files were first tried
}

// errNotPresent marks a host without pmxcfs (no .vmlist): not a failure.
var errNotPresent = errors.New("cluster filesystem not present")

// Collect returns the guests from the files, else from pvesh.
func (g *Guests) Collect(ctx context.Context) (any, error) {
	var fileErr error
	if g.Files != nil && g.EtcDir != "" {
		gs, err := g.fromFiles(ctx)
		g.note(err)
		if err == nil {
			g.used(GuestsFromPmxcfs)
			return g.withPressure(gs), nil
		}
		fileErr = err
	}
	gs, err := g.fromPvesh(ctx)
	if err != nil {
		if fileErr != nil && !errors.Is(fileErr, errNotPresent) {
			// Both paths failed: the file error is the likelier cause.
			return nil, fmt.Errorf("%w; pvesh fallback: %w", fileErr, err)
		}
		return nil, err
	}
	g.used(GuestsFromPvesh)
	return g.withPressure(gs), nil
}

// fromPvesh runs pvesh get /cluster/resources (the local node answers it
// from the cluster filesystem; no other node is contacted).
func (g *Guests) fromPvesh(ctx context.Context) ([]pve.Guest, error) {
	out, err := output(g.Run.Run(ctx, g.Timeout, g.Pvesh, "get", "/cluster/resources", "--output-format", "json"))
	if err != nil {
		return nil, err
	}
	return pve.ParseGuests(out, g.Node)
}

// fromFiles reads .vmlist, .rrd and the local guests' configs: the files
// /cluster/resources is built from.
func (g *Guests) fromFiles(ctx context.Context) ([]pve.Guest, error) {
	ctx, cancel := context.WithTimeout(ctx, g.ReadTimeout)
	defer cancel()
	read := func(name string) ([]byte, string, error) {
		path := filepath.Join(g.EtcDir, name)
		b, err := g.Files.Read(ctx, g.ReadTimeout, path)
		return b, path, err
	}
	b, path, err := read(".vmlist")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: %w", path, errNotPresent, err)
	} else if err != nil {
		return nil, err
	}
	vms, err := pmxcfs.ParseVMList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b, path, err = read(".rrd"); err != nil {
		return nil, err
	}
	rrd, err := pmxcfs.ParseRRD(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	confs := map[uint64]pmxcfs.GuestConfig{}
	for _, v := range vms {
		name, ok := v.ConfigPath()
		if v.Node != g.Node || !ok {
			continue
		}
		b, _, err := read(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since .vmlist was read: pmxcfs skips it too
		} else if err != nil {
			return nil, err
		}
		confs[v.VMID] = pmxcfs.ParseGuestConfig(b)
	}
	gs := pmxcfs.Guests(vms, rrd, confs, g.Node)
	g.addHealth(ctx, gs, confs)
	return gs, nil
}

// addHealth fills onboot and the snapshots from the configs, and
// ha_managed from ha/resources.cfg (no file: no guest is HA-managed; a
// file that cannot be read leaves ha_managed null rather than failing the
// guests).
func (g *Guests) addHealth(ctx context.Context, gs []pve.Guest, confs map[uint64]pmxcfs.GuestConfig) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	var ha map[string]bool
	b, err := g.Files.Read(ctx, g.ReadTimeout, filepath.Join(g.EtcDir, "ha", "resources.cfg"))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		ha = map[string]bool{}
		for _, r := range pvehealth.ParseHAResources(b) {
			ha[r.SID] = true
		}
	}
	for i := range gs {
		gu := &gs[i]
		if ha != nil {
			prefix := map[string]string{"qemu": "vm:", "lxc": "ct:"}[gu.Type]
			gu.HAManaged = pve.Bool(ha[prefix+strconv.FormatUint(gu.VMID.V, 10)])
		}
		c, ok := confs[gu.VMID.V]
		if !ok {
			continue // no config read: the file path knows no more than pvesh
		}
		snaps := c.Snapshots
		gu.OnBoot, gu.Snapshots = pve.Bool(c.OnBoot), &snaps
		if c.OldestSnaptime > 0 {
			age := max(int64(now().Sub(time.Unix(c.OldestSnaptime, 0))/time.Second), 0)
			gu.OldestSnapshotSeconds = &age
		}
	}
}

// note logs a change of the files' state, once per change.
func (g *Guests) note(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ok := err == nil
	if g.filesOK != nil && *g.filesOK == ok {
		return
	}
	before := g.filesOK
	g.filesOK = &ok
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case ok && before != nil:
		log.Info("guests: the cluster filesystem is readable again; pvesh no longer used", "etc_dir", g.EtcDir)
	case ok:
		log.Info("guests: reading the cluster filesystem directly, not pvesh", "etc_dir", g.EtcDir)
	case errors.Is(err, errNotPresent):
		log.Info("guests: no cluster filesystem; using pvesh get /cluster/resources, trying the files again every round", "err", err)
	default:
		log.Warn("guests: cannot read the cluster filesystem; using pvesh get /cluster/resources, trying the files again every round", "err", err)
	}
}

func (g *Guests) used(path string) {
	if g.Used != nil {
		g.Used(path)
	}
}
