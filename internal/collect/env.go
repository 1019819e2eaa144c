package collect

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// Env is what the sources of every cadence are built from. The supervisor
// makes one per process (see supervisor.Wire), for the daemon and for once.
type Env struct {
	Config *config.Config
	Runner *runner.Runner
	Dump   *dump.Handle
	Stats  *Stats
	Log    *slog.Logger
	// ReporterStatus asks the reporter for its status (from a goroutine,
	// never from inside an actor's handler). Nil when nothing reports.
	ReporterStatus func(timeout time.Duration) (*messages.Status, error)
	// Timex reads the kernel clock's discipline for the host source; nil
	// is adjtimex(2). Tests set a fake.
	Timex Adjtimexer
	// PageSize multiplies KSM's page count (0: the system's). Tests fix it.
	PageSize int

	filesOnce sync.Once
	files     *SlowFS
}

// Files is the process's one reader of /etc/pve, shared by every cadence
// so that a stuck path is never read twice at once and the self-report
// counts every stuck read. A nil Env (tests) gets a fresh reader.
func (e *Env) Files() *SlowFS {
	if e == nil {
		return &SlowFS{}
	}
	e.filesOnce.Do(func() {
		e.files = &SlowFS{Dump: e.Dump}
		if e.Config != nil {
			e.files.MaxBytes = e.Config.Commands.MaxOutputBytes
		}
	})
	return e.files
}

// Stats are counters that outlive actor restarts, for the agent's
// self-report.
type Stats struct {
	Started    time.Time
	Restarts   atomic.Uint64
	Collectors map[string]*Counters
	// GuestsSource is the path ("pmxcfs" or "pvesh") that produced the
	// last guests sample; empty before the first.
	GuestsSource atomic.Pointer[string]
	// Health is each cadence's last round and sources, for status.
	Health map[string]*Health
}

// NewStats returns zeroed stats with a counter set for every cadence.
func NewStats() *Stats {
	s := &Stats{Started: time.Now(), Collectors: map[string]*Counters{}, Health: map[string]*Health{}}
	for _, k := range messages.Kinds {
		s.Collectors[k] = &Counters{}
		s.Health[k] = &Health{}
	}
	return s
}
