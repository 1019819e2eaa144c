// Package sink is a Phoenix-compatible websocket endpoint for tests and
// local runs: it accepts /socket/websocket, checks the token like a
// connect/3 callback (403 on a bad one), answers joins, heartbeats and
// pushes the way Phoenix does (including "unmatched topic" and ignoring
// stale join_refs), records every metric push, and can inject faults.
package sink

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/proxmox-agent/proxmox-agent/internal/phoenix"
)

// Faults change how the sink answers. The zero value behaves like a normal
// Phoenix server whose channel replies {:reply, :ok, socket} to metrics.
type Faults struct {
	NoReply     bool          // {:noreply, socket}: metric pushes get no reply
	ErrorReply  bool          // metric pushes are answered with status error
	RefuseJoins bool          // joins are answered {:error, %{reason: "unauthorized"}}
	ReplyDelay  time.Duration // delay before each metric reply
	// DropEvery closes the TCP connection without a close frame after every
	// N frames received (0: never).
	DropEvery int
	// CloseEvery closes with CloseCode after every N frames received.
	CloseEvery int
	CloseCode  int
	// IdleTimeout drops a socket without inbound data (Cowboy: 60 s).
	IdleTimeout time.Duration
	// MalformedAfter sends a frame that is not a v2 array after N frames
	// received on each connection; OversizedAfter sends a 16 MiB frame.
	MalformedAfter int
	OversizedAfter int

	// PoisonContains crashes the channel on a metric push whose payload
	// contains this text, as Phoenix does when handle_in raises: phx_error
	// for the join, and the topic is no longer joined, so pushes already
	// on their way get "unmatched topic". The push is recorded first.
	PoisonContains string
	// PoisonDrops makes a poison push cut the TCP connection instead.
	PoisonDrops bool
	// GarbageRefAfter sends, after N frames received on each connection,
	// a frame whose ref is a JSON array of GarbageRefBytes bytes (default
	// 4 MiB) instead of a string.
	GarbageRefAfter int
	GarbageRefBytes int
	// AckFirst, when positive, replies to the first N metric pushes
	// (counted across connections) and to none after them.
	AckFirst int
	// Flood sends junk frames after each join for as long as the client
	// reads them: replies to refs never pushed, heartbeat replies nobody
	// asked for, messages for other topics.
	Flood bool
	// NoUpgrade accepts TCP and reads the upgrade request but never
	// answers it.
	NoUpgrade bool
}

// Sample is one recorded metric push.
type Sample struct {
	ReceivedAt time.Time       `json:"received_at"`
	Topic      string          `json:"topic"`
	Event      string          `json:"event"`
	Payload    json.RawMessage `json:"payload"`
}

// Server is the sink. Create with New, serve with Start or as an http.Handler.
type Server struct {
	Token  string
	Faults Faults
	Log    *slog.Logger
	// Out, when set, receives one NDJSON line per recorded sample.
	Out io.Writer

	mu      sync.Mutex
	samples []Sample
	conns   map[*websocket.Conn]bool
	notify  chan struct{}

	// ConnectTimes records when each websocket was accepted.
	connectTimes []time.Time

	Connects atomic.Int64
	Refused  atomic.Int64
	Joins    atomic.Int64
	// RefusedJoins counts joins answered with an error by the RefuseJoins fault.
	RefusedJoins atomic.Int64
	Heartbeats   atomic.Int64
	// Poisoned counts poison pushes received; Flooded the junk frames sent;
	// Stalled the upgrade requests held unanswered.
	Poisoned atomic.Int64
	Flooded  atomic.Int64
	Stalled  atomic.Int64
	replied  atomic.Int64 // metric replies sent, for AckFirst

	ln  net.Listener
	srv *http.Server
}

// New returns a sink that accepts token.
func New(token string) *Server {
	return &Server{Token: token, Log: slog.New(slog.DiscardHandler), conns: map[*websocket.Conn]bool{}, notify: make(chan struct{}, 1)}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.Handle("/socket/websocket", s)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// Restart starts a sink on addr where another one just stopped: it retries
// until the old listener's port is free again, for up to within.
func (s *Server) Restart(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := s.Start(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address nothing listens on right now, so a
// test can point the agent at a server that is "away" and start it later.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// URL is the websocket URL of a started sink.
func (s *Server) URL() string { return "ws://" + s.ln.Addr().String() + "/socket/websocket" }

// Stop closes the listener and every connection abruptly (like a killed server).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// CloseAll closes every connection with a close frame of code, as a
// server going away cleanly does (1001 going away, 1012 service restart),
// and keeps serving: new connections are the caller's to refuse.
func (s *Server) CloseAll(code int) {
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	msg := websocket.FormatCloseMessage(code, "")
	for _, c := range conns {
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close()
	}
}

// ConnectTimes returns when each connection was accepted.
func (s *Server) ConnectTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.connectTimes...)
}

// Samples returns a copy of what was recorded.
func (s *Server) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// WaitSamples blocks until at least n samples were recorded or the timeout.
func (s *Server) WaitSamples(n int, timeout time.Duration) ([]Sample, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		got := s.Samples()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			return got, fmt.Errorf("sink: %d of %d samples after %s", len(got), n, timeout)
		}
	}
}

