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
	static map[string]*netStatic
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
	holdFor(&n.r, n)
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
		n.prev, n.static = map[string]netPrev{}, map[string]*netStatic{}
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
		if p.round != n.round { // gone: forget it, so churn cannot grow the maps
			delete(n.prev, name)
			if st := n.static[name]; st != nil {
				n.r.release(&st.oper)
			}
			delete(n.static, name)
		}
	}
	n.prevAt = now
	slices.SortFunc(out, func(a, b NetIf) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// netStatic is what changes rarely while an interface exists: read again
// every netRescanRounds rounds, when the interface is new, and when its
// operstate changed (a link coming up renegotiates its speed). Only
// operstate is read every round, through a file kept open.
type netStatic struct {
	dir           string
	kind, ifindex string
	speed, mtu    lenient.Uint
	master        optString
	operstate     optString
	oper          heldFile
	round         uint64
}

// netRescanRounds: 20 fast rounds are 10 minutes at the default cadence.
const netRescanRounds = 20

// one builds an interface's entry; false when it vanished since
// /proc/net/dev was read.
func (n *Net) one(d *procfs.NetDevStat, secs float64) (NetIf, bool) {
	ifc := NetIf{Name: string(d.Name), RxErrors: d.RxErrors, TxErrors: d.TxErrors, RxDropped: d.RxDropped, TxDropped: d.TxDropped}
	cur := [4]uint64{d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets}
	st := n.static[ifc.Name]
	if st == nil {
		st = &netStatic{dir: filepath.Join(n.Sys, "class", "net", ifc.Name)}
		n.static[ifc.Name] = st
	}
	oper := optString("")
	b, err := n.r.readHeld(&st.oper, st.dir, "operstate")
	if err != nil && absent(err) {
		n.r.release(&st.oper)
		delete(n.static, ifc.Name)
		return NetIf{}, false // gone since /proc/net/dev was read, or not in this sys root
	}
	if err == nil {
		oper = optString(sysfs.Text(b))
	}
	if st.round == 0 || n.round-st.round >= netRescanRounds || oper != st.operstate {
		n.readStatic(st)
		st.operstate = oper
	}
	ifc.Kind, ifc.Operstate, ifc.SpeedMbps, ifc.MTU, ifc.Master = st.kind, oper, st.speed, st.mtu, st.master
	if ifc.Kind == "bond" {
		if b, err := n.r.read(filepath.Join(n.Proc, "net", "bonding", ifc.Name)); err == nil {
			if bd, err := procfs.ParseBonding(b); err == nil {
				ifc.Mode, ifc.Slaves = bd.Mode, bd.Slaves
			}
		}
	}
	p, seen := n.prev[ifc.Name]
	var delta [4]uint64
	if seen && secs > 0 && p.ifindex == st.ifindex && rate.Deltas(p.c[:], cur[:], delta[:]) {
		ifc.RxBytesPerS, ifc.TxBytesPerS = rate.PerSecond(delta[0], secs), rate.PerSecond(delta[1], secs)
		ifc.RxPacketsPerS, ifc.TxPacketsPerS = rate.PerSecond(delta[2], secs), rate.PerSecond(delta[3], secs)
	}
	n.prev[ifc.Name] = netPrev{c: cur, ifindex: st.ifindex, round: n.round}
	return ifc, true
}

// readStatic reads the interface's kind (uevent's DEVTYPE; physical when
// it has a device link), its ifindex (which tells a recreated interface of
// the same name, a tap when its VM restarts, from the old one), speed
// (EINVAL when the link is down: null), mtu and master.
func (n *Net) readStatic(st *netStatic) {
	st.round, st.kind, st.ifindex = n.round, "other", ""
	st.speed, st.mtu, st.master = lenient.Uint{}, lenient.Uint{}, ""
	dirfd, err := openDir(st.dir)
	if err != nil {
		return
	}
	defer unix.Close(dirfd)
	if ue, err := n.r.readAttr(dirfd, st.dir, "uevent"); err == nil {
		devtype := sysfs.Uevent(ue, "DEVTYPE")
		st.ifindex = sysfs.Uevent(ue, "IFINDEX")
		switch devtype {
		case "bond", "bridge", "vlan":
			st.kind = devtype
		default:
			var s unix.Stat_t
			if unix.Fstatat(dirfd, "device", &s, unix.AT_SYMLINK_NOFOLLOW) == nil { // a link to the bus device: real hardware
				st.kind = "physical"
			}
		}
	}
	if b, err := n.r.readAttr(dirfd, st.dir, "speed"); err == nil {
		if v, ok := sysfs.ParseSpeed(b); ok {
			st.speed = lenient.U(v)
		}
	}
	if b, err := n.r.readAttr(dirfd, st.dir, "mtu"); err == nil {
		if v, err := sysfs.ParseUint(b); err == nil {
			st.mtu = lenient.U(v)
		}
	}
	st.master = optString(readlinkBase(dirfd, "master"))
}
