package collect

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated source list in docs/sources.md")

const docsSources = "../../docs/sources.md"

// SourceTable renders the Registry as the docs' Markdown table.
func sourceTable() string {
	var b strings.Builder
	b.WriteString("| source | cadence | default | what |\n|---|---|---|---|\n")
	for _, s := range Registry {
		def := "on"
		if !s.Default {
			def = "off"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, s.Cadence, def, s.Doc)
	}
	return b.String()
}

const (
	beginMark = "<!-- generated from internal/collect.Registry: begin -->\n"
	endMark   = "<!-- generated: end -->\n"
)

// The docs' source list is the Registry's: a row added or changed in the
// table shows in docs/sources.md, or this test says how to regenerate it.
func TestDocsSourceListIsTheRegistry(t *testing.T) {
	b, err := os.ReadFile(docsSources)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated block's markers", docsSources)
	}
	want := doc[:i+len(beginMark)] + sourceTable() + doc[j:]
	if doc == want {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(docsSources, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is not the Registry's list: go test ./internal/collect -run TestDocsSourceList -update-docs", docsSources)
}
