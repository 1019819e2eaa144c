// Package spool keeps samples on disk until they are delivered, so that a
// restart, a crash or a reboot during a server outage loses nothing.
//
// It is a bbolt database (go.etcd.io/bbolt, etcd's B+tree store): each
// sample a key (a sequence number, so keys sort oldest first) and a value
// framed with a version and a CRC-32C. bbolt was chosen over an append-only
// log because deliveries complete out of order (acks) and a B+tree deletes
// any record at once, where a log can only cut its front; and because its
// copy-on-write commits have no torn tail to repair: a kill -9 or a power
// loss mid-commit leaves the previous commit intact. Every commit is
// fsynced (fdatasync): at one sample every few seconds that is affordable
// (BenchmarkAppend states the cost).
//
// Damage the disk does behind bbolt's back is handled, not trusted, and
// kept as evidence: a record whose CRC fails is moved to the set-aside
// file (its raw bytes in a marked entry) and counted; a file whose page
// tree fails the check at open (verify.go), that bbolt rejects as
// invalid, or whose pages make an operation panic or fault (at open or
// later), is moved aside (spool.db.corrupt-<time>) and a fresh spool
// started, so a broken file never stops delivery or crash-loops the
// agent; Salvage reads what is still readable in it. Each is logged once
// (WARN) with what was kept where. Other failures (a lock held by another
// agent, no space, an I/O error) leave the file where it is: the caller
// holds samples in memory and tries again.
//
// The file is the agent's own or it is not used (files.go), and a file
// removed or replaced under the running agent (a careless clean-up, a
// tmpfiles rule) is noticed at the next commit: what the spool holds is
// written to a new file at the path (rewrite.go), so a restart finds it.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// FileName is the database file inside the spool directory.
const FileName = "spool.db"

// lockTimeout is how long Open waits for another agent's lock on the
// file: one attempt. The agent that holds it (a second one started by
// mistake) keeps it for as long as it runs, so waiting gains nothing, and
// the reporter, which retries every minute, would stall for the wait.
// bbolt makes a single attempt for any timeout under its 50 ms poll.
const lockTimeout = time.Millisecond

var (
	samplesBucket = []byte("samples")
	metaBucket    = []byte("meta")
	bytesKey      = []byte("bytes")
	countKey      = []byte("count")
)

// Stats describe the spool for the self-report and `status`.
type Stats struct {
	Records int
	Bytes   int64
	// Oldest is the oldest record's collected_at (zero when empty).
	Oldest time.Time
	// Dropped counts records deleted to keep the spool under its bound.
	Dropped int64
	// Corrupt counts records that failed their checks: moved to the
	// set-aside file, or skipped when it could not take them.
	Corrupt int64
	// Quarantined counts damaged files moved aside; Kept names the
	// latest of them (path and what was wrong), oldest first.
	Quarantined int64
	Kept        []string
	// Rewritten counts the times the file was removed or replaced while
	// open and what the spool held was written to a new one.
	Rewritten int64
}

// Spool is an open spool. Its methods are safe for concurrent use.
type Spool struct {
	dir, path string
	maxBytes  int64
	log       *slog.Logger
	aside     Aside

	mu      sync.Mutex
	db      *bolt.DB
	count   int
	bytes   int64
	dropped int64
	corrupt int64
	quar    int64
	kept    []string
	rewrote int64
	gen     uint64 // see Generation
	// id is the open file's device and inode, compared with the path's
	// before every commit (rewrite.go).
	id fileID
	// skip are damaged records that could not be kept in the set-aside
	// file: left in the spool for a person, not read again.
	skip map[uint64]bool
	// rewriteFailed is set while the file is gone and writing a new one
	// fails, so that the failure is logged once.
	rewriteFailed bool
}

// Open opens (creating if needed) the spool in dir, bounded to maxBytes of
// records. The directory is made 0700 and the file 0600: payloads name
// guests and disks. A file that cannot be opened as a spool is moved aside
// and a new one started (Stats().Quarantined says so); an error means the
// directory itself is unusable, and the caller runs without a spool.
func Open(dir string, maxBytes int64) (*Spool, error) { return OpenLogged(dir, maxBytes, nil) }

