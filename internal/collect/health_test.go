package collect

import (
	"errors"
	"testing"
	"time"
)

// A source keeps its last success when it starts failing, and its last
// error when it recovers: status shows both, as an operator needs them.
func TestHealthKeepsLastOKAndLastError(t *testing.T) {
	var h Health
	t0 := time.Unix(1000, 0)
	h.Record(t0, t0.Add(2*time.Second), map[string]error{"host": nil, "zfs_pools": errors.New("zpool not found")})
	h.Record(t0.Add(time.Minute), t0.Add(time.Minute+time.Second), map[string]error{"host": errors.New("read loadavg: gone"), "zfs_pools": nil})
	last, took, srcs := h.Snapshot()
	if !last.Equal(t0.Add(time.Minute)) || took != time.Second || len(srcs) != 2 {
		t.Fatalf("%v %v %+v", last, took, srcs)
	}
	host, pools := srcs[0], srcs[1]
	if !host.LastOK.Equal(t0.Add(2*time.Second)) || host.LastError != "read loadavg: gone" {
		t.Errorf("host %+v", host)
	}
	if !pools.LastOK.Equal(t0.Add(time.Minute+time.Second)) || pools.LastError != "zpool not found" || !pools.LastErrorAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("zfs_pools %+v", pools)
	}
}
