// Package sdnotify implements the two parts of systemd's notify protocol the
// agent needs: readiness (READY=1, STOPPING=1) and the watchdog keep-alive
// (WATCHDOG=1), over the datagram socket named by $NOTIFY_SOCKET. Outside
// systemd every call is a no-op.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Messages the agent sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Notifier sends to one socket path ("" = not under systemd).
type Notifier struct {
	Socket string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET.
func FromEnv(getenv func(string) string) Notifier {
	return Notifier{Socket: getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether a notify socket is configured.
func (n Notifier) Enabled() bool { return n.Socket != "" }

// Send writes state as one datagram.
func (n Notifier) Send(state string) error {
	if n.Socket == "" {
		return nil
	}
	name := n.Socket
	if name[0] == '@' { // abstract namespace
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.Socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.Socket, err)
	}
	return nil
}

// WatchdogInterval returns systemd's WatchdogSec for this process, from
// $WATCHDOG_USEC (ignored when $WATCHDOG_PID names another process).
func WatchdogInterval(getenv func(string) string) (time.Duration, bool) {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}
