package config

import (
	"path"
	"strconv"
	"strings"
)

// HostFiles are the settings of the sources that read /sys (issue 20):
// net, diskio, sensors, filesystems, pressure and the host additions.
// Embedded in Config, so the keys sit at the top level: [sys], [net],
// [diskio], [filesystems].
type HostFiles struct {
	Sys         Sys     `toml:"sys"`
	Net         Exclude `toml:"net"`
	DiskIO      Exclude `toml:"diskio"`
	Filesystems Exclude `toml:"filesystems"`
}

// Sys locates the sys filesystem, so tests can point it at testdata/. The
// cgroup v2 hierarchy (guest pressure) is <root>/fs/cgroup.
type Sys struct {
	Root string `toml:"root"`
}

// CgroupRoot is where the cgroup v2 hierarchy is mounted.
func (s Sys) CgroupRoot() string { return path.Join(s.Root, "fs", "cgroup") }

// Exclude is a source's list of names (interfaces, disks, mount points)
// to leave out, as shell globs (path.Match: *, ?, [a-z]).
type Exclude struct {
	Exclude []string `toml:"exclude"`
}

// DefaultNetExclude are the interfaces an operator of a Proxmox VE host
// never wants listed: loopback, and the per-guest tap, veth and firewall
// bridge devices that come and go with every guest start.
var DefaultNetExclude = []string{"lo", "veth*", "tap*", "fwbr*", "fwpr*", "fwln*"}

func defaultHostFiles() HostFiles {
	return HostFiles{
		Sys: Sys{Root: "/sys"},
		Net: Exclude{Exclude: append([]string(nil), DefaultNetExclude...)},
	}
}

// validate returns an error naming the key for each bad setting.
func (h *HostFiles) validate(bad func(key, format string, args ...any)) {
	if strings.TrimSpace(h.Sys.Root) == "" {
		bad("sys.root", "must not be empty")
	}
	for _, e := range []struct {
		key   string
		globs []string
	}{{"net.exclude", h.Net.Exclude}, {"diskio.exclude", h.DiskIO.Exclude}, {"filesystems.exclude", h.Filesystems.Exclude}} {
		for _, g := range e.globs {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				bad(e.key, "%s is not a glob (shell patterns: *, ?, [a-z])", strconv.QuoteToGraphic(g))
			}
		}
	}
}
