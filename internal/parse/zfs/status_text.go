package zfs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

var (
	headerRe   = regexp.MustCompile(`^\s*(pool|state|status|action|see|scan|config|errors|remove|checkpoint|id):\s?(.*)$`)
	percentRe  = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)% done`)
	withErrRe  = regexp.MustCompile(`with ([0-9]+) errors`)
	dataErrsRe = regexp.MustCompile(`^([0-9]+) data errors`)
	durationRe = regexp.MustCompile(`in (?:([0-9]+) days? )?([0-9]+):([0-9]{2}):([0-9]{2})`)
)

// ctimeLayout is how zpool prints scan times (ctime, in the host's zone).
const ctimeLayout = "Mon Jan _2 15:04:05 2006"

var sections = map[string]string{"logs": "log", "cache": "cache", "spares": "spare", "special": "special", "dedup": "dedup"}

// ParseStatusText parses the text of `zpool status -p` (OpenZFS 2.2, whose
// zpool has no -j). loc is the zone zpool printed times in (the host's).
// GUIDs are unknown on this path; everything else matches ParseStatusJSON.
func ParseStatusText(b []byte, loc *time.Location) ([]Pool, error) {
	text := string(b)
	if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "no pools available") {
		return []Pool{}, nil
	}
	var (
		pools   []Pool
		cur     *Pool
		key     string
		scan    []string
		inTree  bool
		section string
		stack   []string
	)
	finish := func() {
		if cur == nil {
			return
		}
		cur.Status, cur.Action = cleanText(cur.Status), cleanText(cur.Action)
		cur.Scan = parseScanText(scan, loc)
		sortVdevs(cur.Vdevs)
		pools = append(pools, *cur)
		cur, scan = nil, nil
	}
	for _, line := range strings.Split(text, "\n") {
		if m := headerRe.FindStringSubmatch(line); m != nil && !(inTree && strings.HasPrefix(line, "\t")) {
			key, inTree = m[1], false
			val := m[2]
			switch key {
			case "pool":
				finish()
				cur = &Pool{Name: strings.TrimSpace(val), Vdevs: []Vdev{}}
			case "state":
				if cur != nil {
					cur.State = strings.TrimSpace(val)
				}
			case "status":
				if cur != nil {
					cur.Status = val
				}
			case "action":
				if cur != nil {
					cur.Action = val
				}
			case "scan":
				scan = append(scan, val)
			case "config":
				inTree, section, stack = true, "", nil
			case "errors":
				if cur != nil {
					cur.ErrorCount = parseDataErrors(val)
				}
			}
			continue
		}
		if cur == nil {
			continue
		}
		if !inTree {
			if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "        ") {
				switch key {
				case "status":
					cur.Status += " " + line
				case "action":
					cur.Action += " " + line
				case "scan":
					scan = append(scan, strings.TrimSpace(line))
				}
			}
			continue
		}
		// The config tree: one tab, then two spaces per level.
		if !strings.HasPrefix(line, "\t") || strings.TrimSpace(line) == "" {
			continue
		}
		row := line[1:]
		depth := (len(row) - len(strings.TrimLeft(row, " "))) / 2
		f := strings.Fields(row)
		if f[0] == "NAME" && len(f) > 1 && f[1] == "STATE" {
			continue
		}
		if depth == 0 {
			if cls, ok := sections[f[0]]; ok && len(f) == 1 {
				section, stack = cls, []string{""}
				continue
			}
		}
		v := Vdev{Name: f[0], Class: "normal"}
		if section != "" {
			v.Class = section
		}
		v.Type = typeFromName(v.Name, cur.Name)
		if len(f) > 1 {
			v.State = f[1]
		}
		if len(f) >= 5 {
			v.ReadErrors, v.WriteErrors, v.ChecksumErrors = parseCount(f[2]), parseCount(f[3]), parseCount(f[4])
			v.Reason = strings.Join(f[5:], " ")
		} else if len(f) > 2 {
			v.Reason = strings.Join(f[2:], " ") // spares: no counters
		}
		if depth < len(stack) {
			stack = stack[:depth]
		}
		for len(stack) < depth {
			stack = append(stack, "")
		}
		if depth > 0 {
			v.Parent = stack[depth-1]
		}
		if v.Type == "root" {
			v.Class = "normal"
		}
		stack = append(stack, v.Name)
		cur.Vdevs = append(cur.Vdevs, v)
	}
	finish()
	if len(pools) == 0 {
		return nil, fmt.Errorf("zpool status: no \"pool:\" line in %d bytes of output", len(b))
	}
	return pools, nil
}

// parseCount reads an error counter: exact with -p, abbreviated ("1.80K")
// without it.
func parseCount(s string) lenient.Uint {
	if u := lenient.ParseUint(s); u.Valid {
		return u
	}
	mult := map[byte]float64{'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
	if len(s) > 1 {
		if m, ok := mult[s[len(s)-1]]; ok {
			if f := lenient.ParseFloat(s[:len(s)-1]); f.Valid && f.V >= 0 {
				return lenient.U(uint64(f.V*m + 0.5))
			}
		}
	}
	return lenient.Uint{}
}

func parseDataErrors(s string) lenient.Uint {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "No known data errors") {
		return lenient.U(0)
	}
	if m := dataErrsRe.FindStringSubmatch(s); m != nil {
		return lenient.ParseUint(m[1])
	}
	return lenient.Uint{}
}

// parseScanText reads the scan: paragraph.
func parseScanText(lines []string, loc *time.Location) *Scan {
	if len(lines) == 0 {
		return nil
	}
	all := strings.Join(lines, " ")
	first := strings.TrimSpace(lines[0])
	if first == "" || strings.HasPrefix(first, "none requested") {
		return nil
	}
	s := &Scan{Function: "SCRUB"}
	if strings.HasPrefix(first, "resilver") {
		s.Function = "RESILVER"
	}
	switch {
	case strings.Contains(first, "in progress since"):
		s.State = "SCANNING"
		s.Start = parseCtime(after(first, "in progress since "), loc)
		if m := percentRe.FindStringSubmatch(all); m != nil {
			s.Progress = lenient.ParseFloat(m[1])
		}
	case strings.Contains(first, "canceled on"):
		s.State = "CANCELED"
		s.End = parseCtime(after(first, "canceled on "), loc)
	case strings.Contains(first, " on "):
		s.State = "FINISHED"
		s.Progress = lenient.F(100)
		s.End = parseCtime(after(first, " on "), loc)
		if m := withErrRe.FindStringSubmatch(first); m != nil {
			s.Errors = lenient.ParseUint(m[1])
		}
		if m := durationRe.FindStringSubmatch(first); m != nil && s.End.Valid {
			days, _ := strconv.ParseUint("0"+m[1], 10, 64)
			h, _ := strconv.ParseUint(m[2], 10, 64)
			mi, _ := strconv.ParseUint(m[3], 10, 64)
			se, _ := strconv.ParseUint(m[4], 10, 64)
			if d := days*86400 + h*3600 + mi*60 + se; d <= s.End.V {
				s.Start = lenient.U(s.End.V - d)
			}
		}
	default:
		s.State = "UNKNOWN"
	}
	return s
}

func after(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return ""
}

func parseCtime(s string, loc *time.Location) lenient.Uint {
	s = strings.TrimSpace(s)
	if len(s) > len(ctimeLayout) {
		s = s[:len(ctimeLayout)]
	}
	t, err := time.ParseInLocation(ctimeLayout, s, loc)
	if err != nil || t.Unix() < 0 {
		return lenient.Uint{}
	}
	return lenient.U(uint64(t.Unix()))
}
