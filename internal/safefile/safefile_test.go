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
