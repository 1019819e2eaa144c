package phoenix

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestFrameCodec(t *testing.T) {
	cases := []struct {
		f    Frame
		want string
	}{
		{Frame{JoinRef: "1", Ref: "1", Topic: "agent:h", Event: EventJoin, Payload: json.RawMessage(`{"a":1}`)}, `["1","1","agent:h","phx_join",{"a":1}]`},
		{Frame{Ref: "7", Topic: TopicPhoenix, Event: EventHeartbeat}, `[null,"7","phoenix","heartbeat",{}]`},
	}
	for _, c := range cases {
		b, err := c.f.Encode()
		if err != nil || string(b) != c.want {
			t.Errorf("encode %+v = %s %v", c.f, b, err)
		}
		back, err := Decode(b)
		if err != nil || back.JoinRef != c.f.JoinRef || back.Ref != c.f.Ref || back.Topic != c.f.Topic || back.Event != c.f.Event {
			t.Errorf("round trip %+v -> %+v %v", c.f, back, err)
		}
	}
	for _, bad := range []string{``, `{}`, `[1,2,3]`, `[1,"1","t","e",{}]`, `["1","1",5,"e",{}]`, `not json`, `["1","1","t",null,{}]`} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
	if _, err := ParseReply(json.RawMessage(`{"response":{}}`)); err == nil {
		t.Error("reply without status accepted")
	}
}

func TestStepAndJitter(t *testing.T) {
	if Step(ReconnectSchedule, 0) != 10*time.Millisecond || Step(ReconnectSchedule, 99) != 5*time.Second {
		t.Error("reconnect schedule")
	}
	if Step(RejoinSchedule, 5) != 10*time.Second {
		t.Error("rejoin schedule")
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := Jitter(time.Second)
		if d < time.Second || d >= time.Second+time.Second/2+JitterSpread {
			t.Fatalf("jitter %s out of range", d)
		}
		seen[d.Round(10*time.Millisecond)] = true
	}
	if len(seen) < 20 {
		t.Errorf("jitter barely varies: %d distinct values", len(seen))
	}
}

// event is one Handler call, recorded for assertions.
type event struct {
	kind   string
	gen    uint64
	ref    string
	reason string
	status string
	err    error
}

type recorder struct{ ch chan event }

func newRecorder() *recorder { return &recorder{ch: make(chan event, 1000)} }

func (r *recorder) Connected(g uint64) { r.ch <- event{kind: "connected", gen: g} }
func (r *recorder) Joined(g uint64)    { r.ch <- event{kind: "joined", gen: g} }
func (r *recorder) JoinRefused(g uint64, why string) {
	r.ch <- event{kind: "refused", gen: g, reason: why}
}
func (r *recorder) Left(g uint64, why string) { r.ch <- event{kind: "left", gen: g, reason: why} }
func (r *recorder) Disconnected(g uint64, err error) {
	r.ch <- event{kind: "disconnected", gen: g, err: err}
}
func (r *recorder) Written(g uint64, ref string) { r.ch <- event{kind: "written", gen: g, ref: ref} }
func (r *recorder) Replied(g uint64, ref string, x Reply) {
	r.ch <- event{kind: "replied", gen: g, ref: ref, status: x.Status}
}

// next waits for the next event of kind, skipping others.
func (r *recorder) next(t *testing.T, kind string) event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-r.ch:
			if e.kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within 10s", kind)
		}
	}
}

// script is a raw websocket server whose behaviour each test writes.
type script struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []*http.Request
	conns chan *websocket.Conn
}

func newScript(t *testing.T) *script {
	s := &script{conns: make(chan *websocket.Conn, 100)}
	up := websocket.Upgrader{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.conns <- c
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *script) url() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/socket/websocket" }

func (s *script) accept(t *testing.T) *websocket.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("client did not connect")
		return nil
	}
}

func readFrame(t *testing.T, c *websocket.Conn) (Frame, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("server read: %v", err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatalf("client sent a bad frame %s: %v", b, err)
	}
	return f, string(b)
}

