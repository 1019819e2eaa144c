package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
)

// localFSTypes are the filesystems the filesystems source reports: real
// local ones. Pseudo filesystems (tmpfs, proc, cgroup ...), FUSE (pmxcfs
// on /etc/pve) and network filesystems (nfs, cifs: the storage source
// covers Proxmox's) are left out; zfs is added only when the zfs_datasets
// source is off, as it reports every dataset already.
var localFSTypes = []string{"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat"}

// Filesystem is one mounted filesystem in the filesystems payload, sizes
// in bytes. The numbers are null, and error says why, when statfs did not
// answer in time (a hung mount) or failed.
type Filesystem struct {
	MountPoint string       `json:"mountpoint"`
	Device     string       `json:"device"`
	FSType     string       `json:"fstype"`
	Size       lenient.Uint `json:"size"`
	Used       lenient.Uint `json:"used"`
	Avail      lenient.Uint `json:"avail"` // for unprivileged users: size − used − reserved blocks
	Inodes     lenient.Uint `json:"inodes"`
	InodesFree lenient.Uint `json:"inodes_free"`
	ReadOnly   bool         `json:"readonly"`
	Error      string       `json:"error,omitempty"`
}

// Filesystems is the filesystems source: the mounts of <proc>/self/
// mountinfo, each measured with statfs through Files (off the round,
// under Timeout, one call per mount in flight at most).
type Filesystems struct {
	Proc       string
	Exclude    []string // globs on the mount point
	IncludeZFS bool
	Files      *SlowFS
	Timeout    time.Duration
	Dump       *dump.Handle
}

// Collect lists the mounts and measures them all at once.
func (f *Filesystems) Collect(ctx context.Context) (any, error) {
	r := pseudoFiles{Dump: f.Dump}
	p := filepath.Join(f.Proc, "self", "mountinfo")
	b, err := r.read(p)
	if err != nil {
		return nil, err
	}
	mounts, err := procfs.ParseMountinfo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	mounts = f.keep(mounts)
	out := make([]Filesystem, len(mounts))
	var wg sync.WaitGroup
	for i, m := range mounts {
		out[i] = Filesystem{MountPoint: m.MountPoint, Device: m.Source, FSType: m.FSType, ReadOnly: m.ReadOnly()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := f.Files.Statfs(ctx, f.Timeout, m.MountPoint)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			fill(&out[i], &st)
		}()
	}
	wg.Wait() // each Statfs returns by its timeout, stuck or not
	return out, nil
}

// keep filters the mounts: local filesystem types, not excluded, and one
// entry per filesystem (a bind mount of a directory, or the same device
// mounted twice, would repeat its figures).
func (f *Filesystems) keep(mounts []procfs.Mount) []procfs.Mount {
	var kept []procfs.Mount
	seen := map[string]bool{}
	for _, m := range mounts {
		local := slices.Contains(localFSTypes, m.FSType) || (f.IncludeZFS && m.FSType == "zfs")
		if !local || excluded(f.Exclude, m.MountPoint) || !strings.HasPrefix(m.MountPoint, "/") {
			continue
		}
		key := m.MajorMinor
		if m.FSType == "zfs" || m.FSType == "btrfs" { // many datasets/subvolumes, each its own 0:N
			key = m.MajorMinor + " " + m.Source
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		kept = append(kept, m)
	}
	return kept
}

func fill(fs *Filesystem, st *unix.Statfs_t) {
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	fs.Size = lenient.U(st.Blocks * bs)
	if st.Blocks >= st.Bfree {
		fs.Used = lenient.U((st.Blocks - st.Bfree) * bs)
	}
	fs.Avail = lenient.U(st.Bavail * bs)
	fs.Inodes, fs.InodesFree = lenient.U(st.Files), lenient.U(st.Ffree)
	if st.Flags&unix.ST_RDONLY != 0 {
		fs.ReadOnly = true
	}
}
