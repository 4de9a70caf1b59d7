package routes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// ControlPlanes is what the controller needs of the control-plane view
// (*controlplanes.Watcher).
type ControlPlanes interface {
	// Get returns the control plane NAMESPACE/NAME, nil when there is none.
	Get(ctx context.Context, namespace, name string) (*unstructured.Unstructured, error)
	// OnServed calls fn for each control-plane kind once it is watched.
	OnServed(fn func(schema.GroupVersionKind))
}

// Options configure the routes controller.
type Options struct {
	// Policy returns the policy in force; nil while none is loaded.
	Policy func() *rules.Policy
	// Classes returns the IngressClass view (nil when no cluster view is
	// configured), or an error while it has not synced (the webhook's
	// IngressClassCache.View).
	Classes       func() (rules.IngressClasses, error)
	ControlPlanes ControlPlanes
	Log           logr.Logger
	// Resync is how often every Ingress is reconciled again, repairing routes
	// edited or deleted by hand and following IngressClass and policy
	// changes; 0 means DefaultResync.
	Resync time.Duration
}

// DefaultResync is Options.Resync when unset.
const DefaultResync = 5 * time.Minute

// k0smotronLabel selects the Ingresses k0smotron creates (label app=k0smotron
// on every object it makes). The manager's cache should hold only those
// Ingresses: see CacheByObject.
var k0smotronLabel = labels.SelectorFromSet(labels.Set{"app": "k0smotron"})

// CacheByObject is the cache option for Ingresses that Setup expects
// (cache.Options.ByObject): only k0smotron's, not every Ingress of the
// management cluster.
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{&networkingv1.Ingress{}: {Label: k0smotronLabel}}
}

// Setup registers the routes controller with mgr. It reads Ingresses from
// mgr's cache (see CacheByObject), and route objects with mgr's API reader:
// there is no informer per route kind, and a kind whose CRD is not installed
// costs nothing but a log line.
func Setup(mgr manager.Manager, o Options) error {
	if o.Policy == nil || o.ControlPlanes == nil {
		return errors.New("routes: Options.Policy and Options.ControlPlanes are required")
	}
	if o.Classes == nil {
		o.Classes = func() (rules.IngressClasses, error) { return nil, nil }
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	r := &Reconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Options: o}
	c, err := builder.ControllerManagedBy(mgr).
		Named("routes").
		For(&networkingv1.Ingress{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
			return k0smotronLabel.Matches(labels.Set(obj.GetLabels()))
		}))).
		Build(r)
	if err != nil {
		return fmt.Errorf("routes controller: %w", err)
	}
	// A control plane's class or hosts changing changes its route: watch
	// each control-plane kind once the cluster serves it.
	toIngress := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: IngressName(obj.GetName())}}}
	})
	o.ControlPlanes.OnServed(func(gvk schema.GroupVersionKind) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		go func() {
			if err := c.Watch(source.Kind[client.Object](mgr.GetCache(), u, toIngress)); err != nil {
				o.Log.Error(err, "watching control planes for routes", "kind", gvk.String())
			}
		}()
	})
	return nil
}

