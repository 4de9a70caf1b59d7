package fleet

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Names PRODUCT.md's "Fleet wiring" defines.
const (
	// ControlPlaneLabel on a fleet ConfigMap names its control plane.
	ControlPlaneLabel = "hcp-ingress.io/control-plane"
	// ChildConfigKey is the ConfigMap key holding the child's
	// MutatingWebhookConfiguration (k0s applies every file of a manifests
	// directory).
	ChildConfigKey = "hcp-ingress-child.yaml"
	// ManifestsEntry is the name of the spec.manifests volume that mounts the
	// ConfigMap into the control plane.
	ManifestsEntry = "hcp-ingress-child"
	// ReadmittedAnnotation is set by repair on a CCM workload that lacks the
	// variables, so that it goes through the webhook again.
	ReadmittedAnnotation = "hcp-ingress.io/readmitted-at"
	// FieldManager owns what repair applies in a child.
	FieldManager = "hcp-ingress-webhook"
	// KubeconfigKey is the key of a Cluster API kubeconfig Secret.
	KubeconfigKey = "value"
)

// ConfigMapName is the fleet ConfigMap of control plane name.
func ConfigMapName(name string) string { return "hcp-ingress-child-" + name }

// Options configure Setup; they mirror serve's flags.
type Options struct {
	// ChildWebhookURL is the base URL child API servers dial
	// (--child-webhook-url). Empty: the fleet is off.
	ChildWebhookURL string
	// Repair enables the repair of children through their kubeconfig
	// Secret (--fleet-repair).
	Repair bool
	// CABundle returns the CA(s) that currently sign the serving
	// certificate (PEM). Read again at every reconcile and every
	// CheckInterval, so a rotation reaches every ConfigMap.
	CABundle func() []byte
	// Policy returns the policy in force (its ccm.namespaces scopes the child
	// configuration; its rules decide the passthrough state). Nil until one
	// is loaded.
	Policy func() *rules.Policy
	// Log receives a line for every action and every bad input, naming the
	// object.
	Log logr.Logger
	// Recorder records an Event on the control plane for each action.
	Recorder record.EventRecorder

	// CheckInterval is how often the CA bundle and the policy are checked
	// for a change that every ConfigMap must follow, and how often the
	// gauges are recomputed. Default 10s.
	CheckInterval time.Duration
	// RepairInterval is how often a repaired child is looked at again.
	// Default 5m.
	RepairInterval time.Duration
	// RepairWorkers children are repaired in parallel. Default 4.
	RepairWorkers int
	// ChildTimeout bounds one repair pass against one child (every request
	// to its API server together). Default 20s.
	ChildTimeout time.Duration
	// RetryBase and RetryMax bound the exponential backoff of a child whose
	// repair failed. Defaults 2s and 5m.
	RetryBase, RetryMax time.Duration
}

func (o *Options) defaults() error {
	if o.CABundle == nil {
		return errors.New("fleet: Options.CABundle is required")
	}
	if o.Policy == nil {
		return errors.New("fleet: Options.Policy is required")
	}
	if o.Recorder == nil {
		return errors.New("fleet: Options.Recorder is required")
	}
	setDefault(&o.CheckInterval, 10*time.Second)
	setDefault(&o.RepairInterval, 5*time.Minute)
	setDefault(&o.ChildTimeout, 20*time.Second)
	setDefault(&o.RetryBase, 2*time.Second)
	setDefault(&o.RetryMax, 5*time.Minute)
	if o.RepairWorkers <= 0 {
		o.RepairWorkers = 4
	}
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// CacheByObject is what the manager's cache.Options.ByObject must hold for
// the fleet: ConfigMaps are cached only when they carry ControlPlaneLabel,
// so the cache holds one small ConfigMap per control plane and none of the
// cluster's other ConfigMaps.
func CacheByObject() map[client.Object]cache.ByObject {
	labelled, err := labels.NewRequirement(ControlPlaneLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Label: labels.NewSelector().Add(*labelled)},
	}
}

// Setup adds the fleet to mgr: with ChildWebhookURL the wiring controller
// and the gauges; with Repair also the repair controller. Without
// ChildWebhookURL it adds nothing. The controllers
// are leader-elected; they watch each control-plane kind from the moment
// watcher reports it served. mgr's cache must be built with CacheByObject
// and controlplanes.Transform.
func Setup(mgr manager.Manager, watcher *controlplanes.Watcher, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if o.Repair && o.ChildWebhookURL == "" {
		return errors.New("--fleet-repair needs --child-webhook-url")
	}
	if o.ChildWebhookURL != "" {
		// Fail at start on a URL the ConfigMaps could not carry.
		if _, err := ChildConfig("ns", "name", o.ChildWebhookURL, nil, nil); err != nil {
			return fmt.Errorf("--child-webhook-url: %w", err)
		}
	}
	if o.ChildWebhookURL == "" {
		// Nothing to do, and no RBAC to read ConfigMaps or Namespaces with
		// (the gauges need both): an install without wiring (the in-child
		// overlay) must not start informers it is forbidden to run.
		return nil
	}
	if err := mgr.Add(&gauges{client: mgr.GetClient(), watcher: watcher, o: o}); err != nil {
		return err
	}
	if err := setupWiring(mgr, watcher, o); err != nil {
		return err
	}
	if o.Repair {
		return setupRepair(mgr, watcher, o)
	}
	return nil
}

// target is what the fleet decides about one control plane.
type target struct {
	// Wired is true when the control plane should have its ConfigMap.
	Wired bool
	// Invalid, when set, says why the ingress block cannot be used; the
	// existing state is then left alone.
	Invalid string
	API     *rules.APIServer
}

// decide says whether control plane cp (trimmed, may be nil) is wired:
// it has a usable spec.ingress and neither it nor its namespace is
// skip-labelled.
func decide(cp *unstructured.Unstructured, namespaceSkipped bool) target {
	if cp == nil || cp.GetDeletionTimestamp() != nil {
		return target{}
	}
	if namespaceSkipped || cp.GetLabels()[mutate.SkipLabel] == "true" {
		return target{}
	}
	ingress, present := nestedField(cp.Object, "spec", "ingress")
	if !present || ingress == nil {
		return target{}
	}
	api, ok, err := mutate.IngressAPIServer(cp.Object)
	switch {
	case err != nil:
		return target{Invalid: err.Error()}
	case !ok:
		return target{Invalid: "spec.ingress.apiHost: empty, so the webhook cannot tell the child's CCM where its API server is"}
	}
	return target{Wired: true, API: api}
}

func nestedField(obj map[string]any, fields ...string) (any, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if err != nil {
		return nil, false
	}
	return v, found
}

// hasManifestsEntry reports whether spec.manifests has the entry named
// ManifestsEntry.
func hasManifestsEntry(cp *unstructured.Unstructured) bool {
	list, _ := nestedField(cp.Object, "spec", "manifests")
	items, _ := list.([]any)
	for _, item := range items {
		if m, ok := item.(map[string]any); ok && m["name"] == ManifestsEntry {
			return true
		}
	}
	return false
}

// CCMNamespaces is the policy's ccm.namespaces, the namespace scope of the
// child configuration (child-config and the fleet ConfigMaps both use it).
func CCMNamespaces(p *rules.Policy) []string {
	if p == nil || p.CCM() == nil {
		return nil
	}
	return p.CCM().Namespaces()
}

// namespaceMeta is a metadata-only Namespace (read through a metadata-only
// informer: only its labels matter).
func namespaceMeta(name string) *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	ns.SetName(name)
	return ns
}
