// Package certs makes the serving certificates of the self-managed path (no
// cert-manager: the in-child bootstrap, local runs, the e2e suite and the
// demo): a private CA and an ECDSA P-256 serving certificate signed by it,
// written as tls.crt, tls.key and ca.crt.
//
// The files are written the way the kubelet writes Secret volumes: into a
// fresh hidden directory, published by renaming one symlink (..data). A reader
// that follows tls.crt and tls.key (controller-runtime's certwatcher, which
// re-reads both on every event and on a timer) therefore sees either the old
// pair or the new pair, never a new certificate with an old key.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// File names inside a certificate directory: the names cert-manager writes into
// a kubernetes.io/tls Secret, and the names `serve --cert-dir` reads.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

const (
	// DefaultCAValidity is long enough that the caBundle registered in the
	// webhook configurations outlives many serving-certificate rotations.
	DefaultCAValidity = 5 * 365 * 24 * time.Hour
	// DefaultServingValidity follows cert-manager's default duration.
	DefaultServingValidity = 90 * 24 * time.Hour
	// clockSkew backdates NotBefore so that an API server whose clock is a
	// little behind still accepts a certificate made a moment ago.
	clockSkew = 5 * time.Minute
)

// CA is a private certificate authority that signs serving certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA valid for validity (DefaultCAValidity if zero).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs leaf certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: encodePEM("CERTIFICATE", der), key: key}, nil
}

// KeyPair is a PEM-encoded serving certificate and its private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// IssueServing signs a serving certificate for hosts, each a DNS name or an IP
// address (they become DNS or IP SANs), valid for validity
// (DefaultServingValidity if zero). The first host is also the common name.
func (ca *CA) IssueServing(hosts []string, validity time.Duration) (KeyPair, error) {
	if len(hosts) == 0 {
		return KeyPair{}, errors.New("a serving certificate needs at least one DNS name or IP address")
	}
	if validity <= 0 {
		validity = DefaultServingValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // a leaf cannot outlive its issuer
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("signing serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: encodePEM("CERTIFICATE", der), KeyPEM: encodePEM("PRIVATE KEY", keyDER)}, nil
}

// NewServingDir creates a CA and a serving certificate for hosts and writes
// tls.crt, tls.key and ca.crt into dir. It returns the CA, whose CertPEM is
// the caBundle of a webhook configuration.
func NewServingDir(dir string, hosts []string) (*CA, error) {
	ca, err := NewCA("hcp-ingress-webhook-ca", 0)
	if err != nil {
		return nil, err
	}
	pair, err := ca.IssueServing(hosts, 0)
	if err != nil {
		return nil, err
	}
	if err := WriteDir(dir, ca.CertPEM, pair); err != nil {
		return nil, err
	}
	return ca, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

func encodePEM(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}
