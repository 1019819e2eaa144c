package delivery

import (
	"strings"
	"time"
)

// ackMode is what the server is known to do with a metric push.
type ackMode int

const (
	acksUnknown ackMode = iota
	acksYes
	acksNo
)

// Outcome is what a server reply did to a push; the actor reports it.
type Outcome int

const (
	// Ignored: the reply matches no push in flight. It belongs to an earlier
	// connection, or its push was already put back in line (a late ack).
	Ignored Outcome = iota
	// Delivered: the server replied ok.
	Delivered
	// Requeued: the server no longer knows the topic (the join is gone), so
	// the push goes out again after the rejoin.
	Requeued
	// Refused: the server replied error. Resending would get the same answer,
	// so the push is dropped.
	Refused
)

// MaxFailures is how many times an item may be the oldest push in flight
// when its channel or connection fails before it is set aside. A server
// whose channel crashes on one payload fails every time that payload is
// the oldest in flight; without a limit it would be resent first after
// every rejoin, forever, and nothing behind it would get through.
const MaxFailures = 3

// wireKey names a push: refs restart with every connection, so a ref alone
// could match a push of an older connection.
type wireKey struct {
	gen uint64
	ref string
}

// Delivery decides what is sent and when a sample counts as delivered; the
// reporter actor only carries its decisions to the connection and back.
//
// A push is delivered when the server replies ok. Whether the server replies
// at all is learnt anew after every lost channel or connection, from the
// first push, which goes out alone: a reply within the reply timeout means
// acks (unacked pushes are kept and resent after a reconnect: at least
// once); none means a {:noreply} channel, where a push counts as delivered
// once written. The mode is relearnt on evidence: a server that acked and
// then leaves a push unanswered for the reply timeout is taken as not
// replying (its written pushes count as delivered), and a reply, even a late
// one, turns acks back on. A push waiting for its reply is never sent again
// on the same connection. An error reply is dropped, not retried
// ("unmatched topic" excepted: that is a lost join, and the push is resent
// after the rejoin).
//
// When a channel or connection fails, the oldest push in flight is charged
// a failed attempt; after MaxFailures it is set aside as poisoned.
//
// Items are resent in queue order, so a sample put back in line goes out
// before anything newer that was never sent.
type Delivery struct {
	q       *Queue
	window  int
	timeout time.Duration

	mode                    ackMode
	gen                     uint64 // connection of the latest push; mode is about it
	byRef                   map[wireKey]*Item
	inflight                int
	pushed, acked, poisoned int64
	refused                 int64
}

// NewDelivery delivers the items of q with at most window pushes in flight
// once the server's ack mode is known; replyTimeout is how long a push may go
// unanswered before the server is taken not to reply.
func NewDelivery(q *Queue, window int, replyTimeout time.Duration) *Delivery {
	return &Delivery{q: q, window: window, timeout: replyTimeout, byRef: map[wireKey]*Item{}}
}

// SetReplyTimeout changes how long a push may wait for its reply, from the
// next push on (a config reload).
func (d *Delivery) SetReplyTimeout(t time.Duration) { d.timeout = t }

// Add queues it and returns how many older items overflow dropped (lost:
// held in memory only; a spooled item pushed out is still on disk).
func (d *Delivery) Add(it *Item) int {
	dropped := 0
	for _, old := range d.q.Push(it) {
		d.forget(old) // a reply for it must not count as a delivery
		if old.Seq == 0 {
			dropped++
		}
	}
	return dropped
}

// Next is the oldest item not on the wire, or nil when there is none or the
// window is full. Until the ack mode is known the window is one push, so
// that a single reply or timeout settles the mode.
func (d *Delivery) Next() *Item {
	window := d.window
	if d.mode == acksUnknown {
		window = 1
	}
	if d.inflight >= window {
		return nil
	}
	var next *Item
	d.q.Each(func(it *Item) bool {
		if it.Sent() {
			return true
		}
		next = it
		return false
	})
	return next
}

// Sent records that it went out as push ref on connection generation gen.
func (d *Delivery) Sent(it *Item, ref string, gen uint64, now time.Time) {
	it.Ref, it.Gen, it.SentAt, it.written = ref, gen, now, false
	d.gen = gen
	d.byRef[wireKey{gen, ref}] = it
	d.inflight++
	d.pushed++
}

// Written is told that push ref reached the socket, and reports whether
// that delivered it: only against a server taken not to reply.
func (d *Delivery) Written(ref string, gen uint64) bool {
	it := d.onWire(ref, gen)
	if it == nil {
		return false
	}
	it.written = true
	if d.mode != acksNo {
		return false
	}
	d.deliver(it)
	return true
}

