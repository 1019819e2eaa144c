package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

func TestOutcomes(t *testing.T) {
	r := &Runner{}
	cases := []struct {
		name    string
		argv    []string
		outcome dump.Outcome
		code    int
		stdout  string
		stderr  string
		errSub  string
	}{
		// Seed shell_test: "run/2 returns {:ok, output}" and the enoent case.
		{"ok", []string{"/bin/echo", "hello"}, dump.OK, 0, "hello\n", "", ""},
		{"nonzero keeps both streams apart", []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 7"},
			dump.NonZero, 7, "out\n", "err\n", "exit 7: err"},
		{"missing absolute path", []string{"/does/not/exist/nope"}, dump.NotFound, 0, "", "", "/does/not/exist/nope not found"},
		{"missing in PATH", []string{"no-such-binary-for-proxmox-agent"}, dump.NotFound, 0, "", "", "not found"},
		{"not executable", []string{"/"}, dump.Failed, 0, "", "", "is a directory"},
		{"locale is C.UTF-8", []string{"/bin/sh", "-c", "echo $LC_ALL"}, dump.OK, 0, "C.UTF-8\n", "", ""},
		{"killed by a signal", []string{"/bin/sh", "-c", "kill -9 $$"}, dump.Failed, 0, "", "", "signal killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := r.Run(context.Background(), 5*time.Second, c.argv[0], c.argv[1:]...)
			if res.Outcome != c.outcome || res.ExitCode != c.code {
				t.Fatalf("outcome %v code %d (%s), want %v %d", res.Outcome, res.ExitCode, res.Reason, c.outcome, c.code)
			}
			if string(res.Stdout) != c.stdout || string(res.Stderr) != c.stderr {
				t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
			}
			err := res.Err()
			if c.errSub == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("err = %v, want it to contain %q", err, c.errSub)
			}
		})
	}
	if !NotFound(r.Run(context.Background(), time.Second, "/nope").Err()) {
		t.Error("NotFound() false for a missing binary")
	}
}

func TestNoShellInterpretation(t *testing.T) {
	res := (&Runner{}).Run(context.Background(), 5*time.Second, "/bin/echo", "$HOME", "a;b", "*")
	if string(res.Stdout) != "$HOME a;b *\n" {
		t.Fatalf("arguments were interpreted: %q", res.Stdout)
	}
}

func TestTimeoutKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "child.pid")
	// The shell starts a grandchild that ignores SIGTERM; both are in the group.
	script := "trap '' TERM; (trap '' TERM; echo $$ >/dev/null; sleep 30) & echo $! > " + pidfile + "; wait"
	r := &Runner{Grace: 2 * time.Second}
	res := r.Run(context.Background(), 200*time.Millisecond, "/bin/sh", "-c", script)
	if res.Outcome != dump.TimedOut || !strings.Contains(res.Reason, "timed out after 200ms") {
		t.Fatalf("outcome %v reason %q", res.Outcome, res.Reason)
	}
	if r.Stuck() != 0 {
		t.Fatalf("a killable group counted as stuck")
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
	testkit.Eventually(t, 5*time.Second, "no outstanding command after the group was killed", func() bool { return r.Outstanding() == 0 })
}

func TestContextCancelStopsCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	res := (&Runner{}).Run(ctx, time.Minute, "/bin/sleep", "30")
	if res.Outcome != dump.TimedOut || !strings.Contains(res.Reason, "cancelled") {
		t.Fatalf("outcome %v reason %q", res.Outcome, res.Reason)
	}
}

