package dump

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
)

// Default backlog bounds. A writer that keeps up holds a handful of entries;
// these only matter when it stalls (a slow or hung disk), and then they cap
// the memory the agent spends on diagnostics instead of on its real job.
const (
	DefaultBacklogEntries = 1024
	DefaultBacklogBytes   = 16 << 20
)

// entryOverhead approximates what a queued entry costs beyond its bodies
// (the record, its message envelope, the mailbox slot), so a flood of empty
// entries is bounded too.
const entryOverhead = 256

// remindEvery spaces the reminder lines while entries keep being dropped.
const remindEvery = time.Minute

// Backlog bounds the entries a Handle has posted that the writer has not yet
// taken off its mailbox. The mailbox itself is unbounded; counting here lets
// the caller refuse an entry without ever blocking. It also counts every
// entry that did not reach the dump, for the agent's self-report; it belongs
// to the Handle, so the count survives writer restarts.
type Backlog struct {
	maxEntries, maxBytes int64
	log                  *slog.Logger

	entries, bytes atomic.Int64
	dropped        atomic.Uint64
	dropping       atomic.Bool

	// mu guards tr. Callers only TryLock it: a caller that would wait for
	// the lock skips the log line instead (the count is exact regardless).
	mu sync.Mutex
	tr statelog.Tracker
}

// NewBacklog returns a Backlog holding at most maxEntries entries and about
// maxBytes of entry bodies (one entry is always admitted into an empty
// backlog, however large, so a big output is not dropped on principle).
// It logs to log when it starts dropping and when the writer catches up.
func NewBacklog(maxEntries, maxBytes int64, log *slog.Logger) *Backlog {
	return &Backlog{maxEntries: maxEntries, maxBytes: maxBytes, log: log, tr: statelog.Tracker{Every: remindEvery}}
}

// Dropped is the number of entries that never reached the dump: refused
// because the writer was behind, or discarded by the writer because their
// file could not be opened or written.
func (b *Backlog) Dropped() uint64 {
	if b == nil {
		return 0
	}
	return b.dropped.Load()
}

// Pending is the number of entries posted and not yet taken by the writer.
func (b *Backlog) Pending() (entries, bytes int64) {
	return b.entries.Load(), b.bytes.Load()
}

func (b *Backlog) admit(size int64) bool {
	n := b.entries.Add(1)
	s := b.bytes.Add(size)
	if n == 1 || (n <= b.maxEntries && s <= b.maxBytes) {
		return true
	}
	b.entries.Add(-1)
	b.bytes.Add(-size)
	b.dropped.Add(1)
	b.dropping.Store(true)
	if b.mu.TryLock() {
		b.tr.Fail(time.Now(), func(suppressed uint64) {
			b.log.Warn("dump writer behind: dropping entries",
				"max_entries", b.maxEntries, "max_bytes", b.maxBytes,
				"dropped_total", b.dropped.Load(), "suppressed_since_last_warning", suppressed)
		})
		b.mu.Unlock()
	}
	return false
}

func (b *Backlog) taken(size int64) {
	n := b.entries.Add(-1)
	s := b.bytes.Add(-size)
	// Half-empty, not empty: a writer that is merely slow would otherwise
	// log "caught up" and "dropping" in turn for every few entries.
	if !b.dropping.Load() || n > b.maxEntries/2 || s > b.maxBytes/2 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropping.Store(false)
	b.tr.OK(func(uint64) {
		b.log.Info("dump writer caught up", "dropped_total", b.dropped.Load())
	})
}

// ticket ties a posted record to the Backlog that admitted it, so the writer
// can hand the space back without holding a reference of its own.
type ticket struct {
	backlog *Backlog
	size    int64
}

// Taken tells the record's Backlog that the writer has taken it off its
// mailbox. The writer calls it first thing, before anything that can fail.
// A record not posted through a bounded Handle ignores it.
func (t *ticket) Taken() {
	if t.backlog != nil {
		t.backlog.taken(t.size)
	}
}

// Lost counts the record as dropped: the writer could not write it.
func (t *ticket) Lost() {
	if t.backlog != nil {
		t.backlog.dropped.Add(1)
	}
}

func commandSize(r *CommandRecord) int64 {
	n := len(r.Command) + len(r.Stdout) + len(r.Stderr) + len(r.Err)
	for _, a := range r.Args {
		n += len(a)
	}
	return int64(n) + entryOverhead
}
