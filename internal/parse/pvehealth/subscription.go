package pvehealth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Subscription is the part of /etc/subscription that may leave the host.
// It has no field for the key, the server id, the checksum or the
// signature, so they cannot be emitted, logged or dumped from it.
type Subscription struct {
	Status    string // lowercase: active, new, notfound, invalid, expired, suspended
	Level     string // community, basic, standard, premium; "" if the key has none
	NextDue   string // "YYYY-MM-DD" as written; "" if absent
	CheckedAt int64  // unix seconds of the last check; 0 if absent
}

var levels = map[byte]string{'c': "community", 'b': "basic", 's': "standard", 'p': "premium"}

// ParseSubscription parses /etc/subscription as proxmox-rs
// proxmox-subscription (files.rs, PVE 8/9) and the older Perl
// PVE::API2::Subscription write it: line 1 the key, line 2 a checksum, the
// rest base64 of a JSON object (one line, or wrapped at 76 columns).
// Errors never quote the file: it holds the key.
func ParseSubscription(b []byte) (Subscription, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 {
		return Subscription{}, fmt.Errorf("subscription: want key, checksum and data lines, got %d lines", len(lines))
	}
	var s Subscription
	// The level is the letter after "pve<sockets>" in "pve2s-0123456789";
	// only that letter is kept.
	if key := strings.TrimSpace(lines[0]); len(key) > 5 && strings.HasPrefix(key, "pve") && key[5] == '-' {
		s.Level = levels[key[4]]
	}
	var enc bytes.Buffer
	for _, l := range lines[2:] {
		enc.WriteString(strings.TrimSpace(l))
	}
	raw, err := base64.StdEncoding.DecodeString(enc.String())
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc.String(), "=")); err != nil {
			return Subscription{}, errors.New("subscription: data is not base64")
		}
	}
	var info struct {
		Status      lenient.String `json:"status"`
		CheckTime   lenient.Int    `json:"checktime"`
		NextDueDate lenient.String `json:"nextduedate"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return Subscription{}, errors.New("subscription: data is not a JSON object")
	}
	if info.Status == "" {
		return Subscription{}, errors.New("subscription: no status")
	}
	s.Status, s.CheckedAt, s.NextDue = lenient.Text(strings.ToLower(string(info.Status))), info.CheckTime.V, lenient.Text(string(info.NextDueDate))
	return s, nil
}
