package phoenix

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// state is where the client stands in the connect/join protocol. Named
// states make the rules checkable at a glance: the join timer runs only while
// joining, the rejoin timer only while waitingToRejoin, and Push accepts
// nothing unless joined.
type state int

const (
	// connecting: no join has been sent. Client.run is dialling or waiting
	// out the reconnect backoff (Client.sess is nil), or the socket has only
	// just opened.
	connecting state = iota
	// joining: a join is queued or sent; its reply must come before the join
	// timer fires.
	joining
	// joined: the server accepted the current join_ref; pushes go out.
	joined
	// waitingToRejoin: the join was refused or went unanswered, or the
	// channel was lost; the rejoin timer leads back to joining.
	waitingToRejoin
)

type out struct {
	data    []byte
	pushRef string // "" for control frames (join, heartbeat)
}

var errHeartbeat = errors.New("heartbeat not answered before the next one was due")

// session is one connection. Its protocol state belongs to the session loop;
// state, ref and joinRef change only under Client.mu because Push, running on
// the caller's goroutine, reads them.
type session struct {
	c   *Client
	gen uint64
	ws  *websocket.Conn

	out    chan out     // to the writer, the socket's only writer of data frames
	in     chan inbound // from the reader: frames, then the error that ended it
	failed chan error   // from the writer when the socket breaks
	stop   chan struct{}
	wg     sync.WaitGroup

	state   state
	ref     uint64
	joinRef string
	pending pendingRefs // pushes awaiting a reply; guarded by Client.mu

	joinAttempt  int         // rejoin backoff step
	healthy      bool        // joined long enough, or a push acked: backoff starts over
	hbPending    string      // ref of the heartbeat not yet answered
	joinTimer    *time.Timer // armed only while joining
	rejoinTimer  *time.Timer // armed only while waitingToRejoin
	healthyTimer *time.Timer // armed only while joined and not yet healthy
	heartbeat    *time.Ticker
}

// inbound is what the reader hands the loop. Frames and the read error share
// one channel so that replies the server sent before it closed are handled
// before the close is: a select over two channels could take the error first
// and lose an ack that had already arrived.
type inbound struct {
	frame []byte
	err   error
}

// runSession runs one connection to its end and returns why it ended (nil
// when the client was closed), and whether the connection was healthy at
// some point, which is what earns the next reconnect a fresh backoff.
func (c *Client) runSession(gen uint64, ws *websocket.Conn) (healthy bool, err error) {
	s := c.openSession(gen, ws)
	defer c.closeSession(s)
	err = s.loop()
	return s.healthy, err
}

// openSession publishes a session for Push and starts its reader and writer.
func (c *Client) openSession(gen uint64, ws *websocket.Conn) *session {
	ws.SetReadLimit(c.o.ReadLimit)
	s := &session{
		c: c, gen: gen, ws: ws,
		out:          make(chan out, c.o.OutQueue),
		in:           make(chan inbound, 64),
		failed:       make(chan error, 1),
		stop:         make(chan struct{}),
		state:        connecting,
		pending:      newPendingRefs(maxPending),
		joinTimer:    stoppedTimer(),
		rejoinTimer:  stoppedTimer(),
		healthyTimer: stoppedTimer(),
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	s.wg.Add(2)
	go s.write()
	go s.read()
	return s
}

// closeSession unpublishes s last, as the session always has: until then a
// Push may still queue on s.out, which nobody drains any more. Such a push
// never gets a Written event; the Disconnected that follows covers it.
func (c *Client) closeSession(s *session) {
	s.joinTimer.Stop()
	s.rejoinTimer.Stop()
	s.healthyTimer.Stop()
	close(s.stop)
	_ = s.ws.Close()
	s.wg.Wait()
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// loop dispatches the session's events until one of them ends it.
func (s *session) loop() error {
	if err := s.join(); err != nil {
		return err
	}
	s.heartbeat = time.NewTicker(s.c.o.Heartbeat)
	defer s.heartbeat.Stop()
	for {
		var err error
		select {
		case <-s.c.ctx.Done():
			return s.onClose()
		case err = <-s.failed:
		case in := <-s.in:
			err = in.err
			if err == nil {
				err = s.onFrame(in.frame)
			}
		case <-s.heartbeat.C:
			err = s.onHeartbeatTick()
		case <-s.joinTimer.C:
			s.onJoinTimeout()
		case <-s.rejoinTimer.C:
			err = s.join()
		case <-s.healthyTimer.C:
			s.markHealthy()
		}
		if err != nil {
			return err
		}
	}
}

func (s *session) write() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case f := <-s.out:
			_ = s.ws.SetWriteDeadline(time.Now().Add(s.c.o.WriteTimeout))
			if err := s.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				s.failed <- fmt.Errorf("write: %w", err)
				return
			}
			if f.pushRef != "" {
				s.c.o.Handler.Written(s.gen, f.pushRef)
			}
		}
	}
}

