package reporter

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/sink"
	"github.com/proxmox-agent/proxmox-agent/messages"
)

// wss:// against a server with a private CA: refused with the system roots
// alone, accepted with ca_file, and accepted with insecure_skip_verify.
func TestWSSWithCAFile(t *testing.T) {
	s := sink.New("tok")
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	url := "wss://" + strings.TrimPrefix(srv.URL, "https://") + "/socket/websocket"
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		caFile   string
		insecure bool
		joins    bool
	}{
		{"system roots only", "", false, false},
		{"ca_file", ca, false, true},
		{"insecure_skip_verify", "", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startReporter(t, url, func(o *Options) { o.Server.CAFile, o.Server.Insecure = c.caFile, c.insecure })
			if c.joins {
				f.waitStatus("joined over TLS", func(st *messages.Status) bool { return st.Joined })
				return
			}
			st := f.waitStatus("a TLS failure", func(st *messages.Status) bool { return st.LastError != "" })
			if st.Connected || !strings.Contains(st.LastError, "certificate") {
				t.Errorf("status %+v", st)
			}
		})
	}
}
