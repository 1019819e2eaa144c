package delivery

import (
	"go/build"
	"strings"
	"testing"
)

// The engine is a library: neither it nor any package of this module it
// pulls in may import the actor framework or an actor package (before, it
// lived in actors/reporter). Walked with go/build, the module's packages
// only; a forbidden import anywhere below fails with the chain.
func TestNoActorImports(t *testing.T) {
	const module = "github.com/proxmox-agent/proxmox-agent/"
	seen := map[string]bool{}
	var walk func(path, chain string)
	walk = func(path, chain string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			if strings.Contains(imp, "protoactor") || strings.HasPrefix(imp, module+"actors/") || strings.HasPrefix(imp, module+"supervisor") {
				t.Errorf("%s -> %s imports %s", chain, path, imp)
			}
			if strings.HasPrefix(imp, module) {
				walk(imp, chain+" -> "+path)
			}
		}
	}
	walk(module+"internal/delivery", "")
	if len(seen) < 2 {
		t.Fatalf("walked %d packages: the walk itself is broken", len(seen))
	}
}
