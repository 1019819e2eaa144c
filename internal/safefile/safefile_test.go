package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// What someone else could have planted is refused, and nothing is written
// through it; a file of our own with loose permissions is narrowed.
func TestOpenAppendRefusesPlantedFiles(t *testing.T) {
	plant := map[string]func(t *testing.T, path string){
		"symlink": func(t *testing.T, path string) {
			os.Symlink(filepath.Join(t.TempDir(), "target"), path)
		},
		"fifo": func(t *testing.T, path string) { syscall.Mkfifo(path, 0o600) },
		"hard link": func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other")
			os.WriteFile(other, nil, 0o600)
			if err := os.Link(other, path); err != nil {
				t.Skip("no hard links across these directories:", err)
			}
		},
		"directory": func(t *testing.T, path string) { os.Mkdir(path, 0o700) },
		"foreign owner": func(t *testing.T, path string) {
			os.WriteFile(path, nil, 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Skip("cannot chown (not root):", err)
			}
		},
	}
	for name, fn := range plant {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.log")
			fn(t, path)
			f, err := OpenAppend("test", dir, "f.log", 0o600)
			if err == nil {
				f.Close()
				t.Fatal("opened")
			}
			if name != "directory" && !errors.Is(err, ErrRefused) {
				t.Fatalf("not refused: %v", err)
			}
		})
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	if _, err := OpenAppend("test", dir, "f.log", 0o600); !errors.Is(err, ErrRefused) {
		t.Fatalf("world-writable directory: %v", err)
	}
	dir = t.TempDir()
	path := filepath.Join(dir, "f.log")
	os.WriteFile(path, []byte("old\n"), 0o644)
	os.Chmod(path, 0o644)
	f, err := OpenAppend("test", dir, "f.log", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new\n"))
	f.Close()
	st, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if st.Mode().Perm() != 0o600 || string(b) != "old\nnew\n" {
		t.Fatalf("mode %o, content %q", st.Mode().Perm(), b)
	}
}

// A path through a directory or a symlink another user owns is refused,
// however the final directory looks; missing trailing components pass (the
// agent creates them), and a sticky directory of root's on the way (/tmp)
// is fine.
func TestCheckPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	const nobody = 65534
	base := t.TempDir()
	mk := func(p string, mode os.FileMode, uid int) string {
		t.Helper()
		p = filepath.Join(base, p)
		if err := os.MkdirAll(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := mk("own", 0o750, 0)
	theirs := mk("theirs", 0o755, nobody)
	sticky := mk("sticky", 0o777|os.ModeSticky, 0)
	target := mk("etc", 0o755, 0)
	link := filepath.Join(theirs, "dump")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	theirLink := filepath.Join(sticky, "dump")
	if err := os.Symlink(target, theirLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(theirLink, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(own, "dump"), true},               // created later
		{filepath.Join(sticky, "mine", "dump"), true},    // /tmp-like parent
		{filepath.Join(theirs, "dump"), false},           // their directory, their symlink to /etc
		{filepath.Join(theirs, "sub", "dump"), false},    // under their directory
		{theirLink, false},                               // their symlink in a sticky directory
		{mk("open", 0o777, 0), false},                    // writable by all, not sticky
		{filepath.Join(mk("grp", 0o770, 0), "x"), false}, // writable by the group
	} {
		err := CheckPath("dump", c.path)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.path, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", c.path, err)
		}
	}
	// The open-time check refuses another user's directory too, mode aside.
	if err := CheckDirStat("spool", theirs, 0o40755, nobody); !errors.Is(err, ErrRefused) {
		t.Errorf("another user's 0755 directory: %v", err)
	}
}
