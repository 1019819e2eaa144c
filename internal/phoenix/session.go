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

	out    chan out    // to the writer, the socket's only writer of data frames
	frames chan []byte // from the reader
	failed chan error  // from the reader or the writer when the socket breaks
	stop   chan struct{}
	wg     sync.WaitGroup

	state   state
	ref     uint64
	joinRef string

	joinAttempt int         // rejoin backoff step
	hbPending   string      // ref of the heartbeat not yet answered
	joinTimer   *time.Timer // armed only while joining
	rejoinTimer *time.Timer // armed only while waitingToRejoin
	heartbeat   *time.Ticker
}

// runSession runs one connection to its end and returns why it ended; nil
// when the client was closed.
func (c *Client) runSession(gen uint64, ws *websocket.Conn) error {
	s := c.openSession(gen, ws)
	defer c.closeSession(s)
	return s.loop()
}

// openSession publishes a session for Push and starts its reader and writer.
func (c *Client) openSession(gen uint64, ws *websocket.Conn) *session {
	ws.SetReadLimit(c.o.ReadLimit)
	s := &session{
		c: c, gen: gen, ws: ws,
		out:         make(chan out, c.o.OutQueue),
		frames:      make(chan []byte, 64),
		failed:      make(chan error, 2),
		stop:        make(chan struct{}),
		state:       connecting,
		joinTimer:   stoppedTimer(),
		rejoinTimer: stoppedTimer(),
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
		case b := <-s.frames:
			err = s.onFrame(b)
		case <-s.heartbeat.C:
			err = s.onHeartbeatTick()
		case <-s.joinTimer.C:
			s.onJoinTimeout()
		case <-s.rejoinTimer.C:
			err = s.join()
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
		if err != nil {
			s.failed <- fmt.Errorf("read: %w", err)
			return
		}
		select {
		case s.frames <- b:
		case <-s.stop:
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
	select {
	case <-s.failed:
	case <-time.After(time.Second):
	}
	return nil
}

// onFrame routes a frame from the server. Anything for another topic or for
// an earlier join_ref is dropped here, so no handler below sees a stale one.
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
	case f.Event == EventReply && s.state == joining && f.Ref == s.joinRef:
		return s.onJoinReply(f)
	case f.Event == EventReply:
		return s.onPushReply(f)
	case f.Event == EventError || f.Event == EventClose:
		s.waitToRejoin()
		s.c.o.Handler.Left(s.gen, f.Event)
	}
	return nil
}

func (s *session) onJoinReply(f Frame) error {
	r, err := ParseReply(f.Payload)
	if err != nil {
		return err
	}
	if r.Status != "ok" {
		s.waitToRejoin()
		s.c.o.Handler.JoinRefused(s.gen, string(r.Response))
		return nil
	}
	s.joinTimer.Stop()
	s.joinAttempt = 0
	s.setState(joined)
	s.c.o.Handler.Joined(s.gen)
	return nil
}

// onPushReply passes the reply on; "unmatched topic" also means the server
// no longer knows the join, so the session leaves joined first.
func (s *session) onPushReply(f Frame) error {
	r, err := ParseReply(f.Payload)
	if err != nil {
		return err
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
