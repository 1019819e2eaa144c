package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSendReachesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := FromEnv(func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return path
		}
		return ""
	})
	if !n.Enabled() {
		t.Fatal("not enabled")
	}
	for _, msg := range []string{Ready, Watchdog, Stopping} {
		if err := n.Send(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := ln.Read(buf)
		if err != nil || string(buf[:k]) != msg {
			t.Fatalf("got %q %v, want %q", buf[:k], err, msg)
		}
	}
	if err := (Notifier{}).Send(Ready); err != nil {
		t.Errorf("no socket: %v", err)
	}
	if err := (Notifier{Socket: filepath.Join(t.TempDir(), "missing")}).Send(Ready); err == nil {
		t.Error("missing socket: no error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if d, ok := WatchdogInterval(env(map[string]string{"WATCHDOG_USEC": "30000000"})); !ok || d != 30*time.Second {
		t.Errorf("%v %v", d, ok)
	}
	if _, ok := WatchdogInterval(env(map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})); ok && os.Getpid() != 1 {
		t.Error("another pid's watchdog accepted")
	}
	if _, ok := WatchdogInterval(env(map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())})); !ok {
		t.Error("own pid rejected")
	}
	if _, ok := WatchdogInterval(env(map[string]string{})); ok {
		t.Error("no watchdog configured but enabled")
	}
}
