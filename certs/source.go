package certs

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Source is where the serving certificate comes from: the files of
// --cert-dir (--cert-mode files) or the Secret that the self-managed mode
// keeps (--cert-mode self-managed). Its shape follows cert-manager's
// pkg/server/tls CertificateSource: the TLS server asks it for the
// certificate on every handshake, and readiness asks it whether that
// certificate can be served.
type Source interface {
	// GetCertificate is tls.Config.GetCertificate.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Healthy is nil only when the certificate in use is valid now (not
	// expired, not yet valid) and matches its key; the error says which.
	Healthy() error
	// CABundle is the PEM of the CA(s) that currently sign the serving
	// certificate, the caBundle for webhook configurations that call this
	// server; nil when unknown.
	CABundle() []byte
}

// The values of the certificate label of
// hcp_ingress_certificate_expiry_timestamp_seconds.
const (
	CertificateServing = "serving"
	CertificateCA      = "ca"
)

// ExpiryObserver receives the notAfter of the serving certificate in use
// (certificate CertificateServing) and of the CA that signed it
// (CertificateCA) whenever either changes. The webhook's metrics implement it.
type ExpiryObserver func(certificate string, notAfter time.Time)

// checkServing says why cert cannot be served at now, or nil.
func checkServing(cert *tls.Certificate, now time.Time) error {
	if cert == nil || len(cert.Certificate) == 0 {
		return errors.New("no serving certificate loaded")
	}
	leaf, err := leafOf(cert)
	if err != nil {
		return err
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("serving certificate %s expired at %s (%s ago)",
			describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339), now.Sub(leaf.NotAfter).Round(time.Second))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("serving certificate %s is not valid before %s (%s from now)",
			describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotBefore.Sub(now).Round(time.Second))
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("serving certificate %s: private key of type %T cannot sign", describe(leaf), cert.PrivateKey)
	}
	public, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !public.Equal(leaf.PublicKey) {
		return fmt.Errorf("serving certificate %s does not match its private key", describe(leaf))
	}
	return nil
}

func leafOf(cert *tls.Certificate) (*x509.Certificate, error) {
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("serving certificate does not parse: %w", err)
	}
	return leaf, nil
}

// describe names a certificate in messages: its first DNS name or IP, else
// its common name, and the start of its SHA-256 fingerprint (serial numbers
// do not tell certificates apart: cert-controller gives every serving
// certificate serial number 1).
func describe(c *x509.Certificate) string {
	name := c.Subject.CommonName
	switch {
	case len(c.DNSNames) > 0:
		name = c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		name = c.IPAddresses[0].String()
	}
	return fmt.Sprintf("%q (sha256 %s)", name, Fingerprint(c)[:16])
}

// Fingerprint is the hex SHA-256 of the certificate's DER, as `openssl x509
// -fingerprint -sha256` prints it without colons.
func Fingerprint(c *x509.Certificate) string {
	return fmt.Sprintf("%x", sha256.Sum256(c.Raw))
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bytes.TrimSpace(pemBytes); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("not PEM")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// issuerOf returns the certificate of cas whose key signed leaf, or nil.
func issuerOf(leaf *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	for _, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}
