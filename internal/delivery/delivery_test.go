package delivery

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const replyTimeout = 10 * time.Second

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// wire stands in for the connection: it hands out refs the way a Phoenix
// session does (a counter per connection) and remembers which item each
// ref carried.
type wire struct {
	d    *Delivery
	gen  uint64
	n    int
	refs map[string]*Item
}

func newWire(maxItems, window int, items int) *wire {
	w := &wire{d: NewDelivery(&Queue{MaxItems: maxItems, MaxBytes: 1 << 20}, window, replyTimeout), gen: 1, refs: map[string]*Item{}}
	for i := 0; i < items; i++ {
		w.d.Add(item(i, 1))
	}
	return w
}

// send pushes everything Delivery lets out at now and returns the kinds
// sent, in order.
func (w *wire) send(now time.Time) []string {
	var sent []string
	for it := w.d.Next(); it != nil; it = w.d.Next() {
		w.n++
		ref := fmt.Sprint(w.n)
		w.refs[ref] = it
		w.d.Sent(it, ref, w.gen, now)
		sent = append(sent, it.Kind)
	}
	return sent
}

// reconnect starts a new connection generation whose refs start over.
func (w *wire) reconnect() {
	w.d.Lost(nil)
	w.gen++
	w.n = 0
}

// ref is the ref under which kind is on the wire, or "" if it is not.
func (w *wire) ref(kind string) string {
	last := ""
	for r, it := range w.refs {
		if it.Kind == kind && it.Ref == r {
			last = r
		}
	}
	return last
}

