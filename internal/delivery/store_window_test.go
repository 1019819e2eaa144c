package delivery

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// drain delivers everything Delivery lets out, refilling as pump does, and
// returns the spool sequence of each delivery in order.
func drain(s *Store, d *Delivery) (got []uint64) {
	gen := uint64(1)
	for round := 0; round < 10000; round++ {
		s.Refill(time.Now())
		it := d.Next()
		if it == nil {
			return got
		}
		ref := fmt.Sprint(round)
		d.Sent(it, ref, gen, time.Now())
		got = append(got, it.Seq)
		d.Replied(ref, gen, "ok", "")
	}
	return got
}

func newTestStore(t *testing.T, maxItems, maxBytes int, spoolBytes int64) (*Store, *Delivery, *Queue) {
	l := lazySpool(t)
	if spoolBytes > 0 {
		l.MaxBytes = spoolBytes
	}
	q := &Queue{MaxItems: maxItems, MaxBytes: maxBytes}
	d := NewDelivery(q, 64, time.Second)
	d.mode = acksYes
	return NewStore(q, d, LazyOpener(l), discard), d, q
}

func ascending(seqs []uint64) bool {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			return false
		}
	}
	return true
}

// Payloads large enough that a window's read is cut by its byte bound, not
// its count: the rest must still be read later, not stranded on disk (a
// big cluster's guests payload is megabytes). Found by review.
func TestByteBoundedRefillStrandsNothing(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			s, d, _ := newTestStore(t, 2000, 64<<20, 0)
			body := []byte(`{"data":"` + strings.Repeat("x", 100<<10) + `"}`)
			for i := 0; i < 100; i++ { // the server is down
				s.Add(&Item{Kind: "fast", CollectedAt: base, Body: body}, time.Now())
				s.Refill(time.Now())
			}
			if restart { // a new reporter over the same spool
				q := &Queue{MaxItems: 2000, MaxBytes: 64 << 20}
				d = NewDelivery(q, 64, time.Second)
				d.mode = acksYes
				b := s.b
				s = NewStore(q, d, func(time.Time) (Backing, bool, error) { return b, false, nil }, discard)
			}
			got := drain(s, d)
			s.Add(&Item{Kind: "fast", CollectedAt: base, Body: []byte(`{}`)}, time.Now())
			got = append(got, drain(s, d)...)
			if len(got) != 101 || s.b.Stats().Records != 0 || !ascending(got) {
				t.Fatalf("delivered %d of 101 (in order: %v), %d left on disk", len(got), ascending(got), s.b.Stats().Records)
			}
		})
	}
}

// A memory queue smaller than the window: a refill never pushes spooled
// samples out of memory to make room, and none is stranded. Found by review.
func TestSmallMemoryQueueStrandsNothing(t *testing.T) {
	s, d, _ := newTestStore(t, 10, 64<<20, 0)
	for i := 0; i < 30; i++ {
		s.Add(&Item{Kind: "fast", CollectedAt: base, Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}, time.Now())
		s.Refill(time.Now())
	}
	got := drain(s, d)
	if len(got) != 30 || s.b.Stats().Records != 0 || !ascending(got) {
		t.Fatalf("delivered %v, %d left on disk", got, s.b.Stats().Records)
	}
}

// Records the spool trims for space while their samples are in memory are
// still delivered from there: not counted as dropped, and counted in the
// depth until delivered. Found by review.
func TestTrimmedWhileInWindowIsNotDropped(t *testing.T) {
	s, d, q := newTestStore(t, 2000, 64<<20, 10*26) // room for 10 records of 26 bytes
	for i := 0; i < 30; i++ {
		s.Add(&Item{Kind: "fast", CollectedAt: base, Body: []byte(fmt.Sprintf(`{"i":%02d}`, i))}, time.Now())
		s.Refill(time.Now())
	}
	if st := s.Stats(); st.Dropped != 0 || st.Depth != 30 || q.Len() != 30 {
		t.Fatalf("before delivery: dropped %d, depth %d, in memory %d; want 0, 30, 30", st.Dropped, st.Depth, q.Len())
	}
	if got := drain(s, d); len(got) != 30 {
		t.Fatalf("delivered %d of 30", len(got))
	}
	if st := s.Stats(); st.Dropped != 0 || st.Depth != 0 {
		t.Fatalf("after delivery: %+v", st)
	}
}

// A sample the spool dropped for space while it was in memory is not on
// disk: if it is then set aside and cannot be kept, it is lost, said so
// and counted as dropped, not claimed to stay in the spool (review).
func TestTrimmedSampleParkedIsCountedLost(t *testing.T) {
	s, d, _ := newTestStore(t, 2000, 64<<20, 10*26) // room for 10 records of 26 bytes
	for i := 0; i < 30; i++ {
		s.Add(&Item{Kind: "fast", CollectedAt: base, Body: []byte(fmt.Sprintf(`{"i":%02d}`, i))}, time.Now())
		s.Refill(time.Now())
	}
	first := d.Next()
	if first == nil || s.OnDisk(first) {
		t.Fatalf("the oldest sample should be in memory only after the trim: %v", first)
	}
	for i := 0; i < MaxFailures; i++ { // in flight each time the channel fails
		if it := d.Next(); it != first {
			t.Fatalf("attempt %d: next is %v", i, it)
		}
		d.Sent(first, fmt.Sprint(i), uint64(i+1), time.Now())
		d.Lost(func(*Item) error { return errors.New("no space left on device") })
	}
	if st := s.Stats(); st.Dropped != 1 || st.Depth != 29 {
		t.Fatalf("after losing a trimmed sample: dropped %d, depth %d; want 1, 29", st.Dropped, st.Depth)
	}
}
