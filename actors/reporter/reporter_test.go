package reporter

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

var discard = slog.New(slog.DiscardHandler)

type fixture struct {
	t   *testing.T
	sys *actor.ActorSystem
	pid *actor.PID
}

func startReporter(t *testing.T, url string, mod func(*Options)) *fixture {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discard }))
	o := Options{
		Server: Server{URL: url, Token: "tok", Topic: "agent:t", HostID: "t", Version: "test",
			Heartbeat: time.Second, ReplyTimeout: 300 * time.Millisecond,
			Reconnect: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond}},
		Log: discard, MaxSamples: 1000, MaxBytes: 1 << 20,
	}
	if mod != nil {
		mod(&o)
	}
	pid := sys.Root.Spawn(Props(o))
	t.Cleanup(func() {
		sys.Root.PoisonFuture(pid).Wait()
		sys.Shutdown()
	})
	return &fixture{t: t, sys: sys, pid: pid}
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (f *fixture) sample(i int) {
	f.sys.Root.Send(f.pid, &messages.Sample{Kind: "fast", CollectedAt: base.Add(time.Duration(i) * time.Millisecond),
		Data: map[string]any{"i": i}})
}

func (f *fixture) status() *messages.Status {
	f.t.Helper()
	res, err := f.sys.Root.RequestFuture(f.pid, &messages.StatusRequest{}, 5*time.Second).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return res.(*messages.Status)
}

func (f *fixture) waitStatus(what string, cond func(*messages.Status) bool) *messages.Status {
	f.t.Helper()
	var st *messages.Status
	testkit.Eventually(f.t, 15*time.Second, what, func() bool {
		st = f.status()
		return cond(st)
	})
	return st
}

// indexes returns each received sample's i, in arrival order.
func indexes(t *testing.T, ss []sink.Sample) []int {
	t.Helper()
	var out []int
	for _, s := range ss {
		var p struct {
			Data struct {
				I int `json:"i"`
			} `json:"data"`
		}
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Data.I)
	}
	return out
}

func startSink(t *testing.T, addr string, faults sink.Faults) *sink.Server {
	return sinktest.Start(t, addr, "tok", faults)
}

func freeAddr(t *testing.T) string { return sinktest.FreeAddr(t) }

func wantSeq(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Fatalf("received %d samples, want %d: %v", len(got), to-from+1, got)
	}
	for k, v := range got {
		if v != from+k {
			t.Fatalf("order broken at %d: %v", k, got)
		}
	}
}

