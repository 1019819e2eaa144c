package payload

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/messages"
)

func TestEncodeShapeAndOrder(t *testing.T) {
	at := time.Date(2026, 4, 22, 15, 32, 17, 104_999_000, time.UTC)
	cases := []struct {
		name string
		s    messages.Sample
		want string
	}{
		{"errors omitted when empty", messages.Sample{Kind: "fast", CollectedAt: at,
			Data: map[string]any{"b": 1, "a": map[string]any{"z": 1, "y": 2.5}}},
			`{"collected_at":"2026-04-22T15:32:17.104Z","data":{"a":{"y":2.5,"z":1},"b":1}}`},
		{"errors kept", messages.Sample{Kind: "fast", CollectedAt: at, Data: map[string]any{},
			Errors: map[string]string{"zfs_pools": "zpool not found"}},
			`{"collected_at":"2026-04-22T15:32:17.104Z","data":{},"errors":{"zfs_pools":"zpool not found"}}`},
		{"nil data is an object", messages.Sample{Kind: "slow", CollectedAt: at},
			`{"collected_at":"2026-04-22T15:32:17.104Z","data":{}}`},
		{"big integers exact", messages.Sample{Kind: "fast", CollectedAt: at, Data: map[string]any{"guid": uint64(math.MaxUint64)}},
			`{"collected_at":"2026-04-22T15:32:17.104Z","data":{"guid":18446744073709551615}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Encode(&c.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("got  %s\nwant %s", b, c.want)
			}
		})
	}
}

func TestEncodeRejectsUnencodable(t *testing.T) {
	_, err := Encode(&messages.Sample{Kind: "fast", Data: map[string]any{"x": math.NaN()}})
	if err == nil || !strings.Contains(err.Error(), "fast") {
		t.Fatalf("err = %v", err)
	}
}

func TestIndentKeepsContent(t *testing.T) {
	got := string(Indent([]byte(`{"a":{"b":1}}`)))
	if got != "{\n  \"a\": {\n    \"b\": 1\n  }\n}" {
		t.Errorf("got %q", got)
	}
	if string(Indent([]byte("not json"))) != "not json" {
		t.Error("invalid JSON not passed through")
	}
}
