package reporter

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

// Stats are the delivery counters the reporter reports in its status.
type Stats struct {
	Queued  int    // items not yet delivered
	Bytes   int    // their total body size
	Dropped uint64 // items lost to overflow
	Pushed  uint64 // pushes sent, resends included
	Acked   uint64 // items delivered
}

// Delivery decides what is sent and when a sample counts as delivered; the
// reporter actor only carries its decisions to the connection and back.
//
// A push is delivered when the server replies ok. Whether the server replies
// at all is learnt from the first push, which goes out alone: a reply within
// the reply timeout means acks (from then on unacked pushes are kept and
// resent after a reconnect: at least once); none means a {:noreply} channel,
// where a push counts as delivered once written. An error reply is dropped,
// not retried ("unmatched topic" excepted: that is a lost join, and the push
// is resent after the rejoin).
//
// Items are resent in queue order, so a sample put back in line goes out
// before anything newer that was never sent.
type Delivery struct {
	q       *Queue
	window  int
	timeout time.Duration

	mode          ackMode
	byRef         map[string]*Item
	inflight      int
	pushed, acked uint64
}

// NewDelivery delivers the items of q with at most window pushes in flight
// once the server's ack mode is known; replyTimeout is how long a push may go
// unanswered before the server is taken not to reply.
func NewDelivery(q *Queue, window int, replyTimeout time.Duration) *Delivery {
	return &Delivery{q: q, window: window, timeout: replyTimeout, byRef: map[string]*Item{}}
}

// Add queues it and returns how many older items overflow dropped.
func (d *Delivery) Add(it *Item) int {
	dropped := d.q.Push(it)
	for _, old := range dropped {
		d.forget(old) // a reply for it must not count as a delivery
	}
	return len(dropped)
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
	it.Ref, it.Gen, it.SentAt = ref, gen, now
	d.byRef[ref] = it
	d.inflight++
	d.pushed++
}

// Written is told that push ref reached the socket, and reports whether
// that delivered it: only against a server known not to reply.
func (d *Delivery) Written(ref string, gen uint64) bool {
	it := d.onWire(ref, gen)
	if it == nil || d.mode != acksNo {
		return false
	}
	d.deliver(it)
	return true
}

// Replied settles push ref with the server's reply status and response. It
// returns the item (nil if Ignored), the outcome, and whether this reply is
// what showed that the server acknowledges pushes.
func (d *Delivery) Replied(ref string, gen uint64, status, response string) (*Item, Outcome, bool) {
	it := d.onWire(ref, gen)
	if it == nil {
		return nil, Ignored, false
	}
	learnt := d.mode != acksYes
	d.mode = acksYes
	if status == "ok" {
		d.deliver(it)
		return it, Delivered, learnt
	}
	d.forget(it)
	if strings.Contains(response, "unmatched topic") {
		return it, Requeued, learnt
	}
	d.q.Done(it)
	return it, Refused, learnt
}

// Expire settles pushes left without a reply at now, and reports whether
// that showed the server does not reply. While the ack mode is unknown, the
// first push unanswered for the reply timeout means a {:noreply} server and
// counts as delivered; with acks, a push unanswered for twice the timeout is
// put back in line (at least once).
func (d *Delivery) Expire(now time.Time) bool {
	var late []*Item
	d.q.Each(func(it *Item) bool {
		if it.Sent() && now.Sub(it.SentAt) > d.timeout {
			late = append(late, it)
		}
		return true
	})
	learnt := false
	for _, it := range late {
		switch d.mode {
		case acksUnknown:
			d.mode, learnt = acksNo, true
			d.deliver(it)
		case acksYes:
			if now.Sub(it.SentAt) > 2*d.timeout {
				d.forget(it)
			}
		}
	}
	return learnt
}

// Lost puts every push in flight back in line, to be resent in order after
// the next join: its reply, if any, went with the connection.
func (d *Delivery) Lost() {
	// Walk the queue rather than byRef: refs restart with each connection,
	// so byRef alone could miss an item whose ref a newer push reused.
	d.q.Each(func(it *Item) bool {
		d.forget(it)
		return true
	})
}

// Stats returns the counters for the reporter's status.
func (d *Delivery) Stats() Stats {
	return Stats{Queued: d.q.Len(), Bytes: d.q.Bytes(), Dropped: d.q.Dropped(), Pushed: d.pushed, Acked: d.acked}
}

// onWire is the item on the wire as push ref of generation gen, if any:
// a reply from an older connection must not settle a newer push.
func (d *Delivery) onWire(ref string, gen uint64) *Item {
	if it := d.byRef[ref]; it != nil && it.Gen == gen {
		return it
	}
	return nil
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
		delete(d.byRef, it.Ref)
		d.inflight--
		it.Ref = ""
	}
}
