package config

import (
	"slices"
	"strings"
	"testing"
)

func TestHostFilesKeys(t *testing.T) {
	base := "server_url = \"ws://127.0.0.1:1/s\"\ntoken = \"t\"\nnode = \"n\"\nhost_id = \"h\"\n"
	host := func() (string, error) { return "h", nil }
	c, err := Parse([]byte(base), host)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sys.Root != "/sys" || c.Sys.CgroupRoot() != "/sys/fs/cgroup" || !slices.Equal(c.Net.Exclude, DefaultNetExclude) ||
		c.DiskIO.Exclude != nil || c.Filesystems.Exclude != nil {
		t.Fatalf("defaults %+v", c.HostFiles)
	}
	c, err = Parse([]byte(base+"[sys]\nroot = \"/host/sys\"\n[net]\nexclude = [\"lo\"]\n[diskio]\nexclude = [\"zd*\", \"dm-*\"]\n[filesystems]\nexclude = [\"/mnt/*\"]\n"), host)
	if err != nil {
		t.Fatal(err)
	}
	// A list in the file replaces the default, it does not add to it.
	if c.Sys.CgroupRoot() != "/host/sys/fs/cgroup" || !slices.Equal(c.Net.Exclude, []string{"lo"}) ||
		!slices.Equal(c.DiskIO.Exclude, []string{"zd*", "dm-*"}) || !slices.Equal(c.Filesystems.Exclude, []string{"/mnt/*"}) {
		t.Fatalf("set %+v", c.HostFiles)
	}
	if c, err := Parse([]byte(base+"[net]\nexclude = []\n"), host); err != nil || len(c.Net.Exclude) != 0 {
		t.Fatalf("empty list: %+v %v", c, err)
	}
	for _, cs := range []struct{ toml, want string }{
		{"[net]\nexclude = [\"tap[\"]\n", `line 6: net.exclude: "tap[" is not a glob`},
		{"[diskio]\nexclude = [\"\"]\n", `diskio.exclude: "" is not a glob`},
		{"[filesystems]\nexclude = [\"/mnt/[a-\"]\n", `filesystems.exclude: "/mnt/[a-" is not a glob`},
		{"[sys]\nroot = \"\"\n", "sys.root: must not be empty"},
		{"[net]\nexclude = \"lo\"\n", "exclude"},
		{"[net]\ninclude = [\"lo\"]\n", `unknown key "net.include"`},
	} {
		_, err := Parse([]byte(base+cs.toml), host)
		if err == nil || !strings.Contains(err.Error(), cs.want) {
			t.Errorf("%q: %v, want %q", cs.toml, err, cs.want)
		}
	}
}
