package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pmxcfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// Byte caps of the backups source's reads from the end of big files, and
// how many task logs one round may read. A task index line is about 80
// bytes, so 8 MiB is some 100,000 tasks; a vzdump log holds about 2 KiB
// per guest.
const (
	TaskIndexMaxBytes = 8 << 20
	TaskLogMaxBytes   = 2 << 20
	TaskLogsPerRound  = 24
)

// Backups is the backups source: the vzdump jobs, each local guest's last
// backup and the local guests no enabled job covers.
type Backups struct {
	EtcDir, LibDir, LogDir string
	Node                   string
	Files                  *SlowFS
	// Timeout bounds all of one round's reads together.
	Timeout time.Duration
	// Loc is the host's time zone: vzdump logs print local times.
	Loc *time.Location
}

// BackupsData is the backups payload.
type BackupsData struct {
	Jobs      []BackupJobData `json:"jobs"`
	Guests    []GuestBackup   `json:"guests"`
	Uncovered []uint64        `json:"uncovered"`
}

// BackupJobData is one vzdump job with its last run (the last_* fields
// are null when the job never ran on this node).
type BackupJobData struct {
	ID       string   `json:"id"`
	Enabled  bool     `json:"enabled"`
	Schedule *string  `json:"schedule"`
	Storage  *string  `json:"storage"`
	Mode     *string  `json:"mode"`
	VMIDs    []uint64 `json:"vmids"`
	All      bool     `json:"all"`
	Exclude  []uint64 `json:"exclude"`
	Pool     *string  `json:"pool"`
	Node     *string  `json:"node"`
	// LastStatus is ok, failed or running.
	LastStatus  *string `json:"last_status"`
	LastMessage *string `json:"last_message"`
	LastStart   *string `json:"last_start"`
	LastEnd     *string `json:"last_end"`
}

// GuestBackup is a local guest's last backup; every field but vmid is
// null when none was found in the task history read.
type GuestBackup struct {
	VMID         uint64  `json:"vmid"`
	LastStart    *string `json:"last_start"`
	LastEnd      *string `json:"last_end"`
	Status       *string `json:"status"` // ok, failed, running
	Error        *string `json:"error"`
	ArchiveBytes *uint64 `json:"archive_bytes"`
	Job          *string `json:"job"`
}

// Collect reads the jobs, their states and the task history.
func (b *Backups) Collect(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	p := pveFiles{Files: b.Files, Timeout: b.Timeout}
	guests, err := p.localGuests(ctx, b.EtcDir, b.Node)
	if err != nil {
		return nil, err
	}
	jobs, pools, err := b.jobs(ctx, p)
	if err != nil {
		return nil, err
	}
	states, err := b.states(ctx, p, jobs)
	if err != nil {
		return nil, err
	}
	jobOf := map[string]string{} // UPID of a job's last run -> job id
	for id, s := range states {
		if s.UPID != "" {
			jobOf[s.UPID] = id
		}
	}
	h := &history{b: b, p: p, jobOf: jobOf, want: map[uint64]bool{}, found: map[uint64]GuestBackup{}, done: map[string]bool{}}
	for _, g := range guests {
		h.want[g.VMID] = true
	}
	if err := h.collect(ctx); err != nil {
		return nil, err
	}
	out := BackupsData{Jobs: []BackupJobData{}, Guests: []GuestBackup{}, Uncovered: []uint64{}}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, jobData(j, states[j.ID], h.byUPID))
	}
	for _, g := range guests {
		gb, ok := h.found[g.VMID]
		if !ok {
			gb = GuestBackup{VMID: g.VMID}
		}
		out.Guests = append(out.Guests, gb)
		if !covered(g, jobs, b.Node, pools) {
			out.Uncovered = append(out.Uncovered, g.VMID)
		}
	}
	return out, nil
}

func covered(g pmxcfs.VMEntry, jobs []pvehealth.BackupJob, node string, pools map[string][]uint64) bool {
	for _, j := range jobs {
		if j.Covers(g.VMID, node, pools) {
			return true
		}
	}
	return false
}