// A child that cannot be reaped is simulated by a grandchild that leaves the
// process group (setsid) while holding stdout open: cmd.Wait then blocks just
// as it does on a zpool in D state. The runner must return at the timeout,
// count the child as stuck after the grace period, and refuse to start the same command line until it is gone.
func TestUnreapableIsAbandonedAndNotRestarted(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	pidfile := filepath.Join(t.TempDir(), "stuck.pid")
	// A grace longer than outputDelay: the line must stay claimed past the
	// point where Wait gives up on the pipes the escaped child holds.
	r := &Runner{Grace: 4 * outputDelay}
	argv := []string{"/bin/sh", "-c", "setsid /bin/sh -c 'echo $$ > " + pidfile + "; exec sleep 60' & sleep 60"}
	start := time.Now()
	res := r.Run(context.Background(), 200*time.Millisecond, argv[0], argv[1:]...)
	if res.Outcome != dump.TimedOut || !strings.Contains(res.Reason, "timed out after 200ms; process group killed") {
		t.Fatalf("outcome %v reason %q", res.Outcome, res.Reason)
	}
	// The caller is released at the timeout, not after the grace period.
	if d := time.Since(start); d > 200*time.Millisecond+r.Grace {
		t.Fatalf("Run blocked %s on an unreapable child", d)
	}

	testkit.Eventually(t, 10*time.Second, "the escaped child counted as stuck after the grace period", func() bool { return r.Stuck() == 1 })
	again := r.Run(context.Background(), 200*time.Millisecond, argv[0], argv[1:]...)
	if again.Outcome != dump.Stuck || !strings.Contains(again.Err().Error(), "previous run still stuck") {
		t.Fatalf("second run: %v %q", again.Outcome, again.Reason)
	}
	// Another command line is not affected.
	if other := r.Run(context.Background(), time.Second, "/bin/true"); other.Outcome != dump.OK {
		t.Fatalf("unrelated command: %v %s", other.Outcome, other.Reason)
	}

	// When the stuck process finally goes away, the line is released.
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	syscall.Kill(pid, syscall.SIGKILL)
	testkit.Eventually(t, 10*time.Second, "the command line released after the stuck child exited", func() bool { return r.Outstanding() == 0 })
	if res := r.Run(context.Background(), time.Second, "/bin/true"); res.Outcome != dump.OK {
		t.Fatal(res.Reason)
	}
}

func TestOutputCap(t *testing.T) {
	r := &Runner{MaxOutput: 1000}
	// 5 MB to stdout: kept to 1000 bytes, the child is not blocked, the call ends.
	res := r.Run(context.Background(), 10*time.Second, "/bin/sh", "-c", "head -c 5000000 /dev/zero; echo done >&2")
	if res.Outcome != dump.OK || !res.Truncated || len(res.Stdout) != 1000 || string(res.Stderr) != "done\n" {
		t.Fatalf("outcome %v truncated %v len %d stderr %q", res.Outcome, res.Truncated, len(res.Stdout), res.Stderr)
	}
	// The same on stderr; and exactly the cap is not truncated.
	res = r.Run(context.Background(), 10*time.Second, "/bin/sh", "-c", "head -c 5000000 /dev/zero >&2; head -c 1000 /dev/zero")
	if res.Outcome != dump.OK || !res.Truncated || len(res.Stderr) != 1000 || len(res.Stdout) != 1000 {
		t.Fatalf("outcome %v truncated %v len %d stdout %d", res.Outcome, res.Truncated, len(res.Stderr), len(res.Stdout))
	}
	res = r.Run(context.Background(), 10*time.Second, "/bin/sh", "-c", "head -c 1000 /dev/zero")
	if res.Outcome != dump.OK || res.Truncated || len(res.Stdout) != 1000 {
		t.Fatalf("outcome %v truncated %v len %d", res.Outcome, res.Truncated, len(res.Stdout))
	}
}

// Seed shell_test: "run/2 logs to Diagnostics when dump_dir is set".
func TestEveryCallIsRecorded(t *testing.T) {
	var recs []*dump.CommandRecord
	r := &Runner{Dump: dump.NewHandle(func(m any) { recs = append(recs, m.(*dump.CommandRecord)) })}
	r.Run(context.Background(), time.Second, "/bin/echo", "diagnostics-test")
	r.Run(context.Background(), time.Second, "/nope/zpool", "list")
	r.Run(context.Background(), 50*time.Millisecond, "/bin/sleep", "5")
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	entry := string(dump.AppendCommand(nil, recs[0]))
	for _, want := range []string{"$ /bin/echo diagnostics-test", "exit=0", "diagnostics-test"} {
		if !strings.Contains(entry, want) {
			t.Errorf("entry lacks %q:\n%s", want, entry)
		}
	}
	if e := string(dump.AppendCommand(nil, recs[1])); !strings.Contains(e, "error=") || strings.Contains(e, "exit=") {
		t.Errorf("not-found entry:\n%s", e)
	}
	if e := string(dump.AppendCommand(nil, recs[2])); !strings.Contains(e, "error=timed out after 50ms") {
		t.Errorf("timeout entry:\n%s", e)
	}
}

