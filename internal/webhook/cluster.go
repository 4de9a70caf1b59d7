package webhook

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// errClassesSyncing is returned while the IngressClass view is syncing: an
// admission then fails (and failurePolicy decides) rather than resolve a
// class by its name, the HAProxy Technologies vs community mistake the
// product exists to prevent.
var errClassesSyncing = errors.New("the IngressClass view has not synced yet")

// IngressClassCache serves IngressClasses from the manager's cache. It is a
// manager.Runnable that starts the informer with the server and records when
// it has synced; until then View reports errClassesSyncing.
type IngressClassCache struct {
	cache  cache.Cache
	synced atomic.Bool
	err    atomic.Pointer[error]
}

// NewIngressClassCache returns a view over c; add it to the manager.
func NewIngressClassCache(c cache.Cache) *IngressClassCache {
	return &IngressClassCache{cache: c}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica resolves classes.
func (c *IngressClassCache) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: it starts the informer and waits for it
// to sync.
func (c *IngressClassCache) Start(ctx context.Context) error {
	if _, err := c.cache.GetInformer(ctx, &networkingv1.IngressClass{}); err != nil {
		err = fmt.Errorf("watching IngressClasses: %w", err)
		c.err.Store(&err)
		return err
	}
	c.synced.Store(true)
	return nil
}

// Synced is the readiness check.
func (c *IngressClassCache) Synced() error {
	if c.synced.Load() {
		return nil
	}
	if err := c.err.Load(); err != nil {
		return *err
	}
	return errClassesSyncing
}

// View returns the classes as rules.IngressClasses. Without a cluster (c is
// nil) it returns nil, nil: classes cannot be read and are guessed, with a
// warning. With a cluster it never returns a view before the cache has
// synced: an unsynced cache would turn every class into "not found".
func (c *IngressClassCache) View() (rules.IngressClasses, error) {
	if c == nil {
		return nil, nil
	}
	if err := c.Synced(); err != nil {
		return nil, err
	}
	return ingressClassView{c.cache}, nil
}

type ingressClassView struct {
	reader client.Reader
}

func (v ingressClassView) IngressClass(name string) (rules.IngressClass, bool) {
	var ic networkingv1.IngressClass
	if err := v.reader.Get(context.Background(), types.NamespacedName{Name: name}, &ic); err != nil {
		return rules.IngressClass{}, false
	}
	return rules.IngressClassOf(&ic), true
}

func (v ingressClassView) DefaultIngressClass() (rules.IngressClass, bool) {
	var all networkingv1.IngressClassList
	if err := v.reader.List(context.Background(), &all, client.UnsafeDisableDeepCopy); err != nil {
		return rules.IngressClass{}, false
	}
	var defaults []*networkingv1.IngressClass
	for i := range all.Items {
		if all.Items[i].Annotations[rules.IsDefaultClassAnnotation] == "true" {
			defaults = append(defaults, &all.Items[i])
		}
	}
	if len(defaults) == 0 {
		return rules.IngressClass{}, false
	}
	sort.Slice(defaults, func(i, j int) bool { return defaults[i].Name < defaults[j].Name })
	return rules.IngressClassOf(defaults[0]), true
}

// ControlPlaneCache finds control planes in the manager's cache, through the
// controlplanes.Watcher that watches each control-plane kind from the moment
// the cluster serves it.
type ControlPlaneCache struct {
	Watcher *controlplanes.Watcher
}

// IngressAPIServer implements ControlPlaneLookup. found is the kind of the
// object found, empty when there is none.
func (c *ControlPlaneCache) IngressAPIServer(ctx context.Context, namespace, name string) (*rules.APIServer, string, error) {
	if err := c.Watcher.Synced(); err != nil {
		return nil, "", err
	}
	u, err := c.Watcher.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) || (err == nil && u == nil) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	api, _, err := mutate.IngressAPIServer(u.Object)
	if err != nil {
		return nil, u.GetKind(), err
	}
	return api, u.GetKind(), nil
}
