package pvehealth

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Task is one Proxmox task: its UPID's fields and, once it ended, its end
// time and status.
type Task struct {
	UPID   string
	Node   string
	PID    uint64
	PStart uint64
	Start  int64 // unix seconds
	Type   string
	ID     string // "" for a vzdump job run over several guests
	User   string
	// End is the end time (unix seconds); 0 while the task runs.
	End int64
	// Status is "OK", "WARNINGS: n" or the error text; "" while running.
	Status string
}

// ParseUPID decodes a UPID the way pve-common's PVE::Tools::upid_decode
// does: "UPID:node:PID:PSTART:START:type:id:user:" with the PID and
// start time 8 hex digits and PSTART 8 or 9.
func ParseUPID(upid string) (Task, error) {
	f := strings.Split(upid, ":")
	if len(f) != 9 || f[0] != "UPID" || f[8] != "" {
		return Task{}, fmt.Errorf("UPID: want 9 colon-separated fields, got %q", clip(upid))
	}
	t := Task{UPID: upid, Node: f[1], Type: f[5], ID: f[6], User: f[7]}
	var err error
	if !validNode(f[1]) || f[5] == "" || f[7] == "" || strings.ContainsAny(f[5]+f[6]+f[7], " \t\n\r\v\f") {
		return Task{}, fmt.Errorf("UPID: malformed %q", clip(upid))
	}
	if t.PID, err = hexField(f[2], 8, 8); err == nil {
		if t.PStart, err = hexField(f[3], 8, 9); err == nil {
			var start uint64
			start, err = hexField(f[4], 8, 8)
			t.Start = int64(start)
		}
	}
	if err != nil {
		return Task{}, fmt.Errorf("UPID %q: %w", clip(upid), err)
	}
	return t, nil
}

func validNode(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func hexField(s string, minLen, maxLen int) (uint64, error) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, fmt.Errorf("hex field %q: want %d to %d digits", s, minLen, maxLen)
	}
	return strconv.ParseUint(s, 16, 64)
}

// LogName is the task log's path below the task directory,
// "<last hex digit of the start time>/<UPID>" (upid_decode's filename);
// false for a UPID that could name a path outside it.
func (t Task) LogName() (string, bool) {
	if t.UPID == "" || strings.ContainsAny(t.UPID, "/\x00") {
		return "", false
	}
	f := strings.Split(t.UPID, ":")
	if len(f) < 5 || len(f[4]) == 0 {
		return "", false
	}
	return f[4][len(f[4])-1:] + "/" + t.UPID, true
}

// OK reports whether the task's status is a success ("OK" or "WARNINGS: n",
// as PVE::Tools::upid_status_is_error has it).
func (t Task) OK() bool {
	return t.Status == "OK" || strings.HasPrefix(t.Status, "WARNINGS")
}

// ParseTaskIndex parses the task archive, /var/log/pve/tasks/index or
// index.1 (pve-common PVE/RESTEnvironment.pm writes "UPID ENDTIME STATUS",
// the end time as %08X), keeping the tasks of type typ ("" keeps all).
// Only newline-terminated lines count and a line that does not parse is
// skipped: the collector reads the file's tail, whose first line may be
// cut. The filter runs before the UPID is decoded, so a huge index of
// other tasks costs a substring search per line.
func ParseTaskIndex(b []byte, typ string) []Task {
	var out []Task
	needle := []byte(":" + typ + ":")
	for {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return out
		}
		line := b[:nl]
		b = b[nl+1:]
		if typ != "" && !bytes.Contains(line, needle) {
			continue
		}
		if t, ok := parseIndexLine(line); ok && (typ == "" || t.Type == typ) {
			out = append(out, t)
		}
	}
}

func parseIndexLine(line []byte) (Task, bool) {
	upid, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return Task{}, false
	}
	end, status, _ := bytes.Cut(rest, []byte(" "))
	t, err := ParseUPID(string(upid))
	if err != nil {
		return Task{}, false
	}
	e, err := strconv.ParseUint(string(end), 16, 64)
	if err != nil || e == 0 || e > 1<<40 {
		return Task{}, false
	}
	t.End, t.Status = int64(e), lenient.Text(strings.TrimRight(string(status), "\r"))
	return t, true
}

