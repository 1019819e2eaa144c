package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Record is one spooled sample: its encoded payload exactly as it will be
// pushed, with the kind (the event metric:<kind>) and when it was collected.
type Record struct {
	Seq         uint64
	Kind        string
	CollectedAt time.Time
	Payload     []byte
}

// Size is what the record counts against the spool's byte bound.
func (r *Record) Size() int { return headerLen + len(r.Kind) + len(r.Payload) }

// The value layout: version, CRC-32C of everything after the CRC, the
// collection time in Unix nanoseconds, the kind's length and bytes, then
// the payload. The CRC catches a record damaged on disk (bbolt itself
// guards its pages' structure, not their contents).
const (
	version   = 1
	headerLen = 1 + 4 + 8 + 1
	maxKind   = 255
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by decode for a record that fails its checks.
var ErrCorrupt = errors.New("corrupt spool record")

// ErrRecord is wrapped by Append and AppendBatch for a record the spool
// cannot store whatever the disk's state (CheckRecord says which): a
// caller keeps that one elsewhere rather than take the spool for broken.
var ErrRecord = errors.New("record the spool cannot store")

// CheckRecord returns an error wrapping ErrRecord for a record the spool
// cannot store.
func CheckRecord(r *Record) error {
	if len(r.Kind) > maxKind {
		return fmt.Errorf("spool: %w: kind of %d bytes (max %d)", ErrRecord, len(r.Kind), maxKind)
	}
	return nil
}

func encode(r *Record) ([]byte, error) {
	if err := CheckRecord(r); err != nil {
		return nil, err
	}
	b := make([]byte, headerLen, r.Size())
	b[0] = version
	binary.BigEndian.PutUint64(b[5:13], uint64(r.CollectedAt.UnixNano()))
	b[13] = byte(len(r.Kind))
	b = append(b, r.Kind...)
	b = append(b, r.Payload...)
	binary.BigEndian.PutUint32(b[1:5], crc32.Checksum(b[5:], castagnoli))
	return b, nil
}

// decode parses a stored value. It is the spool's reader of untrusted
// bytes (fuzzed): any input gives a record or an error wrapping
// ErrCorrupt, never a panic. The payload is copied: bbolt's values live
// in its memory map only for the transaction.
func decode(seq uint64, b []byte) (Record, error) {
	if len(b) < headerLen {
		return Record{}, fmt.Errorf("%w %d: %d bytes, shorter than its header", ErrCorrupt, seq, len(b))
	}
	if b[0] != version {
		return Record{}, fmt.Errorf("%w %d: version %d", ErrCorrupt, seq, b[0])
	}
	if got, want := crc32.Checksum(b[5:], castagnoli), binary.BigEndian.Uint32(b[1:5]); got != want {
		return Record{}, fmt.Errorf("%w %d: checksum %08x, want %08x", ErrCorrupt, seq, got, want)
	}
	n := int(b[13])
	if len(b) < headerLen+n {
		return Record{}, fmt.Errorf("%w %d: kind runs past the record", ErrCorrupt, seq)
	}
	payload := append([]byte(nil), b[headerLen+n:]...)
	return Record{
		Seq:         seq,
		Kind:        string(b[headerLen : headerLen+n]),
		CollectedAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[5:13]))).UTC(),
		Payload:     payload,
	}, nil
}

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
