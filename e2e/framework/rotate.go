package framework

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// RotateServingCertificate writes a new serving certificate and key, signed
// by the CA of CABundle, into the webhook's --cert-dir, the way the kubelet
// updates a Secret volume (certs.WriteDir). The webhook picks it up through
// controller-runtime's certwatcher without a restart; the registered caBundle
// stays valid. It returns the serial number of the new certificate.
func (w *Webhook) RotateServingCertificate() (*big.Int, error) {
	if w.ca == nil {
		return nil, errors.New("this webhook makes its own certificates (SelfManaged): no CA to sign with")
	}
	pair, err := w.ca.IssueServing([]string{"127.0.0.1", "localhost"}, 0)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(pair.CertPEM)
	if block == nil {
		return nil, errors.New("the issued certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteDir(w.CertDir, w.ca.CertPEM, pair); err != nil {
		return nil, err
	}
	return cert.SerialNumber, nil
}

// ServedSerial dials the webhook port as the API server does (verifying the
// chain against CABundle) and returns the serial number of the
// certificate it presents.
func (w *Webhook) ServedSerial() (*big.Int, error) {
	pool, err := certPool(w.CABundle)
	if err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(w.URL, "https://")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", host,
		&tls.Config{RootCAs: pool, ServerName: w.serverName, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("TLS to %s: %w", host, err)
	}
	defer conn.Close()
	chain := conn.ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, fmt.Errorf("TLS to %s: no certificate presented", host)
	}
	return chain[0].SerialNumber, nil
}
