package testkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config is what WriteConfig puts into an agent config. Everything else is
// fixed: the fake proc root, a 1 s fast cadence with medium and slow out of
// the way (one hour), and a 1 s reply timeout, so a scenario sees several
// fast rounds, and a silent server, within seconds.
type Config struct {
	// URL is the server_url, usually a sinktest sink's.
	URL string
	// Token is the token; "tok" when empty, the token sinks in tests accept.
	Token string
	// Extra is more TOML, placed after the top-level keys, so it may add
	// top-level keys and then tables.
	Extra string
	// DumpDir turns the diagnostic dump on into this directory; empty
	// leaves it off.
	DumpDir string
	// SpoolDir is the spool; empty gives a fresh temporary directory (a
	// test never touches the packaged /var/lib path), "-" a memory-only
	// queue.
	SpoolDir string
	// StatusSocket is the status socket; empty gives one in a fresh
	// temporary directory.
	StatusSocket string
	// QueueMaxSamples bounds the memory queue; 0 keeps the default.
	QueueMaxSamples int
	// ReconnectMaxSeconds is [reporter] reconnect_max_seconds; 0 gives 1:
	// a scenario that stops and starts its sink sees the agent back within
	// a second, not a fleet's 30 s spread.
	ReconnectMaxSeconds int
}

// fill resolves the temporary defaults of c.
func (c *Config) fill(t testing.TB) {
	if c.Token == "" {
		c.Token = "tok"
	}
	switch c.SpoolDir {
	case "":
		c.SpoolDir = filepath.Join(t.TempDir(), "spool")
	case "-":
		c.SpoolDir = ""
	}
	if c.StatusSocket == "" {
		// Short: a Unix socket path is limited to 107 bytes and test temp
		// dirs are long.
		dir, err := os.MkdirTemp("", "pa")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		c.StatusSocket = filepath.Join(dir, "s.sock")
	}
}

// WriteConfig writes a config for c into a fresh temporary directory and
// returns its path.
func WriteConfig(t testing.TB, c Config) string {
	t.Helper()
	c.fill(t)
	return writeFilled(t, c)
}

func queueLine(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("queue_max_samples = %d\n", n)
}

func writeFilled(t testing.TB, c Config) string {
	t.Helper()
	body := fmt.Sprintf(`server_url = %q
token = %q
host_id = "test"
node = "pve1"
%s
[intervals]
fast_seconds = 1
medium_seconds = 3600
slow_seconds = 3600
[proc]
root = %q
[reporter]
reply_timeout_seconds = 1
reconnect_max_seconds = %d
%s[spool]
dir = %q
[status]
socket = %q
`, c.URL, c.Token, c.Extra, filepath.Join(ModuleRoot(t), "testdata", "proc"), max(c.ReconnectMaxSeconds, 1), queueLine(c.QueueMaxSamples), c.SpoolDir, c.StatusSocket)
	if c.DumpDir != "" {
		body += fmt.Sprintf("[debug]\ndump_dir = %q\n", c.DumpDir)
	}
	return WriteRawConfig(t, body)
}

// WriteRawConfig writes body as a config file into a fresh temporary
// directory and returns its path, for tests about the config itself.
func WriteRawConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Options says how StartAgent runs the agent.
type Options struct {
	// Args is the command line after the binary name. When empty the agent
	// runs as "run --config <file>" with a file written from Config.
	Args []string
	// Config is used when Args is empty.
	Config Config
	// Env is added to the environment, overriding what it repeats.
	Env []string
}

// Agent is a running agent process started by StartAgent. It is killed, if
// still running, when the test ends.
type Agent struct {
	// DumpDir, SpoolDir and StatusSocket are the config's when StartAgent
	// wrote it.
	DumpDir      string
	SpoolDir     string
	StatusSocket string

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	logEOF chan struct{} // closed once stderr is read to the end

	mu      sync.Mutex
	lines   []string
	newLine chan struct{} // a token per batch of new lines, for WaitLog
}

// logDrain bounds how long Wait reads stderr after the process exits: only
// a descendant that inherited stderr and outlived the agent can hold it
// open past that, and its output is no part of the agent's log.
const logDrain = 2 * time.Second

