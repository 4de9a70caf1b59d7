package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not a single PEM certificate: %q", pemBytes)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestServingCertificateVerifiesAgainstItsCA(t *testing.T) {
	ca, err := NewCA("test-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"hcp-ingress-webhook.hcp-ingress-system.svc", "127.0.0.1", "::1"}
	pair, err := ca.IssueServing(hosts, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseCert(t, pair.CertPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	tests := map[string]struct {
		host    string
		wantErr bool
	}{
		"DNS SAN":                {host: "hcp-ingress-webhook.hcp-ingress-system.svc"},
		"IPv4 SAN":               {host: "127.0.0.1"},
		"IPv6 SAN":               {host: "::1"},
		"name not in the SANs":   {host: "other.example.com", wantErr: true},
		"address not in the SAN": {host: "10.0.0.1", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:   tc.host,
				Roots:     roots,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Verify(%s) error = %v, want error %v", tc.host, err, tc.wantErr)
			}
		})
	}

	t.Run("keys are ECDSA P-256", func(t *testing.T) {
		for what, pub := range map[string]any{"CA": ca.Cert.PublicKey, "serving": leaf.PublicKey} {
			k, ok := pub.(*ecdsa.PublicKey)
			if !ok || k.Curve != elliptic.P256() {
				t.Errorf("%s key is %T, want ECDSA P-256", what, pub)
			}
		}
	})
	t.Run("SANs are split into DNS names and IP addresses", func(t *testing.T) {
		if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
			t.Errorf("DNSNames=%v IPAddresses=%v", leaf.DNSNames, leaf.IPAddresses)
		}
	})
	t.Run("the CA signs leaves only and the leaf is not a CA", func(t *testing.T) {
		if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || leaf.IsCA {
			t.Errorf("CA IsCA=%v MaxPathLenZero=%v, leaf IsCA=%v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero, leaf.IsCA)
		}
	})
	t.Run("validity is the default and starts slightly in the past", func(t *testing.T) {
		now := time.Now()
		if !leaf.NotBefore.Before(now.Add(-time.Minute)) {
			t.Errorf("NotBefore %v is not backdated", leaf.NotBefore)
		}
		if got := leaf.NotAfter.Sub(now); got < DefaultServingValidity-time.Minute || got > DefaultServingValidity+time.Minute {
			t.Errorf("serving validity %v, want about %v", got, DefaultServingValidity)
		}
		if got := ca.Cert.NotAfter.Sub(now); got < DefaultCAValidity-time.Minute {
			t.Errorf("CA validity %v, want about %v", got, DefaultCAValidity)
		}
	})
	t.Run("key and certificate form a TLS pair", func(t *testing.T) {
		if _, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLeafNeverOutlivesItsCA(t *testing.T) {
	ca, err := NewCA("short-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServing([]string{"localhost"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseCert(t, pair.CertPEM); leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v is after CA NotAfter %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
}

func TestServingCertificateNeedsAHost(t *testing.T) {
	ca, err := NewCA("test-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueServing(nil, 0); err == nil {
		t.Fatal("IssueServing(nil) succeeded, want an error")
	}
}

func TestWriteDir(t *testing.T) {
	tests := map[string]struct {
		prepare func(t *testing.T, dir string)
	}{
		"into a directory that does not exist yet": {
			prepare: func(t *testing.T, dir string) {},
		},
		"over plain files written by something else": {
			prepare: func(t *testing.T, dir string) {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{CertFile, KeyFile, CAFile} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte("stale"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
		"over an earlier WriteDir": {
			prepare: func(t *testing.T, dir string) {
				if _, err := NewServingDir(dir, []string{"old.example.com"}); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			tc.prepare(t, dir)

			ca, err := NewServingDir(dir, []string{"127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if leaf, _ := x509.ParseCertificate(pair.Certificate[0]); leaf == nil || len(leaf.IPAddresses) != 1 {
				t.Fatalf("tls.crt is not the new certificate")
			}
			caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
			if err != nil || !bytes.Equal(caPEM, ca.CertPEM) {
				t.Fatalf("ca.crt does not hold the CA (err %v)", err)
			}
			keyInfo, err := os.Stat(filepath.Join(dir, KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if perm := keyInfo.Mode().Perm(); perm != 0o600 {
				t.Errorf("tls.key mode %v, want 0600", perm)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			versions := 0
			for _, e := range entries {
				if e.IsDir() {
					versions++
				}
			}
			if versions != 1 || len(entries) != 5 { // ..data, one version, three names
				names := []string{}
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want ..data, one version directory and the three files", names)
			}
		})
	}
}

func TestWriteDirRejectsAnEmptyFile(t *testing.T) {
	err := WriteDir(t.TempDir(), nil, KeyPair{CertPEM: []byte("x"), KeyPEM: []byte("y")})
	if err == nil {
		t.Fatal("WriteDir with an empty CA succeeded")
	}
}

// Every published version is complete: a reader that resolves ..data once sees
// a matching certificate and key, or (when it lost the race with the removal
// of an old version) no files at all; never a truncated file or a key from
// another write.
func TestWriteDirPublishesCompletePairsOnly(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	pairs := make([]KeyPair, 4)
	for i := range pairs {
		if pairs[i], err = ca.IssueServing([]string{"127.0.0.1"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteDir(dir, ca.CertPEM, pairs[0]); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var reads, complete atomic.Int64
	var wg sync.WaitGroup
	failures := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			version, err := os.Readlink(filepath.Join(dir, dataLink))
			if err != nil {
				failures <- err
				return
			}
			reads.Add(1)
			certPEM, errCert := os.ReadFile(filepath.Join(dir, version, CertFile))
			keyPEM, errKey := os.ReadFile(filepath.Join(dir, version, KeyFile))
			if errors.Is(errCert, fs.ErrNotExist) || errors.Is(errKey, fs.ErrNotExist) {
				continue // that version was removed after the next one was published
			}
			if errCert != nil || errKey != nil {
				failures <- errors.Join(errCert, errKey)
				return
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				failures <- err
				return
			}
			complete.Add(1)
		}
	}()
	for i := 1; i < 200; i++ {
		if err := WriteDir(dir, ca.CertPEM, pairs[i%len(pairs)]); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-failures:
		t.Fatalf("a reader saw an incomplete pair: %v", err)
	default:
	}
	if complete.Load() == 0 {
		t.Fatalf("the reader never completed a read (%d attempts)", reads.Load())
	}
	// The names users read follow the last write.
	got, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tls.X509KeyPair(pairs[199%len(pairs)].CertPEM, pairs[199%len(pairs)].KeyPEM)
	if !bytes.Equal(got.Certificate[0], want.Certificate[0]) {
		t.Error("tls.crt is not the last certificate written")
	}
}
