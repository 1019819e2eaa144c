package reporter

import "time"

// Item is one encoded sample waiting to be delivered.
type Item struct {
	Kind        string
	CollectedAt time.Time
	Body        []byte
}

// Queue holds samples in arrival order, bounded by count and bytes. When a
// new item does not fit, the oldest are dropped: recent state is worth more
// to an operator than state from hours ago.
type Queue struct {
	MaxItems int
	MaxBytes int

	items   []Item
	head    int
	bytes   int
	dropped uint64
}

// Push appends it, dropping the oldest items until both bounds hold. It
// returns how many were dropped. An item larger than MaxBytes on its own is
// still kept (alone) rather than lost.
func (q *Queue) Push(it Item) int {
	q.items = append(q.items, it)
	q.bytes += len(it.Body)
	n := 0
	for q.Len() > 1 && (q.Len() > q.MaxItems || q.bytes > q.MaxBytes) {
		q.PopFront()
		n++
	}
	q.dropped += uint64(n)
	return n
}

// Len is the number of items queued.
func (q *Queue) Len() int { return len(q.items) - q.head }

// Bytes is the total body size queued.
func (q *Queue) Bytes() int { return q.bytes }

// Dropped counts items lost to overflow since the queue was made.
func (q *Queue) Dropped() uint64 { return q.dropped }

// Front returns the oldest item.
func (q *Queue) Front() (Item, bool) {
	if q.Len() == 0 {
		return Item{}, false
	}
	return q.items[q.head], true
}

// At returns the i-th oldest item (0 = front).
func (q *Queue) At(i int) Item { return q.items[q.head+i] }

// PopFront removes and returns the oldest item.
func (q *Queue) PopFront() (Item, bool) {
	if q.Len() == 0 {
		return Item{}, false
	}
	it := q.items[q.head]
	q.items[q.head] = Item{}
	q.head++
	q.bytes -= len(it.Body)
	// Compact once the dead prefix dominates, so memory follows the depth.
	if q.head > 64 && q.head*2 > len(q.items) {
		q.items = append([]Item(nil), q.items[q.head:]...)
		q.head = 0
	}
	return it, true
}
