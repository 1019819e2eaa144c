package procfs

import (
	"bytes"
	"fmt"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo, with the octal escapes
// (\040 space, \011 tab, \012 newline, \134 backslash) undone in the
// paths and the source.
type Mount struct {
	ID, Parent uint64
	MajorMinor string // "8:17"
	Root       string // the directory of the filesystem mounted here: "/" unless a bind mount
	MountPoint string
	Options    string // per-mount: rw/ro, nosuid ...
	FSType     string
	Source     string
	Super      string // per-superblock options
}

// ReadOnly reports whether the mount or its superblock is read-only.
func (m Mount) ReadOnly() bool {
	return hasOpt(m.Options, "ro") || hasOpt(m.Super, "ro")
}

func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// ParseMountinfo parses mountinfo: "id parent major:minor root mountpoint
// options [optional fields...] - fstype source superoptions". A line that
// does not have that shape is skipped (a torn read loses one mount, not
// all); an input with lines but not one valid mount is an error.
func ParseMountinfo(b []byte) ([]Mount, error) {
	var out []Mount
	lines, bad := 0, []byte(nil)
	for rest := b; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		lines++
		m, ok := parseMount(line)
		if !ok {
			bad = line
			continue
		}
		out = append(out, m)
	}
	if lines > 0 && len(out) == 0 {
		return nil, fmt.Errorf("mountinfo: no valid line (last bad: %q)", clip(bad))
	}
	return out, nil
}

func parseMount(line []byte) (Mount, bool) {
	f := strings.Fields(string(line))
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return Mount{}, false
	}
	id, ok1 := atou([]byte(f[0]))
	parent, ok2 := atou([]byte(f[1]))
	if !ok1 || !ok2 || !strings.Contains(f[2], ":") {
		return Mount{}, false
	}
	m := Mount{ID: id, Parent: parent, MajorMinor: f[2], Root: unescape(f[3]), MountPoint: unescape(f[4]),
		Options: f[5], FSType: unescape(f[sep+1]), Source: unescape(f[sep+2])}
	if len(f) > sep+3 {
		m.Super = f[sep+3]
	}
	return m, true
}

// unescape undoes the kernel's mangle(): a backslash and three octal
// digits is that byte. Anything else is kept as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			if s[i+1] <= '3' { // \400 and up are not a byte
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