// OpenLogged is Open with a logger for what the spool does on its own: a
// damaged file moved aside, damaged records set aside, a removed file
// written anew (nil: not logged). A directory others can write to, or a
// spool.db that is not the agent's own single-link regular file, is
// refused with an error wrapping safefile.ErrRefused and never opened.
func OpenLogged(dir string, maxBytes int64, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The path first: MkdirAll follows a symlink another user planted.
	if err := safefile.CheckPath("spool", dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	if err := checkDirItself(dir); err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, path: filepath.Join(dir, FileName), maxBytes: maxBytes, log: log,
		aside: Aside{Dir: dir, MaxBytes: MaxAsideBytes}, skip: map[uint64]bool{}}
	if err := checkFile(s.path); err != nil {
		return nil, err
	}
	err := s.open()
	if err == nil {
		return s, nil
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("spool %s: locked by another process (a second agent on the same spool?): %w", s.path, err)
	}
	if environmental(err) {
		// Locked by another agent, no permission, no space, an I/O error:
		// the file may be fine, and moving it aside would strand what it
		// holds. The caller runs from memory and tries again later.
		return nil, fmt.Errorf("spool %s: %w", s.path, err)
	}
	if qerr := s.quarantine(err); qerr != nil {
		return nil, qerr
	}
	if err := s.open(); err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.path, err)
	}
	return s, nil
}

func (s *Spool) open() error {
	// Vetted before verifyFile opens it (a FIFO would block that open),
	// and again on bbolt's own descriptor (openFile).
	if err := checkFile(s.path); err != nil {
		return err
	}
	// The timeout is for the file lock: a second agent on the same spool
	// must not wait forever.
	if err := verifyFile(s.path, lockTimeout); err != nil {
		return err
	}
	var db *bolt.DB
	var id fileID
	err := guard(func() (err error) {
		db, err = bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout, OpenFile: openFile(&id)})
		return err
	})
	if err != nil {
		return err
	}
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(samplesBucket)
			if err != nil {
				return err
			}
			m, err := tx.CreateBucketIfNotExists(metaBucket)
			if err != nil {
				return err
			}
			s.count, s.bytes = int(u64(m.Get(countKey))), int64(u64(m.Get(bytesKey)))
			if s.count == 0 && b.Stats().KeyN > 0 { // no totals yet: count once
				return s.recount(b, m)
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return err
	}
	s.db, s.id = db, id
	return nil
}

// verifyFile checks an existing spool file's structure before bbolt
// trusts it (see verify). It holds the file's lock meanwhile, as bbolt
// does: a walk that raced another agent's commits could take a healthy
// file for a damaged one and move it aside.
func verifyFile(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close() // and so unlocked
	if err := lock(f, timeout); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return verify(f, st.Size())
}

// lock takes the exclusive lock bbolt takes, trying for timeout as it
// does (polling every 50 ms; one attempt under that); a lock still held
// then is bolt.ErrTimeout, which callers already treat as "another agent
// has it".
func lock(f *os.File, timeout time.Duration) error {
	const poll = 50 * time.Millisecond
	deadline := time.Now().Add(timeout - poll)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return bolt.ErrTimeout
		}
		time.Sleep(poll)
	}
}

func (s *Spool) recount(b, m *bolt.Bucket) error {
	s.count, s.bytes = 0, 0
	err := b.ForEach(func(k, v []byte) error {
		s.count++
		s.bytes += int64(len(v))
		return nil
	})
	if err != nil {
		return err
	}
	return s.saveTotals(m)
}

// quarantine moves a spool bbolt could not use aside, so the agent goes on
// with a fresh one and the old file is kept for a person to look at.
func (s *Spool) quarantine(cause error) error {
	aside := fmt.Sprintf("%s.corrupt-%s", s.path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(s.path, aside); err != nil {
		s.log.Error("spool file damaged and it cannot be moved aside: running without a spool", "file", s.path, "damage", cause, "err", err)
		return fmt.Errorf("spool %s unusable (%v) and cannot be moved aside: %w", s.path, cause, err)
	}
	// What is still readable, counted read-only: the operator learns what
	// the file holds that was not delivered, and how to send it.
	rep, serr := salvageCount(aside)
	attrs := []any{"file", s.path, "damage", cause, "kept", aside, "records_readable", rep.Readable, "records_unreadable", rep.Unreadable}
	if serr != nil {
		attrs = append(attrs, "salvage_err", serr)
	}
	s.log.Warn("spool file damaged: moved aside and a new one started; its samples are not delivered until salvaged",
		append(attrs, "salvage", "proxmox-agent replay --spool "+aside)...)
	s.quar++
	s.kept = append(s.kept, fmt.Sprintf("%s (%v)", aside, cause))
	if len(s.kept) > maxKept {
		s.kept = s.kept[len(s.kept)-maxKept:]
	}
	return nil
}

// maxKept bounds Stats.Kept (a disk that damages every file).
const maxKept = 8

// errDamaged is wrapped by guard when bbolt panicked or faulted on the file.
var errDamaged = errors.New("spool file damaged")

// damaged tells an error that says the file itself is broken (and should
// be moved aside) from one about its surroundings.
func damaged(err error) bool {
	return errors.Is(err, errDamaged) || errors.Is(err, bolt.ErrInvalid) ||
		errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch)
}

