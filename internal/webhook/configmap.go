package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// PolicyKey is the ConfigMap key that holds the policy document.
const PolicyKey = "policy.yaml"

// Event reasons on the policy ConfigMap.
const (
	ReasonPolicyLoaded  = "PolicyLoaded"
	ReasonPolicyInvalid = "PolicyInvalid"
	// ReasonPolicyDefaults is recorded on a deleted policy ConfigMap.
	ReasonPolicyDefaults = "PolicyDefaults"
)

// PolicyConfigMap keeps the policy of one ConfigMap in force. It watches that
// one object (an informer with a field selector on its name), loads every
// change, and swaps the store atomically. A change that does not load keeps
// the last good policy and is reported: a Warning Event on the ConfigMap with
// every error and its field path, a log line, a metric and /readyz details.
// Deleting the ConfigMap returns to the embedded defaults.
type PolicyConfigMap struct {
	Namespace, Name string

	clients  kubernetes.Interface
	store    *PolicyStore
	log      logr.Logger
	recorder record.EventRecorder

	mu         sync.Mutex
	lastLoaded string // resourceVersion of the last ConfigMap handled
}

// NewPolicyConfigMap parses ref (NAMESPACE/NAME).
func NewPolicyConfigMap(ref string, clients kubernetes.Interface, store *PolicyStore, log logr.Logger) (*PolicyConfigMap, error) {
	namespace, name, ok := strings.Cut(ref, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("--policy-configmap %q: want NAMESPACE/NAME", ref)
	}
	return &PolicyConfigMap{Namespace: namespace, Name: name, clients: clients, store: store, log: log}, nil
}

// Source is how the ConfigMap is named in policy sources and messages.
func (c *PolicyConfigMap) Source() string {
	return fmt.Sprintf("configmap %s/%s", c.Namespace, c.Name)
}

// Run watches the ConfigMap until ctx ends.
func (c *PolicyConfigMap) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.clients.CoreV1().Events(c.Namespace)})
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "hcp-ingress-webhook"})

	factory := informers.NewSharedInformerFactoryWithOptions(c.clients, 0,
		informers.WithNamespace(c.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", c.Name).String()
		}))
	informer := factory.Core().V1().ConfigMaps().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.apply(obj) },
		UpdateFunc: func(_, obj any) { c.apply(obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			c.deleted()
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				c.event(cm, corev1.EventTypeNormal, ReasonPolicyDefaults,
					"policy ConfigMap deleted: the embedded default policy applies")
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return ctx.Err()
	}
	// An absent ConfigMap means the embedded defaults.
	if _, exists, _ := informer.GetStore().GetByKey(c.Namespace + "/" + c.Name); !exists {
		c.deleted()
	}
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func (c *PolicyConfigMap) apply(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm.ResourceVersion != "" && cm.ResourceVersion == c.lastLoaded {
		return // a resync of what is already in force
	}
	c.lastLoaded = cm.ResourceVersion
	p, err := LoadPolicyConfigMap(cm)
	if err != nil {
		c.store.Fail(c.Source(), err)
		keeping := "no policy is in force yet, so the webhook is not ready"
		if cur := c.store.Current(); cur != nil {
			keeping = fmt.Sprintf("keeping policy generation %d (%s)", cur.Generation, cur.Source)
		}
		c.log.Error(err, "policy did not load", "configmap", c.Source(), "resourceVersion", cm.ResourceVersion, "status", keeping)
		c.event(cm, corev1.EventTypeWarning, ReasonPolicyInvalid, fmt.Sprintf("policy did not load, %s:\n%v", keeping, err))
		return
	}
	state := c.store.Set(p, c.Source())
	c.log.Info("policy loaded", "configmap", c.Source(), "resourceVersion", cm.ResourceVersion, "generation", state.Generation)
	c.event(cm, corev1.EventTypeNormal, ReasonPolicyLoaded, fmt.Sprintf("policy generation %d loaded (resourceVersion %s)", state.Generation, cm.ResourceVersion))
}

func (c *PolicyConfigMap) deleted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastLoaded = ""
	state := c.store.Set(rules.Default(), EmbeddedSource+" ("+c.Source()+" absent)")
	c.log.Info("policy ConfigMap absent: the embedded default policy applies", "configmap", c.Source(), "generation", state.Generation)
}

func (c *PolicyConfigMap) event(cm *corev1.ConfigMap, eventType, reason, message string) {
	if c.recorder != nil {
		c.recorder.Event(cm, eventType, reason, message)
	}
}

// LoadPolicyConfigMap loads the policy of a ConfigMap's policy.yaml key. The
// server and the validating webhook use it, so they agree on what loads.
func LoadPolicyConfigMap(cm *corev1.ConfigMap) (*rules.Policy, error) {
	data, ok := cm.Data[PolicyKey]
	if !ok {
		if _, binary := cm.BinaryData[PolicyKey]; binary {
			return nil, fmt.Errorf("configmap %s/%s: key %s must be in data, not binaryData", cm.Namespace, cm.Name, PolicyKey)
		}
		return nil, fmt.Errorf("configmap %s/%s: key %s is missing", cm.Namespace, cm.Name, PolicyKey)
	}
	// The source names the object and key, so that every error says where.
	p, err := rules.Load(fmt.Sprintf("configmap %s/%s %s", cm.Namespace, cm.Name, PolicyKey), []byte(data))
	if err != nil {
		return nil, err
	}
	return p, nil
}
