package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestModuleRootHoldsTestdata(t *testing.T) {
	root := ModuleRoot(t)
	for _, p := range []string{"go.mod", "testdata/fakebin/zpool", "testdata/proc/loadavg"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	Eventually(t, 10*time.Second, "three polls", func() bool { n++; return n >= 3 })
	if n != 3 {
		t.Fatalf("condition evaluated %d times, want 3", n)
	}
}

func TestWriteConfigIsValid(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "dump")
	a := StartAgent(t, Options{Args: []string{"check-config", "--config",
		WriteConfig(t, Config{URL: "ws://127.0.0.1:9/socket/websocket", Extra: "[timeouts]\nzpool_seconds = 1\n", DumpDir: dump})}})
	if code := a.Wait(15 * time.Second); code != 0 {
		t.Fatalf("check-config exit %d:\n%s", code, a.Log())
	}
}

// The log is complete once Stop returns: the last line, written just
// before exit, is there.
func TestStartAgentLogAndStop(t *testing.T) {
	a := StartAgent(t, Options{Config: Config{URL: "ws://127.0.0.1:9/socket/websocket"}})
	a.WaitLog("msg=starting")
	if !a.Alive() {
		t.Fatal("agent exited")
	}
	code, took := a.Stop()
	if code != 0 {
		t.Fatalf("exit %d after %s:\n%s", code, took, a.Log())
	}
	if !strings.Contains(a.Log(), "msg=stopped") {
		t.Errorf("log incomplete after Stop:\n%s", a.Log())
	}
	if a.Alive() {
		t.Error("Alive after Stop")
	}
}