// environmental tells an open error about the file's surroundings (the
// file may be intact) from one about the file itself.
func environmental(err error) bool {
	if errors.Is(err, bolt.ErrTimeout) || errors.Is(err, fs.ErrPermission) || errors.Is(err, safefile.ErrRefused) {
		return true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.ENOMEM, syscall.EROFS,
			syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.EINTR, syscall.ENOLCK:
			return true
		}
	}
	return false
}

// guard runs fn with memory faults turned into panics and panics into
// errors: bbolt trusts its file's page structure, and a damaged file must
// cost the spool, not the process.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDamaged, p)
		}
	}()
	return fn()
}

// Append stores one sample and returns its record (with its sequence
// number) and the sequence numbers of the oldest records deleted to keep
// the spool under its bound. The record is on disk when Append returns.
func (s *Spool) Append(kind string, at time.Time, payload []byte) (Record, []uint64, error) {
	recs, dropped, err := s.AppendBatch([]Record{{Kind: kind, CollectedAt: at, Payload: payload}})
	if err != nil {
		return Record{}, nil, err
	}
	return recs[0], dropped, nil
}

// AppendBatch stores several samples in one commit (one fsync), numbering
// them in order; otherwise as Append.
func (s *Spool) AppendBatch(recs []Record) ([]Record, []uint64, error) {
	vals := make([][]byte, len(recs))
	for i := range recs {
		v, err := encode(&recs[i])
		if err != nil {
			return nil, nil, err
		}
		vals[i] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, nil, errClosed
	}
	var dropped []uint64
	err := s.update(func(b, m *bolt.Bucket) error {
		for i, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(key(seq), v); err != nil {
				return err
			}
			recs[i].Seq = seq
			s.count++
			s.bytes += int64(len(v))
		}
		dropped = s.trim(b)
		return s.saveTotals(m)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("spool append: %w", err)
	}
	s.dropped += int64(len(dropped))
	return recs, dropped, nil
}

// trim deletes the oldest records while the spool is over its bound,
// always keeping the newest one.
func (s *Spool) trim(b *bolt.Bucket) []uint64 {
	var dropped []uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil && s.count > 1 && s.bytes > s.maxBytes; k, v = c.First() {
		if c.Delete() != nil {
			break
		}
		dropped = append(dropped, binary.BigEndian.Uint64(k))
		s.count--
		s.bytes -= int64(len(v))
	}
	return dropped
}

// Delete removes delivered records; unknown sequence numbers are ignored
// (a record may have been dropped for space while it was in flight).
func (s *Spool) Delete(seqs ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return errClosed
	}
	err := s.update(func(b, m *bolt.Bucket) error {
		for _, seq := range seqs {
			s.deleteOne(b, seq)
		}
		return s.saveTotals(m)
	})
	if err != nil {
		return fmt.Errorf("spool delete: %w", err)
	}
	return nil
}

func (s *Spool) deleteOne(b *bolt.Bucket, seq uint64) {
	k := key(seq)
	v := b.Get(k)
	if v == nil || b.Delete(k) != nil {
		return
	}
	s.count--
	s.bytes -= int64(len(v))
}

// Read returns up to max records (and about maxBytes of payload; always at
// least one if any remains) with a sequence number above after, oldest
// first, and whether more remain beyond them. Records that fail their
// checks are never returned: they are moved to the set-aside file (raw,
// in a marked entry; see CorruptEntry), counted, and logged once per read.
func (s *Spool) Read(after uint64, max int, maxBytes int) (recs []Record, more bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, false, errClosed
	}
	var bad []badRecord
	err = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			recs, bad, more = scan(tx.Bucket(samplesBucket), after, max, maxBytes, s.skip)
			return nil
		})
	})
	if err != nil {
		s.replaceIfDamaged(err)
		return nil, false, fmt.Errorf("spool read: %w", err)
	}
	if len(bad) > 0 {
		s.setAsideBad(bad)
	}
	return recs, more, nil
}

// badRecord is a record that failed its checks, as it was on disk.
type badRecord struct {
	seq uint64
	raw []byte
	err error
}

