package spool

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Lazy opens the spool on first use and, while it cannot be opened (the
// directory unwritable, another agent holding the lock), tries again at
// most once per Retry. It outlives the reporter actor, so a restarted
// reporter finds the same open spool.
type Lazy struct {
	Dir      string
	MaxBytes int64
	Retry    time.Duration
	// Log receives what the spool does on its own (see OpenLogged).
	Log *slog.Logger

	mu   sync.Mutex
	s    *Spool
	last time.Time
	err  error
}

// Get returns the open spool, or the error of the latest attempt to open
// it; tried tells whether this call made an attempt (so the caller logs a
// failure once, and a later success once).
func (l *Lazy) Get(now time.Time) (s *Spool, tried bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, false, nil
	}
	if !l.last.IsZero() && now.Sub(l.last) < l.Retry {
		return nil, false, l.err
	}
	l.last = now
	l.s, l.err = OpenLogged(l.Dir, l.MaxBytes, l.Log)
	return l.s, true, l.err
}

// Close closes the spool if it was opened.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		return nil
	}
	err := l.s.Close()
	l.s = nil
	return err
}

// Path is the spool file's path.
func (l *Lazy) Path() string { return filepath.Join(l.Dir, FileName) }
