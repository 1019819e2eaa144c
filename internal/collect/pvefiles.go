package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pmxcfs"
)

// pveFiles is how the Proxmox health sources read their files: every read
// through the hang-proof SlowFS (FUSE /etc/pve, and for the FIFO-proof
// cap on the rest), all of one round's reads bounded together by ctx.
type pveFiles struct {
	Files   *SlowFS
	Timeout time.Duration
}

// read returns the file, or ok=false when it does not exist.
func (p pveFiles) read(ctx context.Context, path string) (b []byte, ok bool, err error) {
	b, err = p.Files.Read(ctx, p.Timeout, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// localGuests returns this node's guests from /etc/pve/.vmlist; ErrAbsent
// when there is no .vmlist (not a Proxmox VE node, or pmxcfs not running).
func (p pveFiles) localGuests(ctx context.Context, etcDir, node string) ([]pmxcfs.VMEntry, error) {
	path := filepath.Join(etcDir, ".vmlist")
	b, ok, err := p.read(ctx, path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no %s (not a Proxmox VE node, or pmxcfs not running): %w", path, ErrAbsent)
	}
	vms, err := pmxcfs.ParseVMList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []pmxcfs.VMEntry
	for _, v := range vms {
		if v.Node == node && (v.Type == "qemu" || v.Type == "lxc") {
			out = append(out, v)
		}
	}
	return out, nil
}

// members reads /etc/pve/.members; ok=false when it does not exist.
func (p pveFiles) members(ctx context.Context, etcDir string) (pmxcfs.Members, bool, error) {
	path := filepath.Join(etcDir, ".members")
	b, ok, err := p.read(ctx, path)
	if !ok || err != nil {
		return pmxcfs.Members{}, false, err
	}
	m, err := pmxcfs.ParseMembers(b)
	if err != nil {
		return m, true, fmt.Errorf("%s: %w", path, err)
	}
	return m, true, nil
}

// stamp is a unix time as the payload writes times (RFC 3339 UTC, as
// collected_at); nil for 0, which Proxmox's files use for "never".
func stamp(unix int64) *string {
	if unix <= 0 {
		return nil
	}
	s := dump.Timestamp(time.Unix(unix, 0))
	return &s
}

// stampTime is stamp for a time.Time; nil for the zero time.
func stampTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := dump.Timestamp(t)
	return &s
}

// opt is nil for "", so an unset value is JSON null.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// isNotExist reports a missing file (a ReadError unwraps to the
// *fs.PathError).
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
