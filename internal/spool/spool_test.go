package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 123_000_000, time.UTC)

func open(t testing.TB, dir string, max int64) *Spool {
	t.Helper()
	s, err := Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t testing.TB, s *Spool, n int, size int) []Record {
	t.Helper()
	var out []Record
	for i := 0; i < n; i++ {
		r, _, err := s.Append("fast", t0.Add(time.Duration(i)*time.Second), bytes.Repeat([]byte{'a' + byte(i%26)}, size))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func seqs(rs []Record) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// What was appended comes back oldest first, with its kind, time and
// payload, across a close and reopen (a restart); delivered records are
// gone, in any order.
func TestAppendReadDeleteSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	in := appendN(t, s, 5, 10)
	if err := s.Delete(in[1].Seq, in[3].Seq); err != nil { // acks out of order
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, 1<<20)
	got, _, err := s.Read(0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(got)) != fmt.Sprint([]uint64{in[0].Seq, in[2].Seq, in[4].Seq}) {
		t.Fatalf("got %v", seqs(got))
	}
	if got[1].Kind != "fast" || !got[1].CollectedAt.Equal(t0.Add(2*time.Second)) || string(got[1].Payload) != "cccccccccc" {
		t.Fatalf("record %+v", got[1])
	}
	st := s.Stats()
	if st.Records != 3 || st.Bytes != int64(3*in[0].Size()) || !st.Oldest.Equal(t0) {
		t.Fatalf("stats %+v", st)
	}
	next := appendN(t, s, 1, 1)[0]
	if next.Seq <= in[4].Seq {
		t.Fatalf("sequence went back after reopen: %d after %d", next.Seq, in[4].Seq)
	}
	if err := s.Delete(12345); err != nil {
		t.Fatalf("unknown seq: %v", err)
	}
}

// Read pages through the spool: only a window is ever in memory.
func TestReadWindow(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20)
	in := appendN(t, s, 10, 100)
	page, more, _ := s.Read(0, 4, 1<<20)
	if len(page) != 4 || page[0].Seq != in[0].Seq || !more {
		t.Fatalf("page 1: %v more=%v", seqs(page), more)
	}
	page, more, _ = s.Read(page[3].Seq, 4, 250) // byte bound: 3 payloads reach it
	if len(page) != 3 || page[0].Seq != in[4].Seq || !more {
		t.Fatalf("page 2: %v more=%v", seqs(page), more)
	}
	page, more, _ = s.Read(in[6].Seq, 4, 1<<20) // the last three: nothing beyond
	if len(page) != 3 || more {
		t.Fatalf("last page: %v more=%v", seqs(page), more)
	}
	page, more, _ = s.Read(in[9].Seq, 4, 1<<20)
	if len(page) != 0 || more {
		t.Fatalf("past the end: %v", seqs(page))
	}
	if page, more, _ = s.Read(0, 4, 1); len(page) != 1 || !more {
		t.Fatalf("a record larger than the byte bound must still come back alone: %d", len(page))
	}
}

// Beyond max_bytes the oldest records are dropped and counted; the newest
// always stays.
func TestBoundDropsOldest(t *testing.T) {
	s := open(t, t.TempDir(), 1000)
	var dropped []uint64
	var in []Record
	for i := 0; i < 10; i++ {
		r, d, err := s.Append("fast", t0, bytes.Repeat([]byte("x"), 182)) // 14+4+182 = 200 bytes a record
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, r)
		dropped = append(dropped, d...)
	}
	st := s.Stats()
	if st.Records != 5 || st.Bytes != 1000 || st.Dropped != 5 || len(dropped) != 5 || dropped[0] != in[0].Seq {
		t.Fatalf("stats %+v dropped %v", st, dropped)
	}
	got, _, _ := s.Read(0, 100, 1<<20)
	if got[0].Seq != in[5].Seq {
		t.Fatalf("oldest kept %d, want %d", got[0].Seq, in[5].Seq)
	}
	big, d, _ := s.Append("slow", t0, bytes.Repeat([]byte("y"), 5000))
	if s.Stats().Records != 1 || len(d) != 5 {
		t.Fatalf("an oversized record must replace the rest and stay: %+v", s.Stats())
	}
	if got, _, _ := s.Read(0, 10, 1<<20); len(got) != 1 || got[0].Seq != big.Seq {
		t.Fatal("oversized record lost")
	}
}

// A record damaged on disk is skipped, deleted and counted; its neighbours
// are delivered.
func TestCorruptRecordSkipped(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	in := appendN(t, s, 3, 50)
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(samplesBucket)
		v := append([]byte(nil), b.Get(key(in[1].Seq))...)
		v[len(v)-1] ^= 0xff
		return b.Put(key(in[1].Seq), v)
	})
	db.Close()
	s = open(t, dir, 1<<20)
	got, _, err := s.Read(0, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(got)) != fmt.Sprint([]uint64{in[0].Seq, in[2].Seq}) {
		t.Fatalf("got %v", seqs(got))
	}
	if st := s.Stats(); st.Corrupt != 1 || st.Records != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A file that is not a spool at all (garbage, truncated by a crash of the
// disk, zero length) is moved aside and a fresh spool works.
func TestDamagedFileQuarantined(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   bytes.Repeat([]byte("not a bbolt file "), 1000),
		"empty":     {},
		"truncated": nil, // filled below from a real spool
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if content == nil {
				s := open(t, dir, 1<<20)
				appendN(t, s, 50, 100)
				s.Close()
				b, _ := os.ReadFile(path)
				content = b[:4096+100]
			}
			os.WriteFile(path, content, 0o600)
			s, err := Open(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st := s.Stats()
			if name != "empty" && (st.Quarantined != 1 || len(st.Kept) != 1 || !strings.Contains(st.Kept[0], ".corrupt-")) {
				t.Fatalf("not quarantined: %+v", st)
			}
			appendN(t, s, 2, 10)
			if got, _, _ := s.Read(0, 10, 1<<20); len(got) != 2 {
				t.Fatalf("fresh spool: %d records", len(got))
			}
		})
	}
}

