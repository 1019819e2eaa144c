package phoenix

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Handler receives the client's events. Methods are called from the
// client's goroutines and must not block (the reporter forwards each one to
// its mailbox).
type Handler interface {
	// Connected: the websocket is up (not yet joined).
	Connected(gen uint64)
	// Joined: the topic is joined; pushes are accepted from now on.
	Joined(gen uint64)
	// JoinRefused: the server answered the join with an error (or not at
	// all); a rejoin is scheduled.
	JoinRefused(gen uint64, reason string)
	// Left: the channel is no longer joined (phx_error, phx_close,
	// "unmatched topic"); a rejoin is scheduled.
	Left(gen uint64, reason string)
	// Disconnected: the connection ended or could not be made; a reconnect
	// is scheduled unless the client was closed.
	Disconnected(gen uint64, err error)
	// Written: the push with ref went out on the socket.
	Written(gen uint64, ref string)
	// Replied: the server answered the push with ref.
	Replied(gen uint64, ref string, r Reply)
}

// Options configure a Client. Zero durations take the defaults of PROTOCOL.md.
type Options struct {
	URL        string
	Token      string
	Topic      string
	JoinParams any
	Heartbeat  time.Duration
	// ReplyTimeout bounds the wait for a join reply.
	ReplyTimeout     time.Duration
	WriteTimeout     time.Duration
	HandshakeTimeout time.Duration
	TLS              *tls.Config
	Reconnect        []time.Duration
	Rejoin           []time.Duration
	// Jitter is applied to every reconnect delay (default Jitter).
	Jitter    func(time.Duration) time.Duration
	ReadLimit int64
	// OutQueue bounds frames waiting for the writer.
	OutQueue int
	Handler  Handler
	Log      *slog.Logger
}

// ErrNotJoined is returned by Push while the topic is not joined.
var ErrNotJoined = errors.New("not joined")

// ErrBusy is returned by Push when the writer's queue is full.
var ErrBusy = errors.New("write queue full")

// DialError is a failed connection attempt; StatusCode is the HTTP status
// of a refused upgrade (403: the server's connect/3 rejected the token).
type DialError struct {
	StatusCode int
	Err        error
}

func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("upgrade refused with HTTP %d: %v", e.StatusCode, e.Err)
	}
	return e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// Client is one Phoenix socket with one channel.
