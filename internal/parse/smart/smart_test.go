package smart

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smartctl-scan.json imitates `smartctl --scan -j` (smartmontools 7.4).
func TestParseScan(t *testing.T) {
	ds, err := ParseScan(read(t, "smartctl-scan.json"))
	if err != nil || len(ds) != 5 || ds[3] != (Device{"/dev/nvme0", "nvme", "NVMe"}) || ds[4].Type != "megaraid,0" {
		t.Fatalf("%+v %v", ds, err)
	}
	if _, err := ParseScan([]byte("smartctl: command not found")); err == nil {
		t.Error("garbage accepted")
	}
}

// smartctl-a-sata-ssd.json imitates `smartctl -j -a -n standby /dev/sda`,
// smartctl-a-hdd-standby.json the same for a sleeping disk (exit 2).
func TestParseDisk(t *testing.T) {
	cases := []struct {
		name string
		file string
		exit int
		want Disk
	}{
		{"ssd", "smartctl-a-sata-ssd.json", 0, Disk{Device: "/dev/sda", Type: "sat", Protocol: "ATA",
			Model: "Samsung SSD 870 EVO 1TB", Serial: "S6PTNZ0R601234X", Rotational: lenient.Bool{V: false, Valid: true},
			Passed: lenient.Bool{V: true, Valid: true}, TemperatureC: lenient.Int{V: 34, Valid: true},
			PowerOnHours: lenient.U(8712), PercentageUsed: lenient.U(2), Reallocated: lenient.U(0), Problems: []string{}}},
		{"asleep", "smartctl-a-hdd-standby.json", 2, Disk{Device: "/dev/sdc", Type: "sat", Protocol: "ATA",
			Asleep: true, ExitStatus: 2, Problems: []string{}}},
		{"failing bit is data", "smartctl-a-sata-ssd.json", BitFailing | BitErrorLog, Disk{Device: "/dev/sda", Type: "sat", Protocol: "ATA",
			Model: "Samsung SSD 870 EVO 1TB", Serial: "S6PTNZ0R601234X", Rotational: lenient.Bool{V: false, Valid: true},
			Passed: lenient.Bool{V: true, Valid: true}, TemperatureC: lenient.Int{V: 34, Valid: true},
			PowerOnHours: lenient.U(8712), PercentageUsed: lenient.U(2), Reallocated: lenient.U(0),
			ExitStatus: BitFailing | BitErrorLog, Problems: []string{"disk_failing", "error_log_entries"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseDisk(read(t, c.file), c.exit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseDiskNVMeAndErrors(t *testing.T) {
	d, err := ParseDisk([]byte(`{"device":{"name":"/dev/nvme0","type":"nvme","protocol":"NVMe"},"model_name":"X","smart_status":{"passed":false},
		"nvme_smart_health_information_log":{"percentage_used":17,"media_errors":"3"}}`), BitFailing)
	if err != nil || d.PercentageUsed != lenient.U(17) || d.MediaErrors != lenient.U(3) || d.Passed.V || d.Rotational.V {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := ParseDisk([]byte(`{"device":{"name":"/dev/sdz"},"smartctl":{"messages":[{"string":"No such device"}]}}`), BitOpenFailed); err == nil {
		t.Error("open failure not an error")
	}
	if _, err := ParseDisk([]byte(`{"smartctl":{"messages":[{"string":"/dev/sdb: Unable to detect device type"}]}}`), BitCmdLine); err == nil ||
		!strings.Contains(err.Error(), "Unable to detect") {
		t.Errorf("exit bit 0: %v", err)
	}
	if _, err := ParseDisk(nil, BitOpenFailed); err == nil {
		t.Error("empty output accepted")
	}
	if _, err := ParseDisk([]byte(`{"device":`), 0); err == nil {
		t.Error("truncated accepted")
	}
}