func (s *session) read() {
	defer s.wg.Done()
	for {
		_, b, err := s.ws.ReadMessage()
		in := inbound{frame: b}
		if err != nil {
			in = inbound{err: fmt.Errorf("read: %w", err)}
		}
		select {
		case s.in <- in:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// nextRef draws from the connection's one ref counter; the caller holds
// Client.mu because Push draws from it too.
func (s *session) nextRef() string {
	s.ref++
	return strconv.FormatUint(s.ref, 10)
}

func (s *session) setState(st state) {
	s.c.mu.Lock()
	s.state = st
	s.c.mu.Unlock()
}

// enqueue never blocks the loop: a writer that has fallen a whole queue
// behind is stuck, and the caller ends the connection.
func (s *session) enqueue(f Frame) error {
	b, err := f.Encode()
	if err != nil {
		return err
	}
	select {
	case s.out <- out{data: b}:
		return nil
	default:
		return ErrBusy
	}
}

// push is the push-request event. It runs on the caller's goroutine under
// Client.mu rather than in the loop, so that Push can answer ErrNotJoined or
// ErrBusy at once.
func (s *session) push(event string, payload json.RawMessage) (string, uint64, error) {
	if s.state != joined {
		return "", 0, ErrNotJoined
	}
	ref := s.nextRef()
	b, err := Frame{JoinRef: s.joinRef, Ref: ref, Topic: s.c.o.Topic, Event: event, Payload: payload}.Encode()
	if err != nil {
		return "", 0, err
	}
	select {
	case s.out <- out{data: b, pushRef: ref}:
		s.pending.add(ref)
		return ref, s.gen, nil
	default:
		return "", 0, ErrBusy
	}
}

// join enters joining with a fresh join_ref, which from now on is the only
// one whose messages count.
func (s *session) join() error {
	s.c.mu.Lock()
	s.joinRef = s.nextRef()
	s.state = joining
	s.c.mu.Unlock()
	s.joinTimer.Reset(s.c.o.ReplyTimeout)
	return s.enqueue(Frame{JoinRef: s.joinRef, Ref: s.joinRef, Topic: s.c.o.Topic, Event: EventJoin, Payload: mustJSON(s.c.o.JoinParams)})
}

// waitToRejoin is entered from any state but connecting. Callers tell the
// handler only afterwards, so a Push that follows the event is already
// refused.
func (s *session) waitToRejoin() {
	s.setState(waitingToRejoin)
	s.joinTimer.Stop()
	s.healthyTimer.Stop()
	s.rejoinTimer.Reset(Step(s.c.o.Rejoin, s.joinAttempt))
	s.joinAttempt++
}

func (s *session) onJoinTimeout() {
	s.waitToRejoin()
	s.c.o.Handler.JoinRefused(s.gen, "no reply to join within "+s.c.o.ReplyTimeout.String())
}

// onHeartbeatTick declares the connection dead when the previous heartbeat
// is still unanswered, as slipstream does.
func (s *session) onHeartbeatTick() error {
	if s.hbPending != "" {
		return errHeartbeat
	}
	s.c.mu.Lock()
	s.hbPending = s.nextRef()
	s.c.mu.Unlock()
	if err := s.enqueue(Frame{Ref: s.hbPending, Topic: TopicPhoenix, Event: EventHeartbeat}); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// onHeartbeatReply matches by ref, so a stray reply on the phoenix topic
// cannot stand in for the answer to the outstanding heartbeat.
func (s *session) onHeartbeatReply(f Frame) {
	if f.Ref == s.hbPending {
		s.hbPending = ""
	}
}

// onClose sends a normal closure and gives the server a moment to echo it.
func (s *session) onClose() error {
	_ = s.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	timeout := time.After(time.Second)
	for {
		select {
		case in := <-s.in:
			if in.err == nil {
				continue // frames still in flight before the echo
			}
		case <-s.failed:
		case <-timeout:
		}
		return nil
	}
}

// onFrame routes a frame from the server. Anything for another topic or for
// an earlier join_ref is dropped here, so no handler below sees a stale one.
// Only a frame that changes something reaches the handler: a server flooding
// frames must not flood the reporter's mailbox.
func (s *session) onFrame(b []byte) error {
	f, err := Decode(b)
	if err != nil {
		return err
	}
	switch {
	case f.Topic == TopicPhoenix && f.Event == EventReply:
		s.onHeartbeatReply(f)
	case f.Topic != s.c.o.Topic || f.JoinRef != s.joinRef:
		// Not ours, or for an earlier join.
	case f.Event == EventReply && f.Ref == s.joinRef:
		return s.onJoinReply(f)
	case f.Event == EventReply:
		return s.onPushReply(f)
	case f.Event == EventError || f.Event == EventClose:
		s.onLeft(f.Event)
	}
	return nil
}

// onLeft handles phx_error and phx_close. Once waiting to rejoin, a repeat
// changes nothing: it must neither push the rejoin further out nor reach
// the handler again.
func (s *session) onLeft(event string) {
	if s.state == waitingToRejoin {
		return
	}
	s.waitToRejoin()
	s.c.o.Handler.Left(s.gen, event)
}

// onJoinReply settles the join. A reply that comes after the join timed out
// is dropped: the rejoin is already scheduled, and the reply is no push's.
// A join that succeeds does not reset the rejoin backoff: a channel that
// crashes on every first push would otherwise be rejoined every 100 ms.
// Only a healthy join does (markHealthy).
func (s *session) onJoinReply(f Frame) error {
	if s.state != joining {
		return nil
	}
	r, err := ParseReply(f.Payload)
	if err != nil {
		return err
	}
	if r.Status != "ok" {
		s.waitToRejoin()
		s.c.o.Handler.JoinRefused(s.gen, Quote(r.Response))
		return nil
	}
	s.joinTimer.Stop()
	s.setState(joined)
	if !s.healthy {
		s.healthyTimer.Reset(s.c.o.HealthyAfter)
	}
	s.c.o.Handler.Joined(s.gen)
	return nil
}

// markHealthy records that the server has proved itself on this connection:
// the join held for HealthyAfter, or a push was acked. From here a lost
// channel or connection starts its backoff over.
func (s *session) markHealthy() {
	s.healthy = true
	s.joinAttempt = 0
	s.healthyTimer.Stop()
}

// onPushReply passes the reply on; "unmatched topic" also means the server
// no longer knows the join, so the session leaves joined first.
//
// A reply to no push awaiting one (a second reply, a made-up ref) is dropped.
func (s *session) onPushReply(f Frame) error {
	s.c.mu.Lock()
	mine := s.pending.take(f.Ref)
	s.c.mu.Unlock()
	if !mine {
		return nil
	}
	r, err := ParseReply(f.Payload)
	if err != nil {
		return err
	}
	if r.Status == "ok" && s.state == joined {
		s.markHealthy()
	}
	unmatched := r.Status != "ok" && strings.Contains(string(r.Response), "unmatched topic")
	if unmatched {
		s.waitToRejoin()
	}
	s.c.o.Handler.Replied(s.gen, f.Ref, r)
	if unmatched {
		s.c.o.Handler.Left(s.gen, "server says unmatched topic")
	}
	return nil
}

// maxPending bounds the refs a connection remembers: against a server that
// never replies every push would otherwise stay remembered for the life of
// the connection.
const maxPending = 1024

// pendingRefs is the set of push refs awaiting a reply, holding at most the
// newest n; the oldest is forgotten first. A reply to a forgotten push is
// dropped, and the reporter settles that push by its reply timeout.
type pendingRefs struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newPendingRefs(n int) pendingRefs {
	return pendingRefs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (p *pendingRefs) add(ref string) {
	if old := p.ring[p.next]; old != "" {
		delete(p.set, old)
	}
	p.ring[p.next] = ref
	p.next = (p.next + 1) % len(p.ring)
	p.set[ref] = struct{}{}
}

// take reports whether ref was pending, and forgets it.
func (p *pendingRefs) take(ref string) bool {
	if _, ok := p.set[ref]; !ok {
		return false
	}
	delete(p.set, ref)
	return true
}