type Client struct {
	o      Options
	url    string
	dialer *websocket.Dialer

	mu   sync.Mutex
	sess *session
	gen  uint64

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates o and builds the socket URL: token and vsn=2.0.0 are added
// to the query (vsn only if absent; the user's own parameters are kept).
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("server_url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("server_url: scheme must be ws or wss, got %q", u.Scheme)
	}
	q := u.Query()
	q.Set("token", o.Token)
	if q.Get("vsn") == "" {
		q.Set("vsn", "2.0.0")
	}
	u.RawQuery = q.Encode()
	if o.Heartbeat <= 0 {
		o.Heartbeat = 30 * time.Second
	}
	if o.ReplyTimeout <= 0 {
		o.ReplyTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.Reconnect == nil {
		o.Reconnect = ReconnectSchedule
	}
	if o.Rejoin == nil {
		o.Rejoin = RejoinSchedule
	}
	if o.Jitter == nil {
		o.Jitter = Jitter
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 8 << 20
	}
	if o.OutQueue <= 0 {
		o.OutQueue = 256
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{o: o, url: u.String(), done: make(chan struct{})}
	// No Origin header is ever set: Phoenix checks origin only when present.
	c.dialer = &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: o.HandshakeTimeout,
		TLSClientConfig:  o.TLS,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start runs the connect/join loop until Close.
func (c *Client) Start() { go c.run() }

// Close stops reconnecting, closes the socket with 1000 (normal closure)
// and waits for the client's goroutines to end.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// Push sends event with payload on the joined topic, stamped with the
// current join_ref. It returns the push's ref and the connection generation
// it belongs to, or ErrNotJoined / ErrBusy.
func (c *Client) Push(event string, payload json.RawMessage) (ref string, gen uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sess
	if s == nil || !s.joined {
		return "", 0, ErrNotJoined
	}
	ref = s.nextRef()
	b, err := Frame{JoinRef: s.joinRef, Ref: ref, Topic: c.o.Topic, Event: event, Payload: payload}.Encode()
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

// redact keeps the token out of any error text that leaves the client.
func (c *Client) redact(err error) error {
	if err == nil || c.o.Token == "" || !strings.Contains(err.Error(), c.o.Token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.o.Token, "REDACTED"))
}

func (c *Client) run() {
	defer close(c.done)
	attempt := 0
	for {
		if c.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.gen++
		gen := c.gen
		c.mu.Unlock()
		conn, resp, err := c.dialer.DialContext(c.ctx, c.url, nil)
		if err != nil {
			derr := &DialError{Err: c.redact(err)}
			if resp != nil {
				derr.StatusCode = resp.StatusCode
				resp.Body.Close()
			}
			if c.ctx.Err() != nil {
				return
			}
			c.o.Handler.Disconnected(gen, derr)
		} else {
			attempt = 0
			c.o.Handler.Connected(gen)
			err = c.session(gen, conn)
			c.o.Handler.Disconnected(gen, c.redact(err))
			if c.ctx.Err() != nil {
				return
			}
		}
		delay := c.o.Jitter(Step(c.o.Reconnect, attempt))
		attempt++
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

type out struct {
	data    []byte
	pushRef string // "" for control frames (join, heartbeat)
}

// session is one connection's state. joined and joinRef are guarded by
// Client.mu (Push reads them); everything else belongs to the session loop.
type session struct {
	gen     uint64
	out     chan out
	ref     uint64
	joinRef string
	joined  bool
}

func (s *session) nextRef() string {
	s.ref++
	return strconv.FormatUint(s.ref, 10)
}

var errHeartbeat = errors.New("heartbeat not answered before the next one was due")

// session runs one connection: one writer goroutine, one reader goroutine,
// and this loop owning the protocol state. It returns why the connection
// ended; nil when the client was closed.
func (c *Client) session(gen uint64, conn *websocket.Conn) error {
	conn.SetReadLimit(c.o.ReadLimit)
	s := &session{gen: gen, out: make(chan out, c.o.OutQueue)}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.sess = nil
		c.mu.Unlock()
	}()

	failed := make(chan error, 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // writer: the only goroutine that writes data frames
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case f := <-s.out:
				_ = conn.SetWriteDeadline(time.Now().Add(c.o.WriteTimeout))
				if err := conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
					failed <- fmt.Errorf("write: %w", err)
					return
				}
				if f.pushRef != "" {
					c.o.Handler.Written(gen, f.pushRef)
				}
			}
		}
	}()
	frames := make(chan []byte, 64)
	go func() { // reader
		defer wg.Done()
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				failed <- fmt.Errorf("read: %w", err)
				return
			}
			select {
			case frames <- b:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		_ = conn.Close()
		wg.Wait()
	}()

	enqueue := func(f Frame) error {
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
	joinAttempt := 0
	pendingJoin := ""
	joinTimer := time.NewTimer(time.Hour)
	joinTimer.Stop()
	rejoinTimer := time.NewTimer(time.Hour)
	rejoinTimer.Stop()
	defer joinTimer.Stop()
	defer rejoinTimer.Stop()
	sendJoin := func() error {
		c.mu.Lock()
		pendingJoin = s.nextRef()
		s.joinRef = pendingJoin
		s.joined = false
		c.mu.Unlock()
		joinTimer.Reset(c.o.ReplyTimeout)
		return enqueue(Frame{JoinRef: pendingJoin, Ref: pendingJoin, Topic: c.o.Topic, Event: EventJoin, Payload: mustJSON(c.o.JoinParams)})
	}
	scheduleRejoin := func() {
		c.mu.Lock()
		s.joined = false
		c.mu.Unlock()
		pendingJoin = ""
		joinTimer.Stop()
		rejoinTimer.Reset(Step(c.o.Rejoin, joinAttempt))
		joinAttempt++
	}
	if err := sendJoin(); err != nil {
		return err
	}
	hb := time.NewTicker(c.o.Heartbeat)
	defer hb.Stop()
	hbPending := ""

	for {
		select {
		case <-c.ctx.Done():
			// Normal closure, then give the server a moment to echo it.
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			select {
			case <-failed:
			case <-time.After(time.Second):
			}
			return nil
		case err := <-failed:
			return err
		case <-hb.C:
			if hbPending != "" {
				return errHeartbeat
			}
			c.mu.Lock()
			hbPending = s.nextRef()
			c.mu.Unlock()
			if err := enqueue(Frame{Ref: hbPending, Topic: TopicPhoenix, Event: EventHeartbeat}); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
		case <-joinTimer.C:
			scheduleRejoin()
			c.o.Handler.JoinRefused(gen, "no reply to join within "+c.o.ReplyTimeout.String())
		case <-rejoinTimer.C:
			if err := sendJoin(); err != nil {
				return err
			}
		case b := <-frames:
			f, err := Decode(b)
			if err != nil {
				return err
			}
			switch {
			case f.Topic == TopicPhoenix && f.Event == EventReply:
				if f.Ref == hbPending {
					hbPending = ""
				}
			case f.Topic != c.o.Topic:
				// Not ours.
			case f.JoinRef != s.joinRef:
				// A message for an earlier join: ignore it.
			case f.Event == EventReply && f.Ref == pendingJoin && pendingJoin != "":
				r, err := ParseReply(f.Payload)
				if err != nil {
					return err
				}
				joinTimer.Stop()
				pendingJoin = ""
				if r.Status == "ok" {
					joinAttempt = 0
					c.mu.Lock()
					s.joined = true
					c.mu.Unlock()
					c.o.Handler.Joined(gen)
				} else {
					scheduleRejoin()
					c.o.Handler.JoinRefused(gen, string(r.Response))
				}
			case f.Event == EventReply:
				r, err := ParseReply(f.Payload)
				if err != nil {
					return err
				}
				// Leave the joined state before telling anyone, so a Push
				// that follows the Left event is already refused.
				unmatched := r.Status != "ok" && strings.Contains(string(r.Response), "unmatched topic")
				if unmatched {
					scheduleRejoin()
				}
				c.o.Handler.Replied(gen, f.Ref, r)
				if unmatched {
					c.o.Handler.Left(gen, "server says unmatched topic")
				}
			case f.Event == EventError || f.Event == EventClose:
				scheduleRejoin()
				c.o.Handler.Left(gen, f.Event)
			}
		}
	}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}
