package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/sysfs"
)

// Temp is one temperature sensor in the sensors payload, in °C. max and
// crit are the chip's thresholds, null when it has none or reports a
// placeholder (NVMe's 65261.85).
type Temp struct {
	Chip  string   `json:"chip"`  // the driver's name: k10temp, nvme, acpitz ...
	Hwmon string   `json:"hwmon"` // hwmonN: tells two chips of one name apart (until a reboot renumbers them)
	Label string   `json:"label"` // tempN_label, else "tempN"
	TempC *float64 `json:"temp_c"`
	MaxC  *float64 `json:"max_c"`
	CritC *float64 `json:"crit_c"`
}

// Fan is one fan in the sensors payload; 0 rpm is what a header without a
// fan reads.
type Fan struct {
	Chip  string  `json:"chip"`
	Hwmon string  `json:"hwmon"`
	Label string  `json:"label"`
	RPM   *uint64 `json:"rpm"`
}

// SensorsData is the sensors payload.
type SensorsData struct {
	Temps []Temp `json:"temps"`
	Fans  []Fan  `json:"fans"`
}

// sensorRescanRounds is how often the chip list, and each chip's sensor
// list, labels and thresholds, are read again: every 120 fast rounds (an
// hour at the default cadence), and at once when a held input stops
// reading (a chip removed or rebound). In between only the inputs are
// read, one pread each: a chip has a dozen files and a big host a dozen
// chips, too many for every round. A chip hot-plugged in between shows up
// at the next rescan.
const sensorRescanRounds = 120

// Sensors is the sensors source: <sys>/class/hwmon/hwmon*/.
type Sensors struct {
	Sys  string
	Dump *dump.Handle

	r      pseudoFiles
	chips  map[string]*hwmonChip
	names  []string // the chip directories, sorted
	listed uint64   // round of the last listing; 0: list again
	// The last round's counts, to size this round's slices.
	nTemps, nFans int
	round         uint64
}

type hwmonChip struct {
	scanned uint64 // round of the last scan; 0: scan again
	dir     string // <sys>/class/hwmon/hwmonN
	temps   []hwmonSensor
	fans    []hwmonSensor
	name    string
	// failing names the inputs whose last read failed, kept across
	// rescans: an input that fails again after the rescan its first
	// failure caused is broken (EIO, ENODATA every time), not gone, and is
	// skipped until the periodic rescan instead of rescanning every round.
	failing map[string]bool
}

type hwmonSensor struct {
	input     string   // file name, relative to the hwmonN directory
	h         heldFile // the input, kept open between rounds
	label     string
	max, crit *float64 // set at a scan, never changed: samples point at them
	skip      bool     // failed again after a rescan: not read until the next scan
}

// release closes the chip's held inputs.
func (c *hwmonChip) release(r *pseudoFiles) {
	for i := range c.temps {
		r.release(&c.temps[i].h)
	}
	for i := range c.fans {
		r.release(&c.fans[i].h)
	}
}

// Collect reads every chip's inputs.
func (s *Sensors) Collect(context.Context) (any, error) {
	s.r.Dump = s.Dump
	holdFor(&s.r, s)
	s.round++
	dir := filepath.Join(s.Sys, "class", "hwmon")
	if s.listed == 0 || s.round-s.listed >= sensorRescanRounds {
		names, err := listDir(dir)
		if absent(err) {
			return nil, fmt.Errorf("no %s: %w", dir, ErrAbsent)
		}
		if err != nil {
			return nil, fmt.Errorf("list hwmon chips: %w", err)
		}
		slices.SortFunc(names, byNumber)
		s.names, s.listed = names, s.round
	}
	names := s.names
	if s.chips == nil {
		s.chips = map[string]*hwmonChip{}
	}
	d := SensorsData{Temps: make([]Temp, 0, s.nTemps), Fans: make([]Fan, 0, s.nFans)}
	temps, rpms := newFloats(s.nTemps), newUints(s.nFans)
	defer func() { s.nTemps, s.nFans = len(d.Temps), len(d.Fans) }()
	for _, hw := range names {
		if !validName(hw) || !strings.HasPrefix(hw, "hwmon") {
			continue
		}
		c := s.chips[hw]
		if c == nil || c.scanned == 0 || s.round-c.scanned >= sensorRescanRounds {
			if c != nil && c.scanned == 0 {
				s.listed = 0 // a chip stopped reading: list the chips again next round
			}
			old := c
			if old != nil {
				old.release(&s.r)
			}
			c = s.scan(filepath.Join(dir, hw))
			c.keepFailing(old)
			s.chips[hw] = c
		}
		s.readChip(&d, c, hw, temps, rpms)
	}
	for hw, c := range s.chips {
		if !slices.Contains(names, hw) {
			c.release(&s.r)
			delete(s.chips, hw)
		}
	}
	return d, nil
}

