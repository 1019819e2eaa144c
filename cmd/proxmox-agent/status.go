package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/proxmox-agent/proxmox-agent/config"
	"github.com/proxmox-agent/proxmox-agent/internal/status"
)

// statusCmd asks the running agent over its socket and prints the answer.
func statusCmd(f flags, stdout, stderr io.Writer) int {
	path := f.socket
	if path == "" {
		// Only the socket key: a config broken since the agent started (a
		// failed reload) must not hide the agent that says so.
		cfgPath := config.ResolvePath(f.config, os.Getenv)
		var err error
		if path, err = config.StatusSocketOf(cfgPath); err != nil {
			fmt.Fprintf(stderr, "cannot read the socket from the config (%v); asking %s\n", err, path)
		}
	}
	if path == "" {
		fmt.Fprintln(stderr, "the status socket is off in the config ([status] socket = \"\"); pass --socket PATH")
		return 1
	}
	d, err := status.Fetch(path, 5*time.Second)
	if err != nil {
		switch {
		case errors.Is(err, status.ErrNotRunning):
			fmt.Fprintf(stderr, "%v\n(is the service running? systemctl status proxmox-agent)\n", err)
		case errors.Is(err, status.ErrUntrusted):
			// Not the agent's answer: say so, and show none of it.
			fmt.Fprintf(stderr, "%v\n(the agent's socket belongs in a directory only root can write to, e.g. %s)\n", err, config.DefaultStatusSocket)
		default:
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return 1
		}
		return 0
	}
	if err := status.Render(stdout, d, time.Now()); err != nil {
		return 1
	}
	return 0
}

// serveStatus starts the status socket for a running tree; a failure is
// logged and the agent runs on without it.
func serveStatus(path string, doc func() status.Doc, log interface{ Warn(string, ...any) }) func() {
	if path == "" {
		return func() {}
	}
	srv, err := status.Serve(path, doc)
	if err != nil {
		log.Warn("status socket unavailable; `proxmox-agent status` will not answer", "err", err)
		return func() {}
	}
	return func() { _ = srv.Close() }
}
