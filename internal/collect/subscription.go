package collect

import (
	"context"
	"fmt"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// Subscription is the subscription source, from /etc/subscription. The
// key, server id, checksum and signature in that file go nowhere: the
// parser keeps no field for them, the dump records only the file's size,
// and errors never quote it.
type Subscription struct {
	Path    string
	Files   *SlowFS
	Timeout time.Duration
}

// SubscriptionData is the subscription payload; next_due and checked_at
// are null when the file does not say.
type SubscriptionData struct {
	Status    string  `json:"status"`
	Level     *string `json:"level"`
	NextDue   *string `json:"next_due"`
	CheckedAt *string `json:"checked_at"`
}

// Collect reads the file; absent when there is none (no key was ever set).
func (s *Subscription) Collect(ctx context.Context) (any, error) {
	b, err := s.Files.ReadRedacted(ctx, s.Timeout, s.Path, redactAll)
	if isNotExist(err) {
		return nil, fmt.Errorf("no %s: %w", s.Path, ErrAbsent)
	} else if err != nil {
		return nil, err
	}
	sub, err := pvehealth.ParseSubscription(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return SubscriptionData{Status: sub.Status, Level: opt(sub.Level), NextDue: opt(sub.NextDue), CheckedAt: stamp(sub.CheckedAt)}, nil
}

func redactAll(b []byte) []byte {
	return fmt.Appendf(nil, "(%d bytes, not recorded: the file holds the subscription key)\n", len(b))
}
