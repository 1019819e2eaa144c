package collect

import (
	"context"
	"encoding/pem"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/dump"
	"github.com/proxmox-agent/proxmox-agent/internal/parse/pvehealth"
)

// Certificates is the certificates source: the cluster CA, this node's
// certificate and the custom certificate pveproxy serves when there is
// one. Only these .pem files are opened, never a key or priv/.
type Certificates struct {
	EtcDir, Node string
	Files        *SlowFS
	Timeout      time.Duration
	Now          func() time.Time
}

// CertificateData is one certificate file (its first certificate).
type CertificateData struct {
	File     string `json:"file"`
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	NotAfter string `json:"not_after"`
	// DaysLeft is whole days until not_after, rounded down; negative once
	// expired.
	DaysLeft int64 `json:"days_left"`
	// InUse marks the certificate pveproxy serves on port 8006.
	InUse bool `json:"in_use"`
}

// Collect reads the certificate files; absent when there is none.
func (c *Certificates) Collect(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	nodeDir := filepath.Join(c.EtcDir, "nodes", c.Node)
	files := []struct{ name, path string }{
		{"pve-root-ca.pem", filepath.Join(c.EtcDir, "pve-root-ca.pem")},
		{"pve-ssl.pem", filepath.Join(nodeDir, "pve-ssl.pem")},
		{"pveproxy-ssl.pem", filepath.Join(nodeDir, "pveproxy-ssl.pem")},
	}
	now := c.Now()
	out := []CertificateData{}
	for _, f := range files {
		b, err := c.Files.ReadRedacted(ctx, c.Timeout, f.path, certificatesOnly)
		if isNotExist(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		cert, err := pvehealth.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		// In seconds, not time.Duration: a Duration saturates at 292 years,
		// and CA certificates valid to 9999 exist.
		days := math.Floor(float64(cert.NotAfter.Unix()-now.Unix()) / 86400)
		out = append(out, CertificateData{File: f.name, Subject: cert.Subject, Issuer: cert.Issuer,
			NotAfter: dump.Timestamp(cert.NotAfter), DaysLeft: int64(days)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate under %s: %w", c.EtcDir, ErrAbsent)
	}
	// pveproxy serves pveproxy-ssl.pem when it exists, else pve-ssl.pem.
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].File != "pve-root-ca.pem" {
			out[i].InUse = true
			break
		}
	}
	return out, nil
}

// certificatesOnly is what the dump keeps of a certificate file: its
// CERTIFICATE blocks, so a key pasted into the file never reaches it.
func certificatesOnly(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(blk)...)
		} else {
			out = append(out, fmt.Sprintf("(a %s block, not recorded)\n", blk.Type)...)
		}
	}
	return out
}
