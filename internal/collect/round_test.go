package collect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/testkit"
)

// A source's busy flag is cleared before the round hands back its result,
// so a round started right after the previous one returned never reports
// the source as still in progress. It used to be cleared by a deferred
// Store that could run after Run had returned.
func TestRoundStartedRightAfterIsNotBusy(t *testing.T) {
	srcs := []Source{
		{Name: "a", Timeout: 5 * time.Second, Collect: func(context.Context) (any, error) { return 1, nil }},
		{Name: "b", Timeout: 5 * time.Second, Collect: func(context.Context) (any, error) { return nil, errors.New("boom") }},
		{Name: "c", Timeout: 5 * time.Second, Collect: func(context.Context) (any, error) { panic("bug") }},
	}
	r := NewRound("fast", srcs, nil, nil)
	for i := 0; i < 1000; i++ {
		s := r.Run(time.Now()).Sample
		if s.Data["a"] != 1 || s.Errors["b"] != "boom" || !strings.Contains(s.Errors["c"], "source panicked: bug") {
			t.Fatalf("round %d: data %v errors %v", i, s.Data, s.Errors)
		}
	}
}

// A source that overruns its timeout is reported, does not hold up the
// round, and stays busy (not started again) until it really returns.
func TestHungSourceStaysBusyUntilItReturns(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	srcs := []Source{
		{Name: "hung", Timeout: 50 * time.Millisecond, Collect: func(context.Context) (any, error) {
			started <- struct{}{}
			<-release // ignores ctx, like a source stuck in a syscall
			return "late", nil
		}},
		{Name: "quick", Timeout: time.Second, Collect: func(context.Context) (any, error) { return "ok", nil }},
	}
	r := NewRound("slow", srcs, nil, nil)
	s := r.Run(time.Now()).Sample
	if s.Errors["hung"] != "timed out after 50ms" || s.Data["quick"] != "ok" {
		t.Fatalf("first round: data %v errors %v", s.Data, s.Errors)
	}
	s = r.Run(time.Now()).Sample
	if !strings.Contains(s.Errors["hung"], "previous run still in progress") || s.Data["quick"] != "ok" {
		t.Fatalf("second round: data %v errors %v", s.Data, s.Errors)
	}
	if len(started) != 1 {
		t.Fatalf("the hung source was started %d times", len(started))
	}
	close(release)
	// Once it has returned, the next round starts it again.
	testkit.Eventually(t, 10*time.Second, "the released source run again", func() bool {
		s := r.Run(time.Now()).Sample
		if s.Data["hung"] != "late" && !strings.Contains(s.Errors["hung"], "previous run still in progress") {
			t.Fatalf("after release: data %v errors %v", s.Data, s.Errors)
		}
		return s.Data["hung"] == "late"
	})
}

// A source that does not apply to this host is out of the payload: neither
// data nor an error entry; a real failure next to it still is an error, and
// the round still hands the absence to the collector for its log.
func TestAbsentSourceLeavesNoKey(t *testing.T) {
	srcs := []Source{
		{Name: "ha", Timeout: time.Second, Collect: func(context.Context) (any, error) {
			return nil, fmt.Errorf("no /etc/pve/ha/manager_status: %w", ErrAbsent)
		}},
		{Name: "broken", Timeout: time.Second, Collect: func(context.Context) (any, error) { return nil, errors.New("garbage") }},
		{Name: "quick", Timeout: time.Second, Collect: func(context.Context) (any, error) { return "ok", nil }},
	}
	res := NewRound("slow", srcs, nil, nil).Run(time.Now())
	s := res.Sample
	if _, ok := s.Data["ha"]; ok {
		t.Errorf("absent source in data: %v", s.Data)
	}
	if _, ok := s.Errors["ha"]; ok {
		t.Errorf("absent source in errors: %v", s.Errors)
	}
	if s.Errors["broken"] != "garbage" || s.Data["quick"] != "ok" {
		t.Errorf("data %v errors %v", s.Data, s.Errors)
	}
	if !errors.Is(res.Errs["ha"], ErrAbsent) {
		t.Errorf("the collector is not told: %v", res.Errs)
	}
}

// A reload rebuilds the sources: from the next Run on the new set runs, and
// a source still hung from before is not started again under its name.
func TestReconfigureKeepsAHungSourceBusy(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 4)
	hung := Source{Name: "zfs_pools", Timeout: 20 * time.Millisecond, Collect: func(context.Context) (any, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	}}
	r := NewRound("fast", []Source{hung}, nil, nil)
	if s := r.Run(time.Now()).Sample; !strings.Contains(s.Errors["zfs_pools"], "timed out") {
		t.Fatalf("first round: %v", s.Errors)
	}
	rebuilt := hung
	rebuilt.Collect = func(context.Context) (any, error) { return "new", nil }
	r.Reconfigure([]Source{rebuilt, {Name: "net", Timeout: time.Second, Collect: func(context.Context) (any, error) { return 1, nil }}})
	s := r.Run(time.Now()).Sample
	if !strings.Contains(s.Errors["zfs_pools"], "previous run still in progress") || s.Data["net"] != 1 {
		t.Fatalf("after reload: data %v errors %v", s.Data, s.Errors)
	}
	if len(started) != 1 {
		t.Errorf("hung source started %d times", len(started))
	}
	if names := len(r.Sources()); names != 2 {
		t.Errorf("%d sources after reload", names)
	}
}