func queued(d *Delivery) []string {
	var got []string
	d.q.Each(func(it *Item) bool { got = append(got, it.Kind); return true })
	return got
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func checkKinds(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// The first push goes out alone and its fate decides the ack mode; the
// window opens only once the mode is known.
func TestDeliveryLearnsAckMode(t *testing.T) {
	cases := []struct {
		name        string
		settle      func(w *wire) (learnt bool)
		wantLearnt  bool
		wantMode    ackMode
		wantQueued  []string
		wantAcked   int64
		wantNowSent []string
	}{
		{"reply ok: acks", func(w *wire) bool {
			_, out, learnt := w.d.Replied(w.ref("0"), 1, "ok", `{}`)
			return learnt && out == Delivered
		}, true, acksYes, []string{"1", "2", "3", "4"}, 1, []string{"1", "2", "3"}},
		{"reply error: acks, not retried", func(w *wire) bool {
			_, out, learnt := w.d.Replied(w.ref("0"), 1, "error", `{"reason":"bad"}`)
			return learnt && out == Refused
		}, true, acksYes, []string{"1", "2", "3", "4"}, 0, []string{"1", "2", "3"}},
		{"unmatched topic: acks, resent first", func(w *wire) bool {
			_, out, learnt := w.d.Replied(w.ref("0"), 1, "error", `{"reason":"unmatched topic"}`)
			return learnt && out == Requeued
		}, true, acksYes, []string{"0", "1", "2", "3", "4"}, 0, []string{"0", "1", "2"}},
		{"no reply for the timeout: noreply, delivered", func(w *wire) bool {
			w.d.Written(w.ref("0"), 1)
			return w.d.Expire(t0.Add(replyTimeout + time.Nanosecond))
		}, true, acksNo, []string{"1", "2", "3", "4"}, 1, []string{"1", "2", "3"}},
		{"no reply but not yet written: noreply, still in flight", func(w *wire) bool {
			return w.d.Expire(t0.Add(replyTimeout + time.Nanosecond))
		}, true, acksNo, []string{"0", "1", "2", "3", "4"}, 0, []string{"1", "2"}},
		{"not yet the timeout: still unknown", func(w *wire) bool {
			return w.d.Expire(t0.Add(replyTimeout))
		}, false, acksUnknown, []string{"0", "1", "2", "3", "4"}, 0, nil},
		{"written says nothing about acks", func(w *wire) bool {
			return w.d.Written(w.ref("0"), 1)
		}, false, acksUnknown, []string{"0", "1", "2", "3", "4"}, 0, nil},
		{"reply from an older connection is not evidence", func(w *wire) bool {
			_, out, learnt := w.d.Replied(w.ref("0"), 0, "ok", `{}`)
			return learnt || out != Ignored
		}, false, acksUnknown, []string{"0", "1", "2", "3", "4"}, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(100, 3, 5)
			checkKinds(t, "first send", w.send(t0), "0")
			check(t, "learnt", c.settle(w), c.wantLearnt)
			check(t, "mode", w.d.mode, c.wantMode)
			checkKinds(t, "queued", queued(w.d), c.wantQueued...)
			check(t, "acked", w.d.Stats().Acked, c.wantAcked)
			checkKinds(t, "sent after settling", w.send(t0.Add(replyTimeout)), c.wantNowSent...)
		})
	}
}

// At most window pushes are in flight once the mode is known, one before.
// A settled push lets one more out, or the whole window once it settles
// the mode.
func TestDeliveryWindow(t *testing.T) {
	cases := []struct {
		name      string
		mode      ackMode
		window    int
		items     int
		wantFirst []string
		wantAfter []string // after the oldest push is settled
	}{
		{"unknown mode sends one", acksUnknown, 3, 5, []string{"0"}, []string{"1", "2", "3"}},
		{"acks fill the window", acksYes, 3, 5, []string{"0", "1", "2"}, []string{"3"}},
		{"noreply fills the window", acksNo, 3, 5, []string{"0", "1", "2"}, []string{"3"}},
		{"fewer items than the window", acksYes, 8, 2, []string{"0", "1"}, nil},
		{"window of one", acksYes, 1, 3, []string{"0"}, []string{"1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(100, c.window, c.items)
			w.d.mode = c.mode
			checkKinds(t, "first send", w.send(t0), c.wantFirst...)
			if w.d.Next() != nil {
				t.Fatal("window full but Next offers another item")
			}
			if c.mode == acksNo {
				check(t, "written delivers", w.d.Written(w.ref("0"), 1), true)
			} else {
				_, _, learnt := w.d.Replied(w.ref("0"), 1, "ok", `{}`)
				check(t, "learnt acks", learnt, c.mode == acksUnknown)
			}
			checkKinds(t, "after one settled", w.send(t0), c.wantAfter...)
			check(t, "pushed", w.d.Stats().Pushed, int64(len(c.wantFirst)+len(c.wantAfter)))
		})
	}
}

// A lost connection puts every push in flight back in line, and they go
// out again in queue order, ahead of anything never sent, the oldest alone
// first while the new connection's ack mode is learnt; replies from the old
// connection settle nothing.
func TestDeliveryConnectionLost(t *testing.T) {
	cases := []struct {
		name       string
		mode       ackMode
		settled    []string // settled before the loss, out of order
		wantResent []string
		wantQueued []string
	}{
		{"acks: unacked resent in order", acksYes, []string{"1"}, []string{"0"}, []string{"0", "2", "3", "4", "5"}},
		{"acks: nothing settled", acksYes, nil, []string{"0"}, []string{"0", "1", "2", "3", "4", "5"}},
		{"noreply: unwritten resent in order", acksNo, []string{"2"}, []string{"0"}, []string{"0", "1", "3", "4", "5"}},
		{"unknown: the probe is resent", acksUnknown, nil, []string{"0"}, []string{"0", "1", "2", "3", "4", "5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(100, 3, 6)
			w.d.mode = c.mode
			old := map[string]string{}
			for _, k := range w.send(t0) {
				old[k] = w.ref(k)
			}
			for _, k := range c.settled {
				if c.mode == acksNo {
					w.d.Written(w.ref(k), 1)
				} else {
					w.d.Replied(w.ref(k), 1, "ok", `{}`)
				}
			}
			w.reconnect()
			if w.d.inflight != 0 || len(w.d.byRef) != 0 {
				t.Errorf("in flight after loss: %d, byRef %v", w.d.inflight, w.d.byRef)
			}
			for k, ref := range old {
				if _, out, _ := w.d.Replied(ref, 1, "ok", `{}`); out != Ignored {
					t.Errorf("reply for %s from the lost connection: %v", k, out)
				}
				if w.d.Written(ref, 1) {
					t.Errorf("write of %s on the lost connection delivered it", k)
				}
			}
			checkKinds(t, "queued", queued(w.d), c.wantQueued...)
			checkKinds(t, "resent", w.send(t0), c.wantResent...)
			// The new connection reuses ref "1": only its own reply counts.
			if _, out, _ := w.d.Replied("1", 1, "ok", `{}`); out != Ignored {
				t.Errorf("old connection's reply settled a resent push: %v", out)
			}
			if it, out, _ := w.d.Replied("1", 2, "ok", `{}`); out != Delivered || it.Kind != c.wantResent[0] {
				t.Errorf("reply to the first resend: %v %v", it, out)
			}
		})
	}
}

// Against a server that never replies, a push is delivered once written,
// and only then: an unwritten push stays in flight however long it waits.
func TestDeliveryNoReplyServer(t *testing.T) {
	cases := []struct {
		name      string
		ref       func(w *wire) string
		gen       uint64
		delivered bool
	}{
		{"written on this connection", func(w *wire) string { return w.ref("1") }, 1, true},
		{"written on an older connection", func(w *wire) string { return w.ref("1") }, 0, false},
		{"unknown ref", func(*wire) string { return "99" }, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(100, 2, 3)
			w.send(t0)
			w.d.Written(w.ref("0"), 1)
			if !w.d.Expire(t0.Add(replyTimeout + time.Nanosecond)) {
				t.Fatal("noreply not learnt")
			}
			checkKinds(t, "sent", w.send(t0.Add(replyTimeout)), "1", "2")
			// Long after: unwritten pushes are neither delivered nor resent.
			if w.d.Expire(t0.Add(10*replyTimeout)) || w.d.Next() != nil {
				t.Error("Expire settled pushes against a noreply server")
			}
			ref := c.ref(w)
			check(t, "delivered", w.d.Written(ref, c.gen), c.delivered)
			want, acked := []string{"1", "2"}, int64(1)
			if c.delivered {
				want, acked = []string{"2"}, 2
			}
			checkKinds(t, "queued", queued(w.d), want...)
			check(t, "acked", w.d.Stats().Acked, acked)
			// Delivered means done: a later reply must not count it twice.
			w.d.Replied(ref, c.gen, "ok", `{}`)
			if c.delivered {
				check(t, "acked after a reply to a written push", w.d.Stats().Acked, acked)
			}
		})
	}
}

