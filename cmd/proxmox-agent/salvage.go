package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/spool"
)

// errSpoolInUse is returned for a spool file a running agent holds: it
// delivers those samples itself, and a salvage alongside would send each
// twice and read pages while they are being written.
var errSpoolInUse = errors.New("in use by a running agent (it holds the file's lock)")

// spoolScanner reads the records still readable in a spool file (one the
// agent moved aside as damaged, spool.db.corrupt-<time>, or a copy) with
// spool.Salvage: read-only, nothing written. Salvage runs once; both
// passes of replay walk its records. What Salvage found damaged, and the
// records it found only by scanning pages (which may have been delivered
// before the damage), are told to note on the first pass.
func spoolScanner(path string) (scanner, error) {
	if err := notLocked(path); err != nil {
		return nil, err
	}
	recs, rep, err := spool.Salvage(path)
	if err != nil {
		return nil, err
	}
	where := escape(path)
	return func(sel *selection, note io.Writer, fn func(string, dump.LoggedSample) error) error {
		if note != nil {
			noteSalvage(note, where, rep)
		}
		for _, r := range recs {
			s := dump.LoggedSample{Kind: r.Kind, CollectedAt: r.CollectedAt, Payload: r.Payload}
			// The CRC says the bytes are what was written, not that a
			// file handed to replay was written by an agent.
			if !json.Valid(s.Payload) {
				if note != nil {
					fmt.Fprintf(note, "note: %s: record %d: payload is not JSON: skipped\n", where, r.Seq)
				}
				continue
			}
			if !sel.take(s) {
				continue
			}
			if err := fn(fmt.Sprintf("%s#%d", where, r.Seq), s); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func noteSalvage(note io.Writer, where string, rep spool.SalvageReport) {
	fmt.Fprintf(note, "note: %s: %d records readable, %d unreadable (left out)\n", where, rep.Readable, rep.Unreadable)
	if rep.Scanned > 0 {
		fmt.Fprintf(note, "note: %s: %d of them found by scanning pages (the file's index is damaged): they may include samples delivered before the damage, which the server then receives twice\n", where, rep.Scanned)
	}
	for _, d := range rep.Damage {
		fmt.Fprintf(note, "note: %s: damage: %s\n", where, escape(d))
	}
}

// notLocked refuses a spool file a running agent has open: bbolt holds an
// exclusive flock on it for as long as it is open.
func notLocked(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", escape(path), err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w; salvage a file moved aside (spool.db.corrupt-<time>) or a copy", escape(path), errSpoolInUse)
		}
		return fmt.Errorf("%s: lock: %w", escape(path), err)
	}
	return unix.Flock(fd, unix.LOCK_UN)
}
