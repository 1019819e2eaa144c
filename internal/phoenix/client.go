package phoenix

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
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
	// Backoff paces reconnects (zero fields take its defaults).
	Backoff Backoff
	// Rand draws the uniform [0, 1) numbers of Backoff's jitter (default
	// math/rand/v2's Float64; tests seed their own).
	Rand func() float64
	// Reconnect, when set, replaces Backoff with a fixed schedule whose
	// steps Jitter widens (tests that need fast, predictable retries).
	Reconnect []time.Duration
	Rejoin    []time.Duration
	// HealthyAfter is how long a join must hold, with no push acked, before
	// the reconnect and rejoin backoffs start over (default 30 s). A
	// successful upgrade or join alone proves nothing: a broken server
	// accepts both and fails right after.
	HealthyAfter time.Duration
	// Jitter is applied to each step of Reconnect (default Jitter).
	Jitter func(time.Duration) time.Duration
	// ReadLimit caps one frame from the server (default 1 MiB). The server
	// sends only replies, heartbeats and channel events, all tiny; the cap
	// bounds what one hostile frame can make the client allocate.
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
	o.setDefaults()
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

// setDefaults fills in the zero fields with the defaults of PROTOCOL.md.
func (o *Options) setDefaults() {
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
	if o.Rejoin == nil {
		o.Rejoin = RejoinSchedule
	}
	if o.Jitter == nil {
		o.Jitter = Jitter
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = 30 * time.Second
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 1 << 20
	}
	if o.OutQueue <= 0 {
		o.OutQueue = 256
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
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
	if c.sess == nil {
		return "", 0, ErrNotJoined
	}
	return c.sess.push(event, payload)
}

// redact keeps the token out of any error text that leaves the client.
func (c *Client) redact(err error) error {
	if err == nil || c.o.Token == "" || !strings.Contains(err.Error(), c.o.Token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.o.Token, "REDACTED"))
}

// run is the connecting state. Every attempt takes a new generation, so the
// handler can tell a late event of an old connection from the current one.
// The backoff (see Backoff) starts over only after a healthy connection,
// never after a mere upgrade: a server that upgrades and then drops every
// connection would otherwise be redialled at once, again and again.
func (c *Client) run() {
	defer close(c.done)
	r := retry{b: c.o.Backoff, fixed: c.o.Reconnect, jitter: c.o.Jitter}
	for {
		if c.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.gen++
		gen := c.gen
		c.mu.Unlock()
		var delay time.Duration
		conn, resp, release, err := c.dial()
		if err != nil {
			release()
			derr := &DialError{Err: c.redact(err)}
			if resp != nil {
				derr.StatusCode = resp.StatusCode
				resp.Body.Close()
			}
			if c.ctx.Err() != nil {
				return
			}
			delay = r.next(err, derr.StatusCode, false, c.o.Rand())
			c.o.Handler.Disconnected(gen, derr)
		} else {
			c.o.Handler.Connected(gen)
			healthy, err := c.runSession(gen, conn)
			release()
			delay = r.next(err, 0, healthy, c.o.Rand())
			c.o.Handler.Disconnected(gen, c.redact(err))
			if c.ctx.Err() != nil {
				return
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dial makes one connection attempt. gorilla/websocket's handshake reads
// ignore the context, so a server that accepts TCP and never answers the
// upgrade would hold Close (and so the agent's SIGTERM) for the whole
// handshake timeout: the raw connection is closed as soon as the client is
// closed instead. release ends that watch once the connection is over.
func (c *Client) dial() (conn *websocket.Conn, resp *http.Response, release func(), err error) {
	var stop func() bool
	d := *c.dialer
	base := d.NetDialContext
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := base(ctx, network, addr)
		if err == nil {
			stop = context.AfterFunc(c.ctx, func() { nc.Close() })
		}
		return nc, err
	}
	conn, resp, err = d.DialContext(c.ctx, c.url, nil)
	release = func() {
		if stop != nil {
			stop()
		}
	}
	return conn, resp, release, err
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
