package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/safefile"
)

// logBuf collects a spool's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *logBuf) logger() *slog.Logger        { return slog.New(slog.NewTextHandler(l, nil)) }

func openLogged(t *testing.T, dir string) (*Spool, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	s, err := OpenLogged(dir, 1<<20, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// The spool file removed, or replaced by another file, while the agent
// runs (before: bbolt went on with a file no path named, and a restart
// lost every sample since): the next commit writes what the spool holds
// to a new file at the path, says so once, and goes on. A file found in
// place of ours is moved aside unopened.
func TestFileRemovedOrReplacedWhileOpenIsWrittenAnew(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other []byte // what is put at the path; nil removes it
	}{
		{"removed", nil},
		{"replaced", []byte("someone else's file")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			s, logs := openLogged(t, dir)
			appendN(t, s, 5, 10)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if tc.other != nil {
				os.WriteFile(path, tc.other, 0o600)
			}
			appendN(t, s, 3, 10) // the first commit notices
			appendN(t, s, 2, 10)
			if st := s.Stats(); st.Rewritten != 1 || st.Records != 10 {
				t.Fatalf("stats %+v", st)
			}
			if n := strings.Count(logs.String(), "while the agent runs"); n != 1 {
				t.Errorf("%d log lines about it, want 1:\n%s", n, logs)
			}
			if tc.other != nil {
				kept, _ := filepath.Glob(path + ".displaced-*")
				if len(kept) != 1 {
					t.Fatalf("the other file was not kept aside: %v", kept)
				}
				if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, tc.other) {
					t.Errorf("the other file was changed: %q", b)
				}
			}
			s.Close()
			s = open(t, dir, 1<<20) // the restart
			got, _, err := s.Read(0, 100, 1<<20)
			if err != nil || len(got) != 10 {
				t.Fatalf("after a restart: %d records (%v), want 10", len(got), err)
			}
		})
	}
}

// A spool directory others can write to, or a spool.db that is not the
// agent's own single-link regular file, is refused before anything is
// opened or created (before: a file planted by another user was opened
// and its samples pushed as this host's). The planted file is left as it
// was.
func TestRefusesForeignSpool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant a file owned by another user")
	}
	planted := []byte("forged samples")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"dir writable by others", func(t *testing.T, dir string) { os.Chmod(dir, 0o777) }, "writable by group or others"},
		{"file owned by another user", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			os.WriteFile(p, planted, 0o600)
			os.Chown(p, 65534, 65534)
		}, "owned by uid 65534"},
		{"hard link", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			os.WriteFile(p, planted, 0o600)
			os.Link(p, filepath.Join(dir, "elsewhere"))
		}, "2 hard links"},
		{"symlink", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "target"), planted, 0o600)
			os.Symlink("target", filepath.Join(dir, FileName))
		}, "symlink"},
		{"fifo", func(t *testing.T, dir string) { syscall.Mkfifo(filepath.Join(dir, FileName), 0o600) }, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			os.Mkdir(dir, 0o700)
			tc.setup(t, dir)
			s, err := Open(dir, 1<<20)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, safefile.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want refused: %s", err, tc.want)
			}
			if tc.name != "fifo" { // reading the FIFO would block the test
				if b, err := os.ReadFile(filepath.Join(dir, FileName)); err == nil && !bytes.Equal(b, planted) {
					t.Errorf("the file was changed: %q", b)
				}
			}
			if tc.name == "dir writable by others" {
				if _, err := os.Lstat(filepath.Join(dir, FileName)); err == nil {
					t.Error("a spool file was created in a refused directory")
				}
			}
		})
	}
}

// flipRecord damages the stored value of record seq behind the spool's
// back, as a disk would (bbolt's pages stay valid).
func flipRecord(t *testing.T, path string, seq uint64) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(samplesBucket)
		v = append([]byte(nil), b.Get(key(seq))...)
		v[len(v)-1] ^= 0xff
		return b.Put(key(seq), v)
	})
	return v
}

