package procfs

import (
	"fmt"
	"strconv"
	"strings"
)

// Bond is /proc/net/bonding/<bond>: the mode and each slave's link state.
type Bond struct {
	Mode      string
	MIIStatus string // the bond's own
	Slaves    []BondSlave
}

// BondSlave is one "Slave Interface:" block.
type BondSlave struct {
	Name         string `json:"name"`
	MIIStatus    string `json:"mii_status"`
	LinkFailures uint64 `json:"link_failures"`
}

// ParseBonding parses the bonding driver's status file. Lines it does not
// know (802.3ad details, LACP PDUs) are skipped. A file without a
// "Bonding Mode:" line is an error: it is not a bond's status.
func ParseBonding(b []byte) (Bond, error) {
	var bd Bond
	var cur *BondSlave
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "Bonding Mode":
			bd.Mode = val
		case "Slave Interface":
			bd.Slaves = append(bd.Slaves, BondSlave{Name: val})
			cur = &bd.Slaves[len(bd.Slaves)-1]
		case "MII Status":
			if cur == nil {
				bd.MIIStatus = val
			} else {
				cur.MIIStatus = val
			}
		case "Link Failure Count":
			if cur != nil {
				if n, err := strconv.ParseUint(val, 10, 64); err == nil {
					cur.LinkFailures = n
				}
			}
		}
	}
	if bd.Mode == "" {
		return Bond{}, fmt.Errorf("bonding: no \"Bonding Mode:\" line in %q", clip(b))
	}
	return bd, nil
}
