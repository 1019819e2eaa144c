package collect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
)

// Reads are recorded in the dump as the seed did: "$ cat <path>".
func TestReadIsRecorded(t *testing.T) {
	var recs []*dump.CommandRecord
	fs := FS{Root: "../parse/procfs/testdata", Dump: dump.NewHandle(func(m any) { recs = append(recs, m.(*dump.CommandRecord)) })}
	if _, err := fs.Read("loadavg"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Read("nope"); !os.IsNotExist(err) {
		t.Fatalf("err = %v", err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	e := string(dump.AppendCommand(nil, recs[0]))
	if !strings.Contains(e, "$ cat "+filepath.Join("../parse/procfs/testdata", "loadavg")) || !strings.Contains(e, "0.12 0.34 0.56") {
		t.Errorf("entry:\n%s", e)
	}
	if recs[1].Outcome != dump.NotFound {
		t.Errorf("missing file outcome %v", recs[1].Outcome)
	}
}