// Replied settles push ref with the server's reply status and response. It
// returns the item (nil if Ignored), the outcome, and whether this reply is
// what showed that the server acknowledges pushes.
// A reply on the current connection is evidence of acks even when its push
// was already settled (a late ack after the push counted as delivered once
// written).
func (d *Delivery) Replied(ref string, gen uint64, status, response string) (*Item, Outcome, bool) {
	learnt := false
	if gen == d.gen {
		learnt = d.mode != acksYes
		d.mode = acksYes
	}
	it := d.onWire(ref, gen)
	if it == nil {
		return nil, Ignored, learnt
	}
	if status == "ok" {
		d.deliver(it)
		return it, Delivered, learnt
	}
	d.forget(it)
	if strings.Contains(response, "unmatched topic") {
		return it, Requeued, learnt
	}
	d.refused++
	d.q.Done(it)
	return it, Refused, learnt
}

// Expire reports whether, at now, a push has gone unanswered for the reply
// timeout while replies were expected (the mode unknown, or acks): then the
// server is taken not to reply, and every push in flight that was written
// counts as delivered; the rest will be when written. Nothing is put back in
// line: resending on the same connection a push that is waiting for its
// reply only doubles the load on a slow server.
func (d *Delivery) Expire(now time.Time) bool {
	if d.mode == acksNo || !d.overdue(now) {
		return false
	}
	d.mode = acksNo
	var written []*Item
	d.q.Each(func(it *Item) bool {
		if it.Sent() && it.written {
			written = append(written, it)
		}
		return true
	})
	for _, it := range written {
		d.deliver(it)
	}
	return true
}

func (d *Delivery) overdue(now time.Time) bool {
	late := false
	d.q.Each(func(it *Item) bool {
		late = it.Sent() && now.Sub(it.SentAt) > d.timeout
		return !late
	})
	return late
}

// Lost puts every push in flight back in line, to be resent in order after
// the next join: its reply, if any, went with the connection. The oldest
// push in flight is charged the failure, and once it has failed
// MaxFailures times it is set aside: handed to keep (if not nil), which
// stores it elsewhere, then removed from the queue, and returned. When
// keep fails the item is marked to stay in the spool (Item.Parked). The
// ack mode is relearnt on the next connection or join.
func (d *Delivery) Lost(keep func(*Item) error) (poisoned []*Item) {
	// Until the next push, no connection is current: a straggling reply
	// from the lost one says nothing about the next.
	d.mode, d.gen = acksUnknown, 0
	charged := false
	// Walk the queue rather than byRef: it finds the oldest push, and refs
	// restart with each connection.
	d.q.Each(func(it *Item) bool {
		if it.Sent() && !charged {
			charged = true
			it.failures++
			if it.failures >= MaxFailures {
				poisoned = append(poisoned, it)
			}
		}
		d.forget(it)
		return true
	})
	for _, it := range poisoned {
		if keep != nil && keep(it) != nil { // before Done deletes it from the spool
			it.Parked = true
		}
		d.poisoned++
		d.q.Done(it)
	}
	return poisoned
}

// Requeue puts every push in flight back in line without counting a
// failure against any: the agent itself closed the connection (a reload
// changed the server), which says nothing about the samples.
func (d *Delivery) Requeue() {
	d.mode, d.gen = acksUnknown, 0
	d.q.Each(func(it *Item) bool {
		d.forget(it)
		return true
	})
}

// Unsendable drops an item the connection cannot even frame (a payload
// that is not JSON): it would block the queue's head forever. It counts as
// refused.
func (d *Delivery) Unsendable(it *Item) {
	d.forget(it)
	d.refused++
	d.q.Done(it)
}

// Stats returns the memory queue's depth and the delivery counters; the
// Store's Stats adds the spool to them.
func (d *Delivery) Stats() Stats {
	return Stats{Depth: int64(d.q.Len()), Bytes: int64(d.q.Bytes()), Dropped: d.q.Dropped(), Pushed: d.pushed,
		Acked: d.acked, Poisoned: d.poisoned, Refused: d.refused}
}

// onWire is the item on the wire as push ref of generation gen, if any:
// a reply from an older connection must not settle a newer push.
func (d *Delivery) onWire(ref string, gen uint64) *Item {
	return d.byRef[wireKey{gen, ref}]
}

func (d *Delivery) deliver(it *Item) {
	d.acked++
	d.forget(it)
	d.q.Done(it)
}

// forget takes it off the wire, so that it is sent again in order at the
// next chance.
func (d *Delivery) forget(it *Item) {
	if it.Sent() {
		delete(d.byRef, wireKey{it.Gen, it.Ref})
		d.inflight--
		it.Ref = ""
	}
}