func TestRefusesNonRegularFileAndSecondOpener(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/etc/passwd", filepath.Join(dir, FileName))
	if _, err := Open(dir, 1<<20); !errors.Is(err, safefile.ErrRefused) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlink: %v", err)
	}
	dir = t.TempDir()
	open(t, dir, 1<<20)
	if _, err := Open(dir, 1<<20); err == nil || !strings.Contains(err.Error(), "locked by another process") || !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("second opener: %v", err)
	}
	st, _ := os.Stat(filepath.Join(dir, FileName))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %o", st.Mode().Perm())
	}
}

func TestDecodeRejects(t *testing.T) {
	r := Record{Kind: "fast", CollectedAt: t0, Payload: []byte(`{"a":1}`)}
	good, _ := encode(&r)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     good[:headerLen-1],
		"version":   append([]byte{9}, good[1:]...),
		"truncated": good[:len(good)-1],
		"kind past": func() []byte { b := bytes.Clone(good[:headerLen]); b[13] = 200; return b }(),
	} {
		if _, err := decode(1, b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	got, err := decode(7, good)
	if err != nil || got.Seq != 7 || got.Kind != "fast" || !got.CollectedAt.Equal(t0) || string(got.Payload) != `{"a":1}` {
		t.Fatalf("%+v %v", got, err)
	}
}

func FuzzDecode(f *testing.F) {
	r := Record{Kind: "medium", CollectedAt: t0, Payload: []byte(`{"data":{}}`)}
	good, _ := encode(&r)
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(1, b)
		if err != nil {
			return
		}
		again, err := encode(&r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded record does not encode back to its bytes")
		}
	})
}

// FuzzOpen: whatever bytes are in spool.db, Open either refuses or gives a
// spool that reads, appends and deletes without a panic, a hang or a
// runaway allocation (a worker past the fuzz engine's memory is a crash).
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	s, _ := Open(dir, 1<<20)
	for i := 0; i < 3; i++ {
		s.Append("fast", t0, []byte("payload"))
	}
	s.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, FileName))
	f.Add(seed, 5000, byte(0xff))
	f.Add(seed, 16, byte(0x01))
	// A bigger one with branch, overflow and freelist pages to damage.
	_, big := builtSpool(f)
	f.Add(big, 4096*3+12, byte(0x40))
	f.Fuzz(func(t *testing.T, file []byte, at int, x byte) {
		if len(file) > 0 {
			file = bytes.Clone(file)
			file[(at%len(file)+len(file))%len(file)] ^= x
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), file, 0o600)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s, err := Open(dir, 1<<20)
			if err != nil {
				return
			}
			defer s.Close()
			recs, _, _ := s.Read(0, 10, 1<<20)
			for _, r := range recs {
				s.Delete(r.Seq)
			}
			s.Append("fast", t0, []byte("x"))
			s.Stats()
		}()
		select {
		case <-done:
		case <-time.After(8 * time.Second): // the fuzz engine's own limit is 10 s
			t.Fatal("spool operations on this file hang")
		}
	})
}

// BenchmarkAppend is one sample spooled with an fsync per commit (the
// policy), then deleted as delivered.
func BenchmarkAppend(b *testing.B) {
	s := open(b, b.TempDir(), 256<<20)
	payload := bytes.Repeat([]byte("x"), 4000)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		r, _, err := s.Append("fast", t0, payload)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(r.Seq); err != nil {
			b.Fatal(err)
		}
	}
}

// rollBackOneCommit damages the newer of bbolt's two meta pages, as a power
// loss in the middle of writing it would: bbolt then opens at the commit
// before. It returns the page size used.
func rollBackOneCommit(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.LittleEndian.Uint32(b[16+8 : 16+12]))
	txid := func(page int) uint64 { return binary.LittleEndian.Uint64(b[page*pageSize+64:]) }
	newer := 0
	if txid(1) > txid(0) {
		newer = 1
	}
	b[newer*pageSize+64] ^= 0xff // the txid: the meta's checksum no longer matches
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A commit torn by a power loss (its meta page half written) costs that
// commit only: the spool opens at the one before, nothing is quarantined.
func TestTornCommitRollsBackOne(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	in := appendN(t, s, 5, 10)
	s.Close()
	rollBackOneCommit(t, filepath.Join(dir, FileName))
	s = open(t, dir, 1<<20)
	got, _, err := s.Read(0, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Quarantined != 0 || len(got) != 4 || got[3].Seq != in[3].Seq || st.Records != 4 {
		t.Fatalf("got %v, stats %+v", seqs(got), st)
	}
	if r, _, err := s.Append("fast", t0, []byte("after")); err != nil || r.Seq <= in[3].Seq {
		t.Fatalf("append after the rollback: %+v %v", r, err)
	}
}
