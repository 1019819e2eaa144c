package writer

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Seed diagnostics_test "with writer running": the handle's three calls land
// in the right files, in the seed's formats.
func TestHandleThroughWriter(t *testing.T) {
	f := start(t, t.TempDir())
	h := NewHandle(f.sys.Root, f.pid, discard)
	h.Command(dump.CommandRecord{At: time.Now(), Command: "zpool", Args: []string{"list", "-j"}, Stdout: []byte("body"), Duration: 2500 * time.Microsecond})
	h.Sample("fast", time.Now(), []byte(`{"zfs_pools": {"pools": []}}`))
	h.Read("/proc/loadavg", time.Now(), []byte("0.12 0.34 0.56 1/200 3000"), nil, 150*time.Microsecond)
	f.flush()
	cmds := f.read(CommandsFile)
	mustContain(t, cmds, "$ zpool list -j", "exit=0", "size=4", "$ cat /proc/loadavg", "0.12 0.34 0.56")
	mustContain(t, f.read(SamplesFile), "kind=fast", `"zfs_pools"`)
}

// BenchmarkHandleEnabled is the caller-side cost of one dump call with the
// dump on: building the record and enqueueing it (the write happens later,
// on the writer's goroutine).
func BenchmarkHandleEnabled(b *testing.B) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	pid := sys.Root.Spawn(Props(b.TempDir(), discard))
	h := NewHandle(sys.Root, pid, discard)
	args := []string{"status", "-j"}
	out := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		h.Command(dump.CommandRecord{At: time.Now(), Command: "zpool", Args: args, Stdout: out})
	}
	b.StopTimer()
	sys.Root.RequestFuture(pid, &messages.Flush{}, time.Minute).Wait()
}

// BenchmarkWriterThroughput measures entries/s the writer puts on disk,
// from the first send to the flush barrier (4 KiB bodies, like a zpool status).
func BenchmarkWriterThroughput(b *testing.B) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	defer sys.Shutdown()
	dir := b.TempDir()
	pid := sys.Root.Spawn(Props(dir, discard))
	out := make([]byte, 4096)
	rec := &dump.CommandRecord{At: time.Now(), Command: "zpool", Args: []string{"status"}, Stdout: out}
	b.SetBytes(int64(len(out)))
	flush := func() {
		if _, err := sys.Root.RequestFuture(pid, &messages.Flush{}, time.Minute).Result(); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	// Flush every 256 entries so the timed loop measures the writer, not how
	// fast a mailbox can grow.
	for i := 0; b.Loop(); i++ {
		sys.Root.Send(pid, rec)
		if i%256 == 255 {
			flush()
		}
	}
	flush()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}
