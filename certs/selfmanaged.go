package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Keys of the self-managed Secret. cert-controller writes ca.crt, ca.key,
// tls.crt and tls.key; the other three are ours, for the CA overlap it does
// not do.
const (
	CAKeyFile = "ca.key"
	// NextCAFile and NextCAKeyFile hold the CA that will sign next: made a
	// while before it is used, so that every caBundle trusts it first.
	NextCAFile    = "ca-next.crt"
	NextCAKeyFile = "ca-next.key"
	// BundleFile is every CA to trust now (current, next, and the previous
	// one until it expires), in the order written to the caBundles. It is
	// written to the Secret after the webhook configurations, so a CA in it
	// is already trusted by the API server.
	BundleFile = "ca-bundle.crt"
)

// FieldManager names the writes of the self-managed mode.
const FieldManager = "hcp-ingress-webhook"

// caSubject is the common name of the self-managed CAs.
const caSubject = "hcp-ingress-webhook-ca"

// SelfManagedOptions configure NewSelfManaged.
type SelfManagedOptions struct {
	// Secret holds the CA and the serving certificate; created if missing.
	Secret types.NamespacedName
	// DNSNames are the serving certificate's names; the first is the one
	// cert-controller verifies it against.
	DNSNames []string
	// WebhookConfigName names the MutatingWebhookConfiguration and the
	// ValidatingWebhookConfiguration whose caBundle is kept current.
	WebhookConfigName string
	Schedule          Schedule
	// CertDir receives, on every replica, the CA bundle and the serving pair
	// it serves (ca.crt, tls.crt, tls.key): cert-controller waits for
	// CertDir/tls.crt before it reports ready, and it is what an operator
	// inspects.
	CertDir string
	Observe ExpiryObserver
	Log     logr.Logger
}

// SelfManaged is the certificate source of --cert-mode self-managed.
//
// cert-controller (open-policy-agent/cert-controller, what Gatekeeper uses)
// does the certificate work: it makes the CA and the serving certificate,
// stores them in the Secret and renews the serving certificate before it
// expires, on the leader only. What it does not do is here, each for a
// reason found in its source (pkg/rotator, v0.15.0):
//
//   - it never creates the Secret (its first refresh fails and stops the
//     manager): ensureSecret creates an empty one before the manager starts;
//   - it replaces the CA and the serving certificate in one write and puts
//     only the new CA into the caBundles, so for a moment the API server
//     trusts a CA that no replica uses, or a replica serves a certificate
//     the API server cannot verify: caKeeper makes the next CA ahead of
//     time, publishes it in every caBundle, then promotes it, and keeps the
//     old CA in the caBundles until it expires;
//   - it only checks that CertDir/tls.crt exists, expecting a Secret volume
//     that the kubelet refreshes within a minute or two (longer than a test
//     lifetime, and absent in the e2e suite): secretMirror, on every
//     replica, watches the Secret and writes CertDir itself, and never
//     switches to a serving certificate whose CA is not yet in the
//     caBundles while the old one is still valid.
//
// It is given no webhook configurations (WebhookInfo), because it would
// overwrite caKeeper's bundle with the current CA alone.
type SelfManaged struct {
	o       SelfManagedOptions
	files   atomic.Pointer[Files]
	rotator *rotator.CertRotator
	keeper  *caKeeper
	mirror  *secretMirror
}

var _ Source = (*SelfManaged)(nil)

