package sink

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dial(t *testing.T, s *Server, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(s.URL()+"?"+query, nil)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func roundTrip(t *testing.T, c *websocket.Conn, frame string) string {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("no answer to %s: %v", frame, err)
	}
	return string(b)
}

// The sink answers frame for frame as Phoenix does.
func TestPhoenixBehaviour(t *testing.T) {
	s := New("tok")
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	if _, resp, err := dial(t, s, "token=bad&vsn=2.0.0"); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("bad token: %v %v", resp, err)
	}
	if _, resp, err := dial(t, s, "token=tok"); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("missing vsn: %v %v", resp, err)
	}
	c, _, err := dial(t, s, "token=tok&vsn=2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ send, want string }{
		{`["9","9","agent:h","metric:fast",{}]`, `["9","9","agent:h","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		{`["1","1","agent:h","phx_join",{"token":"tok"}]`, `["1","1","agent:h","phx_reply",{"response":{},"status":"ok"}]`},
		{`["1","2","agent:h","metric:fast",{"collected_at":"x","data":{}}]`, `["1","2","agent:h","phx_reply",{"response":{},"status":"ok"}]`},
		{`[null,"3","phoenix","heartbeat",{}]`, `[null,"3","phoenix","phx_reply",{"response":{},"status":"ok"}]`},
		{`["1","4","other:x","phx_join",{}]`, `["1","4","other:x","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
	}
	for _, tc := range cases {
		if got := roundTrip(t, c, tc.send); got != tc.want {
			t.Errorf("sent %s\n got %s\nwant %s", tc.send, got, tc.want)
		}
	}
	// A stale join_ref gets no reply: the next frame read answers the heartbeat.
	c.WriteMessage(websocket.TextMessage, []byte(`["old","5","agent:h","metric:fast",{}]`))
	if got := roundTrip(t, c, `[null,"6","phoenix","heartbeat",{}]`); !strings.Contains(got, `"6","phoenix"`) {
		t.Errorf("stale join_ref answered: %s", got)
	}
	if n := len(s.Samples()); n != 1 {
		t.Errorf("%d samples recorded, want 1", n)
	}
	// A malformed frame closes the connection.
	c.WriteMessage(websocket.TextMessage, []byte(`{"not":"v2"}`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("connection survived a malformed frame")
	}
}

func TestFaultSwitches(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		want   string
	}{
		{"refuse joins", Faults{RefuseJoins: true}, `"reason":"unauthorized"`},
		{"error reply", Faults{ErrorReply: true}, `"status":"error"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New("tok")
			s.Faults = tc.faults
			if err := s.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			c, _, err := dial(t, s, "token=tok&vsn=2.0.0")
			if err != nil {
				t.Fatal(err)
			}
			got := roundTrip(t, c, `["1","1","agent:h","phx_join",{}]`)
			if !tc.faults.RefuseJoins {
				got = roundTrip(t, c, `["1","2","agent:h","metric:fast",{}]`)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	s := New("tok")
	s.Faults = Faults{CloseEvery: 1, CloseCode: 1012}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, _, _ := dial(t, s, "token=tok&vsn=2.0.0")
	c.WriteMessage(websocket.TextMessage, []byte(`["1","1","agent:h","phx_join",{}]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 1012) {
				t.Errorf("closed with %v, want 1012", err)
			}
			break
		}
	}
}
