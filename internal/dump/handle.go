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
	post    func(msg any)
	backlog *Backlog
}

// NewHandle returns a Handle that delivers every message through post,
// without a bound: for tests and callers whose post cannot fall behind.
func NewHandle(post func(msg any)) *Handle {
	return NewBoundedHandle(post, nil)
}

// NewBoundedHandle returns a Handle that delivers messages through post
// (usually a closure over the root context and the writer's PID) while b has
// room, and drops and counts them otherwise, so a stalled writer never blocks
// a caller nor grows without bound. A nil b means no bound.
func NewBoundedHandle(post func(msg any), b *Backlog) *Handle {
	if post == nil {
		return nil
	}
	return &Handle{post: post, backlog: b}
}

// Dropped is the number of entries that never reached the dump (see
// Backlog.Dropped); 0 for a disabled or unbounded Handle.
func (h *Handle) Dropped() uint64 {
	if h == nil {
		return 0
	}
	return h.backlog.Dropped()
}

// Backlog is the Handle's bound, or nil when it has none.
func (h *Handle) Backlog() *Backlog {
	if h == nil {
		return nil
	}
	return h.backlog
}

// admit reserves room for an entry of size bytes; the ticket goes into the
// record so the writer can give the room back.
func (h *Handle) admit(size int64) (ticket, bool) {
	if h.backlog == nil {
		return ticket{}, true
	}
	return ticket{backlog: h.backlog, size: size}, h.backlog.admit(size)
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
	t, ok := h.admit(commandSize(&rec))
	if !ok {
		return
	}
	r := rec
	r.ticket = t
	h.post(&r)
}

// Read records a file read (e.g. /proc/loadavg) as the seed did: "$ cat <path>".
func (h *Handle) Read(path string, at time.Time, body []byte, err error, d time.Duration) {
	if !h.Enabled() {
		return
	}
	t, ok := h.admit(int64(len(path)+len(body)) + entryOverhead)
	if !ok {
		return
	}
	r := &CommandRecord{At: at, Command: "cat", Args: []string{path}, Duration: d, ticket: t}
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
	t, ok := h.admit(int64(len(kind)+len(payload)) + entryOverhead)
	if !ok {
		return
	}
	h.post(&SampleRecord{At: at, Kind: kind, Payload: payload, ticket: t})
}