// StartAgent builds the agent if needed and starts it. The environment puts
// testdata/fakebin first on PATH, so the agent never runs a real zpool,
// zfs, pvesh or smartctl of the machine, and empties AGENT_CONFIG, so a
// config named there cannot leak into a test.
func StartAgent(t testing.TB, o Options) *Agent {
	t.Helper()
	bin := BuildAgent(t)
	a := &Agent{t: t, exited: make(chan struct{}), logEOF: make(chan struct{}), newLine: make(chan struct{}, 1)}
	args := o.Args
	if len(args) == 0 {
		o.Config.fill(t)
		args = []string{"run", "--config", writeFilled(t, o.Config)}
		a.DumpDir, a.SpoolDir, a.StatusSocket = o.Config.DumpDir, o.Config.SpoolDir, o.Config.StatusSocket
	}
	a.cmd = exec.Command(bin, args...)
	fakebin := filepath.Join(ModuleRoot(t), "testdata", "fakebin")
	a.cmd.Env = append(os.Environ(), "PATH="+fakebin+string(os.PathListSeparator)+os.Getenv("PATH"), "AGENT_CONFIG=")
	a.cmd.Env = append(a.cmd.Env, o.Env...)
	// Our own pipe rather than StderrPipe: Wait closes a StderrPipe as soon
	// as the process exits, which could drop the last log lines unread.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Stderr = w
	err = a.cmd.Start()
	w.Close() // the child has its copy; ours would keep EOF from coming
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go a.readLog(r)
	go func() {
		a.cmd.Wait()
		close(a.exited)
		r.SetReadDeadline(time.Now().Add(logDrain))
	}()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.exited
		<-a.logEOF
	})
	return a
}

func (a *Agent) readLog(r *os.File) {
	defer close(a.logEOF)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		a.mu.Lock()
		a.lines = append(a.lines, sc.Text())
		a.mu.Unlock()
		select {
		case a.newLine <- struct{}{}:
		default:
		}
	}
	// A line over 1 MiB stops the scanner; keep reading so the agent never
	// blocks on a full pipe.
	io.Copy(io.Discard, r)
}

// Log is the agent's stderr so far, one line per log record.
func (a *Agent) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.lines, "\n")
}

// Count is how many times sub occurs in the log so far.
func (a *Agent) Count(sub string) int { return strings.Count(a.Log(), sub) }

// Has reports whether a log line so far contains sub.
func (a *Agent) Has(sub string) bool { return strings.Contains(a.Log(), sub) }

// WaitLog waits up to 15 s for a log line containing sub, failing the test
// with the log otherwise.
func (a *Agent) WaitLog(sub string) {
	a.t.Helper()
	deadline := time.After(15 * time.Second)
	for !a.Has(sub) {
		select {
		case <-a.newLine:
		case <-a.logEOF:
			if !a.Has(sub) {
				a.t.Fatalf("agent log ended without a line with %q:\n%s", sub, a.Log())
			}
		case <-deadline:
			a.t.Fatalf("no log line with %q; got:\n%s", sub, a.Log())
		}
	}
}

// Pid is the agent's process id.
func (a *Agent) Pid() int { return a.cmd.Process.Pid }

// Signal sends sig to the agent.
func (a *Agent) Signal(sig os.Signal) {
	a.t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		a.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Alive reports whether the agent has not exited.
func (a *Agent) Alive() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// Wait waits up to within for the agent to exit and returns its exit code,
// failing the test if it is still running. Once Wait returns, Log holds
// everything the agent wrote.
func (a *Agent) Wait(within time.Duration) int {
	a.t.Helper()
	select {
	case <-a.exited:
	case <-time.After(within):
		a.t.Fatalf("agent still running %s after the signal; log:\n%s", within, a.Log())
	}
	<-a.logEOF
	return a.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and returns the exit code and how long the agent took
// to exit, failing the test if it runs on for 15 s.
func (a *Agent) Stop() (code int, took time.Duration) {
	a.t.Helper()
	start := time.Now()
	// An agent that already exited is no failure of Stop: the exit code
	// tells the caller what happened.
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		took = time.Since(start)
	case <-time.After(15 * time.Second):
		a.t.Fatalf("agent still running 15s after SIGTERM")
	}
	<-a.logEOF
	return a.cmd.ProcessState.ExitCode(), took
}

// MemKiB reads the agent's VmRSS and VmHWM (peak RSS) from /proc, in KiB;
// zero when the process is gone.
func (a *Agent) MemKiB() (rss, hwm int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.Pid()))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return rss, hwm
}
