package faultsuite

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// runMarker is an environment entry unique to this test process. The
// agent passes its environment on to the commands it runs, so the marker
// tells this run's fake commands from those of other test runs on the same
// machine, which must be neither counted nor killed.
var runMarker = fmt.Sprintf("FAULTSUITE_RUN=%d-%d", os.Getpid(), time.Now().UnixNano())

// ours lists the pids of this run's processes (carrying runMarker) whose
// command line contains sub.
func ours(sub string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), sub) {
			continue
		}
		environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && slices.Contains(strings.Split(string(environ), "\x00"), runMarker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processes counts this run's processes whose command line contains sub.
func processes(sub string) int { return len(ours(sub)) }

// killProcesses kills this run's processes whose command line contains sub.
func killProcesses(sub string) {
	for _, pid := range ours(sub) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