// A server that acked and then leaves a push unanswered for the reply
// timeout is taken not to reply: the written pushes in flight count as
// delivered, an unwritten one when it is written, and nothing is sent
// twice on the connection. A late ack turns acks back on.
func TestDeliveryServerStopsAcking(t *testing.T) {
	cases := []struct {
		name        string
		expireAt    time.Duration
		wantLearnt  bool
		wantQueued  []string
		wantSentNow []string
	}{
		{"at the timeout: still waiting", replyTimeout, false, []string{"0", "2", "3"}, []string{"3"}},
		{"past the timeout: taken not to reply", replyTimeout + time.Nanosecond, true, []string{"2", "3"}, []string{"3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(100, 3, 4)
			w.d.mode = acksYes
			checkKinds(t, "sent", w.send(t0), "0", "1", "2")
			w.d.Written(w.ref("0"), 1)
			w.d.Written(w.ref("1"), 1)
			w.d.Replied(w.ref("1"), 1, "ok", `{}`)
			first := w.ref("0")
			check(t, "learnt", w.d.Expire(t0.Add(c.expireAt)), c.wantLearnt)
			checkKinds(t, "queued", queued(w.d), c.wantQueued...)
			checkKinds(t, "sent after expiry", w.send(t0.Add(c.expireAt)), c.wantSentNow...)
			if !c.wantLearnt {
				return
			}
			check(t, "unwritten delivered once written", w.d.Written(w.ref("2"), 1), true)
			_, out, learnt := w.d.Replied(first, 1, "ok", `{}`)
			check(t, "late ack of a delivered push", out, Ignored)
			check(t, "late ack relearns acks", learnt, true)
			check(t, "written no longer delivers", w.d.Written(w.ref("3"), 1), false)
			if _, out, _ := w.d.Replied(w.ref("3"), 1, "ok", `{}`); out != Delivered {
				t.Errorf("ack after relearning: %v", out)
			}
			check(t, "pushed", w.d.Stats().Pushed, 4)
			check(t, "acked", w.d.Stats().Acked, 4)
		})
	}
}

