package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/delivery"
)

func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "st")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

func TestServeFetchRoundTrip(t *testing.T) {
	path := sockPath(t)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	want := Doc{Version: "1.2.3", PID: 42, StartedAt: now, Server: "wss://h/s?token=REDACTED", Joined: true, Connected: true,
		Queue:    Queue{Spool: "/var/lib/x/spool.db", Stats: delivery.Stats{Depth: 3, Bytes: 9000, Poisoned: 1}},
		Cadences: []Cadence{{Kind: "fast", Interval: 30 * time.Second, Rounds: 7}},
		Sources:  []Source{{Cadence: "fast", Name: "host", LastOK: now}}}
	s, err := Serve(path, func() Doc { return want })
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %o", st.Mode().Perm())
	}
	got, err := Fetch(path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "1.2.3" || got.Queue.Poisoned != 1 || len(got.Cadences) != 1 || !got.Sources[0].LastOK.Equal(now) {
		t.Fatalf("%+v", got)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("socket left behind")
	}
	if _, err := Fetch(path, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after close: %v", err)
	}
}

// A socket left by a killed agent is replaced; any other file is not.
func TestServeReplacesOnlyStaleSockets(t *testing.T) {
	path := sockPath(t)
	ln, _ := net.Listen("unix", path)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a stale socket file stays
	s, err := Serve(path, func() Doc { return Doc{} })
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s.Close()
	os.WriteFile(path, []byte("keep me"), 0o600)
	if _, err := Serve(path, func() Doc { return Doc{} }); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("a regular file was replaced")
	}
}

func TestRender(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	d := Doc{Version: "1.2.3", PID: 42, StartedAt: now.Add(-2 * time.Hour), Server: "wss://h/s", Connected: false, Since: now.Add(-90 * time.Second),
		LastError: "dial tcp: connection refused",
		Queue: Queue{Spool: "/s/spool.db", Stats: delivery.Stats{Fallback: true, Depth: 12, Bytes: 3 << 20, Oldest: now.Add(-5 * time.Minute), Dropped: 2, Poisoned: 1,
			Pushed: 40, Acked: 30, Refused: 7, Corrupt: 3, Quarantined: 1, FallbackReason: "spool /s/spool.db: refused: directory mode 0777",
			Kept: []string{"/s/spool.db.corrupt-20261129T115500Z (spool file damaged: page 3 outside the file's 2 pages)"}},
			SetAside: "/s/set-aside.log", SetAsideBytes: 4096},
		Cadences: []Cadence{{Kind: "fast", Interval: 30 * time.Second, Rounds: 240, Skipped: 1, LastRound: now.Add(-10 * time.Second), LastDuration: 120 * time.Millisecond}},
		Sources: []Source{{Cadence: "fast", Name: "zfs_pools", LastOK: now.Add(-time.Hour), LastError: "zpool status: timed out after 10s\nmore", LastErrorAt: now.Add(-10 * time.Second)},
			{Cadence: "slow", Name: "disks"}}}
	var b bytes.Buffer
	if err := Render(&b, d, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"disconnected for 2m0s\n", "12 samples, 3.0 MiB, oldest 5m0s old", "unusable: in memory", "dropped 2, poisoned 1, corrupt 3 (kept in the set-aside file), damaged spool files moved aside 1",
		"delivery            pushed 40, acked 30, refused 7 (the server answered them with an error",
		"spool problem       spool /s/spool.db: refused: directory mode 0777",
		"damaged spool kept  /s/spool.db.corrupt-20261129T115500Z (spool file damaged: page 3",
		"set aside: 4.0 KiB in /s/set-aside.log (send with proxmox-agent replay)",
		"fast     30s       240     1        10s ago", "120ms",
		"zfs_pools  fast     1h0m0s ago  10s ago: zpool status: timed out after 10s\n", "disks      slow     never       -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A second agent does not take over the socket of a running one, and an
// agent never removes a socket that is no longer its own. Found by review.
func TestServeRefusesALiveSocket(t *testing.T) {
	path := sockPath(t)
	first, err := Serve(path, func() Doc { return Doc{PID: 1} })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(path, func() Doc { return Doc{PID: 2} }); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Serve: %v", err)
	}
	if d, err := Fetch(path, time.Second); err != nil || d.PID != 1 {
		t.Fatalf("status answered by %d (%v), want the first agent", d.PID, err)
	}
	// Someone replaced the path (a new agent after this one was presumed
	// dead): closing this one must leave the new socket alone.
	os.Remove(path)
	second, err := Serve(path, func() Doc { return Doc{PID: 2} })
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if d, err := Fetch(path, time.Second); err != nil || d.PID != 2 {
		t.Fatalf("after the first closed: %d %v", d.PID, err)
	}
	second.Close()
}

// Anyone who can create the socket's path can answer `status` in the
// agent's place: a directory that others own or can write to is refused,
// and nothing is made in it. Issue 17 item 3.
func TestServeRefusesADirectoryOthersCanWrite(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the socket's dir
		root  bool                                  // needs chown
	}{
		{"world-writable", func(t *testing.T, d string) string { os.Chmod(d, 0o777); return d }, false},
		{"group-writable", func(t *testing.T, d string) string { os.Chmod(d, 0o770); return d }, false},
		{"sticky world-writable (like /tmp)", func(t *testing.T, d string) string { os.Chmod(d, 0o1777); return d }, false},
		{"under a world-writable non-sticky parent", func(t *testing.T, d string) string {
			os.Chmod(d, 0o777)
			sub := filepath.Join(d, "run")
			os.Mkdir(sub, 0o700)
			return sub
		}, false},
		{"missing, under a world-writable parent", func(t *testing.T, d string) string {
			os.Chmod(d, 0o777)
			return filepath.Join(d, "new")
		}, false},
		{"owned by another user", func(t *testing.T, d string) string {
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Skip("cannot chown (not root):", err)
			}
			return d
		}, true},
		{"a symlink to a world-writable directory", func(t *testing.T, d string) string {
			target := filepath.Join(d, "open")
			os.Mkdir(target, 0o700)
			os.Chmod(target, 0o777)
			link := filepath.Join(d, "link")
			os.Symlink(target, link)
			return link
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t, filepath.Dir(sockPath(t)))
			path := filepath.Join(dir, "s.sock")
			s, err := Serve(path, func() Doc { return Doc{} })
			if err == nil {
				s.Close()
				t.Fatal("served")
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "status socket directory") {
				t.Fatalf("error %v", err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("something was made at %s: %v", path, err)
			}
		})
	}
}

