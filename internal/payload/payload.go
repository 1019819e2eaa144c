// Package payload turns a sample into the JSON the server receives with
// metric:<kind>. Encoding is deterministic (struct fields in order, map keys
// sorted), so golden files and the dump show exactly what went on the wire.
package payload

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Payload is the body of a metric push.
type Payload struct {
	CollectedAt string         `json:"collected_at"`
	Data        map[string]any `json:"data"`
	// Errors maps a failed source to a short message; omitted when empty.
	Errors map[string]string `json:"errors,omitempty"`
}

// Event is the channel event a sample of kind is pushed as.
func Event(kind string) string { return "metric:" + kind }

// Encode returns the compact JSON pushed for s. A source whose data cannot
// be encoded (a bug: a NaN in a plain float, a channel) becomes an error
// entry for that source; the rest of the sample still goes out.
func Encode(s *messages.Sample) ([]byte, error) {
	p := Payload{CollectedAt: dump.Timestamp(s.CollectedAt), Data: s.Data}
	if p.Data == nil {
		p.Data = map[string]any{}
	}
	if len(s.Errors) > 0 {
		p.Errors = s.Errors
	}
	b, err := json.Marshal(p)
	if err == nil {
		return b, nil
	}
	p.Data, p.Errors = encodeEach(p.Data, p.Errors)
	if b, err = json.Marshal(p); err != nil {
		return nil, fmt.Errorf("encode %s sample: %w", s.Kind, err)
	}
	return b, nil
}

// encodeEach encodes each source on its own and moves those that fail to
// the errors, without touching the sample's maps.
func encodeEach(data map[string]any, errs map[string]string) (map[string]any, map[string]string) {
	good := make(map[string]any, len(data))
	bad := make(map[string]string, len(errs)+1)
	for k, v := range errs {
		bad[k] = v
	}
	for k, v := range data {
		raw, err := json.Marshal(v)
		if err != nil {
			bad[k] = "internal error: cannot encode: " + err.Error()
			continue
		}
		good[k] = json.RawMessage(raw)
	}
	return good, bad
}

// Indent renders an encoded payload for people (the dump, `once`): the same
// bytes as pushed, indented two spaces.
func Indent(compact []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return compact
	}
	return buf.Bytes()
}
