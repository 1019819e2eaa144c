package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// UpdatesListMax caps the packages listed; count is always the true number.
const UpdatesListMax = 100

// Updates is the updates source: the pending updates pve-manager's daily
// `pveupdate` found, and how old the apt lists are.
type Updates struct {
	LibDir, ListsDir string
	Files            *SlowFS
	Timeout          time.Duration
	Now              func() time.Time
}

// UpdatesData is the updates payload. lists_age_seconds is null when the
// lists directory holds no list.
type UpdatesData struct {
	Count           int                `json:"count"`
	Packages        []pvehealth.Update `json:"packages"`
	ListsAgeSeconds *int64             `json:"lists_age_seconds"`
}

// Collect reads pkgupdates; absent when there is none (not a Proxmox VE
// host, or pveupdate never ran).
func (u *Updates) Collect(ctx context.Context) (any, error) {
	path := filepath.Join(u.LibDir, "pkgupdates")
	b, err := u.Files.Read(ctx, u.Timeout, path)
	if isNotExist(err) {
		return nil, fmt.Errorf("no %s: %w", path, ErrAbsent)
	} else if err != nil {
		return nil, err
	}
	pkgs, err := pvehealth.ParseUpdates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := UpdatesData{Count: len(pkgs), Packages: pkgs}
	if len(pkgs) > UpdatesListMax {
		d.Packages = pkgs[:UpdatesListMax]
	}
	if newest := newestList(u.ListsDir); !newest.IsZero() {
		age := int64(u.Now().Sub(newest) / time.Second)
		d.ListsAgeSeconds = &age
	}
	return d, nil
}

// newestList is the newest mtime of the regular files in dir (apt's lists;
// "lock" is apt's lock file, not a list, and partial/ is a directory). An
// unreadable directory is "no list".
func newestList(dir string) time.Time {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}
	}
	var newest time.Time
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "lock" {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest
}
