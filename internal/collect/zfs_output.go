package collect

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/runner"
)

// Output modes of a zfs tool, detected once per process.
const (
	modeUnknown int32 = iota
	modeJSON          // OpenZFS >= 2.3: -j works
	modeText          // OpenZFS 2.2: -j is an invalid option
)

// zfsTool runs zpool or zfs in JSON mode until the tool refuses -j, then in
// text mode for the rest of the process. The switch is logged once. Both
// zfs sources use it, so the fallback is written once.
type zfsTool struct {
	Run     Runner
	Path    string
	Timeout time.Duration
	Log     *slog.Logger

	mode atomic.Int32
}

// first runs the first command of a round: jsonArgs unless the tool is known
// to lack JSON, else (or when it refuses -j now) textArgs. It reports which
// form answered, so the round's later commands use the same form.
func (t *zfsTool) first(ctx context.Context, jsonArgs, textArgs []string) (out []byte, isJSON bool, err error) {
	if t.mode.Load() != modeText {
		res := t.Run.Run(ctx, t.Timeout, t.Path, jsonArgs...)
		if !invalidOption(res) {
			out, err := output(res)
			if err == nil {
				t.mode.Store(modeJSON)
			}
			return out, true, err
		}
		t.mode.Store(modeText)
		if t.Log != nil {
			t.Log.Info("no JSON output (OpenZFS < 2.3): using the text output from now on", "command", t.Path)
		}
	}
	out, err = t.run(ctx, textArgs...)
	return out, false, err
}

// run runs one command and returns its stdout, or its error.
func (t *zfsTool) run(ctx context.Context, args ...string) ([]byte, error) {
	return output(t.Run.Run(ctx, t.Timeout, t.Path, args...))
}

// invalidOption recognises OpenZFS 2.2 refusing -j: exit 2, "invalid option".
func invalidOption(res runner.Result) bool {
	return res.Outcome == dump.NonZero &&
		(strings.Contains(string(res.Stderr), "invalid option") || strings.Contains(string(res.Stdout), "invalid option"))
}
