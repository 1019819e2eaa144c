package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// status shows the set-aside file when it holds samples, nothing when it
// is absent or empty, and a problem, not a size, for anything else in its
// place (a link's length is not samples).
func TestAsideStatus(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		plant   func(path string)
		file    bool
		size    int64
		problem string
	}{
		"absent":    {plant: func(string) {}},
		"empty":     {plant: func(p string) { os.WriteFile(p, nil, 0o600) }},
		"holds":     {plant: func(p string) { os.WriteFile(p, []byte("12345"), 0o600) }, file: true, size: 5},
		"symlink":   {plant: func(p string) { os.Symlink("/nonexistent/target", p) }, file: true, problem: "not a regular file"},
		"directory": {plant: func(p string) { os.Mkdir(p, 0o700) }, file: true, problem: "not a regular file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".log")
			tc.plant(path)
			file, size, problem := asideStatus(path)
			if (file != "") != tc.file || size != tc.size || !strings.Contains(problem, tc.problem) || (tc.problem == "") != (problem == "") {
				t.Fatalf("got %q %d %q", file, size, problem)
			}
		})
	}
}
