package faultsuite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// withDump is a config for url with the dump on: the dump is the agent's
// own record of what it collected, the ground truth the scenarios compare
// the sink against.
func withDump(t *testing.T, url string) testkit.Config {
	return testkit.Config{URL: url, DumpDir: filepath.Join(t.TempDir(), "dump")}
}

// payload is the part of a pushed sample the suite looks at.
type payload struct {
	CollectedAt string                     `json:"collected_at"`
	Errors      map[string]string          `json:"errors"`
	Data        map[string]json.RawMessage `json:"data"`
}

func decode(t *testing.T, ss []sink.Sample, event string) []payload {
	var out []payload
	for _, s := range ss {
		if s.Event != event {
			continue
		}
		var p payload
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			t.Fatalf("bad payload %s: %v", s.Payload, err)
		}
		out = append(out, p)
	}
	return out
}

var dumpRe = regexp.MustCompile(`(?s)===== [^ ]+ kind=(\w+) =====\n\{\n  "collected_at": "([^"]+)"`)

// dumped lists "kind collected_at" for every sample in the given dump files.
func dumped(files ...string) []string {
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range dumpRe.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	return out
}

// processes counts processes whose command line contains sub.
func processes(sub string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), sub) {
			n++
		}
	}
	return n
}

func killProcesses(sub string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), sub) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
