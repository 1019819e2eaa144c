package reporter

import (
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/delivery"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// BenchmarkPushesToSink measures samples per second from the reporter's
// mailbox to the sink's record, acks included, over loopback.
func BenchmarkPushesToSink(b *testing.B) {
	s := sink.New("tok")
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	pid := sys.Root.Spawn(Props(Options{Server: Server{URL: s.URL(), Token: "tok", Topic: "agent:b", ReplyTimeout: time.Second},
		Log: discard, MaxSamples: 1 << 20, MaxBytes: 1 << 30}))
	defer func() { sys.Root.PoisonFuture(pid).Wait() }()
	data := map[string]any{"host": map[string]any{"load1": 0.5, "mem_total": 67364909056}}
	// Warm up: connected, joined, ack mode learnt.
	sys.Root.Send(pid, &messages.Sample{Kind: "fast", CollectedAt: time.Now(), Data: data})
	if _, err := s.WaitSamples(1, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sys.Root.Send(pid, &messages.Sample{Kind: "fast", CollectedAt: time.Now(), Data: data})
	}
	if _, err := s.WaitSamples(b.N+1, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pushes/s")
}

// BenchmarkQueuedSampleMemory reports heap bytes per sample held in the
// queue while the server is away, for a realistic fast payload (the golden
// fast sample, about 5 KiB of JSON).
func BenchmarkQueuedSampleMemory(b *testing.B) {
	body, err := os.ReadFile("../../internal/collect/testdata/golden/fast.json")
	if err != nil {
		b.Fatal(err)
	}
	const n = 2000
	var total float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		q := &delivery.Queue{MaxItems: n, MaxBytes: 1 << 30}
		for i := 0; i < n; i++ {
			q.Push(&delivery.Item{Kind: "fast", CollectedAt: time.Now(), Body: append([]byte(nil), body...)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(q)
	}
	b.ReportMetric(total/float64(b.N), "B/sample")
	b.ReportMetric(float64(len(body)), "payload-B")
}
