package collect

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/procfs"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/sysfs"
	"github.com/proxmox-agent/proxmox-agent/internal/rate"
)

// NetIf is one interface in the net payload. Rates are per second since
// the previous round (null on the first round, after a counter reset, or
// when the interface was recreated); errors and drops are the kernel's
// counters since the interface appeared.
type NetIf struct {
	Name          string   `json:"name"`
	Kind          string   `json:"kind"` // physical, bond, bridge, vlan, other
	Operstate     *string  `json:"operstate"`
	SpeedMbps     *uint64  `json:"speed_mbps"` // null: no link, or no link settings (bridges)
	MTU           *uint64  `json:"mtu"`
	Master        *string  `json:"master"` // the bond or bridge this one is enslaved to
	RxBytesPerS   *float64 `json:"rx_bytes_per_s"`
	TxBytesPerS   *float64 `json:"tx_bytes_per_s"`
	RxPacketsPerS *float64 `json:"rx_packets_per_s"`
	TxPacketsPerS *float64 `json:"tx_packets_per_s"`
	RxErrors      uint64   `json:"rx_errors"`
	TxErrors      uint64   `json:"tx_errors"`
	RxDropped     uint64   `json:"rx_dropped"` // includes rx_missed_errors, as /proc/net/dev counts them
	TxDropped     uint64   `json:"tx_dropped"`
	// A bond's mode and slaves, from /proc/net/bonding/<bond>.
	Mode   string             `json:"mode,omitempty"`
	Slaves []procfs.BondSlave `json:"slaves,omitempty"`
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
	held   heldPaths   // /proc/net/dev
	bonds  heldPaths   // /proc/net/bonding/*
	devP   string
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
	holdFor(&n.dev, n)
	defer n.dev.sweep(&n.held)
	defer n.r.sweep(&n.bonds)
	now := n.Now()
	if n.devP == "" {
		n.devP = filepath.Join(n.Proc, "net", "dev")
	}
	devPath := n.devP
	b, err := n.dev.readPath(&n.held, devPath)
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
		secs = now.Sub(n.prevAt).Seconds()
	}
	out := make([]NetIf, 0, len(devs))
	nums := newFloats(4 * len(devs))
	for i := range devs {
		d := &devs[i]
		if excluded(n.Exclude, string(d.Name)) || !validName(string(d.Name)) {
			continue
		}
		ifc, ok := n.one(d, secs, nums)
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
	// Set anew on each refresh, never changed in place: samples still
	// being encoded point at them.
	speed, mtu *uint64
	master     *string
	operstate  *string
	oper       heldFile
	round      uint64
}

// netRescanRounds: 20 fast rounds are 10 minutes at the default cadence.
const netRescanRounds = 20

// one builds an interface's entry; false when it vanished since
// /proc/net/dev was read.
func (n *Net) one(d *procfs.NetDevStat, secs float64, nums *floats) (NetIf, bool) {
	ifc := NetIf{Name: string(d.Name), RxErrors: d.RxErrors, TxErrors: d.TxErrors, RxDropped: d.RxDropped, TxDropped: d.TxDropped}
	cur := [4]uint64{d.RxBytes, d.TxBytes, d.RxPackets, d.TxPackets}
	st := n.static[ifc.Name]
	if st == nil {
		st = &netStatic{dir: filepath.Join(n.Sys, "class", "net", ifc.Name)}
		n.static[ifc.Name] = st
	}
	var oper *string
	b, err := n.r.readHeld(&st.oper, st.dir, "operstate")
	if err != nil && absent(err) {
		n.r.release(&st.oper)
		delete(n.static, ifc.Name)
		return NetIf{}, false // gone since /proc/net/dev was read, or not in this sys root
	}
	if err == nil {
		if st.operstate != nil && sameText(*st.operstate, b) {
			oper = st.operstate // unchanged: no new string
		} else {
			t := sysfs.Text(b)
			oper = &t
		}
	}
	if st.round == 0 || n.round-st.round >= netRescanRounds || oper != st.operstate || st.oper.reopened {
		st.oper.reopened = false // maybe a new interface of the same name: read its kind and ifindex again
		n.readStatic(st)
		st.operstate = oper
	}
	ifc.Kind, ifc.Operstate, ifc.SpeedMbps, ifc.MTU, ifc.Master = st.kind, oper, st.speed, st.mtu, st.master
	if ifc.Kind == "bond" {
		if b, err := n.r.readPath(&n.bonds, filepath.Join(n.Proc, "net", "bonding", ifc.Name)); err == nil {
			if bd, err := procfs.ParseBonding(b); err == nil {
				ifc.Mode, ifc.Slaves = bd.Mode, bd.Slaves
			}
		}
	}
	p, seen := n.prev[ifc.Name]
	var delta [4]uint64
	if seen && secs > 0 && p.ifindex == st.ifindex && rate.Deltas(p.c[:], cur[:], delta[:]) {
		ifc.RxBytesPerS, ifc.TxBytesPerS = nums.of(round2(float64(delta[0])/secs)), nums.of(round2(float64(delta[1])/secs))
		ifc.RxPacketsPerS, ifc.TxPacketsPerS = nums.of(round2(float64(delta[2])/secs)), nums.of(round2(float64(delta[3])/secs))
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
	st.speed, st.mtu, st.master = nil, nil, nil
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
			st.speed = &v
		}
	}
	if b, err := n.r.readAttr(dirfd, st.dir, "mtu"); err == nil {
		if v, err := sysfs.ParseUint(b); err == nil {
			st.mtu = &v
		}
	}
	if m := readlinkBase(dirfd, "master"); m != "" {
		st.master = &m
	}
}

// sameText reports whether b, as sysfs.Text would make it, is s.
func sameText(s string, b []byte) bool {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b) == s
}