// NewSelfManaged creates the Secret if it is missing (so it needs the API
// server now) and adds to mgr: cert-controller's rotator and caKeeper, which
// run on the leader, and the Secret mirror, which runs on every replica.
func NewSelfManaged(ctx context.Context, mgr manager.Manager, o SelfManagedOptions) (*SelfManaged, error) {
	if err := o.Schedule.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateDNSNames(o.DNSNames); err != nil {
		return nil, err
	}
	if o.Secret.Namespace == "" || o.Secret.Name == "" {
		return nil, fmt.Errorf("--cert-secret %q: want NAMESPACE/NAME", o.Secret.String())
	}
	if o.WebhookConfigName == "" {
		return nil, errors.New("--webhook-config-name: empty")
	}
	if o.CertDir == "" {
		return nil, errors.New("--cert-dir: empty")
	}
	clients, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	if err := ensureSecret(ctx, clients, o.Secret); err != nil {
		return nil, err
	}

	s := &SelfManaged{o: o}
	s.rotator = &rotator.CertRotator{
		SecretKey:              o.Secret,
		CertDir:                o.CertDir,
		CAName:                 caSubject,
		CAOrganization:         "hcp-ingress",
		DNSName:                o.DNSNames[0],
		ExtraDNSNames:          o.DNSNames[1:],
		IsReady:                make(chan struct{}),
		FieldOwner:             FieldManager,
		RequireLeaderElection:  true,
		CaCertDuration:         o.Schedule.CALifetime,
		ServerCertDuration:     o.Schedule.CertLifetime,
		RotationCheckFrequency: o.Schedule.CheckInterval(),
		LookaheadInterval:      o.Schedule.RenewBefore(),
		ControllerName:         rotatorControllerName(),
	}
	if err := rotator.AddRotator(mgr, s.rotator); err != nil {
		return nil, fmt.Errorf("cert-controller: %w", err)
	}

	secrets := informers.NewSharedInformerFactoryWithOptions(clients, 0,
		informers.WithNamespace(o.Secret.Namespace),
		informers.WithTweakListOptions(byName(o.Secret.Name)))
	secretInformer := secrets.Core().V1().Secrets()
	s.keeper = &caKeeper{
		o: o, clients: clients, secrets: secretInformer.Lister().Secrets(o.Secret.Namespace),
		secretsSynced: secretInformer.Informer().HasSynced,
		newCA:         s.rotator.CreateCACert, now: time.Now,
		trigger: make(chan struct{}, 1), log: o.Log.WithName("ca"),
	}
	s.mirror = &secretMirror{source: s, factory: secrets, log: o.Log.WithName("mirror")}
	if _, err := secretInformer.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.mirror.onSecret(obj); s.keeper.poke() },
		UpdateFunc: func(_, obj any) { s.mirror.onSecret(obj); s.keeper.poke() },
		DeleteFunc: func(any) { s.keeper.poke() },
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(s.mirror); err != nil {
		return nil, err
	}
	if err := mgr.Add(s.keeper); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate returns the serving certificate last written to CertDir.
func (s *SelfManaged) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	f := s.files.Load()
	if f == nil {
		return nil, s.notYet()
	}
	return f.GetCertificate(hello)
}

// Healthy checks the serving certificate in use.
func (s *SelfManaged) Healthy() error {
	f := s.files.Load()
	if f == nil {
		return s.notYet()
	}
	return f.Healthy()
}

// CABundle is every CA the caBundles trust now: the one that signs the
// serving certificate, the next one once made, the previous one until it
// expires.
func (s *SelfManaged) CABundle() []byte {
	if f := s.files.Load(); f != nil {
		return f.CABundle()
	}
	return nil
}

func (s *SelfManaged) notYet() error {
	return fmt.Errorf("no serving certificate yet: waiting for Secret %s (the leader issues it)", s.o.Secret)
}

func byName(name string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
}

var rotators atomic.Int32

// rotatorControllerName is unique per process: controller-runtime refuses
// two controllers of one name, and tests start several servers.
func rotatorControllerName() string {
	if n := rotators.Add(1); n > 1 {
		return fmt.Sprintf("cert-rotator-%d", n)
	}
	return "cert-rotator"
}