// ServeHTTP upgrades /socket/websocket like Phoenix's socket transport.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Faults.NoUpgrade {
		s.Stalled.Add(1)
		<-r.Context().Done() // Stop closes the connection
		return
	}
	q := r.URL.Query()
	// connect/3 sees only query params; a refusal is a 403 on the upgrade.
	if q.Get("token") != s.Token {
		s.Refused.Add(1)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if q.Get("vsn") != "2.0.0" {
		http.Error(w, "this sink speaks only vsn=2.0.0", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.Connects.Add(1)
	s.mu.Lock()
	s.conns[conn] = true
	s.connectTimes = append(s.connectTimes, time.Now())
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	s.serve(conn)
}

type connState struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	joined  map[string]string // topic -> join_ref
	replies sync.WaitGroup    // delayed replies and the flood, still running
	done    chan struct{}     // closed when the socket's read loop ends
	flood   bool              // the flood has been started
}

func (c *connState) send(f phoenix.Frame) {
	b, err := f.Encode()
	if err != nil {
		return
	}
	_ = c.sendRaw(b)
}

func (c *connState) sendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

func reply(f phoenix.Frame, status string, response any) phoenix.Frame {
	resp, _ := json.Marshal(response)
	payload, _ := json.Marshal(map[string]json.RawMessage{"status": json.RawMessage(`"` + status + `"`), "response": resp})
	return phoenix.Frame{JoinRef: f.JoinRef, Ref: f.Ref, Topic: f.Topic, Event: phoenix.EventReply, Payload: payload}
}

// serve answers one socket's frames in order until it fails or a fault
// ends it; n counts the frames received so far, for the *Every and *After
// faults.
func (s *Server) serve(conn *websocket.Conn) {
	st := &connState{conn: conn, joined: map[string]string{}, done: make(chan struct{})}
	defer st.replies.Wait()
	defer close(st.done)
	for n := 1; ; n++ {
		f, ok := s.readFrame(conn)
		if !ok {
			return
		}
		if !s.handle(st, f) {
			return
		}
		s.sendBadFrames(st, n)
		if s.cut(st, n) {
			return
		}
	}
}

// readFrame reports false when the socket is done: a read error, the idle
// timeout, or a malformed frame (Phoenix drops such a socket too).
func (s *Server) readFrame(conn *websocket.Conn) (phoenix.Frame, bool) {
	if s.Faults.IdleTimeout > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(s.Faults.IdleTimeout))
	}
	_, b, err := conn.ReadMessage()
	if err != nil {
		return phoenix.Frame{}, false
	}
	f, err := phoenix.Decode(b)
	if err != nil {
		s.Log.Warn("sink: malformed frame", "err", err)
		return phoenix.Frame{}, false
	}
	return f, true
}

// handle answers one frame; false ends the socket (the PoisonDrops fault).
func (s *Server) handle(st *connState, f phoenix.Frame) bool {
	switch {
	case f.Topic == phoenix.TopicPhoenix && f.Event == phoenix.EventHeartbeat:
		s.Heartbeats.Add(1)
		st.send(reply(f, "ok", map[string]any{}))
	case f.Event == phoenix.EventJoin:
		s.join(st, f)
	case f.Event == phoenix.EventLeave:
		delete(st.joined, f.Topic)
		st.send(reply(f, "ok", map[string]any{}))
	default:
		return s.channelMessage(st, f)
	}
	return true
}

func (s *Server) join(st *connState, f phoenix.Frame) {
	switch {
	case !strings.HasPrefix(f.Topic, "agent:"):
		st.send(reply(f, "error", map[string]string{"reason": "unmatched topic"}))
	case s.Faults.RefuseJoins:
		s.RefusedJoins.Add(1)
		st.send(reply(f, "error", map[string]string{"reason": "unauthorized"}))
	default:
		s.Joins.Add(1)
		st.joined[f.Topic] = f.JoinRef
		st.send(reply(f, "ok", map[string]any{}))
		s.startFlood(st, f)
	}
}

// channelMessage answers a message on a topic the way Phoenix routes it:
// unjoined topics get "unmatched topic", a stale join_ref gets nothing.
// False ends the socket.
func (s *Server) channelMessage(st *connState, f phoenix.Frame) bool {
	jr, ok := st.joined[f.Topic]
	if !ok {
		st.send(reply(f, "error", map[string]string{"reason": "unmatched topic"}))
		return true
	}
	if jr != f.JoinRef || !strings.HasPrefix(f.Event, "metric:") {
		return true
	}
	s.record(f)
	if s.poisoned(f) {
		return s.crash(st, f)
	}
	if s.Faults.NoReply || (s.Faults.AckFirst > 0 && s.replied.Add(1) > int64(s.Faults.AckFirst)) {
		return true
	}
	status := "ok"
	if s.Faults.ErrorReply {
		status = "error"
	}
	// Without a delay the reply goes out at once, in order: Phoenix sends a
	// channel's replies before the phx_error of its crash, and a client may
	// rely on that to tell which push the channel died on. With one, it goes
	// out from its own goroutine so that the delay holds up only this reply.
	if s.Faults.ReplyDelay <= 0 {
		st.send(reply(f, status, map[string]any{}))
		return true
	}
	st.replies.Add(1)
	go func() {
		defer st.replies.Done()
		time.Sleep(s.Faults.ReplyDelay)
		st.send(reply(f, status, map[string]any{}))
	}()
	return true
}

