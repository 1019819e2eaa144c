package pvehealth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Every free-text field taken from a Proxmox file is clipped to about
// lenient.TextMax bytes, marked with lenient.Clipped: a runaway vzdump
// error line (1.5 MB seen) must not ride along in every slow sample.
func TestFreeTextClipped(t *testing.T) {
	huge := strings.Repeat("E", 200000) // the bug was 1.5 MB; any size past TextMax shows it
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name string
		get  func() []string
	}{
		{"vzdump guest error and result", func() []string {
			l := ParseVzdumpLog([]byte("INFO: Starting Backup of VM 100 (qemu)\nERROR: Backup of VM 100 failed - "+huge+"\nTASK ERROR: "+huge+"\n"), time.UTC)
			return []string{l.Guests[0].Error, l.Result}
		}},
		{"task index status", func() []string {
			ts := ParseTaskIndex([]byte("UPID:pve1:000A1B2C:0A3F1E2D:68EF1A00:vzdump::root@pam: 68EF1B00 "+huge+"\n"), "")
			return []string{ts[0].Status}
		}},
		{"active task status", func() []string {
			ts := ParseActiveTasks([]byte("UPID:pve1:000A1B2C:0A3F1E2D:68EF1A00:vzdump::root@pam: 1 68EF1B00 "+huge+"\n"), "")
			return []string{ts[0].Status}
		}},
		{"job state message", func() []string {
			s, _ := ParseJobState([]byte(`{"state":"stopped","msg":"` + huge + `","upid":"x"}`))
			return []string{s.Msg}
		}},
		{"replication error", func() []string {
			m, _ := ParseReplicationState([]byte(`{"100":{"local/pve2":{"error":"` + huge + `"}}}`))
			return []string{m["100/pve2"].Error}
		}},
		{"HA manager and LRM states", func() []string {
			m, _ := ParseManagerStatus([]byte(`{"master_node":"` + huge + `","node_status":{"pve1":"` + huge + `"},"service_status":{"vm:100":{"state":"` + huge + `","node":"` + huge + `"}}}`))
			l, _ := ParseLRMStatus([]byte(`{"mode":"` + huge + `","state":"` + huge + `"}`))
			return []string{m.Master, m.Nodes["pve1"], m.Services["vm:100"].State, m.Services["vm:100"].Node, l.Mode, l.State}
		}},
		{"section config values", func() []string {
			j := ParseJobs([]byte("vzdump: backup-1\n\tschedule " + huge + "\n\tstorage " + huge + "\n\tall 1\n"))
			r := ParseHAResources([]byte("vm: 100\n\tstate " + huge + "\n\tgroup " + huge + "\n"))
			return []string{j[0].Schedule, j[0].Storage, r[0].Requested, r[0].Group}
		}},
		{"pending update", func() []string {
			u, _ := ParseUpdates([]byte(`[{"Package":"` + huge + `","OldVersion":"` + huge + `","Version":"` + huge + `","Origin":"` + huge + `"}]`))
			return []string{u[0].Name, u[0].Old, u[0].New, u[0].Origin}
		}},
		{"subscription status", func() []string {
			s, _ := ParseSubscription([]byte("pve2c-0123456789\nsum\n" + b64(`{"status":"`+huge+`","nextduedate":"`+huge+`"}`) + "\n"))
			return []string{s.Status, s.NextDue}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, s := range c.get() {
				if len(s) > lenient.TextMax+len(lenient.Clipped) || !strings.HasSuffix(s, lenient.Clipped) {
					t.Errorf("field %d: %d bytes, suffix %q", i, len(s), s[max(0, len(s)-8):])
				}
			}
		})
	}
}
