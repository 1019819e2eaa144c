package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/proxmox-agent/proxmox-agent/internal/status"
)

// `status` against a socket another user bound (issue 17 item 3): exit 1,
// says who answers and that it is not trusted, prints none of the forged
// document.
func TestStatusRefusesAForgedSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind as another user")
	}
	dir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o1777)
	path := filepath.Join(dir, "s.sock")
	if err := syscall.Setresuid(-1, 65534, -1); err != nil {
		t.Skip("cannot switch euid:", err)
	}
	ln, lerr := net.Listen("unix", path)
	if err := syscall.Setresuid(-1, 0, -1); err != nil {
		t.Fatal("cannot switch back to root:", err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			json.NewEncoder(c).Encode(status.Doc{PID: 4242, Version: "forged"})
			c.Close()
		}
	}()
	for _, args := range [][]string{{"status", "--socket", path}, {"status", "--json", "--socket", path}} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "served by uid 65534") || !strings.Contains(errb.String(), "not trusting") {
			t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), "forged") || strings.Contains(out.String(), "4242") {
			t.Fatalf("%v: the forged document was shown:\n%s", args, out.String())
		}
	}
}