// gone reports whether pid has exited: a zombie still answers kill(0), so
// its state is checked too.
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && strings.Contains(string(b), ") Z ")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("pid %d gone after the group kill", pid), func() bool { return gone(pid) })
}

// A command that exits at once but leaves a grandchild holding its stdout
// (a backgrounded helper) is a success with its output, not a timeout and
// then a stuck command; the grandchild is killed with its process group.
func TestGrandchildHoldingStdout(t *testing.T) {
	for name, heir := range map[string]string{
		"stdout and stderr": "sleep 60 &",
		// stdout is read by the runner itself, stderr by os/exec: each
		// must stop waiting for a grandchild on its own.
		"stdout only": "sleep 60 2>/dev/null &",
		"stderr only": "sleep 60 >/dev/null &",
	} {
		t.Run(name, func(t *testing.T) {
			r := &Runner{}
			pidFile := filepath.Join(t.TempDir(), "pid")
			res := r.Run(context.Background(), 20*time.Second, "/bin/sh", "-c", heir+" echo $! > "+pidFile+"; echo done; echo warn >&2")
			if res.Outcome != dump.OK || string(res.Stdout) != "done\n" || string(res.Stderr) != "warn\n" {
				t.Fatalf("outcome %v stdout %q stderr %q reason %q", res.Outcome, res.Stdout, res.Stderr, res.Reason)
			}
			if res.Duration > 10*time.Second {
				t.Fatalf("waited %s: the grandchild's open pipe held the call", res.Duration)
			}
			if n := r.Stuck(); n != 0 {
				t.Fatalf("%d stuck commands", n)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			testkit.Eventually(t, 10*time.Second, "the grandchild killed", func() bool { return gone(pid) })
		})
	}
}

// A command line is released before Run returns, so the caller's next run
// of the same line (the next round) is never answered "stuck". It used to
// be released by the waiter goroutine after handing back the result, and a
// run started at once could find the claim still held.
func TestReleasedBeforeRunReturns(t *testing.T) {
	r := &Runner{}
	for i := 0; i < 300; i++ {
		res := r.Run(context.Background(), 5*time.Second, "/bin/true")
		if res.Outcome != dump.OK {
			t.Fatalf("run %d: %v %s", i, res.Outcome, res.Reason)
		}
		if n := r.Outstanding(); n != 0 {
			t.Fatalf("run %d: %d outstanding after Run returned", i, n)
		}
	}
}

// A stream far over the cap keeps max bytes and never grows the buffer
// past it: a 16 MiB cap must not cost a 32 MiB buffer (and 48 MB live
// while it is copied).
func TestCappedNeverGrowsPastMax(t *testing.T) {
	const max = 1 << 20
	c := &capped{max: max}
	n, err := c.ReadFrom(io.LimitReader(zeros{}, 10*max))
	if err != nil || n != 10*max || len(c.Bytes()) != max || !c.truncated {
		t.Fatalf("read %d, kept %d, truncated %v, err %v", n, len(c.Bytes()), c.truncated, err)
	}
	if cap(c.Bytes()) > max+64<<10 {
		t.Fatalf("buffer grew to %d for a cap of %d", cap(c.Bytes()), max)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A command that prints and exits right at its timeout either timed out
// or is OK with its output: never OK with the output missing. The read's
// deadline ran out before the timer (set later), and the output left in
// the pipe was thrown away (found in review: 13 of 600 runs).
func TestExitAtTheDeadlineKeepsItsOutput(t *testing.T) {
	r := &Runner{}
	for i := 0; i < 60; i++ {
		delay := fmt.Sprintf("0.%03d", 95+i%10) // around the 100 ms timeout
		res := r.Run(context.Background(), 100*time.Millisecond, "/bin/sh", "-c", "sleep "+delay+"; echo hi")
		if res.Outcome == dump.OK && string(res.Stdout) != "hi\n" {
			t.Fatalf("run %d (sleep %s): OK with stdout %q", i, delay, res.Stdout)
		}
		if res.Outcome != dump.OK && res.Outcome != dump.TimedOut {
			t.Fatalf("run %d: %v %s", i, res.Outcome, res.Reason)
		}
	}
}
