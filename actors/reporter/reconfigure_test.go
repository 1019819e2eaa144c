package reporter

import (
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// A reload moves the reporter to server B; a later restart of the actor
// (a panic) stays on B: the restarted instance does not go back to the
// server it was spawned with.
func TestReconfiguredServerSurvivesRestart(t *testing.T) {
	addrA, addrB := sinktest.FreeAddr(t), sinktest.FreeAddr(t)
	a := sinktest.Start(t, addrA, "tok", sink.Faults{})
	b := sinktest.Start(t, addrB, "tok", sink.Faults{})
	f := startReporter(t, "ws://"+addrA+"/socket/websocket", nil)
	f.sample(0)
	if _, err := a.WaitSamples(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	s := Server{URL: "ws://" + addrB + "/socket/websocket", Token: "tok", Topic: "agent:t", HostID: "t", Version: "test",
		Heartbeat: time.Second, ReplyTimeout: 300 * time.Millisecond}
	f.sys.Root.Send(f.pid, &Reconfigure{Server: s})
	f.sample(1)
	if _, err := b.WaitSamples(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.sys.Root.Send(f.pid, &messages.Sample{Kind: "fast", CollectedAt: base, Data: map[string]any{"x": panicky{}}})
	for i := 2; i < 5; i++ {
		f.sample(i)
	}
	// Samples sent after the panic go to the restarted instance's queue
	// (or were lost with the old one's memory queue): wait until B has the
	// last one, then A must not have got anything more.
	if _, err := b.WaitSamples(2, 10*time.Second); err != nil {
		t.Fatalf("the restarted reporter delivered nothing to B: %v (A has %d)", err, len(a.Samples()))
	}
	if n := len(a.Samples()); n != 1 {
		t.Errorf("server A got %d samples; only the first was for it", n)
	}
}
