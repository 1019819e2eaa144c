// Package testkit is the one harness for tests that run the real agent
// binary: it builds cmd/proxmox-agent once per test binary, writes configs
// that point at the repository's fake proc root, starts the agent with the
// fake commands of testdata/fakebin first on PATH, and hands back a process
// handle with its log. It is imported only from _test.go files.
//
// A package using it calls Main from its TestMain, which builds the binary
// before the tests and removes it after them:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pollInterval is how often Eventually looks at its condition. It only sets
// how fast a met condition is noticed; correctness rests on the deadline.
const pollInterval = 20 * time.Millisecond

// Eventually polls cond until it holds, failing the test if it does not
// within timeout. what names the awaited state for the failure message.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// ModuleRoot is the directory holding the module's go.mod, found by walking
// up from the working directory, so tests in any package find testdata/
// without counting "../" for their depth.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(findRoot)
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

func findRoot() { root, rootErr = findModuleRoot() }

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testkit: no go.mod above the working directory")
		}
		dir = parent
	}
}

// agentPackage is the command BuildAgent builds.
const agentPackage = "github.com/proxmox-agent/proxmox-agent/cmd/proxmox-agent"

var (
	mainRunning bool // set by Main: only then is the build directory removed
	buildOnce   sync.Once
	buildDir    string
	binary      string
	buildErr    error
)

// Main builds the agent binary, runs the tests and removes the binary.
// Call it from TestMain; it does not return. The build comes first, not in
// whichever test happens to start an agent first, so its CPU load does not
// fall into a scenario's timed window. A failed build fails only the tests
// that call BuildAgent.
func Main(m *testing.M) {
	mainRunning = true
	buildOnce.Do(build)
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// BuildAgent returns the path of the agent binary, built once per test
// binary. It is built without -race: the race runtime multiplies memory
// use, and the fault suite bounds the agent's peak RSS.
func BuildAgent(t testing.TB) string {
	t.Helper()
	if !mainRunning {
		// Without Main the build directory would outlive the test binary.
		t.Fatal("testkit: call testkit.Main(m) from TestMain before BuildAgent")
	}
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func build() {
	rootOnce.Do(findRoot)
	if rootErr != nil {
		buildErr = rootErr
		return
	}
	buildDir, buildErr = os.MkdirTemp("", "proxmox-agent-test")
	if buildErr != nil {
		return
	}
	binary = filepath.Join(buildDir, "proxmox-agent")
	cmd := exec.Command("go", "build", "-o", binary, agentPackage)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("building the agent: %v\n%s", err, out)
	}
}
