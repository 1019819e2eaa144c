package dump

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A writer that never takes anything: the handle posts up to the bound,
// then drops and counts without calling post, logging once; once the writer
// takes its backlog, entries flow again and the recovery is logged once.
func TestBacklogBoundsCountsAndRecovers(t *testing.T) {
	var logs bytes.Buffer
	b := NewBacklog(8, 1<<20, slog.New(slog.NewTextHandler(&logs, nil)))
	var queue []any
	h := NewBoundedHandle(func(m any) { queue = append(queue, m) }, b)
	for i := 0; i < 100; i++ {
		h.Command(CommandRecord{Command: "zpool"})
		h.Sample("fast", at, []byte("{}"))
		h.Read("/proc/loadavg", at, []byte("1"), nil, 0)
	}
	if len(queue) != 8 || h.Dropped() != 292 {
		t.Fatalf("posted %d, dropped %d; want 8 and 292", len(queue), h.Dropped())
	}
	if n := strings.Count(logs.String(), "dropping entries"); n != 1 {
		t.Fatalf("%d drop warnings, want 1:\n%s", n, logs.String())
	}
	takeAll(queue)
	if e, by := b.Pending(); e != 0 || by != 0 {
		t.Fatalf("pending %d entries %d bytes after the writer took all", e, by)
	}
	if n := strings.Count(logs.String(), "caught up"); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
	queue = queue[:0]
	h.Command(CommandRecord{Command: "after"})
	if len(queue) != 1 || h.Dropped() != 292 {
		t.Fatalf("after recovery posted %d, dropped %d", len(queue), h.Dropped())
	}
}

// The byte bound holds with few entries, yet a single entry larger than the
// bound still gets through an empty backlog.
func TestBacklogByteBound(t *testing.T) {
	b := NewBacklog(1000, 10<<10, slog.New(slog.DiscardHandler))
	var queue []any
	h := NewBoundedHandle(func(m any) { queue = append(queue, m) }, b)
	h.Sample("fast", at, make([]byte, 64<<10))
	h.Sample("fast", at, make([]byte, 1))
	if len(queue) != 1 || h.Dropped() != 1 {
		t.Fatalf("posted %d dropped %d; want 1 and 1", len(queue), h.Dropped())
	}
	takeAll(queue)
	h.Sample("fast", at, make([]byte, 1))
	if len(queue) != 2 {
		t.Fatal("entry refused after the big one was taken")
	}
}

// Lost entries count as dropped; records posted without a bound ignore it.
func TestLostCountsAndUnboundedIgnores(t *testing.T) {
	b := NewBacklog(10, 1<<20, slog.New(slog.DiscardHandler))
	var queue []any
	NewBoundedHandle(func(m any) { queue = append(queue, m) }, b).Command(CommandRecord{})
	r := queue[0].(*CommandRecord)
	r.Taken()
	r.Lost()
	if b.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", b.Dropped())
	}
	free := &CommandRecord{}
	free.Taken()
	free.Lost()
	if NewHandle(func(any) {}).Dropped() != 0 || (*Handle)(nil).Dropped() != 0 {
		t.Fatal("an unbounded or nil handle reports drops")
	}
}

func takeAll(queue []any) {
	for _, m := range queue {
		switch r := m.(type) {
		case *CommandRecord:
			r.Taken()
		case *SampleRecord:
			r.Taken()
		}
	}
}