func sendRaw(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func replyOK(t *testing.T, c *websocket.Conn, f Frame) {
	t.Helper()
	jr := "null"
	if f.JoinRef != "" {
		jr = `"` + f.JoinRef + `"`
	}
	sendRaw(t, c, fmt.Sprintf(`[%s,"%s","%s","phx_reply",{"status":"ok","response":{}}]`, jr, f.Ref, f.Topic))
}

func newClient(t *testing.T, url string, h Handler, mod func(*Options)) *Client {
	t.Helper()
	o := Options{URL: url, Token: "s3cret", Topic: "agent:h", JoinParams: map[string]string{"host_id": "h"},
		Handler: h, Backoff: Backoff{First: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// join accepts a connection and completes the join handshake.
func join(t *testing.T, s *script, rec *recorder) (*websocket.Conn, Frame) {
	t.Helper()
	conn := s.accept(t)
	f, _ := readFrame(t, conn)
	replyOK(t, conn, f)
	rec.next(t, "joined")
	return conn, f
}

func TestConnectURLJoinFrameAndPush(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	c := newClient(t, s.url()+"?region=eu", rec, nil)
	if _, _, err := c.Push("metric:fast", json.RawMessage(`{}`)); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("push before join: %v", err)
	}
	conn := s.accept(t)
	checkUpgradeRequest(t, s)
	f, raw := readFrame(t, conn)
	if f.Event != EventJoin || f.Topic != "agent:h" || f.JoinRef == "" || f.JoinRef != f.Ref || !strings.Contains(raw, `{"host_id":"h"}`) {
		t.Fatalf("join frame %s", raw)
	}
	replyOK(t, conn, f)
	rec.next(t, "joined")
	ref, _, err := c.Push("metric:fast", json.RawMessage(`{"collected_at":"x","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, raw := readFrame(t, conn)
	if p.JoinRef != f.JoinRef || p.Ref != ref || p.Event != "metric:fast" || p.Topic != "agent:h" {
		t.Fatalf("push frame %s", raw)
	}
	if w := rec.next(t, "written"); w.ref != ref {
		t.Errorf("written %+v", w)
	}
	replyOK(t, conn, p)
	if r := rec.next(t, "replied"); r.ref != ref || r.status != "ok" {
		t.Errorf("replied %+v", r)
	}
}

// checkUpgradeRequest: token and vsn added to the user's query, no Origin.
func checkUpgradeRequest(t *testing.T, s *script) {
	t.Helper()
	s.mu.Lock()
	req := s.reqs[0]
	s.mu.Unlock()
	q := req.URL.Query()
	if q.Get("token") != "s3cret" || q.Get("vsn") != "2.0.0" || q.Get("region") != "eu" {
		t.Errorf("query %s", req.URL.RawQuery)
	}
	if req.Header.Get("Origin") != "" {
		t.Errorf("Origin header sent: %q", req.Header.Get("Origin"))
	}
}

func TestHeartbeatAndDeadConnection(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, func(o *Options) { o.Heartbeat = 50 * time.Millisecond })
	conn, _ := join(t, s, rec)
	// Answer the first heartbeat; leave the second unanswered.
	hb, raw := readFrame(t, conn)
	if hb.Topic != TopicPhoenix || hb.Event != EventHeartbeat || hb.JoinRef != "" || !strings.HasPrefix(raw, `[null,"`) {
		t.Fatalf("heartbeat frame %s", raw)
	}
	replyOK(t, conn, hb)
	readFrame(t, conn) // the second heartbeat, ignored
	d := rec.next(t, "disconnected")
	if !errors.Is(d.err, errHeartbeat) {
		t.Fatalf("disconnect reason %v", d.err)
	}
	// And it reconnects on its own.
	s.accept(t)
}

// Every close the agent did not start leads to a reconnect and a rejoin
// with a fresh join_ref; heartbeat state starts over.
func TestReconnectAfterAnyClose(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, nil)
	conn, first := join(t, s, rec)
	for _, code := range []int{1000, 1001, 1012, -1} {
		if code < 0 {
			conn.UnderlyingConn().Close() // 1006: no close frame at all
		} else {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		}
		rec.next(t, "disconnected")
		var f Frame
		conn, f = join(t, s, rec)
		if f.JoinRef == "" || f.Event != EventJoin {
			t.Fatalf("rejoin frame %+v", f)
		}
		_ = first
	}
}

func TestJoinRefusedThenRejoined(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, nil)
	conn := s.accept(t)
	f, _ := readFrame(t, conn)
	sendRaw(t, conn, fmt.Sprintf(`["%s","%s","agent:h","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]`, f.JoinRef, f.Ref))
	if r := rec.next(t, "refused"); !strings.Contains(r.reason, "unauthorized") {
		t.Errorf("refusal %+v", r)
	}
	start := time.Now()
	f2, _ := readFrame(t, conn) // the rejoin, on the same socket
	if f2.Event != EventJoin || f2.JoinRef == f.JoinRef {
		t.Fatalf("rejoin %+v", f2)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("rejoined after %s, want the 100 ms backoff step", d)
	}
	replyOK(t, conn, f2)
	rec.next(t, "joined")
}

// Replies carrying an old join_ref are ignored; phx_error makes the client
// rejoin, and pushes made before the rejoin completes are refused.
func TestStaleJoinRefAndPhxError(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	c := newClient(t, s.url(), rec, nil)
	conn, jf := join(t, s, rec)
	sendRaw(t, conn, `["stale","99","agent:h","phx_reply",{"status":"ok","response":{}}]`)
	sendRaw(t, conn, fmt.Sprintf(`["%s",null,"agent:h","phx_error",{}]`, jf.JoinRef))
	// Frames are handled in order: every event before "left" comes from the
	// stale reply, which must produce none.
	deadline := time.After(10 * time.Second)
	for left := false; !left; {
		select {
		case e := <-rec.ch:
			switch e.kind {
			case "replied":
				t.Fatalf("reply with a stale join_ref delivered: %+v", e)
			case "left":
				if e.reason != EventError {
					t.Errorf("left %+v", e)
				}
				left = true
			}
		case <-deadline:
			t.Fatal("no left event after phx_error")
		}
	}
	if _, _, err := c.Push("metric:fast", json.RawMessage(`{}`)); !errors.Is(err, ErrNotJoined) {
		t.Errorf("push while rejoining: %v", err)
	}
	f2, _ := readFrame(t, conn)
	if f2.Event != EventJoin {
		t.Fatalf("no rejoin: %+v", f2)
	}
	replyOK(t, conn, f2)
	rec.next(t, "joined")
}

func TestUnmatchedTopicRejoins(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	c := newClient(t, s.url(), rec, nil)
	conn, jf := join(t, s, rec)
	ref, _, _ := c.Push("metric:fast", json.RawMessage(`{}`))
	readFrame(t, conn)
	sendRaw(t, conn, fmt.Sprintf(`["%s","%s","agent:h","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`, jf.JoinRef, ref))
	if r := rec.next(t, "replied"); r.status != "error" {
		t.Errorf("%+v", r)
	}
	rec.next(t, "left")
	if f, _ := readFrame(t, conn); f.Event != EventJoin {
		t.Fatalf("no rejoin after unmatched topic: %+v", f)
	}
}

func TestMalformedAndOversizedFramesDropConnection(t *testing.T) {
	for name, payload := range map[string]string{"malformed": `{"not":"an array"}`, "oversized": `["1","1","agent:h","x","` + strings.Repeat("a", 2048) + `"]`} {
		t.Run(name, func(t *testing.T) {
			s := newScript(t)
			rec := newRecorder()
			newClient(t, s.url(), rec, func(o *Options) { o.ReadLimit = 1024 })
			conn, _ := join(t, s, rec)
			sendRaw(t, conn, payload)
			if d := rec.next(t, "disconnected"); d.err == nil {
				t.Fatal("no error")
			}
			join(t, s, rec) // re-established
		})
	}
}

func TestForbiddenIsRetriedAndTokenRedacted(t *testing.T) {
	var hits sync.WaitGroup
	hits.Add(3)
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		if n <= 3 {
			hits.Done()
		}
		mu.Unlock()
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer srv.Close()
	rec := newRecorder()
	newClient(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket/websocket", rec, nil)
	for i := 0; i < 3; i++ {
		d := rec.next(t, "disconnected")
		var de *DialError
		if !errors.As(d.err, &de) || de.StatusCode != 403 {
			t.Fatalf("err %v", d.err)
		}
		if strings.Contains(d.err.Error(), "s3cret") {
			t.Fatalf("token in error: %v", d.err)
		}
	}
	hits.Wait()
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"http://x/socket", "::", ""} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	c, err := New(Options{URL: "wss://x/s?vsn=2.0.0&token=old", Token: "a b&c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(c.url, "vsn=") != 1 || !strings.Contains(c.url, "token=a+b%26c") {
		t.Errorf("url %s", c.url)
	}
}

// A join that gets no reply within the reply timeout counts as refused and
// is retried on the rejoin schedule.
func TestJoinReplyTimeout(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, func(o *Options) { o.ReplyTimeout = 100 * time.Millisecond })
	conn := s.accept(t)
	first, _ := readFrame(t, conn) // never answered
	start := time.Now()
	if r := rec.next(t, "refused"); !strings.Contains(r.reason, "no reply to join") {
		t.Errorf("refusal %+v", r)
	}
	second, _ := readFrame(t, conn)
	if second.Event != EventJoin || second.JoinRef == first.JoinRef {
		t.Fatalf("rejoin %+v", second)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("rejoined %s after the timeout, want the 100 ms step", d)
	}
}

// phx_close for the current join, like phx_error, leads to a rejoin.
func TestPhxCloseRejoins(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, nil)
	conn, jf := join(t, s, rec)
	sendRaw(t, conn, fmt.Sprintf(`["%s",null,"agent:h","phx_close",{}]`, jf.JoinRef))
	if l := rec.next(t, "left"); l.reason != EventClose {
		t.Errorf("left %+v", l)
	}
	if f, _ := readFrame(t, conn); f.Event != EventJoin {
		t.Fatalf("no rejoin after phx_close: %+v", f)
	}
}
