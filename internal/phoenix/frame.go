// Package phoenix speaks the Phoenix Channels protocol (serializer v2) over
// gorilla/websocket: the frame codec, and a client that connects, joins one
// topic, heartbeats, pushes with reply tracking and reconnects and rejoins
// with backoff. It has no actor code; the reporter drives it.
package phoenix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Frame is one v2 message: [join_ref, ref, topic, event, payload]. Refs are
// strings or absent (null); the server compares them by exact JSON value.
type Frame struct {
	JoinRef string // "" = null
	Ref     string // "" = null
	Topic   string
	Event   string
	Payload json.RawMessage
}

// Reserved events and topics.
const (
	EventJoin      = "phx_join"
	EventLeave     = "phx_leave"
	EventReply     = "phx_reply"
	EventError     = "phx_error"
	EventClose     = "phx_close"
	EventHeartbeat = "heartbeat"
	TopicPhoenix   = "phoenix"
)

// Encode renders the frame as a JSON array.
func (f Frame) Encode() ([]byte, error) {
	payload := f.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	arr := [5]any{nullable(f.JoinRef), nullable(f.Ref), f.Topic, f.Event, payload}
	return json.Marshal(arr)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ErrMalformed is wrapped by Decode for anything that is not a v2 frame.
var ErrMalformed = errors.New("malformed frame")

// Decode parses a v2 frame. Refs must be strings or null; topic and event
// must be strings.
func Decode(b []byte) (Frame, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		return Frame{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(arr) != 5 {
		return Frame{}, fmt.Errorf("%w: %d elements, want 5", ErrMalformed, len(arr))
	}
	var f Frame
	var err error
	if f.JoinRef, err = ref(arr[0]); err != nil {
		return Frame{}, err
	}
	if f.Ref, err = ref(arr[1]); err != nil {
		return Frame{}, err
	}
	if json.Unmarshal(arr[2], &f.Topic) != nil || json.Unmarshal(arr[3], &f.Event) != nil || f.Topic == "" || f.Event == "" {
		return Frame{}, fmt.Errorf("%w: topic and event must be strings", ErrMalformed)
	}
	f.Payload = arr[4]
	return f, nil
}

func ref(raw json.RawMessage) (string, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: ref %s is not a string or null", ErrMalformed, Quote(raw))
	}
	return s, nil
}

// Reply is the payload of a phx_reply.
type Reply struct {
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response"`
}

// ParseReply decodes a phx_reply payload.
func ParseReply(p json.RawMessage) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(p, &r); err != nil || r.Status == "" {
		return Reply{}, fmt.Errorf("%w: reply payload %s", ErrMalformed, Quote(p))
	}
	return r, nil
}

// QuoteMax is how much of a peer's bytes an error or log line quotes.
const QuoteMax = 64

// Quote renders bytes the server chose (a ref, a reply, a reason) for an
// error or a log line. The server controls their size and content, so they
// are cut to QuoteMax bytes, otherwise a hostile frame makes every log line
// megabytes long, and quoted, otherwise control characters forge lines.
func Quote(b []byte) string {
	if len(b) <= QuoteMax {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q… (%d bytes)", b[:QuoteMax], len(b))
}