// ensureSecret creates the Secret, empty, when it does not exist:
// cert-controller fills it but does not create it.
func ensureSecret(ctx context.Context, clients kubernetes.Interface, key types.NamespacedName) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := clients.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("--cert-secret %s: %w", key, err)
	}
	_, err = clients.CoreV1().Secrets(key.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager},
		},
		Type: corev1.SecretTypeOpaque,
	}, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating --cert-secret %s: %w", key, err)
	}
	return nil
}

// secretMirror runs on every replica: it watches the Secret and writes the
// serving pair and CA bundle into CertDir, then loads them.
type secretMirror struct {
	source  *SelfManaged
	factory informers.SharedInformerFactory
	log     logr.Logger

	mu      sync.Mutex
	written []byte // tls.crt + tls.key + bundle last written
}

// NeedLeaderElection is false: every replica serves.
func (m *secretMirror) NeedLeaderElection() bool { return false }

func (m *secretMirror) Start(ctx context.Context) error {
	m.factory.Start(ctx.Done())
	<-ctx.Done()
	m.factory.Shutdown()
	return nil
}

func (m *secretMirror) onSecret(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	certPEM, keyPEM := secret.Data[CertFile], secret.Data[KeyFile]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return // not issued yet
	}
	bundle := secret.Data[BundleFile]
	if len(bundle) == 0 {
		bundle = secret.Data[CAFile] // cert-controller's bootstrap, before caKeeper's first pass
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		m.log.Error(err, "Secret holds no usable serving certificate, keeping the one in use", "secret", m.source.o.Secret)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	state := slices.Concat(certPEM, keyPEM, bundle)
	if bytes.Equal(state, m.written) {
		return
	}
	cas, _ := ParseCertificates(bundle)
	if current := m.source.files.Load(); issuerOf(leaf, cas) == nil && current != nil && current.Healthy() == nil {
		// Only when cert-controller made a CA by itself (bootstrap, or a CA
		// found too close to expiry): caKeeper adds it to the caBundles
		// within a check, and the Secret update that follows brings us back
		// here.
		m.log.Info("new serving certificate is signed by a CA the caBundles do not trust yet; serving the current one until they do", "new", describe(leaf))
		return
	}
	if err := WriteDir(m.source.o.CertDir, bundle, KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}); err != nil {
		m.log.Error(err, "writing the serving certificate", "dir", m.source.o.CertDir)
		return
	}
	m.written = state
	if f := m.source.files.Load(); f != nil {
		if err := f.Reload(); err != nil {
			m.log.Error(err, "loading the serving certificate", "dir", m.source.o.CertDir)
			return
		}
	} else {
		f, err := NewFiles(FilesOptions{Dir: m.source.o.CertDir, Observe: m.source.o.Observe, Log: m.log})
		if err != nil {
			m.log.Error(err, "loading the serving certificate", "dir", m.source.o.CertDir)
			return
		}
		m.source.files.Store(f)
	}
	m.log.Info("serving certificate in use", "certificate", describe(leaf), "notAfter", leaf.NotAfter.UTC())
}

// caKeeper runs on the leader: it makes the next CA, promotes it, and keeps
// the caBundle of both webhook configurations equal to every CA to trust.
type caKeeper struct {
	o             SelfManagedOptions
	clients       kubernetes.Interface
	secrets       corelisters.SecretNamespaceLister
	secretsSynced func() bool
	newCA         func(begin, end time.Time) (*rotator.KeyPairArtifacts, error)
	now           func() time.Time
	trigger       chan struct{}
	log           logr.Logger
}

// NeedLeaderElection is true: one replica writes.
func (k *caKeeper) NeedLeaderElection() bool { return true }

// poke asks for a pass soon; passes coalesce.
func (k *caKeeper) poke() {
	select {
	case k.trigger <- struct{}{}:
	default:
	}
}

