package delivery

import (
	"bytes"
	"log/slog"
	"path/filepath"
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
