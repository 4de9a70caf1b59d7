package webhook

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// IngressClassCache serves IngressClasses from a read-only informer cache.
type IngressClassCache struct {
	lister networkinglisters.IngressClassLister
	synced cache.InformerSynced
}

// NewIngressClassCache registers an IngressClass informer with factory.
func NewIngressClassCache(factory informers.SharedInformerFactory) *IngressClassCache {
	informer := factory.Networking().V1().IngressClasses()
	return &IngressClassCache{lister: informer.Lister(), synced: informer.Informer().HasSynced}
}

// View returns the cache as rules.IngressClasses, or nil until it has synced:
// an unsynced cache would turn every class into "not found".
func (c *IngressClassCache) View() rules.IngressClasses {
	if c == nil || !c.synced() {
		return nil
	}
	return ingressClassView{c.lister}
}

type ingressClassView struct {
	lister networkinglisters.IngressClassLister
}

func (v ingressClassView) IngressClass(name string) (rules.IngressClass, bool) {
	ic, err := v.lister.Get(name)
	if err != nil {
		return rules.IngressClass{}, false
	}
	return rules.IngressClassOf(ic), true
}

func (v ingressClassView) DefaultIngressClass() (rules.IngressClass, bool) {
	all, err := v.lister.List(labels.Everything())
	if err != nil {
		return rules.IngressClass{}, false
	}
	var defaults []*networkingv1.IngressClass
	for _, ic := range all {
		if ic.Annotations[rules.IsDefaultClassAnnotation] == "true" {
			defaults = append(defaults, ic)
		}
	}
	if len(defaults) == 0 {
		return rules.IngressClass{}, false
	}
	sort.Slice(defaults, func(i, j int) bool { return defaults[i].Name < defaults[j].Name })
	return rules.IngressClassOf(defaults[0]), true
}

// controlPlaneKinds are the kinds whose spec.ingress names the API host of a
// hosted control plane, in lookup order.
var controlPlaneKinds = []schema.GroupKind{
	{Group: "controlplane.cluster.x-k8s.io", Kind: "K0smotronControlPlane"},
	{Group: "k0smotron.io", Kind: "Cluster"},
}

// ControlPlaneCache finds control planes through dynamic informers, started
// the first time they are needed for a kind the cluster serves. The CRDs may
// be installed after the webhook starts, so a kind not found is looked up
// again, at most once per rediscoverEvery.
type ControlPlaneCache struct {
	dynamic dynamic.Interface
	mapper  meta.ResettableRESTMapper
	log     logr.Logger
	ctx     context.Context

	mu         sync.Mutex
	informers  map[schema.GroupKind]cache.SharedIndexInformer
	lastLookup time.Time
}

const (
	rediscoverEvery  = 10 * time.Second
	cacheSyncTimeout = 2 * time.Second
)

// NewControlPlaneCache returns a cache whose informers run until ctx ends.
func NewControlPlaneCache(ctx context.Context, cfg *rest.Config, log logr.Logger) (*ControlPlaneCache, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &ControlPlaneCache{
		dynamic:   dyn,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		log:       log,
		ctx:       ctx,
		informers: map[schema.GroupKind]cache.SharedIndexInformer{},
	}, nil
}

// IngressAPIServer implements ControlPlaneLookup. found is the kind of the
// object found, empty when there is none.
func (c *ControlPlaneCache) IngressAPIServer(ctx context.Context, namespace, name string) (*rules.APIServer, string, error) {
	for _, gk := range controlPlaneKinds {
		informer, err := c.informer(ctx, gk)
		if err != nil {
			return nil, "", err
		}
		if informer == nil {
			continue
		}
		item, exists, err := informer.GetStore().GetByKey(namespace + "/" + name)
		if err != nil {
			return nil, "", err
		}
		if !exists {
			continue
		}
		u, ok := item.(*unstructured.Unstructured)
		if !ok {
			return nil, "", fmt.Errorf("unexpected %T in the %s cache", item, gk.Kind)
		}
		api, _, err := mutate.IngressAPIServer(u.Object)
		if err != nil {
			return nil, gk.Kind, err
		}
		return api, gk.Kind, nil
	}
	return nil, "", nil
}

// informer returns the synced informer for gk, nil when the cluster does not
// serve that kind.
func (c *ControlPlaneCache) informer(ctx context.Context, gk schema.GroupKind) (cache.SharedIndexInformer, error) {
	c.mu.Lock()
	informer, ok := c.informers[gk]
	if !ok {
		var err error
		informer, err = c.startInformer(gk)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	c.mu.Unlock()
	if informer == nil {
		return nil, nil
	}
	// Bounded well inside the webhook timeout, so that an API server that
	// cannot be listed turns into a warning, not a timed-out admission.
	ctx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil, fmt.Errorf("the %s cache has not synced yet", gk.Kind)
	}
	return informer, nil
}

// startInformer must be called with c.mu held.
func (c *ControlPlaneCache) startInformer(gk schema.GroupKind) (cache.SharedIndexInformer, error) {
	mapping, err := c.mapper.RESTMapping(gk)
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		if time.Since(c.lastLookup) > rediscoverEvery {
			c.lastLookup = time.Now()
			c.mapper.Reset()
			mapping, err = c.mapper.RESTMapping(gk)
		}
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("discovering %s: %w", gk, err)
	}
	informer := dynamicinformer.NewFilteredDynamicInformer(c.dynamic, mapping.Resource, "", 0, cache.Indexers{}, nil).Informer()
	go informer.Run(c.ctx.Done())
	c.informers[gk] = informer
	c.log.Info("watching control planes", "resource", mapping.Resource.String())
	return informer, nil
}