// setAsideBad keeps damaged records in the set-aside file and deletes
// those kept from the spool; one that cannot be kept (the file full or
// refused) stays in the spool, skipped from now on. Each is counted once,
// and the batch is logged once: where it was, what was wrong, how many,
// where they went.
func (s *Spool) setAsideBad(bad []badRecord) {
	var kept []uint64
	var keepErr error
	where := s.aside.Path()
	for _, r := range bad {
		s.skip[r.seq] = true // not read again in this run, kept or not
		if _, err := s.aside.Keep(CorruptKind, CorruptEntry(r.seq, r.raw, r.err)); err != nil {
			keepErr = err
			continue
		}
		kept = append(kept, r.seq)
	}
	s.corrupt += int64(len(bad))
	if len(kept) > 0 {
		_ = s.update(func(b, m *bolt.Bucket) error {
			for _, seq := range kept {
				s.deleteOne(b, seq)
			}
			return s.saveTotals(m)
		})
	}
	attrs := []any{"file", s.path, "damage", bad[0].err, "records", len(bad), "kept_in_set_aside", len(kept)}
	if keepErr != nil {
		s.log.Warn("spool records failed their checks; some could not be kept in the set-aside file and stay in the spool, skipped",
			append(attrs, "set_aside", where, "left_in_spool", len(bad)-len(kept), "err", keepErr)...)
		return
	}
	s.log.Warn("spool records failed their checks: moved to the set-aside file as evidence, not delivered",
		append(attrs, "kept", where)...)
}

func scan(b *bolt.Bucket, after uint64, max, maxBytes int, skip map[uint64]bool) (out []Record, bad []badRecord, more bool) {
	size := 0
	c := b.Cursor()
	k, v := c.Seek(key(after + 1))
	for ; k != nil; k, v = c.Next() {
		if len(out) >= max || (size >= maxBytes && len(out) > 0) {
			return out, bad, true
		}
		seq := binary.BigEndian.Uint64(k)
		if skip[seq] {
			continue
		}
		r, err := decode(seq, v)
		if err != nil {
			bad = append(bad, badRecord{seq: seq, raw: bytes.Clone(v), err: err})
			continue
		}
		size += len(r.Payload)
		out = append(out, r)
	}
	return out, bad, false
}

// Stats returns the spool's depth, size, oldest sample and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Records: s.count, Bytes: s.bytes, Dropped: s.dropped, Corrupt: s.corrupt, Quarantined: s.quar,
		Kept: slices.Clone(s.kept), Rewritten: s.rewrote}
	if s.db == nil || s.count == 0 {
		return st
	}
	_ = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			k, v := tx.Bucket(samplesBucket).Cursor().First()
			if k != nil && len(v) >= headerLen {
				st.Oldest = time.Unix(0, int64(binary.BigEndian.Uint64(v[5:13]))).UTC()
			}
			return nil
		})
	})
	return st
}

// Close closes the database; the spool is unusable afterwards.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

var errClosed = errors.New("spool closed")

// update runs fn in a write transaction on the two buckets. On failure the
// in-memory totals are reloaded, since fn may have changed them for a
// commit that did not happen.
func (s *Spool) update(fn func(b, m *bolt.Bucket) error) error {
	s.checkPath()
	if s.db == nil { // the file was rewritten and could not be reopened
		return errClosed
	}
	count, size := s.count, s.bytes
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return fn(tx.Bucket(samplesBucket), tx.Bucket(metaBucket))
		})
	})
	if err != nil {
		s.count, s.bytes = count, size
		s.replaceIfDamaged(err)
	}
	return err
}

// replaceIfDamaged moves a file that faulted under bbolt at run time aside
// and starts a fresh spool, as Open does: otherwise every later operation
// would fault again and the agent would run from memory until a restart.
// What the damaged file held stays in it, for a person to look at.
func (s *Spool) replaceIfDamaged(err error) {
	if !damaged(err) {
		return
	}
	// Closed off this goroutine: a panic inside bbolt's rollback leaves its
	// write lock held, and Close would wait for it forever (found in
	// review). The file is renamed aside and a new one opened at the path,
	// a different inode with its own lock, so nothing waits for the close.
	old := s.db
	go func() { _ = guard(old.Close) }()
	s.db = nil
	if s.quarantine(err) != nil {
		return
	}
	s.gen++
	s.count, s.bytes = 0, 0
	_ = s.open() // on failure s.db stays nil: every call says errClosed
}

// Generation counts the times the file was replaced while open (moved
// aside as damaged, a fresh one started): sequence numbers from before
// a change name records of the old file, and may be reused in the new.
func (s *Spool) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *Spool) saveTotals(m *bolt.Bucket) error {
	if s.count < 0 || s.bytes < 0 { // never trust a drifted total
		s.count, s.bytes = 0, 0
	}
	if err := m.Put(countKey, be(uint64(s.count))); err != nil {
		return err
	}
	return m.Put(bytesKey, be(uint64(s.bytes)))
}

func be(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(bytes.Clone(b))
}