// readChip appends the chip's current readings to d.
func (s *Sensors) readChip(d *SensorsData, c *hwmonChip, hw string, temps *floats, rpms *uints) {
	for i := range c.temps {
		t := &c.temps[i]
		b, ok := s.readInput(c, t)
		if !ok {
			continue
		}
		var v *float64
		if x, ok := sysfs.ParseMilliCelsius(b); ok {
			v = temps.of(x)
		}
		d.Temps = append(d.Temps, Temp{Chip: c.name, Hwmon: hw, Label: t.label, TempC: v, MaxC: t.max, CritC: t.crit})
	}
	for i := range c.fans {
		f := &c.fans[i]
		b, ok := s.readInput(c, f)
		if !ok {
			continue
		}
		var v *uint64
		if x, err := sysfs.ParseUint(b); err == nil {
			v = rpms.of(x)
		}
		d.Fans = append(d.Fans, Fan{Chip: c.name, Hwmon: hw, Label: f.label, RPM: v})
	}
}

// readInput reads one input of c. A sensor gone, or replaced (a chip
// rebound under the same hwmonN), makes its name and labels stale: the
// chip is scanned again next round. An input that fails again after that
// rescan is broken rather than gone: it is skipped until the chip's next
// scan, so it costs one rescan, not one per round.
func (s *Sensors) readInput(c *hwmonChip, sn *hwmonSensor) ([]byte, bool) {
	if sn.skip {
		return nil, false
	}
	b, err := s.r.readHeld(&sn.h, c.dir, sn.input)
	reopened := sn.h.reopened
	sn.h.reopened = false
	switch {
	case err != nil && c.failing[sn.input]:
		sn.skip = true
		return nil, false
	case err != nil:
		if c.failing == nil {
			c.failing = map[string]bool{}
		}
		c.failing[sn.input] = true
		c.scanned = 0
		return nil, false
	}
	delete(c.failing, sn.input)
	if reopened {
		c.scanned = 0
	}
	return b, true
}

// keepFailing carries old's failing inputs over to c, the same chip
// scanned again, for the inputs c still has.
func (c *hwmonChip) keepFailing(old *hwmonChip) {
	if old == nil || len(old.failing) == 0 {
		return
	}
	c.failing = map[string]bool{}
	for _, list := range [][]hwmonSensor{c.temps, c.fans} {
		for _, sn := range list {
			if old.failing[sn.input] {
				c.failing[sn.input] = true
			}
		}
	}
}

// scan lists a chip's sensors, labels and thresholds. Old drivers keep
// the attributes in the device/ directory below the hwmon one.
func (s *Sensors) scan(dir string) *hwmonChip {
	c := &hwmonChip{scanned: s.round, dir: dir}
	entries, err := listDir(dir)
	if err != nil {
		c.scanned = 0 // gone: the chip list is stale
		s.listed = 0
		return c
	}
	rel := ""
	if !hasInputs(entries) {
		if sub, err := listDir(filepath.Join(dir, "device")); err == nil && hasInputs(sub) {
			rel, entries = "device/", sub
		}
	}
	dirfd, err := openDir(dir)
	if err != nil {
		return c
	}
	defer unix.Close(dirfd)
	c.name = s.text(dirfd, dir, rel+"name")
	if c.name == "" {
		c.name = s.text(dirfd, dir, "name")
	}
	slices.SortFunc(entries, byNumber)
	for _, e := range entries {
		a, ok := sysfs.ParseHwmonName(e)
		if !ok || a.Item != "input" || (a.Type != "temp" && a.Type != "fan") {
			continue
		}
		prefix := a.Type + strconv.Itoa(a.Index)
		sn := hwmonSensor{input: rel + e, label: prefix}
		if slices.Contains(entries, prefix+"_label") {
			if l := s.text(dirfd, dir, rel+prefix+"_label"); l != "" {
				sn.label = l
			}
		}
		if a.Type == "fan" {
			c.fans = append(c.fans, sn)
			continue
		}
		sn.max, sn.crit = s.milli(dirfd, dir, entries, rel, prefix+"_max"), s.milli(dirfd, dir, entries, rel, prefix+"_crit")
		c.temps = append(c.temps, sn)
	}
	return c
}

func hasInputs(entries []string) bool {
	for _, e := range entries {
		if a, ok := sysfs.ParseHwmonName(e); ok && a.Item == "input" && (a.Type == "temp" || a.Type == "fan") {
			return true
		}
	}
	return false
}

func (s *Sensors) text(dirfd int, dir, name string) string {
	b, err := s.r.readAttr(dirfd, dir, name)
	if err != nil {
		return ""
	}
	return sysfs.Text(b)
}

// milli reads a threshold in millidegrees when entries list it.
func (s *Sensors) milli(dirfd int, dir string, entries []string, rel, name string) *float64 {
	if !slices.Contains(entries, name) {
		return nil
	}
	b, err := s.r.readAttr(dirfd, dir, rel+name)
	if err != nil {
		return nil
	}
	if v, ok := sysfs.ParseMilliCelsius(b); ok {
		return &v
	}
	return nil
}

// byNumber orders names by their text and then by the number in them, so
// hwmon2 comes before hwmon10 and temp2_input before temp10_input.
func byNumber(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

// splitNumber returns the text before the first digit run and that number.
func splitNumber(s string) (string, int) {
	i := strings.IndexAny(s, "0123456789")
	if i < 0 {
		return s, -1
	}
	j := i
	for j < len(s) && j-i < 9 && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[i:j])
	return s[:i], n
}
