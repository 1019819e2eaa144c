package supervisor

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
)

// BenchmarkReplay is replay throughput to a loopback sink that acks every
// push: b.N samples of about 4 kB, reported as samples/s.
func BenchmarkReplay(b *testing.B) {
	s := sinktest.Start(b, "127.0.0.1:0", "tok", sink.Faults{})
	cfg := benchConfig(b, s.URL())
	body := []byte(fmt.Sprintf(`{"collected_at":"2026-11-29T10:00:00.000Z","data":{"pad":%q}}`, strings.Repeat("x", 4000)))
	discard := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	sum, err := Replay(ReplayOptions{
		Config: cfg, Log: discard, Total: b.N,
		Samples: func(yield func(dump.LoggedSample) error) error {
			for i := 0; i < b.N; i++ {
				if err := yield(dump.LoggedSample{Kind: "fast", CollectedAt: time.Unix(int64(i), 0), Payload: body}); err != nil {
					return err
				}
			}
			return nil
		},
		SystemOptions: []actor.ConfigOption{actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard })},
	})
	if err != nil || sum.Delivered != b.N {
		b.Fatalf("%d of %d delivered: %v", sum.Delivered, b.N, err)
	}
	b.ReportMetric(float64(b.N)/sum.Elapsed.Seconds(), "samples/s")
}
