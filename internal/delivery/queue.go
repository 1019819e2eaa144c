package delivery

import "time"

// Item is one encoded sample waiting to be delivered.
type Item struct {
	Kind        string
	CollectedAt time.Time
	Body        []byte
	// Seq is the item's spool record, or 0 when it is held in memory only.
	Seq uint64

	// Set while the item is on the wire in connection generation Gen.
	Ref     string
	Gen     uint64
	SentAt  time.Time
	written bool // this sending reached the socket
	// failures counts the channels and connections that failed while the
	// item was the oldest push in flight (Delivery.Lost).
	failures int
	done     bool
	// Parked is set on an item set aside that could not be kept elsewhere:
	// it leaves the queue but stays in the spool, read again at the next
	// start.
	Parked bool
}

// Failures is how many failed attempts the item was charged.
func (it *Item) Failures() int { return it.failures }

// Sent reports whether the item is in flight.
func (it *Item) Sent() bool { return it.Ref != "" }

// Queue holds samples in arrival order until they are delivered, bounded by
// count and bytes. When a new item does not fit, the oldest are dropped:
// recent state is worth more to an operator than state from hours ago.
// Items can be completed out of order (acks); the front is trimmed lazily.
type Queue struct {
	MaxItems int
	MaxBytes int
	// OnDone is told of every item that leaves the queue for good
	// (delivered, refused, set aside); OnEvict of a spooled item pushed
	// out of memory by overflow, which is still on disk and not lost.
	OnDone, OnEvict func(*Item)

	items   []*Item
	live    int
	bytes   int
	dropped int64
}

// Push appends it, removing the oldest items until both bounds hold, and
// returns the items removed: dropped (lost, counted) when held in memory
// only, evicted when spooled (still on disk; OnEvict). An item larger than
// MaxBytes on its own is still kept (alone) rather than lost.
func (q *Queue) Push(it *Item) []*Item {
	q.items = append(q.items, it)
	q.live++
	q.bytes += len(it.Body)
	var removed []*Item
	for q.live > 1 && (q.live > q.MaxItems || q.bytes > q.MaxBytes) {
		old := q.front()
		q.remove(old)
		removed = append(removed, old)
		if old.Seq != 0 {
			if q.OnEvict != nil {
				q.OnEvict(old)
			}
			continue
		}
		q.dropped++
	}
	return removed
}

// Done removes it for good (delivered, refused, set aside); a second call
// is a no-op.
func (q *Queue) Done(it *Item) {
	if it.done {
		return
	}
	q.remove(it)
	if q.OnDone != nil {
		q.OnDone(it)
	}
}

func (q *Queue) remove(it *Item) {
	it.done = true
	q.live--
	q.bytes -= len(it.Body)
	q.trim()
}

func (q *Queue) front() *Item {
	q.trim()
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

// trim drops completed items from the front, compacting now and then so
// memory follows the depth.
func (q *Queue) trim() {
	i := 0
	for i < len(q.items) && q.items[i].done {
		q.items[i] = nil
		i++
	}
	if i > 0 {
		q.items = q.items[i:]
	}
	if cap(q.items) > 256 && len(q.items) < cap(q.items)/4 {
		q.items = append([]*Item(nil), q.items...)
	}
}

// Each calls fn for every live item, oldest first, until fn returns false.
func (q *Queue) Each(fn func(*Item) bool) {
	for _, it := range q.items {
		if !it.done && !fn(it) {
			return
		}
	}
}

// Len is the number of items not yet delivered.
func (q *Queue) Len() int { return q.live }

// Bytes is the total body size not yet delivered.
func (q *Queue) Bytes() int { return q.bytes }

// Dropped counts items lost to overflow since the queue was made.
func (q *Queue) Dropped() int64 { return q.dropped }