// A late ack (after the reply timeout, while the mode is still acks)
// completes its push.
func TestDeliveryLateAckCompletesItsPush(t *testing.T) {
	w := newWire(100, 2, 2)
	w.d.mode = acksYes
	w.send(t0)
	if it, out, _ := w.d.Replied(w.ref("0"), 1, "ok", `{}`); out != Delivered || it.Kind != "0" {
		t.Errorf("late ack: %v %v", it, out)
	}
	checkKinds(t, "queued", queued(w.d), "1")
}

// A server that stops replying after acking a few pushes gets each push
// once: 12 samples, 12 pushes (the bug: 96 in 60 s).
func TestDeliveryEachPushOnceWhenAcksStop(t *testing.T) {
	w := newWire(100, 4, 12)
	now := t0
	acks := 3
	for step := 0; step < 60 && len(queued(w.d)) > 0; step++ {
		now = now.Add(time.Second)
		for _, k := range w.send(now) {
			ref := w.ref(k)
			w.d.Written(ref, 1)
			if acks > 0 {
				acks--
				w.d.Replied(ref, 1, "ok", `{}`)
			}
		}
		w.d.Expire(now)
	}
	checkKinds(t, "queued", queued(w.d))
	check(t, "pushed", w.d.Stats().Pushed, 12)
}

// The oldest push in flight is charged each lost channel or connection; at
// MaxFailures it is set aside and the rest go on. Pushes behind it, and a
// loss with nothing in flight, are not charged.
func TestDeliveryPoisonIsSetAside(t *testing.T) {
	w := newWire(100, 3, 4)
	w.d.mode = acksYes
	for i := 1; i <= MaxFailures; i++ {
		sent := w.send(t0)
		if sent[0] != "0" {
			t.Fatalf("attempt %d sent %v, want the poison first", i, sent)
		}
		w.d.Written(w.ref("0"), w.gen)
		poisoned := w.d.Lost(nil)
		w.gen, w.n = w.gen+1, 0
		if (i == MaxFailures) != (len(poisoned) == 1) {
			t.Fatalf("attempt %d: poisoned %v", i, poisoned)
		}
		if len(w.d.Lost(nil)) != 0 {
			t.Fatal("a loss with nothing in flight set something aside")
		}
	}
	check(t, "poisoned", w.d.Stats().Poisoned, 1)
	checkKinds(t, "queued", queued(w.d), "1", "2", "3")
	w.d.q.Each(func(it *Item) bool {
		check(t, "failures of "+it.Kind, it.Failures(), 0)
		return true
	})
	checkKinds(t, "sent", w.send(t0), "1")
}

