package collect

import (
	"errors"
	"sort"
	"sync"
	"time"
)

// Health is what a cadence last did, for `proxmox-agent status`: when its
// last round ran and how long it took, and each source's last success and
// last error. The collector actor records into it; the status server reads
// it from another goroutine.
type Health struct {
	mu           sync.Mutex
	lastRound    time.Time
	lastDuration time.Duration
	sources      map[string]*SourceHealth
}

// SourceHealth is one source's last outcomes.
type SourceHealth struct {
	Name        string
	LastOK      time.Time
	LastError   string
	LastErrorAt time.Time
}

// Record notes a finished round that started at start and ended at end,
// with each source's error (nil for success).
func (h *Health) Record(start, end time.Time, errs map[string]error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastRound, h.lastDuration = start, end.Sub(start)
	if h.sources == nil {
		h.sources = map[string]*SourceHealth{}
	}
	for name, err := range errs {
		s := h.sources[name]
		if s == nil {
			s = &SourceHealth{Name: name}
			h.sources[name] = s
		}
		if err == nil || errors.Is(err, ErrAbsent) {
			// A source that does not apply here did what it could.
			s.LastOK = end
			continue
		}
		s.LastError, s.LastErrorAt = err.Error(), end
	}
}

// Snapshot returns the last round's start and duration and the sources
// sorted by name.
func (h *Health) Snapshot() (last time.Time, took time.Duration, sources []SourceHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sources {
		sources = append(sources, *s)
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	return h.lastRound, h.lastDuration, sources
}
