// Package status serves the running agent's state on a Unix socket and
// reads it back for `proxmox-agent status`: one JSON document per
// connection, no request to parse. The socket is 0600 in a root-only
// directory (the unit's RuntimeDirectory), since the document names the
// server and the host's sources.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/delivery/stats"
)

// DefaultSocket is where the packaged agent listens.
const DefaultSocket = "/run/proxmox-agent/status.sock"

// Doc is the state `status` shows.
type Doc struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Server    string    `json:"server"` // redacted
	// Connected and Joined say where the session stands; Since is when it
	// got there (or when it was lost, when both are false).
	Connected bool      `json:"connected"`
	Joined    bool      `json:"joined"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Queue     Queue     `json:"queue"`
	Cadences  []Cadence `json:"cadences"`
	Sources   []Source  `json:"sources"`
	// Config says which config runs and whether the last reload failed.
	Config Config `json:"config"`
}

// Config is the running config's origin: the file, when it was loaded
// (at start or by the last reload that worked), and the last failed
// reload's error, which names the key and line.
type Config struct {
	Path          string    `json:"path"`
	LoadedAt      time.Time `json:"loaded_at,omitzero"`
	ReloadError   string    `json:"reload_error,omitempty"`
	ReloadErrorAt time.Time `json:"reload_error_at,omitzero"`
}

// Queue is the delivery backlog and counters: the engine's Stats as the
// reporter gave them (depth, pushed, acked, refused, set aside, dropped,
// corrupt, quarantined and kept files, the fallback and why), with the
// spool's and the set-aside file's paths.
type Queue struct {
	Spool string `json:"spool"` // the spool file, or "" (memory only)
	stats.Stats
	// SetAside is the file keeping samples the server failed on every
	// time (for `proxmox-agent replay`), when it holds any.
	SetAside      string `json:"set_aside_file,omitempty"`
	SetAsideBytes int64  `json:"set_aside_bytes,omitempty"`
	// SetAsideProblem says why the file cannot take samples, if it cannot.
	SetAsideProblem string `json:"set_aside_problem,omitempty"`
}

// Cadence is one collector's rounds.
type Cadence struct {
	Kind         string        `json:"kind"`
	Interval     time.Duration `json:"interval_ns"`
	Rounds       uint64        `json:"rounds"`
	Skipped      uint64        `json:"skipped_ticks"`
	LastRound    time.Time     `json:"last_round,omitzero"`
	LastDuration time.Duration `json:"last_duration_ns"`
}

// Source is one source's last outcomes.
type Source struct {
	Cadence     string    `json:"cadence"`
	Name        string    `json:"name"`
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Server answers every connection on its socket with the current Doc.
type Server struct {
	ln   net.Listener
	path string
	ours os.FileInfo // the socket file we made, to remove only that one
	wg   sync.WaitGroup
}

// ErrInUse is wrapped by Serve when another agent answers on the socket.
var ErrInUse = errors.New("status socket in use by another running agent")

// Serve listens on path (removing a stale socket left by a killed agent of
// this user, never any other file) and answers with get() until Close. It
// refuses a directory others can write to: anyone who can create the path
// first can answer `status` in the agent's place (safeSocketPath).
func Serve(path string, get func() Doc) (*Server, error) {
	path, err := safeSocketPath(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("status socket: %s exists and is not a socket", path)
		}
		if err := ownSocket(path, st); err != nil {
			return nil, err
		}
		// A socket someone answers on belongs to a running agent: taking
		// it over would hide that agent from status (and removing it on
		// exit would hide both).
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s answers", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("status socket: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Close removes it, if still ours
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	s := &Server{ln: ln, path: path, ours: st}
	s.wg.Add(1)
	go s.accept(get)
	return s, nil
}

func (s *Server) accept(get func() Doc) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_ = json.NewEncoder(c).Encode(get())
		}()
	}
}

// Close stops listening and removes the socket, unless the path is no
// longer the socket this server made.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	if st, serr := os.Lstat(s.path); serr == nil && os.SameFile(st, s.ours) {
		_ = os.Remove(s.path)
	}
	return err
}

// ErrNotRunning is wrapped by Fetch when nothing listens on the socket.
var ErrNotRunning = errors.New("no agent is running")

// Fetch reads the Doc from the agent listening on path. It trusts only an
// answer from a process of root or of the caller (the peer's credentials,
// SO_PEERCRED): a socket bound by someone else is ErrUntrusted.
func Fetch(path string, timeout time.Duration) (Doc, error) {
	return fetch(path, timeout, trustedPeer)
}

func fetch(path string, timeout time.Duration, trusted func(uid uint32) bool) (Doc, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return Doc{}, fmt.Errorf("%w (cannot connect to %s: %v)", ErrNotRunning, path, unwrapOp(err))
	}
	defer c.Close()
	if err := checkPeer(c, path, trusted); err != nil {
		return Doc{}, err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var d Doc
	if err := json.NewDecoder(io.LimitReader(c, 16<<20)).Decode(&d); err != nil {
		return Doc{}, fmt.Errorf("read status from %s: %w", path, err)
	}
	return d, nil
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
