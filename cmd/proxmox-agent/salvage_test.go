package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/sink/sinktest"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// damagedSpool writes a spool of records, zeroes both meta pages (the
// tree's root is lost: Salvage scans every page) and moves it aside as
// the agent does; it returns the moved file and the pushable samples'
// "event collected_at" keys in order.
func damagedSpool(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	s, err := spool.Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	var want []string
	add := func(kind string, payload string) {
		if _, _, err := s.Append(kind, at, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ {
		kind := "fast"
		if i == 3 {
			kind = "medium"
		}
		ts := dump.Timestamp(at.Add(time.Duration(i) * time.Second))
		// Real samples are kilobytes: a bucket this small would be inline
		// in its parent's page, which a page scan does not reach.
		add(kind, `{"collected_at":"`+ts+`","data":{"pad":"`+strings.Repeat("x", 300)+`"}}`)
		want = append(want, "metric:"+kind+" "+ts)
	}
	add("phx_join", `{"collected_at":"2026-11-29T10:01:00.000Z","data":{}}`) // forged, skipped
	add("fast", `{"collected_at": not json`)                                 // skipped
	s.Close()
	path := filepath.Join(dir, spool.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[:2*4096])
	aside := path + ".corrupt-20261129T100500Z"
	if err := os.WriteFile(aside, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	return aside, want
}

// Issue 17 item 5: `replay --spool FILE` delivers what a damaged spool file
// still holds, in order, through the same rules as replay (only
// metric:fast|medium|slow; --dry-run lists them and pushes nothing).
func TestReplaySpoolDeliversWhatADamagedFileHolds(t *testing.T) {
	aside, want := damagedSpool(t)
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--dry-run", "--spool", aside}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "6 samples would be pushed") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, w := range []string{"8 records readable", "found by scanning pages", "record 8: payload is not JSON", "kind=phx_join (1)", aside + "#1"} {
		if !strings.Contains(out.String()+errb.String(), w) {
			t.Errorf("dry run lacks %q:\n%s%s", w, out.String(), errb.String())
		}
	}
	s := sinktest.Start(t, "127.0.0.1:0", "tok", sink.Faults{})
	cfg := testkit.WriteConfig(t, testkit.Config{URL: s.URL(), SpoolDir: "-"})
	out.Reset()
	errb.Reset()
	if code := run([]string{"replay", "--spool", aside, "--config", cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), "replayed 6 of 6") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	var got []string
	for _, smp := range s.Samples() {
		for k := range received(t, []sink.Sample{smp}) {
			got = append(got, k)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("server got, in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b, err := os.ReadFile(aside); err != nil || len(b) == 0 {
		t.Errorf("the damaged file is gone or emptied: %v", err)
	}
}

// A spool a running agent holds is refused (it delivers those itself);
// --spool takes no samples.log with it; a missing file is one line.
func TestReplaySpoolRefusals(t *testing.T) {
	dir := t.TempDir()
	live, err := spool.Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"live spool", []string{"replay", "--dry-run", "--spool", filepath.Join(dir, spool.FileName)}, 1, "in use by a running agent"},
		{"with files", []string{"replay", "--spool", filepath.Join(dir, spool.FileName), "samples.log"}, 2, "in a run of their own"},
		{"missing", []string{"replay", "--dry-run", "--spool", filepath.Join(dir, "nope")}, 1, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if code != c.code || len(lines) != 1 || !strings.Contains(lines[0], c.want) || out.Len() != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
		})
	}
}
