package spool

import (
	"bytes"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A spool as the agent leaves it after a while: records of mixed sizes
// (some larger than a page, so overflow pages), enough of them for the
// samples tree to have branch pages, some delivered (so a freelist).
func builtSpool(t testing.TB) (dir string, file []byte) {
	t.Helper()
	dir = t.TempDir()
	s := open(t, dir, 64<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var seqs []uint64
	for i := 0; i < 600; i++ {
		size := 10 + rng.IntN(300)
		if i%97 == 0 {
			size = 9000 + rng.IntN(20000)
		}
		r, _, err := s.Append("fast", t0, bytes.Repeat([]byte{'a' + byte(i%26)}, size))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
		if i%5 == 4 {
			if err := s.Delete(seqs[rng.IntN(len(seqs))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// Whatever sequence of appends, deletes, trims and reopens the spool goes
// through, the files bbolt writes pass the check: a false alarm would
// move a healthy spool, and its samples, aside.
func TestVerifyAcceptsWhatBboltWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	rng := rand.New(rand.NewPCG(7, 8))
	for round := 0; round < 8; round++ {
		s := open(t, dir, int64(200<<10+rng.IntN(400<<10))) // trims now and then
		var live []uint64
		for i := 0; i < 300; i++ {
			size := 1 + rng.IntN(2000)
			if rng.IntN(40) == 0 {
				size = 5000 + rng.IntN(60000)
			}
			r, dropped, err := s.Append("medium", t0, bytes.Repeat([]byte{'x'}, size))
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, r.Seq)
			if len(dropped) > 0 {
				live = live[:0]
			}
			if rng.IntN(3) == 0 && len(live) > 0 {
				j := rng.IntN(len(live))
				if err := s.Delete(live[j]); err != nil {
					t.Fatal(err)
				}
				live = append(live[:j], live[j+1:]...)
			}
		}
		want := s.Stats().Records
		s.Close()
		if err := verifyFile(path, lockTimeout); err != nil {
			t.Fatalf("round %d: a file bbolt wrote fails the check: %v", round, err)
		}
		s = open(t, dir, 1<<30)
		if st := s.Stats(); st.Quarantined != 0 || st.Records != want {
			t.Fatalf("round %d: reopened as %+v, want %d records", round, st, want)
		}
		s.Close()
	}
}

// pages finds, in a spool file, what the damage cases below break: the
// current meta page's offset, a branch page and a leaf page of the samples
// tree, and the freelist page.
type pages struct {
	size             uint64
	metaOff          uint64
	branch, leaf, fl uint64
}

func locate(t *testing.T, b []byte) pages {
	t.Helper()
	m, ok, err := findMeta(bytes.NewReader(b), int64(len(b)))
	if err != nil || !ok {
		t.Fatalf("no meta: %v", err)
	}
	p := pages{size: uint64(m.pageSize), fl: m.freelist}
	if m0, _, _ := readMeta(bytes.NewReader(b), 0); m0.txid != m.txid {
		p.metaOff = p.size
	}
	page := func(id uint64) []byte { return b[id*p.size:] }
	// The root bucket's leaf holds "meta" and "samples"; find samples.
	root := page(m.root)
	for i := uint64(0); i < uint64(ne.Uint16(root[10:])); i++ {
		e := pageHeader + i*elemSize
		pos, ksize := uint64(ne.Uint32(root[e+4:])), uint64(ne.Uint32(root[e+8:]))
		if string(root[e+pos:e+pos+ksize]) == "samples" {
			p.branch = ne.Uint64(root[e+pos+ksize:])
		}
	}
	if ne.Uint16(page(p.branch)[8:]) != branchFlag {
		t.Fatalf("samples root page %d is not a branch: too few records for this test", p.branch)
	}
	p.leaf = ne.Uint64(page(p.branch)[pageHeader+8:])
	if ne.Uint16(page(p.leaf)[8:]) != leafFlag || p.fl == noFreelist {
		t.Fatalf("page %d not a leaf, or no freelist (%d)", p.leaf, p.fl)
	}
	return p
}

// Damage that bbolt's own meta checksum does not catch, and that made
// bbolt allocate gigabytes, loop forever, or hand out a page in use: the
// check names it, and Open moves the file aside and starts afresh.
func TestVerifyCatchesDamage(t *testing.T) {
	_, clean := builtSpool(t)
	p := locate(t, clean)
	u32 := func(b []byte, off uint64, v uint32) { ne.PutUint32(b[off:], v) }
	for _, tc := range []struct {
		name, want string
		damage     func(b []byte)
	}{
		{"element length far past its page", "runs past the page", func(b []byte) {
			u32(b, p.leaf*p.size+pageHeader+12, 0x60000000) // vsize of the first element
		}},
		{"branch pointing at itself", "reached twice", func(b []byte) {
			ne.PutUint64(b[p.branch*p.size+pageHeader+8:], p.branch)
		}},
		{"overflow past the file", "runs 4294967295 pages past", func(b []byte) {
			u32(b, p.leaf*p.size+12, 0xFFFFFFFF)
		}},
		{"more elements than the page holds", "do not fit", func(b []byte) {
			ne.PutUint16(b[p.leaf*p.size+10:], 0xFFFF)
		}},
		{"page header naming another page", "says it is page", func(b []byte) {
			ne.PutUint64(b[p.leaf*p.size:], p.leaf+1)
		}},
		{"wrong page type", "has type", func(b []byte) {
			ne.PutUint16(b[p.leaf*p.size+8:], 0x04)
		}},
		{"freelist naming a page in use", "which is in use", func(b []byte) {
			fl := b[p.fl*p.size:]
			start := uint64(pageHeader)
			if ne.Uint16(fl[10:]) == 0xFFFF {
				start += 8
			}
			ne.PutUint64(fl[start:], p.leaf)
		}},
		{"empty branch (bbolt's cursor reads element 0 anyway and looped)", "empty branch", func(b []byte) {
			ne.PutUint16(b[p.branch*p.size+10:], 0)
			ne.PutUint64(b[p.branch*p.size+pageHeader+8:], p.branch)
		}},
		{"keys out of order", "out of order", func(b []byte) {
			br := b[p.branch*p.size:]
			e := uint64(pageHeader + elemSize) // the second key, made the first's
			pos, ksize := uint64(ne.Uint32(br[e:])), uint64(ne.Uint32(br[e+4:]))
			first := br[pageHeader+uint64(ne.Uint32(br[pageHeader:])):]
			copy(br[e+pos:e+pos+ksize], first[:ksize])
		}},
		{"element data overlapping the one before", "overlaps", func(b []byte) {
			br := b[p.branch*p.size:]
			u32(br, pageHeader+elemSize, ne.Uint32(br[pageHeader:])-elemSize) // key 1 starts where key 0 does
		}},
		{"freelist naming a page twice (bbolt handed it out twice)", "named twice", func(b []byte) {
			fl := b[p.fl*p.size:]
			x := ne.Uint64(fl[pageHeader:])
			if ne.Uint16(fl[10:]) == 0xFFFF {
				x = ne.Uint64(fl[pageHeader+8:])
			}
			ne.PutUint16(fl[10:], 2)
			ne.PutUint64(fl[pageHeader:], x)
			ne.PutUint64(fl[pageHeader+8:], x)
		}},
		{"meta claiming more pages than the file (checksum fixed up)", "pages claimed", func(b []byte) {
			m := b[p.metaOff+pageHeader:]
			ne.PutUint64(m[40:], 1<<40)
			h := fnv.New64a()
			h.Write(m[:56])
			ne.PutUint64(m[56:], h.Sum64())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(clean)
			tc.damage(b)
			err := verify(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, errDamaged) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check said %v, want damage (%q)", err, tc.want)
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, FileName), b, 0o600)
			s := open(t, dir, 1<<20)
			if st := s.Stats(); (len(st.Kept) != 1 || !strings.Contains(st.Kept[0], tc.want)) || st.Records != 0 {
				t.Fatalf("stats %+v", st)
			}
			appendN(t, s, 3, 10)
			if got, _, err := s.Read(0, 10, 1<<20); err != nil || len(got) != 3 {
				t.Fatalf("fresh spool: %d records, %v", len(got), err)
			}
		})
	}
}

// The check never fails on what it cannot judge: an empty file or one
// without a valid meta page is for bbolt to initialise or refuse.
func TestVerifyLeavesUnknownFilesToBbolt(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":   nil,
		"short":   []byte("x"),
		"garbage": bytes.Repeat([]byte("not a bbolt file "), 1000),
	} {
		if err := verify(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkVerify is the check Open runs on a 64 MiB spool (16k samples
// of 4 kB, about a day of fast samples in an outage): its cost is one read
// of the file at start.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	s := open(b, dir, 1<<30)
	payload := bytes.Repeat([]byte("x"), 4000)
	for i := 0; i < 16; i++ {
		batch := make([]Record, 1000)
		for j := range batch {
			batch[j] = Record{Kind: "fast", CollectedAt: t0, Payload: payload}
		}
		if _, _, err := s.AppendBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	for b.Loop() {
		if err := verifyFile(path, lockTimeout); err != nil {
			b.Fatal(err)
		}
	}
}

// A 16 KiB file whose inline buckets nest 60 deep, each level's two
// elements sharing the next level's bytes: walked naively that is 2^60
// visits (a review found it). bbolt inlines only buckets without nested
// buckets, so the first nesting is damage and the check ends at once.
func TestVerifyNestedInlineBucketsEndAtOnce(t *testing.T) {
	const ps = 4096
	b := make([]byte, 4*ps)
	for id := uint64(0); id < 2; id++ { // meta pages: root at 3, freelist at 2, 4 pages
		pg := b[id*ps:]
		ne.PutUint64(pg, id)
		ne.PutUint16(pg[8:], 0x04)
		m := pg[pageHeader:]
		ne.PutUint32(m[0:], boltMagic)
		ne.PutUint32(m[4:], boltVersion)
		ne.PutUint32(m[8:], ps)
		ne.PutUint64(m[16:], 3)
		ne.PutUint64(m[32:], 2)
		ne.PutUint64(m[40:], 4)
		ne.PutUint64(m[48:], 1-id)
		h := fnv.New64a()
		h.Write(m[:56])
		ne.PutUint64(m[56:], h.Sum64())
	}
	ne.PutUint64(b[2*ps:], 2)
	ne.PutUint16(b[2*ps+8:], freelistFlag)
	root := b[3*ps:]
	ne.PutUint64(root, 3)
	for level, off := 0, 0; level <= 60; level, off = level+1, off+65 {
		pg := root[off:]
		ne.PutUint16(pg[8:], leafFlag)
		if level == 60 {
			break
		}
		ne.PutUint16(pg[10:], 2)
		for i := 0; i < 2; i++ { // both: key "k" at 48, value from 49 to the end
			e := 16 + 16*i
			ne.PutUint32(pg[e:], bucketLeaf)
			ne.PutUint32(pg[e+4:], uint32(48-e))
			ne.PutUint32(pg[e+8:], 1)
			ne.PutUint32(pg[e+12:], uint32(len(pg)-49))
		}
		pg[48] = 'k'
	}
	done := make(chan error, 1)
	go func() { done <- verify(bytes.NewReader(b), int64(len(b))) }()
	select {
	case err := <-done:
		if !errors.Is(err, errDamaged) {
			t.Fatalf("check said %v", err)
		}
	case <-time.After(10 * time.Second): // a deadline for a failure, not a timing
		t.Fatal("the check is still walking a 16 KiB file after 10 s")
	}
}
