package pvehealth

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// CorosyncLink is one node's state on one knet link, as this node sees it.
type CorosyncLink struct {
	Link   uint64 `json:"link"`
	NodeID uint64 `json:"nodeid"`
	Status string `json:"status"` // localhost, connected, disconnected
}

var (
	linkLine   = regexp.MustCompile(`^LINK ID (\d+)`)
	nodeIDLine = regexp.MustCompile(`^\s+nodeid:?\s*(\d+):\s*(\S.*?)\s*$`)
)

// ParseCorosyncStatus parses `corosync-cfgtool -s` (corosync 3.x,
// tools/corosync-cfgtool.c: "LINK ID n <transport>" then a
// "nodeid: N:\t<status>" line per node; 3.0 prints "nodeid N:"). Output
// without a single LINK line is an error: that is not a knet status.
func ParseCorosyncStatus(b []byte) ([]CorosyncLink, error) {
	out := []CorosyncLink{}
	link, seen := uint64(0), false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if m := linkLine.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				return nil, errors.New("corosync-cfgtool: link id out of range")
			}
			link, seen = v, true
			continue
		}
		if m := nodeIDLine.FindStringSubmatch(line); m != nil && seen {
			id, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				continue
			}
			out = append(out, CorosyncLink{Link: link, NodeID: id, Status: m[2]})
		}
	}
	if !seen {
		return nil, errors.New("corosync-cfgtool: no LINK line in the output")
	}
	return out, nil
}
