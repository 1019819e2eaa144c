// Package smart parses smartctl's JSON output (smartmontools >= 7.0). The
// exit status is a bitmask and part of the data: JSON is printed even when
// it is non-zero, and with -n standby a sleeping disk exits 2 with only the
// header objects.
package smart

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Exit status bits (smartctl(8) RETURN VALUES).
const (
	BitCmdLine      = 1 << 0 // command line did not parse
	BitOpenFailed   = 1 << 1 // device open failed, or standby with -n standby
	BitCmdFailed    = 1 << 2 // a SMART or ATA command failed, or checksum error
	BitFailing      = 1 << 3 // SMART status: DISK FAILING
	BitPrefail      = 1 << 4 // prefail attributes at or below threshold
	BitWasPrefail   = 1 << 5 // usage or prefail attributes were below threshold in the past
	BitErrorLog     = 1 << 6 // the device error log has errors
	BitSelfTestErrs = 1 << 7 // the self-test log has errors
)

// Device is one entry of `smartctl --scan -j`.
type Device struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
}

// ParseScan parses `smartctl --scan -j`.
func ParseScan(b []byte) ([]Device, error) {
	var doc struct {
		Devices []struct {
			Name     lenient.String `json:"name"`
			Type     lenient.String `json:"type"`
			Protocol lenient.String `json:"protocol"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("smartctl --scan: invalid JSON: %w", err)
	}
	out := []Device{}
	for _, d := range doc.Devices {
		if d.Name != "" {
			out = append(out, Device{string(d.Name), string(d.Type), string(d.Protocol)})
		}
	}
	return out, nil
}

// Disk is one disk in the disks payload.
type Disk struct {
	Device   string `json:"device"`
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	// Asleep: in standby and deliberately not woken; the rest is unknown.
	Asleep bool   `json:"asleep"`
	Model  string `json:"model"`
	Serial string `json:"serial"`
	// Rotational is false for SSDs and NVMe.
	Rotational     lenient.Bool `json:"rotational"`
	Passed         lenient.Bool `json:"passed"`
	TemperatureC   lenient.Int  `json:"temperature_c"`
	PowerOnHours   lenient.Uint `json:"power_on_hours"`
	PercentageUsed lenient.Uint `json:"percentage_used"`
	Reallocated    lenient.Uint `json:"reallocated_sectors"`
	MediaErrors    lenient.Uint `json:"media_errors"`
	ExitStatus     int          `json:"exit_status"`
	// Problems names the exit status bits that mean trouble.
	Problems []string `json:"problems"`
}

type rawDisk struct {
	Smartctl struct {
		Messages []struct {
			String lenient.String `json:"string"`
		} `json:"messages"`
	} `json:"smartctl"`
	Device struct {
		Name     lenient.String `json:"name"`
		Type     lenient.String `json:"type"`
		Protocol lenient.String `json:"protocol"`
	} `json:"device"`
	ModelName    lenient.String `json:"model_name"`
	Serial       lenient.String `json:"serial_number"`
	RotationRate lenient.Uint   `json:"rotation_rate"`
	SmartStatus  *struct {
		Passed lenient.Bool `json:"passed"`
	} `json:"smart_status"`
	Temperature struct {
		Current lenient.Int `json:"current"`
	} `json:"temperature"`
	PowerOnTime struct {
		Hours lenient.Uint `json:"hours"`
	} `json:"power_on_time"`
	ATAAttributes struct {
		Table []struct {
			ID    lenient.Uint `json:"id"`
			Value lenient.Uint `json:"value"`
			Raw   struct {
				Value lenient.Uint `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	NVMe *struct {
		PercentageUsed lenient.Uint `json:"percentage_used"`
		MediaErrors    lenient.Uint `json:"media_errors"`
	} `json:"nvme_smart_health_information_log"`
}

// ParseDisk parses `smartctl -j -a -n standby <dev>` given its exit status.
func ParseDisk(b []byte, exit int) (Disk, error) {
	var r rawDisk
	if err := json.Unmarshal(b, &r); err != nil {
		if exit&BitOpenFailed != 0 {
			return Disk{}, fmt.Errorf("smartctl: cannot open device (exit %d)", exit)
		}
		return Disk{}, fmt.Errorf("smartctl: invalid JSON (exit %d): %w", exit, err)
	}
	d := Disk{
		Device: string(r.Device.Name), Type: string(r.Device.Type), Protocol: string(r.Device.Protocol),
		Model: string(r.ModelName), Serial: string(r.Serial), ExitStatus: exit, Problems: problems(exit),
	}
	if exit&BitCmdLine != 0 {
		return d, fmt.Errorf("smartctl: command line not accepted (exit %d)%s", exit, firstMessage(r))
	}
	if exit&BitOpenFailed != 0 {
		for _, m := range r.Smartctl.Messages {
			if strings.Contains(strings.ToUpper(string(m.String)), "STANDBY") {
				d.Asleep = true
				d.Problems = []string{}
				return d, nil
			}
		}
		return d, fmt.Errorf("smartctl: cannot open %s (exit %d)%s", d.Device, exit, firstMessage(r))
	}
	if r.RotationRate.Valid {
		d.Rotational = lenient.Bool{V: r.RotationRate.V > 0, Valid: true}
	}
	if strings.EqualFold(d.Protocol, "NVMe") {
		d.Rotational = lenient.Bool{V: false, Valid: true}
	}
	if r.SmartStatus != nil {
		d.Passed = r.SmartStatus.Passed
	}
	d.TemperatureC = r.Temperature.Current
	d.PowerOnHours = r.PowerOnTime.Hours
	if n := r.NVMe; n != nil {
		d.PercentageUsed, d.MediaErrors = n.PercentageUsed, n.MediaErrors
	}
	for _, a := range r.ATAAttributes.Table {
		switch a.ID.V {
		case 5:
			d.Reallocated = a.Raw.Value
		case 177, 231, 233: // wear leveling / life left / wearout: normalised 100 → 0
			if !d.PercentageUsed.Valid && a.Value.Valid && a.Value.V <= 100 {
				d.PercentageUsed = lenient.U(100 - a.Value.V)
			}
		}
	}
	return d, nil
}

func problems(exit int) []string {
	names := []struct {
		bit  int
		name string
	}{
		{BitCmdFailed, "smart_command_failed"}, {BitFailing, "disk_failing"}, {BitPrefail, "prefail_attributes"},
		{BitWasPrefail, "past_prefail_attributes"}, {BitErrorLog, "error_log_entries"}, {BitSelfTestErrs, "self_test_errors"},
	}
	out := []string{}
	for _, n := range names {
		if exit&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func firstMessage(r rawDisk) string {
	if len(r.Smartctl.Messages) == 0 {
		return ""
	}
	return ": " + string(r.Smartctl.Messages[0].String)
}
