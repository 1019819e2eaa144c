package pvehealth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/lenient"
)

// Certificate is what the certificates source reports of a PEM file.
type Certificate struct {
	Subject  string
	Issuer   string
	NotAfter time.Time
}

// ParseCertificate returns the first certificate of a PEM file (pve-ssl.pem,
// pveproxy-ssl.pem, pve-root-ca.pem as pve-cluster's PVE/Cluster/Setup.pm
// and `pvenode cert set` write them; a chain puts the served certificate
// first). Blocks of other types (a private key pasted into the file) are
// skipped without being decoded.
func ParseCertificate(b []byte) (Certificate, error) {
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return Certificate{}, fmt.Errorf("certificate: %w", err)
		}
		return Certificate{Subject: lenient.Text(c.Subject.String()), Issuer: lenient.Text(c.Issuer.String()), NotAfter: c.NotAfter.UTC()}, nil
	}
	return Certificate{}, errors.New("certificate: no PEM CERTIFICATE block")
}
