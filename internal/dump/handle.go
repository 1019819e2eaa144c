package dump

import (
	"errors"
	"io/fs"
	"time"
)

// Handle is what call sites (the command runner, /proc readers, the reporter)
// hold to record dump entries. It posts fire-and-forget messages to the writer.
// A nil Handle, or one built with a nil post function, is disabled: every
// method returns at once without building a message or allocating.
type Handle struct {
	post func(msg any)
}

// NewHandle returns a Handle that delivers messages through post (usually a
// closure over the actor system's root context and the writer's PID).
func NewHandle(post func(msg any)) *Handle {
	if post == nil {
		return nil
	}
	return &Handle{post: post}
}

// Enabled reports whether entries go anywhere. Callers that must do work to
// build an entry (format JSON, copy output) check it first.
func (h *Handle) Enabled() bool { return h != nil && h.post != nil }

// Command records one external command. rec is taken by value so that a
// disabled handle costs nothing: the heap copy is made only when enabled.
func (h *Handle) Command(rec CommandRecord) {
	if !h.Enabled() {
		return
	}
	r := rec
	h.post(&r)
}

// Read records a file read (e.g. /proc/loadavg) as the seed did: "$ cat <path>".
func (h *Handle) Read(path string, at time.Time, body []byte, err error, d time.Duration) {
	if !h.Enabled() {
		return
	}
	r := &CommandRecord{At: at, Command: "cat", Args: []string{path}, Duration: d}
	if err != nil {
		r.Outcome = Failed
		if errors.Is(err, fs.ErrNotExist) {
			r.Outcome = NotFound
		}
		r.Err = err.Error()
	} else {
		r.Stdout = body
	}
	h.post(r)
}

// Sample records the exact payload pushed for a sample of kind.
func (h *Handle) Sample(kind string, at time.Time, payload []byte) {
	if !h.Enabled() {
		return
	}
	h.post(&SampleRecord{At: at, Kind: kind, Payload: payload})
}
