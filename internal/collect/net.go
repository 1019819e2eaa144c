package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/sysfs"
	"github.com/proxmox-agent/proxmox-agent/internal/rate"
)

// NetIf is one interface in the net payload. Rates are per second since
// the previous round (null on the first round, after a counter reset, or
// when the interface was recreated); errors and drops are the kernel's
// counters since the interface appeared.
type NetIf struct {
	Name          string        `json:"name"`
	Kind          string        `json:"kind"` // physical, bond, bridge, vlan, other
	Operstate     optString     `json:"operstate"`
	SpeedMbps     lenient.Uint  `json:"speed_mbps"` // null: no link, or no link settings (bridges)
	MTU           lenient.Uint  `json:"mtu"`
	Master        optString     `json:"master"` // the bond or bridge this one is enslaved to
	RxBytesPerS   lenient.Float `json:"rx_bytes_per_s"`
	TxBytesPerS   lenient.Float `json:"tx_bytes_per_s"`
	RxPacketsPerS lenient.Float `json:"rx_packets_per_s"`
	TxPacketsPerS lenient.Float `json:"tx_packets_per_s"`
	RxErrors      uint64        `json:"rx_errors"`
	TxErrors      uint64        `json:"tx_errors"`
	RxDropped     uint64        `json:"rx_dropped"` // includes rx_missed_errors, as /proc/net/dev counts them
	TxDropped     uint64        `json:"tx_dropped"`
	// A bond's mode and slaves, from /proc/net/bonding/<bond>.
	Mode   string             `json:"mode,omitempty"`
	Slaves []procfs.BondSlave `json:"slaves,omitempty"`
}

// optString is text that is null when empty (unreadable, or none).
type optString string

// MarshalJSON writes the string, or null when it is empty.
func (s optString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// Net is the net source. Counters come from <proc>/net/dev, one file for
// every interface (the per-interface statistics/ files would be eight
// reads each); the rest from <sys>/class/net/<if>/. It keeps the previous
// round's counters for the rates.
type Net struct {
	Proc, Sys string
	Exclude   []string
	Dump      *dump.Handle
	Now       func() time.Time

	r      pseudoFiles // sysfs attributes
	dev    pseudoFiles // /proc/net/dev: its parsed names point into this buffer
	devs   []procfs.NetDevStat
	prev   map[string]netPrev
	prevAt time.Time
	round  uint64
}

type netPrev struct {
	c       [4]uint64 // rx bytes, tx bytes, rx packets, tx packets
	ifindex string
	round   uint64
}

// Collect reads the interfaces.
func (n *Net) Collect(context.Context) (any, error) {
	n.r.Dump, n.dev.Dump = n.Dump, n.Dump
	now := n.Now()
	devPath := filepath.Join(n.Proc, "net", "dev")
	b, err := n.dev.read(devPath)
	if err != nil {
		return nil, err
	}
	devs, err := procfs.ParseNetDev(b, n.devs[:0])
	n.devs = devs
	if err != nil {
		return nil, fmt.Errorf("%s: %w", devPath, err)
	}
	if n.prev == nil {
		n.prev = map[string]netPrev{}
	}
	n.round++
	secs := 0.0
	if !n.prevAt.IsZero() {
		secs = rate.Seconds(n.prevAt, now)
	}
	out := make([]NetIf, 0, len(devs))
	for i := range devs {
		d := &devs[i]
		if excluded(n.Exclude, string(d.Name)) || !validName(string(d.Name)) {
			continue
		}
		ifc, ok := n.one(d, secs)
		if ok {
			out = append(out, ifc)
		}
	}
	for name, p := range n.prev {
		if p.round != n.round { // gone: forget it, so churn cannot grow the map
			delete(n.prev, name)
		}
	}
	n.prevAt = now
	slices.SortFunc(out, func(a, b NetIf) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// one builds an interface's entry; false when it vanished since
// /proc/net/dev was read.
func (n *Net) one(d *procfs.NetDevStat, secs float64) (NetIf, bool) {
	ifc := NetIf{Name: string(d.Name), RxErrors: d.RxErrors, TxErrors: d.TxErrors, RxDropped: d.RxDropped, TxDropped: d.TxDropped}
	cur := [4]uint64{d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets}
	dir := filepath.Join(n.Sys, "class", "net", ifc.Name)
	ue, err := n.r.read(filepath.Join(dir, "uevent"))
	if absent(err) {
		return NetIf{}, false
	}
	devtype, ifindex := sysfs.Uevent(ue, "DEVTYPE"), sysfs.Uevent(ue, "IFINDEX")
	switch devtype {
	case "bond", "bridge", "vlan":
		ifc.Kind = devtype
	default:
		ifc.Kind = "other"
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(dir, "device"), &st) == nil { // a link to the bus device: real hardware
			ifc.Kind = "physical"
		}
	}
	if b, err := n.r.read(filepath.Join(dir, "operstate")); err == nil {
		ifc.Operstate = optString(sysfs.Text(b))
	}
	if b, err := n.r.read(filepath.Join(dir, "speed")); err == nil { // EINVAL when down
		if v, ok := sysfs.ParseSpeed(b); ok {
			ifc.SpeedMbps = lenient.U(v)
		}
	}
	if b, err := n.r.read(filepath.Join(dir, "mtu")); err == nil {
		if v, err := sysfs.ParseUint(b); err == nil {
			ifc.MTU = lenient.U(v)
		}
	}
	ifc.Master = optString(readlinkBase(filepath.Join(dir, "master")))
	if ifc.Kind == "bond" {
		if b, err := n.r.read(filepath.Join(n.Proc, "net", "bonding", ifc.Name)); err == nil {
			if bd, err := procfs.ParseBonding(b); err == nil {
				ifc.Mode, ifc.Slaves = bd.Mode, bd.Slaves
			}
		}
	}
	p, seen := n.prev[ifc.Name]
	var delta [4]uint64
	if seen && secs > 0 && p.ifindex == ifindex && rate.Deltas(p.c[:], cur[:], delta[:]) {
		ifc.RxBytesPerS, ifc.TxBytesPerS = rate.PerSecond(delta[0], secs), rate.PerSecond(delta[1], secs)
		ifc.RxPacketsPerS, ifc.TxPacketsPerS = rate.PerSecond(delta[2], secs), rate.PerSecond(delta[3], secs)
	}
	n.prev[ifc.Name] = netPrev{c: cur, ifindex: ifindex, round: n.round}
	return ifc, true
}
