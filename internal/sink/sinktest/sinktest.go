// Package sinktest starts sinks for tests, the way net/http/httptest starts
// servers: on loopback, stopped when the test ends.
package sinktest

import (
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
)

// Start runs a sink accepting token with faults on addr ("127.0.0.1:0" for
// any port). When addr was just used by a stopped sink, it waits for the
// port to be free again. The sink is stopped at the end of the test.
func Start(t testing.TB, addr, token string, faults sink.Faults) *sink.Server {
	t.Helper()
	s := sink.New(token)
	s.Faults = faults
	if err := s.Restart(addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// FreeAddr is a loopback address nothing listens on: a server that is away.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := sink.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