// A socket at the path that is not the agent user's own is neither
// removed nor taken over, even when nobody answers on it. Issue 17 item 3.
func TestServeLeavesAForeignSocket(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Skip("cannot chown (not root):", err)
	}
	before, _ := os.Lstat(path)
	s, err := Serve(path, func() Doc { return Doc{} })
	if err == nil {
		s.Close()
		t.Fatal("served over another user's socket")
	}
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("error %v", err)
	}
	if after, err := os.Lstat(path); err != nil || !os.SameFile(before, after) {
		t.Fatalf("the foreign socket was removed or replaced: %v", err)
	}
}

// The client trusts only root or the caller: the peer's uid comes from the
// kernel (SO_PEERCRED), so a forger cannot claim another.
func TestFetchRefusesAnUntrustedPeer(t *testing.T) {
	path := sockPath(t)
	s, err := Serve(path, func() Doc { return Doc{PID: 4242} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sawUID uint32 = 1 << 31
	_, err = fetch(path, time.Second, func(uid uint32) bool { sawUID = uid; return false })
	if !errors.Is(err, ErrUntrusted) || int(sawUID) != os.Geteuid() {
		t.Fatalf("err %v, peer uid %d (want ours, %d)", err, sawUID, os.Geteuid())
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("uid %d (pid %d)", os.Geteuid(), os.Getpid())) {
		t.Errorf("message does not say who answers: %v", err)
	}
	if d, err := Fetch(path, time.Second); err != nil || d.PID != 4242 {
		t.Fatalf("our own agent: %v %+v", err, d)
	}
}

// The attack of issue 17 item 3, end to end: another user binds the path
// in a directory open to it and answers with a made-up document; `status`
// (as root) refuses it, and an agent started later does not serve there.
func TestForgedSocketIsNotTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind as another user")
	}
	dir := filepath.Dir(sockPath(t))
	os.Chmod(dir, 0o1777)
	path := filepath.Join(dir, "s.sock")
	// The forger: a listener bound while the process's effective uid is
	// nobody's (the kernel records the binder's credentials at listen).
	if err := syscall.Setresuid(-1, 65534, -1); err != nil {
		t.Skip("cannot switch euid:", err)
	}
	ln, lerr := net.Listen("unix", path)
	if err := syscall.Setresuid(-1, 0, -1); err != nil {
		t.Fatal("cannot switch back to root:", err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			json.NewEncoder(c).Encode(Doc{PID: 4242, Version: "forged"})
			c.Close()
		}
	}()
	d, err := Fetch(path, time.Second)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("forged status trusted: %v %+v", err, d)
	}
	if s, err := Serve(path, func() Doc { return Doc{} }); !errors.Is(err, ErrRefused) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("agent served from a directory others can write to: %v", err)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// The document `status --json` prints carries every delivery counter the
// engine keeps, under stable names (before: pushed, acked and refused
// never reached it). The golden file is the contract for scripts.
func TestDocJSONGolden(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	d := Doc{Version: "1.2.3", PID: 42, StartedAt: now, Server: "wss://h/s?token=REDACTED", Connected: true, Joined: true, Since: now,
		Queue: Queue{Spool: "/var/lib/proxmox-agent/spool/spool.db", Stats: delivery.Stats{Depth: 3, Bytes: 9000, Oldest: now,
			Pushed: 120, Acked: 100, Refused: 9, Poisoned: 2, Dropped: 4, Corrupt: 6, Quarantined: 1, Rewritten: 1,
			Kept:     []string{"/var/lib/proxmox-agent/spool/spool.db.corrupt-20261129T115500Z (spool file damaged)"},
			Fallback: true, FallbackReason: "spool dir refused"},
			SetAside: "/var/lib/proxmox-agent/spool/set-aside.log", SetAsideBytes: 4096},
		Cadences: []Cadence{}, Sources: []Source{}}
	got, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(bytes.TrimSpace(want)) != string(got) {
		t.Errorf("status --json changed (go test -update to accept):\n%s", got)
	}
	var back Doc
	if err := json.Unmarshal(got, &back); err != nil || back.Queue.Refused != 9 || len(back.Queue.Kept) != 1 {
		t.Errorf("round trip: %+v %v", back.Queue, err)
	}
}