// Overflow drops the oldest items and counts them; a dropped push that was
// in flight frees its place in the window and its reply settles nothing.
func TestDeliveryOverflow(t *testing.T) {
	cases := []struct {
		name        string
		max         int
		sendFirst   int // items queued and sent before the overflow
		more        int
		wantDrops   []int // Add's count for each of the more items
		wantDropped int64
		wantQueued  []string
		wantSent    []string // sent after the overflow
	}{
		{"fits", 5, 2, 2, []int{0, 0}, 0, []string{"0", "1", "2", "3"}, nil},
		{"drops unsent oldest", 3, 0, 5, []int{0, 0, 0, 1, 1}, 2, []string{"2", "3", "4"}, []string{"2", "3"}},
		{"drops in-flight oldest", 3, 2, 3, []int{0, 1, 1}, 2, []string{"2", "3", "4"}, []string{"2", "3"}},
		{"drops one of two in flight", 3, 2, 2, []int{0, 1}, 1, []string{"1", "2", "3"}, []string{"2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(c.max, 2, c.sendFirst)
			w.d.mode = acksYes
			w.send(t0)
			refs := map[string]string{}
			for i := 0; i < c.sendFirst; i++ {
				refs[fmt.Sprint(i)] = w.ref(fmt.Sprint(i))
			}
			var drops []int
			for i := 0; i < c.more; i++ {
				drops = append(drops, w.d.Add(item(c.sendFirst+i, 1)))
			}
			if !slices.Equal(drops, c.wantDrops) {
				t.Errorf("drops per Add = %v, want %v", drops, c.wantDrops)
			}
			check(t, "dropped", w.d.Stats().Dropped, c.wantDropped)
			checkKinds(t, "queued", queued(w.d), c.wantQueued...)
			for k, ref := range refs {
				if slices.Contains(c.wantQueued, k) {
					continue
				}
				if _, out, _ := w.d.Replied(ref, 1, "ok", `{}`); out != Ignored {
					t.Errorf("reply for dropped %s: %v", k, out)
				}
			}
			check(t, "acked", w.d.Stats().Acked, 0)
			checkKinds(t, "sent", w.send(t0), c.wantSent...)
		})
	}
}

// A push can go out on a new connection before the old one's loss is
// handled, under a ref the old connection already used; the loss must
// still put both pushes back in line.
func TestDeliveryLostAfterRefReuse(t *testing.T) {
	w := newWire(100, 3, 4)
	w.d.mode = acksYes
	checkKinds(t, "old connection", w.send(t0), "0", "1", "2")
	for _, k := range []string{"1", "2"} {
		w.d.Replied(w.ref(k), 1, "ok", `{}`)
	}
	w.gen, w.n = 2, 0 // reconnected; the loss is not handled yet
	checkKinds(t, "new connection", w.send(t0), "3")
	if it := w.d.byRef[wireKey{2, "1"}]; it.Kind != "3" {
		t.Fatalf("ref 1 is %s; the test needs the new push to reuse it", it.Kind)
	}
	w.d.Lost(nil)
	if w.d.inflight != 0 || len(w.d.byRef) != 0 {
		t.Errorf("in flight after loss: %d, byRef %v", w.d.inflight, w.d.byRef)
	}
	checkKinds(t, "back in line", queued(w.d), "0", "3")
	checkKinds(t, "resent first", w.send(t0), "0")
}

// A connection the agent closed itself (a reload moved it to another
// server) puts what was in flight back in line, oldest first, and charges
// no failure: any number of reloads never sets a good sample aside.
func TestRequeueChargesNothing(t *testing.T) {
	w := newWire(100, 3, 4)
	w.d.mode = acksYes
	for i := 0; i < 2*MaxFailures; i++ {
		sent := w.send(t0)
		if sent[0] != "0" {
			t.Fatalf("round %d sent %v, want the oldest first", i, sent)
		}
		w.d.Written(w.ref("0"), w.gen)
		w.d.Requeue()
		w.gen, w.n = w.gen+1, 0
	}
	check(t, "poisoned", w.d.Stats().Poisoned, 0)
	w.d.q.Each(func(it *Item) bool {
		check(t, "failures of "+it.Kind, it.Failures(), 0)
		return true
	})
	checkKinds(t, "queued", queued(w.d), "0", "1", "2", "3")
}