func (s *Server) poisoned(f phoenix.Frame) bool {
	return s.Faults.PoisonContains != "" && strings.Contains(string(f.Payload), s.Faults.PoisonContains)
}

// crash is the channel process dying on f: Phoenix tells the client with
// phx_error (ref = join_ref) and forgets the join. With PoisonDrops the
// whole connection goes instead; false ends the socket.
func (s *Server) crash(st *connState, f phoenix.Frame) bool {
	s.Poisoned.Add(1)
	if s.Faults.PoisonDrops {
		st.conn.UnderlyingConn().Close()
		return false
	}
	delete(st.joined, f.Topic)
	st.send(phoenix.Frame{JoinRef: f.JoinRef, Ref: f.JoinRef, Topic: f.Topic, Event: phoenix.EventError})
	return true
}

// startFlood starts, once per socket, a writer that sends junk frames until
// the socket ends or a write fails.
func (s *Server) startFlood(st *connState, join phoenix.Frame) {
	if !s.Faults.Flood || st.flood {
		return
	}
	st.flood = true
	junk := floodFrames(join)
	st.replies.Add(1)
	go func() {
		defer st.replies.Done()
		for i := 0; ; i++ {
			select {
			case <-st.done:
				return
			default:
			}
			if st.sendRaw(junk[i%len(junk)]) != nil {
				return
			}
			s.Flooded.Add(1)
		}
	}()
}

// floodFrames are frames a client must shrug off: a reply on the joined
// topic to a ref it never pushed, an unrequested heartbeat reply, and an
// event for a topic it never joined.
func floodFrames(join phoenix.Frame) [][]byte {
	ok := json.RawMessage(`{"status":"ok","response":{}}`)
	var out [][]byte
	for _, f := range []phoenix.Frame{
		{JoinRef: join.JoinRef, Ref: "flood", Topic: join.Topic, Event: phoenix.EventReply, Payload: ok},
		{Ref: "flood", Topic: phoenix.TopicPhoenix, Event: phoenix.EventReply, Payload: ok},
		{Topic: "other:topic", Event: "news", Payload: json.RawMessage(`{"x":1}`)},
	} {
		b, _ := f.Encode()
		out = append(out, b)
	}
	return out
}

// sendBadFrames injects the MalformedAfter and OversizedAfter faults.
func (s *Server) sendBadFrames(st *connState, n int) {
	if s.Faults.MalformedAfter > 0 && n == s.Faults.MalformedAfter {
		st.wmu.Lock()
		_ = st.conn.WriteMessage(websocket.TextMessage, []byte(`{"this is":"not a v2 frame"}`))
		st.wmu.Unlock()
	}
	if s.Faults.OversizedAfter > 0 && n == s.Faults.OversizedAfter {
		big := append(append([]byte(`[null,null,"phoenix","x","`), make([]byte, 16<<20)...), '"', ']')
		_ = st.sendRaw(big)
	}
	if s.Faults.GarbageRefAfter > 0 && n == s.Faults.GarbageRefAfter {
		_ = st.sendRaw(GarbageRefFrame(s.Faults.GarbageRefBytes))
	}
}

// GarbageRefFrame is a frame of about size bytes (default 4 MiB) whose ref
// is a JSON array of zeros rather than a string or null.
func GarbageRefFrame(size int) []byte {
	if size <= 0 {
		size = 4 << 20
	}
	b := make([]byte, 0, size+64)
	b = append(b, `[null,[0`...)
	for len(b) < size {
		b = append(b, ",0"...)
	}
	return append(b, `],"phoenix","phx_reply",{}]`...)
}

// cut injects the DropEvery and CloseEvery faults; true ends the socket.
func (s *Server) cut(st *connState, n int) bool {
	if s.Faults.DropEvery > 0 && n%s.Faults.DropEvery == 0 {
		st.conn.UnderlyingConn().Close()
		return true
	}
	if s.Faults.CloseEvery > 0 && n%s.Faults.CloseEvery == 0 {
		st.wmu.Lock()
		_ = st.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(s.Faults.CloseCode, "sink fault"), time.Now().Add(time.Second))
		st.wmu.Unlock()
		return true
	}
	return false
}

func (s *Server) record(f phoenix.Frame) {
	smp := Sample{ReceivedAt: time.Now().UTC(), Topic: f.Topic, Event: f.Event, Payload: f.Payload}
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	out := s.Out
	if out != nil {
		line, _ := json.Marshal(smp)
		_, _ = out.Write(append(line, '\n'))
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
