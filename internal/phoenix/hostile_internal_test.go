package phoenix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A frame whose ref is megabytes of garbage must not put those megabytes
// into the error: the error ends up in a log line and in the agent's
// self-report, once per reconnect.
func TestPeerBytesInErrorsAreCut(t *testing.T) {
	garbage := "[null,[" + strings.Repeat("0,", 2<<20) + `0],"phoenix","phx_reply",{}]`
	bigReply := json.RawMessage(`{"response":"` + strings.Repeat("\n\x1b", 1<<19) + `"}`)
	for name, err := range map[string]error{
		"garbage ref":   func() error { _, err := Decode([]byte(garbage)); return err }(),
		"garbage reply": func() error { _, err := ParseReply(bigReply); return err }(),
	} {
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if n := len(err.Error()); n > 3*QuoteMax+64 {
			t.Errorf("%s: error is %d bytes, want at most %d", name, n, 3*QuoteMax+64)
		}
		if strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("%s: raw control characters in the error: %.80q", name, err.Error())
		}
	}
	if got := Quote([]byte("ok")); got != `"ok"` {
		t.Errorf("Quote(ok) = %s", got)
	}
}

// After a join times out, a late reply to it is neither a join nor a push
// reply: the rejoin is already scheduled and the handler hears nothing.
func TestLateJoinReplyIsDropped(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	newClient(t, s.url(), rec, func(o *Options) { o.ReplyTimeout = 50 * time.Millisecond })
	conn := s.accept(t)
	first, _ := readFrame(t, conn)
	rec.next(t, "refused")
	replyOK(t, conn, first) // late
	second, _ := readFrame(t, conn)
	if second.Event != EventJoin || second.JoinRef == first.JoinRef {
		t.Fatalf("rejoin %+v", second)
	}
	replyOK(t, conn, second)
	for e := range rec.ch {
		if e.kind == "joined" {
			break
		}
		if e.kind == "replied" {
			t.Fatalf("late join reply passed on as a push reply: %+v", e)
		}
	}
}

// A reply to a ref the client never pushed, or a second reply to one it
// did, reaches no handler; the first reply to a push does.
func TestOnlyRepliesToPendingPushesArePassedOn(t *testing.T) {
	s := newScript(t)
	rec := newRecorder()
	c := newClient(t, s.url(), rec, nil)
	conn, jf := join(t, s, rec)
	ref, _, err := c.Push("metric:fast", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := readFrame(t, conn)
	sendRaw(t, conn, fmt.Sprintf(`["%s","999","agent:h","phx_reply",{"status":"ok","response":{}}]`, jf.JoinRef))
	replyOK(t, conn, p)
	replyOK(t, conn, p)
	sendRaw(t, conn, fmt.Sprintf(`["%s",null,"agent:h","phx_close",{}]`, jf.JoinRef)) // a marker: handled after the replies
	var replies []string
	for e := range rec.ch {
		if e.kind == "left" {
			break
		}
		if e.kind == "replied" {
			replies = append(replies, e.ref)
		}
	}
	if len(replies) != 1 || replies[0] != ref {
		t.Errorf("replies passed on %v, want only [%s]", replies, ref)
	}
}

// The pending set holds the newest n refs and forgets the oldest.
func TestPendingRefsAreBounded(t *testing.T) {
	p := newPendingRefs(3)
	for i := 1; i <= 5; i++ {
		p.add(fmt.Sprint(i))
	}
	var kept bytes.Buffer
	for i := 1; i <= 5; i++ {
		if p.take(fmt.Sprint(i)) {
			fmt.Fprint(&kept, i)
		}
	}
	if kept.String() != "345" || len(p.set) != 0 {
		t.Errorf("kept %s, left %v", kept.String(), p.set)
	}
}