func (k *caKeeper) Start(ctx context.Context) error {
	configs := informers.NewSharedInformerFactoryWithOptions(k.clients, 0, informers.WithTweakListOptions(byName(k.o.WebhookConfigName)))
	mutating := configs.Admissionregistration().V1().MutatingWebhookConfigurations()
	validating := configs.Admissionregistration().V1().ValidatingWebhookConfigurations()
	// A configuration re-applied without its caBundle (kubectl apply of the
	// manifests) is repaired at once, not at the next check.
	for _, informer := range []toolscache.SharedIndexInformer{mutating.Informer(), validating.Informer()} {
		if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { k.poke() },
			UpdateFunc: func(any, any) { k.poke() },
		}); err != nil {
			return err
		}
	}
	configs.Start(ctx.Done())
	defer configs.Shutdown()
	if !toolscache.WaitForCacheSync(ctx.Done(), k.secretsSynced, mutating.Informer().HasSynced, validating.Informer().HasSynced) {
		return nil // ctx ended
	}
	webhooks := webhookConfigs{
		mutating: mutating.Lister(), validating: validating.Lister(),
		clients: k.clients, name: k.o.WebhookConfigName,
	}
	ticker := time.NewTicker(k.o.Schedule.CheckInterval())
	defer ticker.Stop()
	k.poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-k.trigger:
		}
		if err := k.pass(ctx, webhooks); err != nil {
			if apierrors.IsConflict(err) {
				continue // the newer Secret's event triggers the next pass
			}
			k.log.Error(err, "keeping the CA current")
		}
	}
}

