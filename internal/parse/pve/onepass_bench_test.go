package pve

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// parseGuestsOnePass is a candidate for issue 12, measured here and not
// used: one json.Unmarshal into []rawResource instead of one into
// []json.RawMessage and another per item. An element that is not an object
// leaves a zero rawResource (node "") and an UnmarshalTypeError that
// Unmarshal reports only after decoding the rest, so it is skipped as now.
func parseGuestsOnePass(b []byte, node string) ([]Guest, error) {
	var items []rawResource
	if err := json.Unmarshal(b, &items); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || items == nil {
			return nil, err
		}
	}
	out := []Guest{}
	for i := range items {
		r := &items[i]
		if string(r.Node) != node || (r.Type != "qemu" && r.Type != "lxc") {
			continue
		}
		out = append(out, Guest{
			VMID: r.VMID, Name: string(r.Name), Type: string(r.Type), Status: string(r.Status),
			Template: r.Template.V, Usage: r.Usage, Tags: SplitTags(string(r.Tags)),
			Lock: string(r.Lock),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID.V < out[j].VMID.V })
	return out, nil
}

func TestOnePassCandidateAgrees(t *testing.T) {
	for _, f := range []string{"pvesh-cluster-resources-1000.json", "pvesh-cluster-resources.json"} {
		in := read(t, f)
		for _, node := range []string{"pve1", "pve3"} {
			a, errA := ParseGuests(in, node)
			b, errB := parseGuestsOnePass(in, node)
			if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
				t.Fatalf("%s %s: differ (%v, %v)", f, node, errA, errB)
			}
		}
	}
}

func BenchmarkParseGuests1000OnePassCandidate(b *testing.B) {
	in := read(b, "pvesh-cluster-resources-1000.json")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if gs, err := parseGuestsOnePass(in, "pve3"); err != nil || len(gs) == 0 {
			b.Fatal(err)
		}
	}
}

// fastString is lenient.String with a fast path for the common case, a
// quoted string without escapes or non-ASCII bytes: no nested
// json.Unmarshal. Anything else goes through lenient.String as now.
type fastString string

func (s *fastString) UnmarshalJSON(b []byte) error {
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' {
		plain := true
		for _, c := range b[1 : n-1] {
			if c == '\\' || c < 0x20 || c >= 0x80 {
				plain = false
				break
			}
		}
		if plain {
			*s = fastString(b[1 : n-1])
			return nil
		}
	}
	var l lenient.String
	err := l.UnmarshalJSON(b)
	*s = fastString(l)
	return err
}

type rawResourceFast struct {
	Type     fastString   `json:"type"`
	Node     fastString   `json:"node"`
	VMID     lenient.Uint `json:"vmid"`
	Name     fastString   `json:"name"`
	Status   fastString   `json:"status"`
	Template lenient.Bool `json:"template"`
	Usage
	Tags fastString `json:"tags"`
	Lock fastString `json:"lock"`
}

// parseGuestsOnePassFastString is parseGuestsOnePass with fastString.
func parseGuestsOnePassFastString(b []byte, node string) ([]Guest, error) {
	var items []rawResourceFast
	if err := json.Unmarshal(b, &items); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || items == nil {
			return nil, err
		}
	}
	out := []Guest{}
	for i := range items {
		r := &items[i]
		if string(r.Node) != node || (r.Type != "qemu" && r.Type != "lxc") {
			continue
		}
		out = append(out, Guest{
			VMID: r.VMID, Name: string(r.Name), Type: string(r.Type), Status: string(r.Status),
			Template: r.Template.V, Usage: r.Usage, Tags: SplitTags(string(r.Tags)),
			Lock: string(r.Lock),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID.V < out[j].VMID.V })
	return out, nil
}

func TestOnePassFastStringCandidateAgrees(t *testing.T) {
	for _, f := range []string{"pvesh-cluster-resources-1000.json", "pvesh-cluster-resources.json"} {
		in := read(t, f)
		for _, node := range []string{"pve1", "pve3"} {
			a, errA := ParseGuests(in, node)
			b, errB := parseGuestsOnePassFastString(in, node)
			if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
				t.Fatalf("%s %s: differ (%v, %v)", f, node, errA, errB)
			}
		}
	}
}

func BenchmarkParseGuests1000OnePassFastStringCandidate(b *testing.B) {
	in := read(b, "pvesh-cluster-resources-1000.json")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if gs, err := parseGuestsOnePassFastString(in, "pve3"); err != nil || len(gs) == 0 {
			b.Fatal(err)
		}
	}
}
