package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/spool"
)

// flaky is the real spool, failing appends on cue (a full disk) and the
// delete of chosen records.
type flaky struct {
	*spool.Spool
	failing  bool
	delFails map[uint64]bool
	path     string // the spool file, to damage behind bbolt's back
}

var errFull = errors.New("write spool.db: no space left on device")

func (f *flaky) Append(k string, at time.Time, p []byte) (spool.Record, []uint64, error) {
	if f.failing {
		return spool.Record{}, nil, errFull
	}
	return f.Spool.Append(k, at, p)
}
func (f *flaky) AppendBatch(r []spool.Record) ([]spool.Record, []uint64, error) {
	if f.failing {
		return nil, nil, errFull
	}
	return f.Spool.AppendBatch(r)
}
func (f *flaky) Delete(seqs ...uint64) error {
	for _, s := range seqs {
		if f.delFails[s] {
			return errFull
		}
	}
	return f.Spool.Delete(seqs...)
}

func newFlakyStore(t *testing.T) (*Store, *Delivery, *Queue, *flaky) {
	l := lazySpool(t)
	sp, _, err := l.Get(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fb := &flaky{Spool: sp, delFails: map[uint64]bool{}, path: l.Path()}
	q := &Queue{MaxItems: 2000, MaxBytes: 64 << 20}
	d := NewDelivery(q, 64, time.Second)
	d.mode = acksYes
	s := NewStore(q, d, func(time.Time) (Backing, bool, error) { return fb, false, nil }, discard)
	s.Refill(time.Now())
	return s, d, q, fb
}

// deliverNext pushes the next item, which must be it, and acks it.
func deliverNext(t *testing.T, d *Delivery, it *Item, ref string) {
	t.Helper()
	if got := d.Next(); got != it {
		t.Fatalf("next is %v, want %s", got, it.Body)
	}
	d.Sent(it, ref, 1, time.Now())
	d.Replied(ref, 1, "ok", "")
}

func add(s *Store, i int) *Item {
	it := &Item{Kind: "fast", CollectedAt: base, Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	s.Add(it, time.Now())
	s.Refill(time.Now())
	return it
}

// Backlog on disk beyond the window, then held samples written back: they
// sit in the window above the cursor, which is where a record that leaves
// the queue but stays on disk (parked, or its delete failed) could be
// read again by a refill (found in review).
func setupHeld(t *testing.T) (*Store, *Delivery, *Queue, *flaky, []*Item) {
	s, d, q, fb := newFlakyStore(t)
	for i := 0; i < 274; i++ { // 64 in the window, 210 on disk only
		add(s, i)
	}
	fb.failing = true
	var held []*Item
	for i := 274; i < 277; i++ {
		held = append(held, add(s, i))
	}
	fb.failing = false
	add(s, 277)
	return s, d, q, fb, held
}

func bodyIndex(it *Item) string {
	return strings.TrimSuffix(strings.TrimPrefix(string(it.Body), `{"i":`), "}")
}

// A written-back sample delivered whose spool delete fails is read again
// past the cursor and delivered a second time in the same run.
func TestWrittenBackDeleteFailureNotRedeliveredInTheRun(t *testing.T) {
	s, d, _, fb, held := setupHeld(t)
	fb.delFails[held[0].Seq] = true
	var got []string
	gen := uint64(1)
	for round := 0; round < 1000; round++ {
		s.Refill(time.Now())
		it := d.Next()
		if it == nil {
			break
		}
		ref := fmt.Sprint(round)
		d.Sent(it, ref, gen, time.Now())
		got = append(got, bodyIndex(it))
		d.Replied(ref, gen, "ok", "")
	}
	counts := map[string]int{}
	for _, g := range got {
		counts[g]++
	}
	for k, n := range counts {
		if n > 1 {
			t.Errorf("sample %s delivered %d times in one run", k, n)
		}
	}
}

// A written-back sample set aside that could not be kept (Parked) is read
// again past the cursor and retried in the same run.
func TestWrittenBackParkedNotReloadedInTheRun(t *testing.T) {
	s, d, _, _, held := setupHeld(t)
	keepFails := func(*Item) error { return errFull }
	sends := map[string]int{}
	gen := uint64(1)
	for round := 0; round < 1000; round++ {
		s.Refill(time.Now())
		it := d.Next()
		if it == nil {
			break
		}
		gen++
		ref := fmt.Sprint(round)
		d.Sent(it, ref, gen, time.Now())
		sends[bodyIndex(it)]++
		if string(it.Body) == `{"i":274}` { // the first held sample: the server crashes on it
			d.Lost(keepFails)
			d.mode = acksYes
			continue
		}
		d.Replied(ref, gen, "ok", "")
	}
	if held[0].Seq == 0 {
		t.Fatal("not written back")
	}
	if sends["274"] != MaxFailures {
		t.Errorf("parked sample sent %d times, want %d (reloaded after it was parked)", sends["274"], MaxFailures)
	}
}

// A sample the spool can never take (a kind over 255 bytes) stays in
// memory alone: it does not mark the spool broken or keep the samples
// after it out of the spool.
func TestUnstorableSampleDoesNotHoldUpTheSpool(t *testing.T) {
	s, _, q, fb := newFlakyStore(t)
	s.Add(&Item{Kind: strings.Repeat("k", 300), CollectedAt: base, Body: []byte(`{}`)}, time.Now())
	for i := 0; i < 10; i++ {
		add(s, i)
	}
	if n := fb.Stats().Records; n != 10 {
		t.Errorf("%d of 10 samples spooled after the disk recovered (queue %d), held=%v last=%v", n, q.Len(), s.held, s.last)
	}
}

// Stats after a write-back: depth counts each sample once.
func TestStatsAfterWriteBack(t *testing.T) {
	s, _, q, fb, _ := setupHeld(t)
	st := s.Stats()
	t.Logf("depth %d bytes %d, queue %d, disk %d", st.Depth, st.Bytes, q.Len(), fb.Stats().Records)
	if st.Depth != 278 {
		t.Errorf("depth %d, want 278", st.Depth)
	}
}

// A delete that failed (the disk full again) is retried with the next one
// that works, so the record does not wait for a restart to be redelivered.
func TestFailedDeleteRetriedWithTheNext(t *testing.T) {
	s, d, _, fb := newFlakyStore(t)
	first, second := add(s, 0), add(s, 1)
	fb.delFails[first.Seq] = true
	deliverNext(t, d, first, "1")
	if n := fb.Stats().Records; n != 2 {
		t.Fatalf("%d records after a failed delete, want 2", n)
	}
	fb.delFails[first.Seq] = false
	deliverNext(t, d, second, "2")
	if n := fb.Stats().Records; n != 0 {
		t.Fatalf("%d records left: the failed delete was not retried", n)
	}
	if len(s.gone) != 0 || len(s.undeleted) != 0 {
		t.Fatalf("bookkeeping left: gone %v undeleted %v", s.gone, s.undeleted)
	}
}

// The spool file damaged behind bbolt's back while running: it is moved
// aside and a fresh one started, which numbers records from 1 again. The
// store forgets the old numbers (a retried delete by an old number would
// remove a new, undelivered sample: found in review) and writes what it
// holds in memory to the fresh file.
func TestSpoolReplacedWhileRunningForgetsOldNumbers(t *testing.T) {
	s, d, _, fb := newFlakyStore(t)
	first, second := add(s, 0), add(s, 1)
	// Damage every page past the two meta pages, as a disk might.
	f, err := os.OpenFile(fb.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	f.WriteAt(bytes.Repeat([]byte{0xFF}, int(st.Size())-2*4096), 2*4096)
	f.Close()
	deliverNext(t, d, first, "1")
	if k := fb.Stats().Kept; len(k) != 1 || !strings.Contains(k[0], ".corrupt-") {
		t.Fatalf("the damaged file was not replaced: %q", k)
	}
	third := add(s, 2)
	deliverNext(t, d, second, "2")
	recs, _, err := fb.Read(0, 10, 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Payload) != string(third.Body) {
		t.Fatalf("fresh spool holds %d records (%v), want only the undelivered sample 2", len(recs), err)
	}
}
