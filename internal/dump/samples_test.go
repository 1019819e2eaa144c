package dump

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func logOf(payloads ...string) []byte {
	var buf []byte
	for i, p := range payloads {
		var ind bytes.Buffer
		json.Indent(&ind, []byte(p), "", "  ")
		buf = AppendSample(buf, &SampleRecord{At: at.Add(time.Duration(i) * time.Second), Kind: []string{"fast", "medium", "slow"}[i%3], Payload: ind.Bytes()})
	}
	return buf
}

func payloadAt(sec int) string {
	return fmt.Sprintf(`{"collected_at":"2026-11-29T10:00:%02d.000Z","data":{"host":{"load1":0.5,"s":"===== x kind=y ====="}}}`, sec)
}

func scanAll(t *testing.T, b []byte) ([]LoggedSample, ScanReport) {
	t.Helper()
	var got []LoggedSample
	rep, err := ScanSamples(bytes.NewReader(b), func(s LoggedSample) error { got = append(got, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return got, rep
}

// What the writer put in samples.log comes back as the exact compact bytes
// that were pushed, with kind and collected_at.
func TestScanSamplesRoundTrip(t *testing.T) {
	ps := []string{payloadAt(1), payloadAt(2), payloadAt(3)}
	got, rep := scanAll(t, logOf(ps...))
	if len(got) != 3 || rep.Torn || len(rep.Bad) != 0 || rep.Samples != 3 {
		t.Fatalf("%d samples, report %+v", len(got), rep)
	}
	for i, s := range got {
		if string(s.Payload) != ps[i] {
			t.Errorf("payload %d:\n%s\nwant\n%s", i, s.Payload, ps[i])
		}
	}
	if got[1].Kind != "medium" || got[2].CollectedAt != time.Date(2026, 11, 29, 10, 0, 3, 0, time.UTC) || got[0].Line != 1 {
		t.Errorf("%+v", got[1])
	}
}

func TestScanSamplesDamage(t *testing.T) {
	whole := logOf(payloadAt(1), payloadAt(2), payloadAt(3))
	cases := []struct {
		name      string
		in        []byte
		n         int
		torn, bad bool
	}{
		{"empty", nil, 0, false, false},
		{"torn last entry", whole[:len(whole)-20], 2, true, false},
		{"torn header", append(bytes.Clone(whole), "===== 2026-11-29T10:00:04.000Z kind=fa"...), 3, true, false},
		{"damaged header in the middle", bytes.Replace(whole, []byte("kind=medium ====="), []byte("kind=med"), 1), 2, false, true},
		{"garbage in the middle", bytes.Replace(whole, []byte(`"load1": 0.5`), []byte(`"load1": 0.5 garbage`), 1), 2, false, true},
		{"no collected_at", logOf(`{"data":{}}`, payloadAt(2)), 1, false, true},
		{"not a samples.log", []byte("hello\nworld\n"), 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, rep := scanAll(t, c.in)
			if len(got) != c.n || rep.Torn != c.torn || (len(rep.Bad) > 0) != c.bad {
				t.Fatalf("%d samples, report %+v", len(got), rep)
			}
		})
	}
}

func TestScanSamplesStopsOnCallbackError(t *testing.T) {
	n := 0
	_, err := ScanSamples(bytes.NewReader(logOf(payloadAt(1), payloadAt(2))), func(LoggedSample) error {
		n++
		return fmt.Errorf("stop")
	})
	if err == nil || n != 1 {
		t.Fatalf("err %v after %d", err, n)
	}
}

func FuzzScanSamples(f *testing.F) {
	f.Add(logOf(payloadAt(1), payloadAt(2)))
	f.Add([]byte("===== x kind=fast =====\n{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ScanSamples(bytes.NewReader(b), func(s LoggedSample) error {
			if !json.Valid(s.Payload) || s.Kind == "" || strings.ContainsAny(s.Kind, " \n") {
				t.Fatalf("bad sample %+v", s)
			}
			return nil
		})
		if err != nil || rep.Samples < 0 {
			t.Fatal(err)
		}
	})
}

// An entry with one enormous line (no newline at all) is skipped as too
// long, without holding the line in memory; the entries around it are read.
func TestScanSamplesHugeLine(t *testing.T) {
	var b bytes.Buffer
	b.Write(logOf(payloadAt(1)))
	b.WriteString("===== 2026-11-29T10:00:02.000Z kind=fast =====\n")
	b.Write(bytes.Repeat([]byte("x"), maxEntry+1000))
	b.WriteString("\n\n")
	b.Write(logOf(payloadAt(3)))
	got, rep := scanAll(t, b.Bytes())
	if len(got) != 2 || len(rep.Bad) != 1 || !strings.Contains(rep.Bad[0], "larger than") {
		t.Fatalf("%d samples, report %+v", len(got), rep)
	}
}
