package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkPath notices that the file the spool holds open is no longer the
// one its path names: removed (an operator "cleaning up", a tmpfiles
// rule) or replaced by another file. bbolt would go on committing to a
// file no path names, and a restart would lose everything since. So what
// the spool holds is written to a new file at the path and the spool goes
// on with that one. Called before every commit (one lstat: nothing next
// to the commit's fsync), with s.mu held.
//
// A file found at the path in place of ours is not opened (someone else's
// for all the agent knows): it is moved aside, named in the log, for a
// person to look at. When the new file cannot be written (no space), the
// spool goes on with the file it has, which loses nothing while the agent
// runs, and tries again at the next commit; the failure is logged once.
func (s *Spool) checkPath() {
	if s.db == nil {
		return
	}
	id, exists, err := pathID(s.path)
	if err != nil || (exists && id == s.id) {
		return // ours, or cannot tell (an I/O error): keep going
	}
	what := "removed"
	if exists {
		what = "replaced by another file"
	}
	displaced, err := s.rewrite(exists)
	if err != nil {
		if !s.rewriteFailed {
			s.log.Error("spool file "+what+" while the agent runs, and a new one cannot be written: samples stay in the open file until it can",
				"file", s.path, "err", err)
		}
		s.rewriteFailed = true
		return
	}
	s.rewriteFailed = false
	s.rewrote++
	attrs := []any{"file", s.path, "records", s.count}
	if displaced != "" {
		attrs = append(attrs, "other_file_kept", displaced)
	}
	s.log.Warn("spool file "+what+" while the agent runs: what it held was written to a new file at its path", attrs...)
}

// rewrite copies the open database (a consistent snapshot, read from the
// open descriptor, so from the removed file too) to a temporary file in
// the spool directory, syncs it, renames it over the path, and reopens
// the spool on it. Sequence numbers are kept, so what the caller holds by
// number stays valid. displaced names where a file found at the path was
// moved.
func (s *Spool) rewrite(exists bool) (displaced string, err error) {
	if err := checkDir(s.dir); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(s.dir, FileName+".rewrite-*") // O_EXCL, 0600
	if err != nil {
		return "", fmt.Errorf("spool rewrite: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(tmp)
			return err
		})
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("spool rewrite: %w", err)
	}
	if exists {
		displaced = fmt.Sprintf("%s.displaced-%s", s.path, time.Now().UTC().Format("20060102T150405.000Z"))
		if err := os.Rename(s.path, displaced); err != nil {
			return "", fmt.Errorf("spool rewrite: move the other file aside: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return displaced, fmt.Errorf("spool rewrite: %w", err)
	}
	_ = syncDir(filepath.Dir(s.path))
	old := s.db
	count, size := s.count, s.bytes
	s.db = nil
	_ = old.Close()
	if err := s.open(); err != nil {
		// The copy is on disk at the path: a restart, or the next open,
		// finds it. Until then the spool says errClosed and the caller
		// holds samples in memory.
		s.count, s.bytes = count, size
		return displaced, fmt.Errorf("spool rewrite: reopen: %w", err)
	}
	return displaced, nil
}