// Reconciler keeps the routes of one Ingress.
type Reconciler struct {
	Client  client.Client // Ingresses from the cache; writes
	Reader  client.Reader // route objects, uncached
	Options Options
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := r.Options.Log.WithValues("ingress", req.String())
	resync := reconcile.Result{RequeueAfter: r.Options.Resync}
	var ing networkingv1.Ingress
	err := r.Client.Get(ctx, req.NamespacedName, &ing)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, r.prune(ctx, log, req.Namespace, req.Name, nil)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	desired, err := r.desired(ctx, &ing)
	var invalid *invalidIngress
	switch {
	case errors.As(err, &invalid):
		log.Error(err, "not keeping a passthrough route")
		// Bad input (a host that is not a DNS name) does not get better by
		// retrying fast; the resync looks again.
		return resync, r.prune(ctx, log, ing.Namespace, ing.Name, nil)
	case err != nil:
		// A view not synced yet, no policy yet, an API error: retried with
		// backoff, and the routes that exist are left alone meanwhile.
		return reconcile.Result{}, err
	}
	var keep []string
	for _, u := range desired {
		err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership)
		if meta.IsNoMatchError(err) {
			log.Info("route kind not served by the API server (CRD not installed?): not keeping the route", "kind", u.GroupVersionKind().String())
			return resync, nil
		}
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		keep = append(keep, routeKey(u.GroupVersionKind(), u.GetName()))
	}
	if len(desired) > 0 {
		log.V(1).Info("passthrough route kept", "kind", desired[0].GetKind(), "routes", keep)
	}
	return resync, r.prune(ctx, log, ing.Namespace, ing.Name, keep)
}

// desired returns the routes ing should have: none unless it is the Ingress
// k0smotron made for a control plane whose resolved rule names a route kind.
func (r *Reconciler) desired(ctx context.Context, ing *networkingv1.Ingress) ([]*unstructured.Unstructured, error) {
	cp, err := r.controlPlaneOf(ctx, ing)
	if err != nil || cp == nil {
		return nil, err
	}
	policy := r.Options.Policy()
	if policy == nil {
		return nil, errors.New("no policy loaded yet")
	}
	classes, err := r.Options.Classes()
	if err != nil {
		return nil, err
	}
	_, className, _ := controlPlaneHosts(cp)
	_, kind, ok := RouteKindOf(policy.ResolveClass(className, classes))
	if !ok {
		return nil, nil
	}
	routes, err := Desired(kind, ing, cp)
	if err != nil {
		return nil, &invalidIngress{err}
	}
	return routes, nil
}

// invalidIngress is an Ingress that cannot be turned into a route.
type invalidIngress struct{ err error }

func (e *invalidIngress) Error() string { return e.err.Error() }
func (e *invalidIngress) Unwrap() error { return e.err }

// controlPlaneOf finds the control plane ing was made for: the one named by
// k0smotron's label cluster, else by the name kmc-<name>.
func (r *Reconciler) controlPlaneOf(ctx context.Context, ing *networkingv1.Ingress) (*unstructured.Unstructured, error) {
	candidates := []string{}
	if name := ing.Labels["cluster"]; name != "" {
		candidates = append(candidates, name)
	}
	if name, ok := strings.CutPrefix(ing.Name, "kmc-"); ok && !slices.Contains(candidates, name) {
		candidates = append(candidates, name)
	}
	for _, name := range candidates {
		cp, err := r.Options.ControlPlanes.Get(ctx, ing.Namespace, name)
		if err != nil {
			return nil, err
		}
		if cp != nil && cp.GetDeletionTimestamp() == nil && MadeFor(ing, cp) {
			return cp, nil
		}
	}
	return nil, nil
}

func routeKey(gvk schema.GroupVersionKind, name string) string { return gvk.Kind + "/" + name }

// prune deletes the routes the webhook made for Ingress namespace/name that
// are not in keep.
func (r *Reconciler) prune(ctx context.Context, log logr.Logger, namespace, ingress string, keep []string) error {
	var errs []error
	for _, kind := range Kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(kind.GVK.GroupVersion().WithKind(kind.GVK.Kind + "List"))
		err := r.Reader.List(ctx, list, client.InNamespace(namespace),
			client.MatchingLabels{ManagedByLabel: ManagedBy, IngressLabel: ingress})
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range list.Items {
			u := &list.Items[i]
			if slices.Contains(keep, routeKey(kind.GVK, u.GetName())) {
				continue
			}
			if err := r.Client.Delete(ctx, u); client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
				continue
			}
			log.Info("passthrough route removed", "kind", kind.GVK.Kind, "name", u.GetName())
		}
	}
	return errors.Join(errs...)
}
