package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/proxmox-agent/proxmox-agent"

type pkg struct {
	ImportPath string
	Imports    []string
}

// packages lists every package of the module with its (non-test) imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		var own []string
		for _, imp := range p.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				own = append(own, strings.TrimPrefix(strings.TrimPrefix(imp, module), "/"))
			} else if strings.HasPrefix(imp, "github.com/asynkron/protoactor-go") {
				own = append(own, "protoactor")
			}
		}
		p.Imports = own
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// violation says why p may not import imp, or "" when it may.
func violation(p, imp string) string {
	switch {
	case p == "messages" && imp != "internal/delivery/stats":
		return "messages is the actor protocol and imports no project package but the delivery counters' leaf type"
	case imp == "supervisor" && !under(p, "cmd"):
		return "only cmd/ imports supervisor"
	case under(p, "internal/parse") && (imp == "protoactor" || under(imp, "actors") || imp == "messages" ||
		imp == "internal/dump" || imp == "internal/runner" || under(imp, "internal/collect")):
		return "parsers are pure: bytes in, structs out"
	case under(p, "internal") && !under(p, "internal/layout") && (under(imp, "actors") || under(imp, "cmd")):
		return "internal libraries sit below the actors"
	case under(p, "actors") && under(imp, "cmd"):
		return "imports run cmd → supervisor → actors"
	case p == "config" && imp != "":
		return "config imports no project package"
	}
	return ""
}

func TestImportsRunOneWay(t *testing.T) {
	pkgs := packages(t)
	for _, p := range pkgs {
		// The one package messages may import stays a leaf: it must not
		// bring the engine (or anything else) into the protocol.
		if p.ImportPath == "internal/delivery/stats" && len(p.Imports) > 0 {
			t.Errorf("internal/delivery/stats imports %v: it must stay a leaf", p.Imports)
		}
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if why := violation(p.ImportPath, imp); why != "" {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			}
		}
	}
}

func TestTopLevelIsTheDesignCard(t *testing.T) {
	allowed := []string{"actors", "messages", "supervisor", "cmd", "config", "internal"}
	for _, p := range packages(t) {
		top, _, _ := strings.Cut(p.ImportPath, "/")
		ok := false
		for _, a := range allowed {
			ok = ok || top == a
		}
		if !ok {
			t.Errorf("package %q at the top level: move it under internal/", p.ImportPath)
		}
	}
}

// The rule checker itself must reject what the rules forbid.
func TestViolationCatchesBreaches(t *testing.T) {
	bad := [][2]string{
		{"messages", "internal/dump"},
		{"messages", "internal/delivery"},
		{"internal/collect", "supervisor"},
		{"actors/collector", "supervisor"},
		{"internal/parse/procfs", "internal/dump"},
		{"internal/parse/zfs", "protoactor"},
		{"internal/parse/pve", "messages"},
		{"internal/collect", "actors/collector"},
		{"config", "internal/dump"},
	}
	for _, b := range bad {
		if violation(b[0], b[1]) == "" {
			t.Errorf("%s → %s not flagged", b[0], b[1])
		}
	}
	good := [][2]string{
		{"cmd/proxmox-agent", "supervisor"},
		{"supervisor", "actors/reporter"},
		{"actors/collector", "internal/collect"},
		{"internal/collect", "internal/parse/zfs"},
		{"internal/parse/zfs", "internal/parse/lenient"},
	}
	for _, g := range good {
		if why := violation(g[0], g[1]); why != "" {
			t.Errorf("%s → %s flagged: %s", g[0], g[1], why)
		}
	}
}