// pass makes, promotes and publishes CAs as the Schedule says. It is
// idempotent: each pass starts from the Secret and the configurations.
func (k *caKeeper) pass(ctx context.Context, webhooks webhookConfigs) error {
	secret, err := k.secrets.Get(k.o.Secret.Name)
	if apierrors.IsNotFound(err) {
		k.log.Info("Secret deleted, creating it again; cert-controller issues a new CA", "secret", k.o.Secret)
		return ensureSecret(ctx, k.clients, k.o.Secret)
	}
	if err != nil {
		return err
	}
	cas, err := ParseCertificates(secret.Data[CAFile])
	if err != nil || len(cas) == 0 {
		return nil // cert-controller has not issued one yet
	}
	current := cas[0]
	now := k.now()
	left := current.NotAfter.Sub(now)
	updated := secret.DeepCopy()
	changed := false

	var next *x509.Certificate
	if nexts, err := ParseCertificates(secret.Data[NextCAFile]); err == nil && len(nexts) == 1 && len(secret.Data[NextCAKeyFile]) > 0 {
		next = nexts[0]
	}
	var retired *x509.Certificate
	switch {
	case next == nil && k.o.Schedule.PrepareNextCA(left):
		// Made with cert-controller itself, so it reads it back as its own.
		ca, err := k.newCA(now.Add(-time.Hour), now.Add(k.o.Schedule.CALifetime))
		if err != nil {
			return fmt.Errorf("making the next CA: %w", err)
		}
		updated.Data[NextCAFile], updated.Data[NextCAKeyFile] = ca.CertPEM, ca.KeyPEM
		next, changed = ca.Cert, true
		k.log.Info("next CA made; it is trusted from now on and signs from the promotion on",
			"next", describe(next), "promotionIn", (left - k.o.Schedule.CALifetime/6).Round(time.Second))
	case next != nil && k.o.Schedule.PromoteNextCA(left):
		// cert-controller sees a serving certificate that does not verify
		// against the new ca.crt and issues one signed by it.
		updated.Data[CAFile], updated.Data[CAKeyFile] = updated.Data[NextCAFile], updated.Data[NextCAKeyFile]
		delete(updated.Data, NextCAFile)
		delete(updated.Data, NextCAKeyFile)
		retired, current, next, changed = current, next, nil, true
		k.log.Info("next CA promoted; the previous one stays trusted until it expires",
			"current", describe(current), "previous", describe(retired), "previousNotAfter", retired.NotAfter.UTC())
	}

	previous, _ := ParseCertificates(secret.Data[BundleFile])
	bundle := trustBundle(now, append([]*x509.Certificate{current, next, retired}, previous...))
	if err := webhooks.inject(ctx, bundle, k.log); err != nil {
		return err
	}
	if !bytes.Equal(updated.Data[BundleFile], bundle) {
		updated.Data[BundleFile], changed = bundle, true
	}
	if !changed {
		return nil
	}
	_, err = k.clients.CoreV1().Secrets(k.o.Secret.Namespace).Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// trustBundle is the PEM of every unexpired CA, each once, the one expiring
// last first: the same set always gives the same bytes, so a promotion, which
// changes the order of nothing, does not rewrite the caBundles.
func trustBundle(now time.Time, cas []*x509.Certificate) []byte {
	var keep []*x509.Certificate
	for _, ca := range cas {
		if ca == nil || !now.Before(ca.NotAfter) || slices.ContainsFunc(keep, func(k *x509.Certificate) bool { return k.Equal(ca) }) {
			continue
		}
		keep = append(keep, ca)
	}
	slices.SortFunc(keep, func(a, b *x509.Certificate) int {
		if c := b.NotAfter.Compare(a.NotAfter); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	var out []byte
	for _, ca := range keep {
		out = append(out, encodePEM("CERTIFICATE", ca.Raw)...)
	}
	return out
}

// webhookConfigs writes the caBundle of our two webhook configurations.
type webhookConfigs struct {
	mutating interface {
		Get(string) (*admissionregistrationv1.MutatingWebhookConfiguration, error)
	}
	validating interface {
		Get(string) (*admissionregistrationv1.ValidatingWebhookConfiguration, error)
	}
	clients kubernetes.Interface
	name    string
}

// inject sets every webhook's clientConfig.caBundle to bundle with a JSON
// patch that names each webhook (so a concurrent edit that reorders them
// fails the patch instead of misplacing a bundle) and touches nothing else.
// A configuration that does not exist is skipped: nothing calls us through
// it.
func (w webhookConfigs) inject(ctx context.Context, bundle []byte, log logr.Logger) error {
	var errs []error
	if mwc, err := w.mutating.Get(w.name); err == nil {
		names := make([]string, len(mwc.Webhooks))
		current := make([][]byte, len(mwc.Webhooks))
		for i, h := range mwc.Webhooks {
			names[i], current[i] = h.Name, h.ClientConfig.CABundle
		}
		if patch := caBundlePatch(names, current, bundle); patch != nil {
			_, err := w.clients.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, w.name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
			errs = append(errs, err)
			if err == nil {
				log.Info("caBundle updated", "kind", "MutatingWebhookConfiguration", "name", w.name, "cas", bytes.Count(bundle, []byte("BEGIN CERTIFICATE")))
			}
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if vwc, err := w.validating.Get(w.name); err == nil {
		names := make([]string, len(vwc.Webhooks))
		current := make([][]byte, len(vwc.Webhooks))
		for i, h := range vwc.Webhooks {
			names[i], current[i] = h.Name, h.ClientConfig.CABundle
		}
		if patch := caBundlePatch(names, current, bundle); patch != nil {
			_, err := w.clients.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, w.name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
			errs = append(errs, err)
			if err == nil {
				log.Info("caBundle updated", "kind", "ValidatingWebhookConfiguration", "name", w.name, "cas", bytes.Count(bundle, []byte("BEGIN CERTIFICATE")))
			}
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// caBundlePatch is the JSON patch that sets the caBundle of every webhook
// whose caBundle differs from bundle, or nil when none does.
func caBundlePatch(names []string, current [][]byte, bundle []byte) []byte {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	for i, name := range names {
		if bytes.Equal(current[i], bundle) {
			continue
		}
		ops = append(ops,
			op{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: name},
			op{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: base64.StdEncoding.EncodeToString(bundle)})
	}
	if len(ops) == 0 {
		return nil
	}
	patch, _ := json.Marshal(ops)
	return patch
}
