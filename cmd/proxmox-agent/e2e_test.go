package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// The end-to-end tests run the real binary against a sink on loopback, with
// the fake commands and proc root, a 1 s fast cadence and the dump on. The
// sink restart scenario lives in the fault suite (TestSinkRestarted20Times),
// which asserts everything the e2e version here did and more.

// e2eAgent starts the agent against url with token.
func e2eAgent(t *testing.T, url, token string) *testkit.Agent {
	t.Helper()
	return testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: url, Token: token, DumpDir: t.TempDir()}})
}

func TestE2EBadTokenRetriedAndLoggedOnce(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "right", sink.Faults{})
	agent := e2eAgent(t, s.URL(), "wrong")
	testkit.Eventually(t, 20*time.Second, "4 refused connection attempts", func() bool { return s.Refused.Load() >= 4 })
	agent.Signal(syscall.SIGTERM)
	all := agent.Log()
	if n := strings.Count(all, "HTTP 403"); n != 1 {
		t.Errorf("403 logged %d times over %d attempts:\n%s", n, s.Refused.Load(), all)
	}
	if strings.Contains(all, "wrong") {
		t.Error("token in the log")
	}
}

func TestE2EServerThatNeverReplies(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{NoReply: true})
	agent := e2eAgent(t, s.URL(), "tok")
	if _, err := s.WaitSamples(4, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	agent.WaitLog("server does not reply to pushes")
	agent.Signal(syscall.SIGTERM)
}

// A server that refuses every join: the agent rejoins with backoff, logs
// the refusal once (not per attempt), and pushes nothing.
func TestE2ERefusedJoins(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{RefuseJoins: true})
	agent := e2eAgent(t, s.URL(), "tok")
	// 100 ms, then 500 ms between rejoins.
	testkit.Eventually(t, 20*time.Second, "3 refused joins", func() bool { return s.RefusedJoins.Load() >= 3 })
	agent.Signal(syscall.SIGTERM)
	if n := strings.Count(agent.Log(), "join refused"); n != 1 {
		t.Errorf("refusal logged %d times over %d attempts", n, s.RefusedJoins.Load())
	}
	if len(s.Samples()) != 0 {
		t.Error("samples accepted without a join")
	}
}

// SIGTERM at the very start, before the agent has done anything: never a
// hang, never exit 1. The handler is installed before the config is read,
// so only a signal that lands while the Go runtime itself is starting kills
// the process (-1 here; systemd counts death by SIGTERM as a clean stop).
func TestSIGTERMAtStart(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	codes := map[int]int{}
	for i := 0; i < 10; i++ {
		a := testkit.StartAgent(t, testkit.Options{Config: testkit.Config{URL: s.URL()}})
		a.Signal(syscall.SIGTERM)
		code := a.Wait(10 * time.Second)
		codes[code]++
		if code != 0 && code != -1 {
			t.Fatalf("exit %d after an early SIGTERM; log:\n%s", code, a.Log())
		}
	}
	t.Logf("exit codes over 10 early SIGTERMs: %v (-1: died of the signal before main)", codes)
}
