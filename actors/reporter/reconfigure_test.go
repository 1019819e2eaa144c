package reporter

import (
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
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
	// Samples sent after the panic go to the restarted instance: wait for
	// the last of them at B (a count could be met by sample 0 resent there
	// after the reload), then A must have nothing but sample 0.
	testkit.Eventually(t, 10*time.Second, "sample 4 at server B", func() bool { return pushesPer(t, b.Samples())[4] > 0 })
	for _, i := range indexes(t, a.Samples()) {
		if i != 0 {
			t.Errorf("server A got sample %d; only sample 0 was for it", i)
		}
	}
}
