// Package delivery is the agent's delivery engine, apart from any actor:
// the bounded memory queue (Queue), what is sent when and what counts as
// delivered (Delivery), and the on-disk spool behind them (Store, over a
// Backing such as *spool.Spool). The reporter actor only carries events
// to it and its decisions to the connection. Stats is the one set of
// counters it reports, carried unchanged to `proxmox-agent status`.
package delivery

import (
	"errors"
	"log/slog"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
	"github.com/proxmox-agent/proxmox-agent/internal/statelog"
)

// Backing is the on-disk spool as the Store uses it; *spool.Spool is the
// real one, tests use fakes that fail on cue.
type Backing interface {
	Append(kind string, at time.Time, payload []byte) (spool.Record, []uint64, error)
	AppendBatch(recs []spool.Record) ([]spool.Record, []uint64, error)
	Delete(seqs ...uint64) error
	Read(after uint64, max int, maxBytes int) (recs []spool.Record, more bool, err error)
	Stats() spool.Stats
	Generation() uint64
}

// Opener returns the spool, opening it if needed; tried says whether this
// call attempted an open (spool.Lazy.Get, adapted by LazyOpener), so a
// failure is logged once per attempt, not per sample.
type Opener func(now time.Time) (b Backing, tried bool, err error)

// LazyOpener adapts a spool.Lazy, so the spool outlives the actor.
func LazyOpener(l *spool.Lazy) Opener {
	return func(now time.Time) (Backing, bool, error) {
		s, tried, err := l.Get(now)
		if s == nil {
			return nil, tried, err // never a typed nil in the interface
		}
		return s, tried, nil
	}
}

// remindEvery is the gap between reminders of a condition that persists.
const remindEvery = 10 * time.Minute

// Window bounds what of the spool is held in memory: however deep the
// spool grows, at most this many spooled samples (and about this many
// bytes) are loaded, oldest first, and refilled as they are delivered.
// Samples held in memory during a spool failure and written back after it
// (writeBack) join the window whatever its size: they were in memory
// already.
const (
	WindowItems = 64
	WindowBytes = 4 << 20
)

// Store keeps the spool the queue's truth. Every sample is appended to the
// spool before it can be pushed and deleted once delivered (or set aside);
// memory holds a window of the oldest spooled samples, and a restarted
// reporter rebuilds that window from disk. While the spool cannot be used
// (disk full, directory unwritable) samples are held in memory, bounded as
// without a spool, and the spool is used again as soon as it works; nothing
// collected in between is lost while the agent runs.
type Store struct {
	d      *Delivery
	q      *Queue
	open   Opener
	log    *slog.Logger
	b      Backing
	window map[uint64]bool // spooled items loaded into the queue
	// cursor is the highest spool sequence loaded in order; backlog says
	// records above it may be on disk but not in memory. rewound is set
	// when an eviction moved the cursor back, so that a refill under way
	// does not move it forward again past what it evicted.
	cursor  uint64
	backlog bool
	rewound bool
	// trimmed are window items the spool dropped for space: held in
	// memory only now, delivered from there, so not lost (rescued counts
	// them out of the spool's drop count).
	trimmed map[uint64]bool
	rescued int64
	broken  statelog.Tracker
	last    error
	// held is set while samples are queued in memory only because the
	// spool was unusable when they came: the first sample after it works
	// again writes them back first.
	held bool
	// gone are records that left the queue but stay on disk (parked, or
	// their delete failed): not read again in this run.
	gone map[uint64]bool
	// gen is the spool file generation the numbers above belong to.
	gen uint64
	// undeleted are delivered records whose delete failed (disk full,
	// I/O error): deleted with the next delete that works.
	undeleted []uint64
	// asideErr is why the last sample set aside could not be kept.
	asideErr string
}

// NewStore puts a spool behind q; open may be nil (memory only).
func NewStore(q *Queue, d *Delivery, open Opener, log *slog.Logger) *Store {
	s := &Store{d: d, q: q, open: open, log: log, window: map[uint64]bool{}, trimmed: map[uint64]bool{}, gone: map[uint64]bool{}, backlog: true}
	s.broken.Every = remindEvery
	q.OnDone, q.OnEvict = s.done, s.evict
	return s
}

// backing is the spool when it can be used now.
func (s *Store) backing(now time.Time) Backing {
	if s.b != nil {
		s.resync()
		return s.b
	}
	if s.open == nil {
		return nil
	}
	b, tried, err := s.open(now)
	if err != nil {
		if tried {
			s.fail(err)
		}
		return nil
	}
	s.b = b
	s.resync()
	return b
}