func TestDeliversInOrderWithAcks(t *testing.T) {
	s := startSink(t, "127.0.0.1:0", sink.Faults{})
	f := startReporter(t, s.URL(), nil)
	for i := 0; i < 50; i++ {
		f.sample(i)
	}
	got, err := s.WaitSamples(50, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSeq(t, indexes(t, got), 0, 49)
	st := f.waitStatus("queue drained", func(st *messages.Status) bool { return st.Depth == 0 })
	if !st.Connected || !st.Joined || st.Acked != 50 || st.Pushed != 50 {
		t.Errorf("status %+v", st)
	}
	if got[0].Event != "metric:fast" || got[0].Topic != "agent:t" {
		t.Errorf("event %s topic %s", got[0].Event, got[0].Topic)
	}
}

func TestQueuesWhileAwayThenReplaysInOrder(t *testing.T) {
	addr := freeAddr(t)
	f := startReporter(t, "ws://"+addr+"/socket/websocket", nil)
	for i := 0; i < 20; i++ {
		f.sample(i)
	}
	st := f.waitStatus("queued and a failed dial", func(st *messages.Status) bool { return st.Depth == 20 && st.LastError != "" })
	if st.Connected {
		t.Errorf("status while away %+v", st)
	}
	s := startSink(t, addr, sink.Faults{})
	got, err := s.WaitSamples(20, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSeq(t, indexes(t, got), 0, 19)
}

// The sink is killed and restarted while samples keep coming: every sample
// arrives, in order of first arrival; a duplicate is allowed only for a
// push whose ack was lost with the connection.
func TestSinkRestartsMidStream(t *testing.T) {
	addr := freeAddr(t)
	s := startSink(t, addr, sink.Faults{})
	f := startReporter(t, "ws://"+addr+"/socket/websocket", nil)
	var all []sink.Sample
	n := 0
	for round := 0; round < 5; round++ {
		for k := 0; k < 20; k++ {
			f.sample(n)
			n++
		}
		if _, err := s.WaitSamples(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		s.Stop()
		all = append(all, s.Samples()...)
		s = startSink(t, addr, sink.Faults{})
	}
	f.waitStatus("queue drained", func(st *messages.Status) bool { return st.Depth == 0 && st.Joined })
	s.Stop()
	all = append(all, s.Samples()...)
	seen := map[int]int{}
	var firsts []int
	for _, i := range indexes(t, all) {
		if seen[i] == 0 {
			firsts = append(firsts, i)
		}
		seen[i]++
	}
	wantSeq(t, firsts, 0, n-1)
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("%d samples over 5 sink restarts, %d duplicates (acks lost with the connection)", n, dups)
}

func TestServerThatNeverRepliesStillDrains(t *testing.T) {
	s := startSink(t, "127.0.0.1:0", sink.Faults{NoReply: true})
	f := startReporter(t, s.URL(), nil)
	for i := 0; i < 30; i++ {
		f.sample(i)
	}
	got, err := s.WaitSamples(30, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSeq(t, indexes(t, got), 0, 29)
	f.waitStatus("queue drained", func(st *messages.Status) bool { return st.Depth == 0 })
}

func TestErrorRepliesAreNotRetried(t *testing.T) {
	s := startSink(t, "127.0.0.1:0", sink.Faults{ErrorReply: true})
	f := startReporter(t, s.URL(), nil)
	for i := 0; i < 5; i++ {
		f.sample(i)
	}
	st := f.waitStatus("queue drained", func(st *messages.Status) bool { return st.Depth == 0 })
	if st.Acked != 0 || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	wantSeq(t, indexes(t, s.Samples()), 0, 4)
}

func TestRefusedJoinsKeepSamplesQueued(t *testing.T) {
	s := startSink(t, "127.0.0.1:0", sink.Faults{RefuseJoins: true})
	f := startReporter(t, s.URL(), nil)
	for i := 0; i < 5; i++ {
		f.sample(i)
	}
	st := f.waitStatus("refused join", func(st *messages.Status) bool { return st.Connected && st.LastError != "" })
	if st.Joined || st.Depth != 5 || len(s.Samples()) != 0 {
		t.Errorf("status %+v, sink got %d", st, len(s.Samples()))
	}
}

func TestOverflowDropsOldest(t *testing.T) {
	addr := freeAddr(t)
	f := startReporter(t, "ws://"+addr+"/socket/websocket", func(o *Options) { o.MaxSamples = 5 })
	for i := 0; i < 12; i++ {
		f.sample(i)
	}
	st := f.waitStatus("overflow", func(st *messages.Status) bool { return st.Dropped == 7 })
	if st.Depth != 5 {
		t.Errorf("status %+v", st)
	}
	s := startSink(t, addr, sink.Faults{})
	got, err := s.WaitSamples(5, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantSeq(t, indexes(t, got), 7, 11)
}

// The dump gets the exact payload that is pushed.
func TestDumpRecordsExactPayload(t *testing.T) {
	s := startSink(t, "127.0.0.1:0", sink.Faults{})
	recs := make(chan *dump.SampleRecord, 10)
	f := startReporter(t, s.URL(), func(o *Options) {
		o.Dump = dump.NewHandle(func(m any) { recs <- m.(*dump.SampleRecord) })
	})
	f.sample(42)
	got, err := s.WaitSamples(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec := <-recs
	var a, b any
	json.Unmarshal(rec.Payload, &a)
	json.Unmarshal(got[0].Payload, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) || rec.Kind != "fast" {
		t.Errorf("dump %s\npushed %s", rec.Payload, got[0].Payload)
	}
}

func TestBadCAFileIsReported(t *testing.T) {
	if _, err := tlsConfig("/nonexistent/ca.pem", false); err == nil {
		t.Error("missing ca_file accepted")
	}
	cfg, err := tlsConfig("", true)
	if err != nil || !cfg.InsecureSkipVerify {
		t.Errorf("%+v %v", cfg, err)
	}
}
