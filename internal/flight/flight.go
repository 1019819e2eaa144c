// Package flight keeps one operation per key in flight: a command line or a
// file read that is still running, or was abandoned after its timeout and
// has not returned yet, is not started a second time. The runner (commands)
// and the collection layer's /etc/pve reader (FUSE reads) share it; both
// report what is stuck in the agent's self-report.
package flight

import (
	"sync"
	"time"
)

// Set is the keys in flight. The zero value is ready to use.
type Set struct {
	mu sync.Mutex
	m  map[string]*Claim
}

// Claim is one key held by one operation.
type Claim struct {
	key       string
	since     time.Time
	abandoned bool
}

// Take claims key. When another operation holds it, Take returns nil and
// when that one started.
func (s *Set) Take(key string) (c *Claim, heldSince time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.m[key]; ok {
		return nil, held.since
	}
	if s.m == nil {
		s.m = map[string]*Claim{}
	}
	c = &Claim{key: key, since: time.Now()}
	s.m[c.key] = c
	return c, time.Time{}
}

// Release ends c: its operation has returned.
func (s *Set) Release(c *Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[c.key] == c {
		delete(s.m, c.key)
	}
}

// Abandon marks c as given up on by its caller while it still runs: stuck.
func (s *Set) Abandon(c *Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[c.key] == c {
		c.abandoned = true
	}
}

// Outstanding is how many operations have not returned, on time or not.
func (s *Set) Outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Stuck is how many were abandoned and have still not returned.
func (s *Set) Stuck() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.m {
		if c.abandoned {
			n++
		}
	}
	return n
}