// resync notices a spool file replaced under the store (moved aside as
// damaged, a fresh one started) and reports whether it was. The sequence
// numbers it holds name records of the old file, and the new file reuses
// them: a delete or a skip by an old number would hit a new sample. So
// they are all forgotten, and the samples in memory become held ones, to
// be written to the fresh file with the next sample.
func (s *Store) resync() bool {
	g := s.b.Generation()
	if g == s.gen {
		return false
	}
	s.gen = g
	s.window, s.trimmed, s.gone = map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	s.undeleted = nil
	s.cursor, s.backlog, s.rewound, s.rescued = 0, true, false, 0
	s.q.Each(func(it *Item) bool {
		it.Seq = 0
		s.held = true
		return true
	})
	return true
}

// Add spools it and queues it if the window has room; it returns how many
// memory-only samples overflow dropped.
func (s *Store) Add(it *Item, now time.Time) int {
	b := s.backing(now)
	if b != nil && s.held {
		s.writeBack(b)
	}
	if b == nil || s.held {
		s.held = true
		return s.d.Add(it) // memory only until the spool works again
	}
	rec, trimmed, err := b.Append(it.Kind, it.CollectedAt, it.Body)
	if errors.Is(err, spool.ErrRecord) {
		return s.d.Add(it) // this one only: the spool is fine
	}
	if err != nil {
		s.fail(err)
		s.held = true
		return s.d.Add(it)
	}
	s.recovered()
	s.noteTrimmed(trimmed)
	it.Seq = rec.Seq
	if items, bytes := s.room(); s.backlog || items <= 0 || bytes < len(it.Body) {
		s.backlog = true // on disk only, for now
		return 0
	}
	s.window[it.Seq] = true
	s.cursor = it.Seq
	return s.d.Add(it)
}

// noteTrimmed records window items the spool dropped for space: they are
// held in memory only now (see trimmed).
func (s *Store) noteTrimmed(seqs []uint64) {
	for _, seq := range seqs {
		if s.window[seq] {
			s.trimmed[seq] = true
			s.rescued++
		}
	}
}

// writeBack spools, oldest first and in one commit, the samples queued in
// memory only while the spool was unusable, now that it works: from here
// a restart loses none of them. They stay where they are in the queue; on
// disk they are window items like any loaded sample. On failure they stay
// held.
func (s *Store) writeBack(b Backing) {
	var items []*Item
	var recs []spool.Record
	s.q.Each(func(it *Item) bool {
		rec := spool.Record{Kind: it.Kind, CollectedAt: it.CollectedAt, Payload: it.Body}
		// One the spool cannot store stays in memory, without holding
		// up the others.
		if it.Seq == 0 && spool.CheckRecord(&rec) == nil {
			items = append(items, it)
			recs = append(recs, rec)
		}
		return true
	})
	if len(recs) > 0 {
		recs, trimmed, err := b.AppendBatch(recs)
		if err != nil {
			s.fail(err)
			return
		}
		s.recovered()
		for i, it := range items {
			it.Seq = recs[i].Seq
			s.window[it.Seq] = true
		}
		s.noteTrimmed(trimmed)
	}
	s.held = false
}

// Refill loads the oldest spooled samples not yet in memory into the
// window's free room, never more than the memory queue can take without
// pushing something out.
func (s *Store) Refill(now time.Time) {
	b := s.backing(now)
	want, bytes := s.room()
	if b == nil || !s.backlog || want <= 0 || bytes <= 0 {
		return
	}
	s.rewound = false
	recs, more, err := b.Read(s.cursor, want, bytes)
	if err != nil {
		s.fail(err)
		return
	}
	s.recovered()
	for _, r := range recs {
		if !s.rewound {
			s.cursor = r.Seq
		}
		if s.window[r.Seq] || s.gone[r.Seq] {
			continue
		}
		s.window[r.Seq] = true
		s.d.Add(&Item{Kind: r.Kind, CollectedAt: r.CollectedAt, Body: r.Payload, Seq: r.Seq})
	}
	if !more && !s.rewound {
		s.backlog = false
	}
}

