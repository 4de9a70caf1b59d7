package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/record"
)

// issueAt signs a serving certificate for localhost valid from notBefore to
// notAfter: the only way to get an expired or not-yet-valid certificate.
func issueAt(t *testing.T, ca *CA, notBefore, notAfter time.Time) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := newSerial()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{CertPEM: encodePEM("CERTIFICATE", der), KeyPEM: encodePEM("PRIVATE KEY", keyDER)}
}

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func tlsPair(t *testing.T, p KeyPair) *tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestServingCertificateHealth(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	valid := tlsPair(t, issueAt(t, ca, now.Add(-time.Hour), now.Add(time.Hour)))
	other := tlsPair(t, issueAt(t, ca, now.Add(-time.Hour), now.Add(time.Hour)))
	mismatched := &tls.Certificate{Certificate: valid.Certificate, PrivateKey: other.PrivateKey}

	tests := map[string]struct {
		cert *tls.Certificate
		want string // substring of the error; empty: healthy
	}{
		"valid now and matching its key is healthy":  {cert: valid},
		"expired names the expiry":                   {cert: tlsPair(t, issueAt(t, ca, now.Add(-2*time.Hour), now.Add(-time.Hour))), want: "expired at"},
		"not yet valid names the start":              {cert: tlsPair(t, issueAt(t, ca, now.Add(time.Hour), now.Add(2*time.Hour))), want: "is not valid before"},
		"a key of another certificate is a mismatch": {cert: mismatched, want: "does not match its private key"},
		"nothing loaded":                             {cert: nil, want: "no serving certificate loaded"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkServing(tc.cert, now)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unhealthy: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFilesHealthNamesTheDirectory(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	now := time.Now()
	if err := WriteDir(dir, ca.CertPEM, issueAt(t, ca, now.Add(-2*time.Hour), now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	f, err := NewFiles(FilesOptions{Dir: dir, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Healthy()
	if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Healthy() = %v, want the expiry and the directory", err)
	}

	// A valid pair swapped in is healthy once reloaded.
	if err := WriteDir(dir, ca.CertPEM, issueAt(t, ca, now.Add(-time.Hour), now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.Healthy(); err != nil {
		t.Fatalf("after the swap: %v", err)
	}
	if !bytes.Equal(f.CABundle(), ca.CertPEM) {
		t.Error("CABundle() is not ca.crt")
	}
}

func TestFilesWithoutCertificateFailsToLoad(t *testing.T) {
	_, err := NewFiles(FilesOptions{Dir: t.TempDir(), Log: logr.Discard()})
	if err == nil || !strings.Contains(err.Error(), "serving certificate in") {
		t.Fatalf("NewFiles on an empty directory: %v", err)
	}
}

func TestFilesWarnsSevenDaysBeforeExpiry(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	tests := map[string]struct {
		left       time.Duration
		wantReason string // empty: no Event
	}{
		"8 days left: quiet":                {left: 8 * 24 * time.Hour},
		"7 days and a minute left: quiet":   {left: 7*24*time.Hour + time.Minute},
		"6 days 23 hours left: warns":       {left: 7*24*time.Hour - time.Hour, wantReason: ReasonCertificateExpiring},
		"1 hour left: warns":                {left: time.Hour, wantReason: ReasonCertificateExpiring},
		"expired an hour ago: says expired": {left: -time.Hour, wantReason: ReasonCertificateExpired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteDir(dir, ca.CertPEM, issueAt(t, ca, now.Add(-30*24*time.Hour), now.Add(tc.left))); err != nil {
				t.Fatal(err)
			}
			recorder := record.NewFakeRecorder(10)
			target := EventTarget("hcp-ingress-system", "webhook-0", "", "hcp-ingress-webhook")
			f, err := NewFiles(FilesOptions{Dir: dir, WarnBefore: DefaultExpiryWarning, Recorder: recorder, EventTarget: target, Log: logr.Discard()})
			if err != nil {
				t.Fatal(err)
			}
			f.refresh() // the periodic check: the same certificate warns once
			f.refresh()
			close(recorder.Events)
			var events []string
			for e := range recorder.Events {
				events = append(events, e)
			}
			if tc.wantReason == "" {
				if len(events) != 0 {
					t.Fatalf("events %q, want none", events)
				}
				return
			}
			if len(events) != 1 || !strings.HasPrefix(events[0], "Warning "+tc.wantReason+" ") {
				t.Fatalf("events %q, want one Warning %s", events, tc.wantReason)
			}
			if !strings.Contains(events[0], dir) || !strings.Contains(events[0], "does not renew it") {
				t.Errorf("event %q does not say which certificate and what to do", events[0])
			}
		})
	}
}

func TestEventTarget(t *testing.T) {
	tests := map[string]struct {
		namespace, pod string
		want           string
	}{
		"the Pod when its name is known":              {namespace: "ns", pod: "p", want: "Pod ns/p"},
		"the webhook configuration when it is not":    {namespace: "ns", want: "MutatingWebhookConfiguration /hcp"},
		"the webhook configuration without namespace": {pod: "p", want: "MutatingWebhookConfiguration /hcp"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obj := EventTarget(tc.namespace, tc.pod, "", "hcp")
			m, ok := obj.(interface {
				GetNamespace() string
				GetName() string
			})
			if !ok {
				t.Fatalf("%T has no metadata", obj)
			}
			if got := obj.GetObjectKind().GroupVersionKind().Kind + " " + m.GetNamespace() + "/" + m.GetName(); got != tc.want {
				t.Errorf("target %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilesObservesServingAndCAExpiry(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t) // in ca.crt too, but it did not sign the certificate
	now := time.Now()
	dir := t.TempDir()
	pair := issueAt(t, ca, now.Add(-time.Hour), now.Add(time.Hour))
	if err := WriteDir(dir, append(append([]byte{}, other.CertPEM...), ca.CertPEM...), pair); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	if _, err := NewFiles(FilesOptions{Dir: dir, Log: logr.Discard(), Observe: func(c string, t time.Time) { got[c] = t }}); err != nil {
		t.Fatal(err)
	}
	leaf := tlsPair(t, pair).Leaf
	if !got[CertificateServing].Equal(leaf.NotAfter) || !got[CertificateCA].Equal(ca.Cert.NotAfter) {
		t.Fatalf("observed %v, want serving %v and the signing CA %v", got, leaf.NotAfter, ca.Cert.NotAfter)
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{CertLifetime: 30 * time.Second, CALifetime: 2 * time.Minute}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.RenewBefore(); got != 10*time.Second {
		t.Errorf("RenewBefore %v, want a third of the lifetime", got)
	}
	tests := map[string]struct {
		schedule Schedule
		want     time.Duration
	}{
		"a twentieth of the shorter lifetime": {Schedule{CertLifetime: 40 * time.Second, CALifetime: 10 * time.Minute}, 2 * time.Second},
		"at least a second":                   {Schedule{CertLifetime: 15 * time.Second, CALifetime: time.Minute}, time.Second},
		"at most ten minutes":                 {Schedule{CertLifetime: DefaultCertLifetime, CALifetime: DefaultCALifetime}, 10 * time.Minute},
	}
	for name, tc := range tests {
		t.Run("check interval: "+name, func(t *testing.T) {
			if got := tc.schedule.CheckInterval(); got != tc.want {
				t.Errorf("CheckInterval %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("next CA made at two thirds, promoted at five sixths", func(t *testing.T) {
		for _, c := range []struct {
			left             time.Duration
			prepare, promote bool
		}{
			{41 * time.Second, false, false},
			{40 * time.Second, true, false},
			{21 * time.Second, true, false},
			{20 * time.Second, true, true},
		} {
			if s.PrepareNextCA(c.left) != c.prepare || s.PromoteNextCA(c.left) != c.promote {
				t.Errorf("%v left: prepare %v promote %v, want %v %v", c.left, s.PrepareNextCA(c.left), s.PromoteNextCA(c.left), c.prepare, c.promote)
			}
		}
	})
	t.Run("promotion comes before cert-controller would replace the CA itself", func(t *testing.T) {
		for _, s := range []Schedule{s, {CertLifetime: DefaultCertLifetime, CALifetime: DefaultCALifetime}, {CertLifetime: time.Hour, CALifetime: 3 * time.Hour}} {
			if s.CALifetime/6 <= s.RenewBefore()+s.CheckInterval() {
				t.Errorf("%+v: promotion at %v left, cert-controller acts at %v left", s, s.CALifetime/6, s.RenewBefore())
			}
		}
	})
}

func TestScheduleRejects(t *testing.T) {
	tests := map[string]struct {
		schedule Schedule
		want     string
	}{
		"a serving lifetime under the minimum":  {Schedule{CertLifetime: 5 * time.Second, CALifetime: time.Hour}, "--cert-lifetime 5s"},
		"a CA shorter than three serving lives": {Schedule{CertLifetime: time.Hour, CALifetime: 2 * time.Hour}, "--ca-lifetime 2h0m0s: must be at least 3 × --cert-lifetime"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.schedule.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidateDNSNames(t *testing.T) {
	tests := map[string]struct {
		names []string
		want  string // empty: accepted
	}{
		"service names":                {names: []string{"hcp-ingress-webhook.hcp-ingress-system.svc", "localhost"}},
		"a wildcard":                   {names: []string{"*.example.com"}},
		"none":                         {names: nil, want: "at least one DNS name"},
		"an IPv4 address":              {names: []string{"127.0.0.1"}, want: "an IP address"},
		"an IPv6 address":              {names: []string{"::1"}, want: "an IP address"},
		"upper case is not a DNS name": {names: []string{"Webhook.example.com"}, want: `"Webhook.example.com"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateDNSNames(tc.names)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ValidateDNSNames(%q) = %v, want %q", tc.names, err, tc.want)
			}
		})
	}
}

func TestTrustBundle(t *testing.T) {
	now := time.Now()
	older, err := NewCA("older", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := NewCA("newer", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := NewCA("expired", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}

	got := trustBundle(now.Add(time.Millisecond), []*x509.Certificate{older.Cert, nil, expired.Cert, newer.Cert, older.Cert})
	want := append(append([]byte{}, newer.CertPEM...), older.CertPEM...)
	if !bytes.Equal(got, want) {
		t.Fatalf("bundle holds %d certificates, want the two unexpired ones, each once, the later expiry first", bytes.Count(got, []byte("BEGIN")))
	}
	if again := trustBundle(now, []*x509.Certificate{newer.Cert, older.Cert}); !bytes.Equal(again, got) {
		t.Error("the same CAs in another order give other bytes")
	}
}

func TestCABundlePatch(t *testing.T) {
	bundle := []byte("bundle")
	tests := map[string]struct {
		current [][]byte
		want    string
	}{
		"all current: no patch": {current: [][]byte{bundle, bundle}, want: ""},
		"one stale: only that webhook, guarded by its name": {current: [][]byte{bundle, []byte("old")},
			want: `[{"op":"test","path":"/webhooks/1/name","value":"b"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"YnVuZGxl"}]`},
		"none yet: every webhook": {current: [][]byte{nil, nil},
			want: `[{"op":"test","path":"/webhooks/0/name","value":"a"},{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"YnVuZGxl"},{"op":"test","path":"/webhooks/1/name","value":"b"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"YnVuZGxl"}]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := caBundlePatch([]string{"a", "b"}, tc.current, bundle)
			if string(got) != tc.want {
				t.Fatalf("patch %s, want %s", got, tc.want)
			}
			if got != nil && !json.Valid(got) {
				t.Fatal("not JSON")
			}
		})
	}
}

func TestFingerprintTellsCertificatesApart(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	a := tlsPair(t, issueAt(t, ca, now, now.Add(time.Hour))).Leaf
	b := tlsPair(t, issueAt(t, ca, now, now.Add(time.Hour))).Leaf
	if Fingerprint(a) == Fingerprint(b) || len(Fingerprint(a)) != 64 {
		t.Fatalf("fingerprints %s and %s", Fingerprint(a), Fingerprint(b))
	}
	if d := describe(a); !strings.Contains(d, `"localhost"`) || !strings.Contains(d, Fingerprint(a)[:16]) {
		t.Errorf("describe = %s", d)
	}
}