// A record that fails its checksum is evidence, not garbage (before: it
// was deleted): it goes to the set-aside file as a marked entry holding
// its raw bytes, is counted, and the batch is logged once with where it
// was, what was wrong, how many and where they went.
func TestCorruptRecordsKeptInSetAside(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	in := appendN(t, s, 5, 50)
	s.Close()
	raw1 := flipRecord(t, filepath.Join(dir, FileName), in[1].Seq)
	raw3 := flipRecord(t, filepath.Join(dir, FileName), in[3].Seq)
	s, logs := openLogged(t, dir)
	got, _, err := s.Read(0, 10, 1<<20)
	if err != nil || len(got) != 3 {
		t.Fatalf("read %d (%v), want the 3 whole records", len(got), err)
	}
	if st := s.Stats(); st.Corrupt != 2 || st.Records != 3 {
		t.Fatalf("stats %+v", st)
	}
	f, err := os.Open(filepath.Join(dir, AsideName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var raws [][]byte
	dump.ScanSamples(f, func(ls dump.LoggedSample) error {
		var e struct {
			Seq   uint64 `json:"spool_seq"`
			Error string `json:"error"`
			Raw   []byte `json:"raw_base64"`
		}
		if ls.Kind != CorruptKind || json.Unmarshal(ls.Payload, &e) != nil || !strings.Contains(e.Error, "checksum") {
			t.Errorf("entry %s %s", ls.Kind, ls.Payload)
		}
		raws = append(raws, e.Raw)
		return nil
	})
	if len(raws) != 2 || !bytes.Equal(raws[0], raw1) || !bytes.Equal(raws[1], raw3) {
		t.Fatalf("set-aside holds %d entries, want the two damaged records' raw bytes", len(raws))
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "file=" + filepath.Join(dir, FileName), "records=2", "kept=" + filepath.Join(dir, AsideName), "checksum"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, out)
	}
	if again, _, _ := s.Read(0, 10, 1<<20); len(again) != 3 || s.Stats().Corrupt != 2 {
		t.Errorf("a second read counted again: %+v", s.Stats())
	}
}

// A damaged record that cannot be kept (the set-aside file refused) is
// not deleted either: it stays in the spool, skipped, counted once.
func TestCorruptRecordThatCannotBeKeptStays(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	in := appendN(t, s, 3, 50)
	s.Close()
	flipRecord(t, filepath.Join(dir, FileName), in[1].Seq)
	os.Mkdir(filepath.Join(dir, AsideName), 0o700) // not a file: Keep fails
	s, logs := openLogged(t, dir)
	for i := 0; i < 2; i++ {
		if got, _, _ := s.Read(0, 10, 1<<20); len(got) != 2 {
			t.Fatalf("read %d", len(got))
		}
	}
	if st := s.Stats(); st.Corrupt != 1 || st.Records != 3 {
		t.Fatalf("stats %+v, want the damaged record counted once and still in the spool", st)
	}
	if !strings.Contains(logs.String(), "stay in the spool") {
		t.Errorf("log:\n%s", logs)
	}
}

// A damaged file moved aside at open is logged once, WARN, with the file,
// the damage, where it is kept, how many records it still holds, and how
// to salvage them; Stats names it.
func TestQuarantineIsLoggedAndShown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s := open(t, dir, 1<<20)
	appendN(t, s, 15, 100)
	s.Close()
	b, _ := os.ReadFile(path)
	m, _, _ := findMeta(bytes.NewReader(b), int64(len(b)))
	os.WriteFile(path, b[:(m.hwm-1)*uint64(m.pageSize)], 0o600) // truncated: its last page lost
	s, logs := openLogged(t, dir)
	st := s.Stats()
	if st.Quarantined != 1 || len(st.Kept) != 1 || !strings.Contains(st.Kept[0], ".corrupt-") {
		t.Fatalf("stats %+v", st)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "spool file damaged", "file=" + path, "kept=" + path + ".corrupt-", "records_readable=15", "replay --spool"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// Salvage reads every record still readable from a damaged file, without
// changing a byte of it: a truncated file, a zeroed meta page (the tree's
// root lost: every page scanned), flipped bytes in a page, garbage.
func TestSalvage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		damage   func(b []byte) []byte
		min, max int
	}{
		{"intact", func(b []byte) []byte { return b }, 15, 15},
		{"truncated by a page", func(b []byte) []byte { return b[:len(b)-4096] }, 15, 15},
		{"both meta pages zeroed", func(b []byte) []byte { clear(b[:2*4096]); return b }, 15, 15},
		{"32 bytes flipped in one record", func(b []byte) []byte {
			at := bytes.Index(b, bytes.Repeat([]byte{'f'}, 100)) // the sixth record's payload
			for i := 0; i < 32; i++ {
				b[at+i] ^= 0x5a
			}
			return b
		}, 14, 14},
		{"garbage", func([]byte) []byte { return bytes.Repeat([]byte("not a bbolt file "), 1000) }, 0, 0},
		{"empty", func([]byte) []byte { return nil }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 1<<20)
			in := appendN(t, s, 15, 100)
			s.Close()
			path := filepath.Join(dir, FileName)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tc.damage(b), 0o600)
			before, _ := os.ReadFile(path)
			stBefore, _ := os.Stat(path)
			got, rep, err := Salvage(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d readable, %d unreadable, %d by page scan, damage %q", rep.Readable, rep.Unreadable, rep.Scanned, rep.Damage)
			if len(got) < tc.min || len(got) > tc.max || rep.Readable != len(got) {
				t.Fatalf("salvaged %d, want %d..%d", len(got), tc.min, tc.max)
			}
			for i, r := range got {
				j := int(r.Seq) - 1
				if j < 0 || j >= len(in) || !bytes.Equal(r.Payload, in[j].Payload) || !r.CollectedAt.Equal(in[j].CollectedAt) {
					t.Fatalf("record %d: %+v", i, r)
				}
				if i > 0 && r.Seq <= got[i-1].Seq {
					t.Fatal("not oldest first")
				}
			}
			after, _ := os.ReadFile(path)
			stAfter, _ := os.Stat(path)
			if !bytes.Equal(before, after) || !stAfter.ModTime().Equal(stBefore.ModTime()) {
				t.Fatal("Salvage changed the file")
			}
		})
	}
	if _, _, err := Salvage(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file salvaged")
	}
}

// Any bytes give records and a report, never a panic or a hang.
func FuzzSalvage(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.Append("fast", time.Unix(int64(i), 0), bytes.Repeat([]byte("x"), 300))
	}
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	f.Add(b)
	f.Add(b[:4096*3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, rep, _ := salvage(bytes.NewReader(b), int64(len(b)), true)
		if rep.Readable != len(recs) {
			t.Fatalf("report says %d, returned %d", rep.Readable, len(recs))
		}
	})
}

// A spool path through another user's directory is refused before
// anything is created: MkdirAll would follow the symlink they planted.
func TestSpoolPathThroughAForeignDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	base := t.TempDir()
	theirs := filepath.Join(base, "theirs")
	target := filepath.Join(base, "target")
	for _, d := range []string{theirs, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(theirs, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(theirs, "link", "spool"), 1<<20)
	if !errors.Is(err, safefile.ErrRefused) {
		t.Fatalf("opened: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(target, "spool")); !os.IsNotExist(err) {
		t.Errorf("created through the planted link: %v", err)
	}
}