// jobs reads jobs.cfg (none: no job) and, when an enabled job selects a
// pool, the pools of user.cfg.
func (b *Backups) jobs(ctx context.Context, p pveFiles) ([]pvehealth.BackupJob, map[string][]uint64, error) {
	raw, _, err := p.read(ctx, filepath.Join(b.EtcDir, "jobs.cfg"))
	if err != nil {
		return nil, nil, err
	}
	jobs := pvehealth.ParseJobs(raw)
	pools := map[string][]uint64{}
	for _, j := range jobs {
		if j.Enabled && j.Pool != "" && len(j.VMIDs) == 0 && !j.All {
			users, _, err := p.read(ctx, filepath.Join(b.EtcDir, "user.cfg"))
			if err != nil {
				return nil, nil, err
			}
			pools = pvehealth.ParsePools(users)
			break
		}
	}
	return jobs, pools, nil
}

// jobIDFormat is PVE's pve-configid: a job id that could name a path
// outside the jobs directory is not looked up.
var jobIDFormat = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_\-]+$`)

// states reads each job's state file; a job without one never ran here.
func (b *Backups) states(ctx context.Context, p pveFiles, jobs []pvehealth.BackupJob) (map[string]pvehealth.JobState, error) {
	out := map[string]pvehealth.JobState{}
	for _, j := range jobs {
		if !jobIDFormat.MatchString(j.ID) {
			continue
		}
		path := filepath.Join(b.LibDir, "jobs", "vzdump-"+j.ID+".json")
		raw, ok, err := p.read(ctx, path)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		s, err := pvehealth.ParseJobState(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[j.ID] = s
	}
	return out, nil
}

func jobData(j pvehealth.BackupJob, s pvehealth.JobState, byUPID map[string]pvehealth.Task) BackupJobData {
	d := BackupJobData{ID: j.ID, Enabled: j.Enabled, Schedule: opt(j.Schedule), Storage: opt(j.Storage), Mode: opt(j.Mode),
		VMIDs: nonEmpty(j.VMIDs), All: j.All, Exclude: nonEmpty(j.Exclude), Pool: opt(j.Pool), Node: opt(j.Node)}
	switch s.State {
	case "started":
		d.LastStatus = opt("running")
	case "stopped":
		st := "failed"
		if t := (pvehealth.Task{Status: s.Msg}); t.OK() {
			st = "ok"
		}
		d.LastStatus, d.LastMessage = &st, opt(s.Msg)
	default:
		return d
	}
	if t, err := pvehealth.ParseUPID(s.UPID); err == nil {
		d.LastStart = stamp(t.Start)
		if done, ok := byUPID[s.UPID]; ok && s.State == "stopped" {
			d.LastEnd = stamp(done.End)
		}
	}
	return d
}

func nonEmpty(v []uint64) []uint64 {
	if len(v) == 0 {
		return nil
	}
	return v
}

// history finds each wanted guest's last backup, newest task first.
type history struct {
	b      *Backups
	p      pveFiles
	jobOf  map[string]string
	want   map[uint64]bool
	found  map[uint64]GuestBackup
	byUPID map[string]pvehealth.Task
	logs   int
	// done are the tasks already looked at (index.1 adds older ones).
	done map[string]bool
}

func (h *history) collect(ctx context.Context) error {
	tasks := map[string]pvehealth.Task{}
	dir := filepath.Join(h.b.LogDir, "tasks")
	active, _, err := h.p.read(ctx, filepath.Join(dir, "active"))
	if err != nil {
		return err
	}
	for _, t := range pvehealth.ParseActiveTasks(active, "vzdump") {
		tasks[t.UPID] = t
	}
	for _, name := range []string{"index", "index.1"} {
		if len(h.found) == len(h.want) && name == "index.1" {
			break // every guest found: the rotated index is not needed
		}
		raw, err := h.b.Files.ReadTail(ctx, h.p.Timeout, filepath.Join(dir, name), TaskIndexMaxBytes)
		if err != nil && !isNotExist(err) {
			return err
		}
		for _, t := range pvehealth.ParseTaskIndex(raw, "vzdump") {
			tasks[t.UPID] = t // the index has the end: it wins over active
		}
		h.byUPID = tasks
		if err := h.resolve(ctx, dir, tasks); err != nil {
			return err
		}
	}
	return nil
}

// resolve walks the tasks newest first until every wanted guest has its
// last backup or the round's budget of task logs is spent.
func (h *history) resolve(ctx context.Context, dir string, tasks map[string]pvehealth.Task) error {
	list := make([]pvehealth.Task, 0, len(tasks))
	for _, t := range tasks {
		if t.Node == h.b.Node && !h.done[t.UPID] {
			list = append(list, t)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Start != list[j].Start {
			return list[i].Start > list[j].Start
		}
		return list[i].UPID > list[j].UPID
	})
	for _, t := range list {
		if len(h.found) == len(h.want) {
			return nil
		}
		h.done[t.UPID] = true
		vmid, single := taskGuest(t)
		if single && (!h.want[vmid] || h.has(vmid)) {
			continue // a guest's own backup, already known or not local
		}
		if !single && h.logs >= TaskLogsPerRound {
			continue
		}
		log, err := h.log(ctx, dir, t)
		if err != nil {
			return err
		}
		h.apply(t, log, vmid, single)
	}
	return nil
}

func (h *history) has(vmid uint64) bool { _, ok := h.found[vmid]; return ok }

// taskGuest is the vmid of a one-guest task (a manual backup's id).
func taskGuest(t pvehealth.Task) (uint64, bool) {
	v, err := strconv.ParseUint(t.ID, 10, 64)
	return v, err == nil && v > 0
}

// log reads and parses a task's log from its end; a missing or refused
// log is an empty one (the task's own status still counts).
func (h *history) log(ctx context.Context, dir string, t pvehealth.Task) (pvehealth.VzdumpLog, error) {
	name, ok := t.LogName()
	if !ok || h.logs >= TaskLogsPerRound {
		return pvehealth.VzdumpLog{}, nil
	}
	h.logs++
	raw, err := h.b.Files.ReadTail(ctx, h.p.Timeout, filepath.Join(dir, name), TaskLogMaxBytes)
	if err != nil && !isNotExist(err) {
		if ctx.Err() != nil {
			return pvehealth.VzdumpLog{}, err
		}
		return pvehealth.VzdumpLog{}, nil // one unreadable log does not hide the rest
	}
	return pvehealth.ParseVzdumpLog(raw, h.b.Loc), nil
}

// apply records what task t and its log say about each wanted guest not
// yet found.
func (h *history) apply(t pvehealth.Task, log pvehealth.VzdumpLog, vmid uint64, single bool) {
	seen := false
	for _, g := range log.Guests {
		if !h.want[g.VMID] || h.has(g.VMID) {
			continue
		}
		seen = seen || g.VMID == vmid
		h.found[g.VMID] = h.entry(t, g)
	}
	if single && !seen && !h.has(vmid) {
		// No part for the guest in the log (missing, or vzdump failed
		// before it started): the task's own status is the guest's.
		h.found[vmid] = h.entry(t, pvehealth.GuestRun{VMID: vmid, Status: "running"})
	}
}

func (h *history) entry(t pvehealth.Task, g pvehealth.GuestRun) GuestBackup {
	status, errText := g.Status, g.Error
	if status == "running" && t.End > 0 {
		// The task ended without a result for this guest.
		status = "ok"
		if !t.OK() {
			status, errText = "failed", t.Status
		}
	}
	e := GuestBackup{VMID: g.VMID, Status: &status, Error: opt(errText), ArchiveBytes: g.ArchiveBytes,
		LastStart: stampTime(g.Start), LastEnd: stampTime(g.End)}
	if e.LastStart == nil {
		e.LastStart = stamp(t.Start)
	}
	if e.LastEnd == nil && status != "running" {
		e.LastEnd = stamp(t.End)
	}
	if id, ok := h.jobOf[t.UPID]; ok {
		e.Job = &id
	}
	return e
}
