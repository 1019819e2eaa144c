package payload

import (
	"math"
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

func TestIndentKeepsContent(t *testing.T) {
	got := string(Indent([]byte(`{"a":{"b":1}}`)))
	if got != "{\n  \"a\": {\n    \"b\": 1\n  }\n}" {
		t.Errorf("got %q", got)
	}
	if string(Indent([]byte("not json"))) != "not json" {
		t.Error("invalid JSON not passed through")
	}
}

// One source that cannot be encoded is an error entry for that source; the
// other sources and the existing errors still go out.
func TestUnencodableSourceBecomesErrorEntry(t *testing.T) {
	s := &messages.Sample{Kind: "fast", CollectedAt: time.Unix(0, 0),
		Data:   map[string]any{"host": map[string]float64{"load1": math.NaN()}, "arc": map[string]int{"size": 1}},
		Errors: map[string]string{"zfs_pools": "zpool not found"}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"collected_at":"1970-01-01T00:00:00.000Z","data":{"arc":{"size":1}},"errors":{"host":"internal error: cannot encode: json: unsupported value: NaN","zfs_pools":"zpool not found"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if _, ok := s.Data["host"]; !ok || len(s.Errors) != 1 {
		t.Fatal("Encode changed the sample's own maps")
	}
}
