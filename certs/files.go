package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// DefaultExpiryWarning is how long before expiry --cert-mode files warns:
// it cannot renew the certificate, so a person or cert-manager must.
const DefaultExpiryWarning = 7 * 24 * time.Hour

// Event reasons of the expiry warning.
const (
	ReasonCertificateExpiring = "CertificateExpiring"
	ReasonCertificateExpired  = "CertificateExpired"
)

// FilesOptions configure NewFiles.
type FilesOptions struct {
	// Dir holds tls.crt and tls.key, and ca.crt when the issuer writes it
	// (cert-manager does).
	Dir string
	// WarnBefore: a Warning Event and a log line when the certificate in
	// use expires within it. 0 disables the warning (the self-managed mode
	// renews by itself).
	WarnBefore time.Duration
	// Recorder and EventTarget receive the warning Event; with a nil
	// Recorder it is only logged.
	Recorder    record.EventRecorder
	EventTarget runtime.Object
	// Observe, if set, receives the expiry of the serving certificate and of
	// the CA in ca.crt that signed it.
	Observe ExpiryObserver
	Log     logr.Logger
	// CheckInterval is how often expiry is checked and ca.crt re-read
	// (tls.crt and tls.key are reloaded as soon as they change). Default: a
	// minute.
	CheckInterval time.Duration
}

// Files is the certificate source of --cert-mode files: tls.crt and tls.key
// reloaded on change by controller-runtime's certwatcher, ca.crt re-read
// with them and every CheckInterval.
type Files struct {
	o       FilesOptions
	watcher *certwatcher.CertWatcher
	now     func() time.Time

	mu       sync.Mutex
	caBundle []byte
	observed map[string]time.Time // last value given to Observe, per certificate label
	warned   string               // fingerprint of the certificate last warned about
}

var _ Source = (*Files)(nil)

// NewFiles loads the certificate of o.Dir; it fails when tls.crt or tls.key
// is missing or they do not form a pair. Start keeps it current.
func NewFiles(o FilesOptions) (*Files, error) {
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Minute
	}
	watcher, err := certwatcher.New(filepath.Join(o.Dir, CertFile), filepath.Join(o.Dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("serving certificate in %s: %w", o.Dir, err)
	}
	f := &Files{o: o, watcher: watcher, now: time.Now, observed: map[string]time.Time{}}
	// certwatcher calls back in a new goroutine per change, so callbacks may
	// run out of order: refresh reads the current certificate rather than
	// the one it is handed. RegisterCallback also calls back at once, holding
	// the watcher's lock, which refresh would wait for: that first call is
	// skipped and refresh runs after it.
	var registered atomic.Bool
	watcher.RegisterCallback(func(tls.Certificate) {
		if registered.Load() {
			f.refresh()
		}
	})
	registered.Store(true)
	f.refresh()
	return f, nil
}

// Start runs the watcher and the periodic check until ctx ends.
func (f *Files) Start(ctx context.Context) error {
	errs := make(chan error, 1)
	go func() { errs <- f.watcher.Start(ctx) }()
	ticker := time.NewTicker(f.o.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-errs:
			return err
		case <-ticker.C:
			f.refresh()
		}
	}
}

// NeedLeaderElection is false: every replica serves.
func (f *Files) NeedLeaderElection() bool { return false }

// GetCertificate returns the certificate loaded last.
func (f *Files) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.watcher.GetCertificate(hello)
}

// Healthy checks the certificate in use against the clock.
func (f *Files) Healthy() error {
	cert, _ := f.watcher.GetCertificate(nil)
	if err := checkServing(cert, f.now()); err != nil {
		return fmt.Errorf("%w (--cert-dir %s)", err, f.o.Dir)
	}
	return nil
}

// CABundle is ca.crt as last read, nil when the directory has none.
func (f *Files) CABundle() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.caBundle
}

// Reload reads tls.crt, tls.key and ca.crt now, for a writer of the
// directory that must not wait for the file events (the self-managed mode).
func (f *Files) Reload() error {
	if err := f.watcher.ReadCertificate(); err != nil {
		return err
	}
	f.refresh()
	return nil
}

// refresh re-reads ca.crt, reports expiries and warns about an expiring
// certificate.
func (f *Files) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	caPEM, err := os.ReadFile(filepath.Join(f.o.Dir, CAFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.caBundle = nil
	case err != nil:
		f.o.Log.Error(err, "reading the CA bundle, keeping the previous one", "file", filepath.Join(f.o.Dir, CAFile))
	case len(bytes.TrimSpace(caPEM)) == 0:
		f.caBundle = nil
	default:
		f.caBundle = caPEM
	}

	cert, _ := f.watcher.GetCertificate(nil)
	if cert == nil || len(cert.Certificate) == 0 {
		return
	}
	leaf, err := leafOf(cert)
	if err != nil {
		return
	}
	f.observe(CertificateServing, leaf.NotAfter)
	if cas, err := ParseCertificates(f.caBundle); err == nil {
		if ca := issuerOf(leaf, cas); ca != nil {
			f.observe(CertificateCA, ca.NotAfter)
		}
	}

	left := leaf.NotAfter.Sub(f.now())
	if f.o.WarnBefore <= 0 || left >= f.o.WarnBefore || f.warned == Fingerprint(leaf) {
		return
	}
	f.warned = Fingerprint(leaf)
	reason := ReasonCertificateExpiring
	message := fmt.Sprintf("serving certificate %s in %s expires at %s (in %s)",
		describe(leaf), f.o.Dir, leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Minute))
	if left <= 0 {
		reason = ReasonCertificateExpired
		message = fmt.Sprintf("serving certificate %s in %s expired at %s",
			describe(leaf), f.o.Dir, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	message += ": --cert-mode files does not renew it; renew tls.crt and tls.key (cert-manager does, while its Certificate is Ready) or switch to --cert-mode self-managed"
	f.o.Log.Info("WARNING: "+message, "reason", reason, "notAfter", leaf.NotAfter)
	if f.o.Recorder != nil && f.o.EventTarget != nil {
		f.o.Recorder.Event(f.o.EventTarget, corev1.EventTypeWarning, reason, message)
	}
}

func (f *Files) observe(certificate string, notAfter time.Time) {
	if f.o.Observe == nil || f.observed[certificate].Equal(notAfter) {
		return
	}
	f.observed[certificate] = notAfter
	f.o.Observe(certificate, notAfter)
}

// EventTarget is the object certificate Events are recorded on: the
// webhook's own Pod when its name and namespace are known (the downward API
// sets POD_NAME, POD_NAMESPACE and POD_UID), else the
// MutatingWebhookConfiguration that the API server calls it through.
func EventTarget(podNamespace, podName string, podUID types.UID, webhookConfigName string) runtime.Object {
	if podNamespace != "" && podName != "" {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: podNamespace, Name: podName, UID: podUID},
		}
	}
	if webhookConfigName == "" {
		return nil
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName},
	}
}
