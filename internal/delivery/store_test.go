package delivery

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/spool"
)

var (
	discard = slog.New(slog.DiscardHandler)
	base    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func lazySpool(t testing.TB) *spool.Lazy {
	l := &spool.Lazy{Dir: filepath.Join(t.TempDir(), "spool"), MaxBytes: 256 << 20, Retry: time.Minute}
	t.Cleanup(func() { l.Close() })
	return l
}

// 100,000 spooled samples: memory holds the window, not the spool.
func TestWindowBoundWith100kSpooled(t *testing.T) {
	l := lazySpool(t)
	sp, _, _ := l.Get(time.Now())
	body := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < 100; i++ { // 100k records, a thousand per commit
		batch := make([]spool.Record, 1000)
		for j := range batch {
			batch[j] = spool.Record{Kind: "fast", CollectedAt: base, Payload: body}
		}
		if _, _, err := sp.AppendBatch(batch); err != nil {
			t.Fatal(err)
		}
	}
	q := &Queue{MaxItems: 2000, MaxBytes: 64 << 20}
	d := NewDelivery(q, 64, time.Second)
	st := NewStore(q, d, LazyOpener(l), discard)
	st.Refill(time.Now())
	if q.Len() != WindowItems || q.Bytes() > WindowBytes {
		t.Fatalf("window holds %d items / %d bytes, want %d", q.Len(), q.Bytes(), WindowItems)
	}
	// Deliver the window: it refills from disk, never beyond its bound.
	for round := 0; round < 3; round++ {
		var its []*Item
		q.Each(func(it *Item) bool { its = append(its, it); return true })
		for _, it := range its {
			q.Done(it)
		}
		st.Refill(time.Now())
		if q.Len() != WindowItems {
			t.Fatalf("round %d: window %d", round, q.Len())
		}
	}
	if got := st.Stats().Depth; got != 100_000-3*WindowItems {
		t.Fatalf("depth %d", got)
	}
}

// A spool directory others can write to is refused: one clear log line,
// however many samples come, the samples held in memory, and Stats says
// why (before: the directory was used, and a file planted in it trusted).
func TestRefusedSpoolRunsFromMemoryAndSaysWhy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777) // a careless `dir =`
	var logs bytes.Buffer
	l := &spool.Lazy{Dir: dir, MaxBytes: 1 << 20, Retry: time.Minute}
	t.Cleanup(func() { l.Close() })
	q := &Queue{MaxItems: 100, MaxBytes: 1 << 20}
	d := NewDelivery(q, 64, time.Second)
	s := NewStore(q, d, LazyOpener(l), slog.New(slog.NewTextHandler(&logs, nil)))
	for i := 0; i < 5; i++ {
		s.Add(&Item{Kind: "fast", CollectedAt: base, Body: []byte(`{"i":1}`)}, time.Now())
	}
	st := s.Stats()
	if !st.Fallback || !strings.Contains(st.FallbackReason, "refused") || !strings.Contains(st.FallbackReason, "writable by group or others") || st.Depth != 5 {
		t.Fatalf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "level=ERROR msg=\"spool refused") {
		t.Errorf("%d log lines, want 1 saying the spool is refused:\n%s", n, logs.String())
	}
	if _, err := os.Lstat(filepath.Join(dir, spool.FileName)); err == nil {
		t.Error("a spool file was created in the refused directory")
	}
}
