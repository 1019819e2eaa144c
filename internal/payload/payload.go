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

// Encode returns the compact JSON pushed for s.
func Encode(s *messages.Sample) ([]byte, error) {
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	p := Payload{CollectedAt: dump.Timestamp(s.CollectedAt), Data: data}
	if len(s.Errors) > 0 {
		p.Errors = s.Errors
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s sample: %w", s.Kind, err)
	}
	return b, nil
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