// ParseActiveTasks parses /var/log/pve/tasks/active (RESTEnvironment.pm:
// "UPID SAVED [ENDTIME STATUS]"): the running tasks (no end time) and the
// finished ones not yet archived in the index, of type typ ("" keeps all).
func ParseActiveTasks(b []byte, typ string) []Task {
	var out []Task
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.SplitN(strings.TrimSpace(string(line)), " ", 4)
		if len(f) < 1 || f[0] == "" {
			continue
		}
		t, err := ParseUPID(f[0])
		if err != nil || (typ != "" && t.Type != typ) {
			continue
		}
		if len(f) >= 3 {
			if e, err := strconv.ParseUint(f[2], 16, 64); err == nil && e > 0 && e < 1<<40 {
				t.End = int64(e)
				if len(f) == 4 {
					t.Status = lenient.Text(f[3])
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// GuestRun is one guest's part of a vzdump task log.
type GuestRun struct {
	VMID uint64
	Type string // qemu or lxc, from the "Starting Backup" line
	// Start and End are zero when the log does not say.
	Start, End time.Time
	// Status is "ok", "failed", or "running" (started, no result yet).
	Status string
	Error  string
	// ArchiveBytes is the archive size the log prints (rounded, 1024-based;
	// nil when not printed, e.g. on Proxmox Backup Server).
	ArchiveBytes *uint64
}

// VzdumpLog is what a vzdump task log says.
type VzdumpLog struct {
	Guests []GuestRun // in log order
	// Result is the task's end line without "TASK " ("OK", "WARNINGS: n",
	// "ERROR: job errors"); "" when the log has none (running, or cut).
	Result string
}

const logTime = "2006-01-02 15:04:05"

// ParseVzdumpLog reads a vzdump task log (pve-manager PVE/VZDump.pm, PVE 7
// to 9): "INFO: Starting Backup of VM N (type)" opens a guest's part;
// "Backup started at", "archive file size", "Finished Backup of VM N",
// "ERROR: Backup of VM N failed - TEXT", "Backup finished at" and
// "Failed at" fill it; "TASK ..." ends the log. The timestamps are the
// host's local time, so loc is the host's zone. Lines naming no guest
// belong to the last guest named. Any bytes parse; a log cut at the front
// (read from its end) yields the guests it still shows.
func ParseVzdumpLog(b []byte, loc *time.Location) VzdumpLog {
	var out VzdumpLog
	idx := map[uint64]int{}
	cur := -1
	guest := func(vmid uint64) int {
		i, ok := idx[vmid]
		if !ok {
			i = len(out.Guests)
			idx[vmid] = i
			out.Guests = append(out.Guests, GuestRun{VMID: vmid, Status: "running"})
		}
		cur = i
		return i
	}
	for _, raw := range bytes.Split(b, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		if r, ok := strings.CutPrefix(line, "TASK "); ok {
			out.Result = lenient.Text(r)
			continue
		}
		if msg, ok := strings.CutPrefix(line, "ERROR: Backup of VM "); ok {
			id, text, _ := strings.Cut(msg, " failed - ")
			if vmid, err := strconv.ParseUint(id, 10, 64); err == nil {
				g := &out.Guests[guest(vmid)]
				g.Status, g.Error = "failed", lenient.Text(text)
			}
			continue
		}
		msg, ok := strings.CutPrefix(line, "INFO: ")
		if !ok {
			continue
		}
		applyInfo(&out, msg, guest, cur, loc)
	}
	return out
}

// applyInfo applies one "INFO: " line to the log's guests.
func applyInfo(out *VzdumpLog, msg string, guest func(uint64) int, cur int, loc *time.Location) {
	if rest, ok := strings.CutPrefix(msg, "Starting Backup of VM "); ok {
		id, typ, _ := strings.Cut(rest, " ")
		if vmid, err := strconv.ParseUint(id, 10, 64); err == nil {
			g := &out.Guests[guest(vmid)]
			g.Type = strings.Trim(typ, "()")
		}
		return
	}
	if rest, ok := strings.CutPrefix(msg, "Finished Backup of VM "); ok {
		id, _, _ := strings.Cut(rest, " ")
		if vmid, err := strconv.ParseUint(id, 10, 64); err == nil {
			if g := &out.Guests[guest(vmid)]; g.Status != "failed" {
				g.Status = "ok"
			}
		}
		return
	}
	if cur < 0 {
		return
	}
	g := &out.Guests[cur]
	switch {
	case strings.HasPrefix(msg, "Backup started at "):
		g.Start = localTime(msg[len("Backup started at "):], loc)
	case strings.HasPrefix(msg, "Backup finished at "):
		g.End = localTime(msg[len("Backup finished at "):], loc)
	case strings.HasPrefix(msg, "Failed at "):
		g.End = localTime(msg[len("Failed at "):], loc)
	case strings.HasPrefix(msg, "archive file size: "):
		g.ArchiveBytes = parseSize(msg[len("archive file size: "):])
	}
}

func localTime(s string, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t, err := time.ParseInLocation(logTime, strings.TrimSpace(s), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// parseSize reads PVE::VZDump's format_size ("512KB", "201MB", "23.41GB",
// "1.20TB", all 1024-based); nil when it is not that.
func parseSize(s string) *uint64 {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f < 0 || f > 1<<20 || math.IsNaN(f) {
			return nil
		}
		v := uint64(f*u.mult + 0.5)
		return &v
	}
	return nil
}

// clip shortens hostile text quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