// room is how many spooled samples, and about how many bytes, a refill
// may load: the window's free room, within what the memory queue has left.
func (s *Store) room() (items, bytes int) {
	items = min(WindowItems-len(s.window), s.q.MaxItems-s.q.Len())
	bytes = min(WindowBytes, s.q.MaxBytes-s.q.Bytes())
	return items, bytes
}

// OnDisk reports whether the spool holds it: it has a record that was not
// dropped for space while it was in memory.
func (s *Store) OnDisk(it *Item) bool { return it.Seq != 0 && s.b != nil && !s.trimmed[it.Seq] }

// maxUndeleted bounds the failed deletes retried (see done).
const maxUndeleted = 1024

// done deletes a delivered (or refused, or set aside) sample from the spool.
func (s *Store) done(it *Item) {
	if it.Seq == 0 || s.b == nil || s.resync() {
		return // a number from a replaced file names nothing now
	}
	delete(s.window, it.Seq)
	if s.trimmed[it.Seq] {
		delete(s.trimmed, it.Seq)
		if it.Parked { // not on disk either: lost after all, so dropped
			s.rescued--
		}
		return // the spool dropped it already
	}
	if it.Parked {
		s.gone[it.Seq] = true // may be above the cursor (written back)
		return
	}
	// Deleted with any earlier deletes that failed; the slice's room is
	// reused, so the usual single delete allocates nothing.
	s.undeleted = append(s.undeleted, it.Seq)
	if err := s.b.Delete(s.undeleted...); err != nil {
		// Retried with the next delete, up to a bound that keeps a long
		// disk-full period from making every delete bigger; past it, or
		// if never deleted, it is delivered again after a restart: at
		// least once.
		s.gone[it.Seq] = true
		s.undeleted = s.undeleted[:min(len(s.undeleted), maxUndeleted)]
		s.fail(err)
		return
	}
	for _, seq := range s.undeleted {
		delete(s.gone, seq)
	}
	s.undeleted = s.undeleted[:0]
}

// evict forgets a spooled sample pushed out of memory by overflow; it is
// read again from disk when there is room.
func (s *Store) evict(it *Item) {
	delete(s.window, it.Seq)
	if s.trimmed[it.Seq] {
		// No longer on disk either: this one is lost after all.
		delete(s.trimmed, it.Seq)
		s.rescued--
		return
	}
	if it.Seq <= s.cursor {
		s.cursor = it.Seq - 1
	}
	s.backlog = true
	s.rewound = true
}

func (s *Store) fail(err error) {
	s.last = err
	s.broken.Fail(time.Now(), func(suppressed uint64) {
		if errors.Is(err, safefile.ErrRefused) {
			// Not a passing failure: someone else could plant or swap the
			// file there, and only the operator can fix that.
			s.log.Error("spool refused: samples are held in memory only (lost on restart) until it is fixed", "err", err,
				"failures_since_last_log", suppressed)
			return
		}
		s.log.Warn("spool unusable: holding samples in memory until it works again", "err", err, "failures_since_last_log", suppressed)
	})
}

func (s *Store) recovered() {
	s.broken.OK(func(n uint64) { s.log.Info("spool usable again", "failures", n) })
}

// Stats is the engine's state as a whole: the backlog, spooled plus
// memory-only, the delivery counters, and what the spool kept or lost.
func (s *Store) Stats() Stats {
	st := s.d.Stats()
	st.Depth, st.Bytes = 0, 0
	s.q.Each(func(it *Item) bool {
		if it.Seq == 0 || s.trimmed[it.Seq] {
			st.Depth++
			st.Bytes += int64(len(it.Body))
			if st.Oldest.IsZero() || it.CollectedAt.Before(st.Oldest) {
				st.Oldest = it.CollectedAt
			}
		}
		return true
	})
	st.Fallback = s.open != nil && (s.b == nil || s.broken.Failing())
	if st.Fallback && s.last != nil {
		st.FallbackReason = s.last.Error()
	}
	if s.b != nil {
		sp := s.b.Stats()
		st.Depth += int64(sp.Records)
		st.Bytes += sp.Bytes
		st.Dropped += max(sp.Dropped-s.rescued, 0)
		st.Corrupt = sp.Corrupt
		st.Quarantined, st.Kept, st.Rewritten = sp.Quarantined, sp.Kept, sp.Rewritten
		if !sp.Oldest.IsZero() && (st.Oldest.IsZero() || sp.Oldest.Before(st.Oldest)) {
			st.Oldest = sp.Oldest
		}
	}
	return st.Clone()
}
