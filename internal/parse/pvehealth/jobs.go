package pvehealth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// BackupJob is one vzdump job of /etc/pve/jobs.cfg.
type BackupJob struct {
	ID       string
	Enabled  bool
	Schedule string
	Storage  string
	Mode     string
	// Which guests: VMIDs, else All minus Exclude, else the Pool's members.
	VMIDs   []uint64
	All     bool
	Exclude []uint64
	Pool    string
	// Node restricts the job to one node ("" = every node).
	Node string
}

// ParseJobs returns the vzdump jobs of /etc/pve/jobs.cfg (pve-manager
// PVE/Jobs.pm, PVE/Jobs/VZDump.pm; PVE 7.1 to 9), in file order. Other job
// types (realm-sync) are skipped. "enabled" absent means on, as in
// PVE::Jobs. Any bytes parse: a section config is read line by line.
func ParseJobs(b []byte) []BackupJob {
	out := []BackupJob{}
	for _, s := range parseSections(b) {
		if s.Type != "vzdump" {
			continue
		}
		p := s.Props
		out = append(out, BackupJob{
			ID: lenient.Text(s.ID), Enabled: flag(p, "enabled", true), Schedule: lenient.Text(p["schedule"]),
			Storage: lenient.Text(p["storage"]), Mode: lenient.Text(p["mode"]),
			VMIDs: vmidList(p["vmid"]), All: flag(p, "all", false), Exclude: vmidList(p["exclude"]),
			Pool: lenient.Text(p["pool"]), Node: lenient.Text(p["node"]),
		})
	}
	return out
}

// Covers reports whether the job backs up guest vmid living on node, with
// PVE::VZDump::get_included_guests' rules: a node restriction first, then
// the vmid list, else all minus exclude, else the pool's members (pools
// maps pool name to members). A disabled job covers nothing.
func (j BackupJob) Covers(vmid uint64, node string, pools map[string][]uint64) bool {
	if !j.Enabled || (j.Node != "" && j.Node != node) {
		return false
	}
	switch {
	case len(j.VMIDs) > 0:
		return contains(j.VMIDs, vmid)
	case j.All:
		return !contains(j.Exclude, vmid)
	case j.Pool != "":
		return contains(pools[j.Pool], vmid)
	}
	return false
}

func contains(list []uint64, v uint64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// ParsePools returns each pool's guests from /etc/pve/user.cfg
// (PVE::AccessControl parse_user_config: "pool:NAME:COMMENT:VMIDS:STORAGES:"
// lines; other lines, users and ACLs included, are skipped unread).
func ParsePools(b []byte) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("pool:")) {
			continue
		}
		f := strings.Split(strings.TrimSpace(string(line)), ":")
		if len(f) < 2 || f[1] == "" {
			continue
		}
		var vms []uint64
		if len(f) > 3 {
			vms = vmidList(f[3])
		}
		out[f[1]] = append(out[f[1]], vms...)
	}
	return out
}

// JobState is a job's state file, /var/lib/pve-manager/jobs/vzdump-<id>.json
// (PVE/Jobs.pm): "created" (never run), "started" (running, UPID set) or
// "stopped" (Msg is the task's status: "OK", "WARNINGS: n" or the error).
type JobState struct {
	State string
	Msg   string
	UPID  string
	// Time is set for "created" and for a start that failed (unix seconds).
	Time int64
}

// ParseJobState parses a job state file. Empty means "created", as
// PVE::Jobs::read_job_state says; anything else must be a JSON object.
func ParseJobState(b []byte) (JobState, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return JobState{State: "created"}, nil
	}
	var raw struct {
		State lenient.String `json:"state"`
		Msg   lenient.String `json:"msg"`
		UPID  lenient.String `json:"upid"`
		Time  lenient.Int    `json:"time"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return JobState{}, fmt.Errorf("job state: want a JSON object: %w", err)
	}
	if raw.State == "" {
		return JobState{}, fmt.Errorf("job state: no state field")
	}
	return JobState{State: lenient.Text(string(raw.State)), Msg: lenient.Text(string(raw.Msg)), UPID: lenient.Text(string(raw.UPID)), Time: raw.Time.V}, nil
}
