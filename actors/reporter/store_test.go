package reporter

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/delivery"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

func lazySpool(t testing.TB) *spool.Lazy {
	l := &spool.Lazy{Dir: filepath.Join(t.TempDir(), "spool"), MaxBytes: 256 << 20, Retry: time.Minute}
	t.Cleanup(func() { l.Close() })
	return l
}

// panicky is sample data whose encoding panics: it takes the reporter's
// handler down the way a bug would.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("encoder bug") }

// A reporter that panics during an outage loses nothing: the restarted
// actor reloads the spool and delivers every sample once the server is
// back, oldest first.
func TestSpoolSurvivesReporterPanic(t *testing.T) {
	addr := sinktest.FreeAddr(t)
	l := lazySpool(t)
	f := startReporter(t, "ws://"+addr+"/socket/websocket", func(o *Options) { o.Spool = delivery.LazyOpener(l) })
	for i := 0; i < 20; i++ {
		f.sample(i)
	}
	f.waitStatus("20 spooled", func(st *messages.Status) bool { return st.Depth == 20 })
	f.sys.Root.Send(f.pid, &messages.Sample{Kind: "fast", CollectedAt: base, Data: map[string]any{"x": panicky{}}})
	for i := 20; i < 25; i++ {
		f.sample(i)
	}
	st := f.waitStatus("25 spooled after the restart", func(st *messages.Status) bool { return st.Depth == 25 })
	if st.Pushed != 0 {
		t.Fatalf("pushed %d with no server", st.Pushed)
	}
	s := sinktest.Start(t, addr, "tok", sink.Faults{})
	got, err := s.WaitSamples(25, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(indexes(t, got)) != fmt.Sprint(seq(0, 25)) {
		t.Fatalf("delivered %v", indexes(t, got))
	}
	f.waitStatus("the spool emptied", func(st *messages.Status) bool { return st.Depth == 0 })
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// What an earlier run left in the spool goes out first, in order, then
// the new samples.
func TestSpoolFromAnEarlierRunFirst(t *testing.T) {
	l := lazySpool(t)
	sp, _, err := l.Get(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		sp.Append("fast", base.Add(time.Duration(i)*time.Millisecond), []byte(fmt.Sprintf(`{"data":{"i":%d}}`, i)))
	}
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	f := startReporter(t, s.URL(), func(o *Options) { o.Spool = delivery.LazyOpener(l) })
	got, err := s.WaitSamples(5, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 8; i++ {
		f.sample(i)
	}
	got, err = s.WaitSamples(8, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(indexes(t, got)) != fmt.Sprint(seq(0, 8)) {
		t.Fatalf("delivered %v", indexes(t, got))
	}
}

// fakeBacking is a spool that can be made to fail, as a full disk does.
type fakeBacking struct {
	mu      sync.Mutex
	failing bool
	next    uint64
	recs    map[uint64]spool.Record
}

func (f *fakeBacking) setFailing(v bool) { f.mu.Lock(); f.failing = v; f.mu.Unlock() }

func (f *fakeBacking) Append(kind string, at time.Time, p []byte) (spool.Record, []uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return spool.Record{}, nil, errors.New("write spool.db: no space left on device")
	}
	f.next++
	r := spool.Record{Seq: f.next, Kind: kind, CollectedAt: at, Payload: bytes.Clone(p)}
	f.recs[r.Seq] = r
	return r, nil, nil
}

func (f *fakeBacking) AppendBatch(recs []spool.Record) ([]spool.Record, []uint64, error) {
	out := make([]spool.Record, 0, len(recs))
	for _, r := range recs {
		got, _, err := f.Append(r.Kind, r.CollectedAt, r.Payload)
		if err != nil {
			return nil, nil, err // unlike the real one, not atomic: fine for a failure on cue
		}
		out = append(out, got)
	}
	return out, nil, nil
}

func (f *fakeBacking) Delete(seqs ...uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range seqs {
		delete(f.recs, s)
	}
	return nil
}

func (f *fakeBacking) Read(after uint64, max, _ int) ([]spool.Record, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []spool.Record
	for s := after + 1; s <= f.next; s++ {
		if r, ok := f.recs[s]; ok {
			if len(out) == max {
				return out, true, nil
			}
			out = append(out, r)
		}
	}
	return out, false, nil
}

func (f *fakeBacking) Generation() uint64 { return 0 }

func (f *fakeBacking) Stats() spool.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return spool.Stats{Records: len(f.recs)}
}

// A full disk: samples are held in memory, the failure is logged once, and
// when the disk has room again new samples go to the spool; all of them
// are delivered, none lost.
func TestFullDiskFallsBackToMemoryAndBack(t *testing.T) {
	fb := &fakeBacking{recs: map[uint64]spool.Record{}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	f := startReporter(t, s.URL(), func(o *Options) {
		o.Log = log
		o.Spool = func(time.Time) (delivery.Backing, bool, error) { return fb, false, nil }
	})
	for i := 0; i < 3; i++ {
		f.sample(i)
	}
	if _, err := s.WaitSamples(3, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	fb.setFailing(true)
	for i := 3; i < 9; i++ {
		f.sample(i)
	}
	if _, err := s.WaitSamples(9, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	fb.setFailing(false)
	for i := 9; i < 12; i++ {
		f.sample(i)
	}
	got, err := s.WaitSamples(12, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(indexes(t, got)) != fmt.Sprint(seq(0, 12)) {
		t.Fatalf("delivered %v", indexes(t, got))
	}
	testkit.Eventually(t, 10*time.Second, "the spool emptied", func() bool { return fb.Stats().Records == 0 })
	out := logs.String()
	if n := strings.Count(out, "spool unusable"); n != 1 {
		t.Errorf("%d 'spool unusable' lines for 6 failed appends, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "spool usable again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, out)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// A payload the connection cannot frame (not JSON; only replay can hand
// one over) is dropped and counted, not left blocking the queue's head.
func TestUnsendablePayloadDoesNotBlock(t *testing.T) {
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	f := startReporter(t, s.URL(), nil)
	f.sys.Root.Send(f.pid, &messages.Encoded{Kind: "fast", CollectedAt: base, Payload: []byte("{not json")})
	f.sample(1)
	got, err := s.WaitSamples(1, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(indexes(t, got)) != "[1]" {
		t.Fatalf("delivered %v", indexes(t, got))
	}
	f.waitStatus("the bad one counted", func(st *messages.Status) bool { return st.Refused == 1 && st.Depth == 0 })
}

// Samples held in memory while the spool was unusable are written to it,
// oldest first, as soon as it works again: a restart after that (the
// server still away) loses none of them.
func TestHeldSamplesWrittenBackWhenTheSpoolWorksAgain(t *testing.T) {
	fb := &fakeBacking{recs: map[uint64]spool.Record{}}
	refusing := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{RefuseJoins: true})
	f := startReporter(t, refusing.URL(), func(o *Options) {
		o.Spool = func(time.Time) (delivery.Backing, bool, error) { return fb, false, nil }
	})
	f.sample(0)
	f.waitStatus("the first spooled", func(st *messages.Status) bool { return st.Depth == 1 })
	fb.setFailing(true)
	for i := 1; i < 4; i++ {
		f.sample(i)
	}
	f.waitStatus("four queued, three in memory only", func(st *messages.Status) bool {
		return st.Depth == 4 && st.Fallback
	})
	if n := fb.Stats().Records; n != 1 {
		t.Fatalf("%d records spooled while failing, want 1", n)
	}
	fb.setFailing(false)
	f.sample(4)
	f.waitStatus("all five spooled", func(st *messages.Status) bool { return st.Depth == 5 && fb.Stats().Records == 5 })
	recs, _, _ := fb.Read(0, 10, 1<<20)
	var spooled []sink.Sample
	for _, r := range recs {
		spooled = append(spooled, sink.Sample{Payload: r.Payload})
	}
	if order := indexes(t, spooled); fmt.Sprint(order) != fmt.Sprint(seq(0, 5)) {
		t.Fatalf("spool order %v, want oldest first", order)
	}

	// The restart: a new reporter on the same spool, the server back.
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	startReporter(t, s.URL(), func(o *Options) {
		o.Spool = func(time.Time) (delivery.Backing, bool, error) { return fb, false, nil }
	})
	got, err := s.WaitSamples(5, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(indexes(t, got)) != fmt.Sprint(seq(0, 5)) {
		t.Fatalf("delivered after the restart %v", indexes(t, got))
	}
}
