package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
)

// wiring keeps the ConfigMap hcp-ingress-child-<name> of every control plane
// with ingress. Its queue is keyed by control-plane namespace/name: a
// K0smotronControlPlane and the k0smotron Cluster of the same name are one
// key, so they never fight over their shared ConfigMap (the control plane,
// first in controlplanes.Kinds, owns it).
type wiring struct {
	client  client.Client // reads the manager's cache
	watcher *controlplanes.Watcher
	o       Options
}

func setupWiring(mgr manager.Manager, watcher *controlplanes.Watcher, o Options) error {
	w := &wiring{client: mgr.GetClient(), watcher: watcher, o: o}
	c, err := controller.New("fleet-wiring", mgr, controller.Options{
		Reconciler:              w,
		MaxConcurrentReconciles: 2,
		NeedLeaderElection:      ptr.To(true),
	})
	if err != nil {
		return err
	}
	// A ConfigMap changed or deleted by someone else is put back.
	byLabel := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, cm *corev1.ConfigMap) []reconcile.Request {
		name := cm.Labels[ControlPlaneLabel]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: cm.Namespace, Name: name}}}
	})
	if err := c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, byLabel)); err != nil {
		return err
	}
	// A change of CA bundle or policy scope reaches every ConfigMap.
	changes := make(chan event.TypedGenericEvent[*unstructured.Unstructured])
	if err := c.Watch(source.Channel(changes, &handler.TypedEnqueueRequestForObject[*unstructured.Unstructured]{})); err != nil {
		return err
	}
	if err := mgr.Add(&contentWatch{wiring: w, events: changes}); err != nil {
		return err
	}
	return watchControlPlanes(mgr, watcher, c, o)
}

// watchControlPlanes adds a watch of each control-plane kind to c the moment
// watcher reports the kind served (the CRDs may come after the webhook).
func watchControlPlanes(mgr manager.Manager, watcher *controlplanes.Watcher, c controller.Controller, o Options) error {
	watcher.OnServed(func(gvk schema.GroupVersionKind) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := c.Watch(source.Kind(mgr.GetCache(), u, &handler.TypedEnqueueRequestForObject[*unstructured.Unstructured]{})); err != nil {
			o.Log.Error(err, "watching control planes", "kind", gvk.String())
		}
	})
	return nil
}

// Reconcile implements reconcile.Reconciler.
func (w *wiring) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := w.watcher.Synced(); err != nil {
		// Deciding from a partial view could delete a ConfigMap whose
		// control plane is not in the cache yet.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	cp, err := w.watcher.Get(ctx, req.Namespace, req.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	log := w.o.Log.WithValues("controlPlane", req.String())
	var t target
	if cp != nil {
		skipped, err := w.namespaceSkipped(ctx, req.Namespace)
		if err != nil {
			return reconcile.Result{}, err
		}
		t = decide(cp, skipped)
	}
	if t.Invalid != "" {
		// Unwiring a child for a typo would break its CCM; the existing
		// ConfigMap (if any) stays until the ingress block is fixed.
		log.Info("not wiring: invalid spec.ingress", "kind", cp.GetKind(), "reason", t.Invalid)
		w.o.Recorder.Eventf(cp, corev1.EventTypeWarning, "InvalidIngress", "not wired to hcp-ingress-webhook: %s", t.Invalid)
		return reconcile.Result{}, nil
	}

	key := types.NamespacedName{Namespace: req.Namespace, Name: ConfigMapName(req.Name)}
	existing := &corev1.ConfigMap{}
	if err := w.client.Get(ctx, key, existing); apierrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return reconcile.Result{}, err
	}

	if !t.Wired {
		return reconcile.Result{}, w.remove(ctx, cp, existing, log)
	}
	if errs := validation.IsDNS1123Subdomain(key.Name); len(errs) > 0 {
		log.Info("not wiring: the ConfigMap name would be invalid", "configMap", key.Name, "reason", errs[0])
		w.o.Recorder.Eventf(cp, corev1.EventTypeWarning, "NameTooLong", "ConfigMap %s cannot be created: %s", key.Name, errs[0])
		return reconcile.Result{}, nil
	}
	want, err := w.desired(cp)
	if errors.Is(err, errNoCABundle) {
		log.Info("not wiring yet: no CA bundle yet (the serving certificate source has none)")
		return reconcile.Result{RequeueAfter: w.o.CheckInterval}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if existing == nil {
		if err := w.client.Create(ctx, want); apierrors.IsAlreadyExists(err) {
			// Not in our cache, so not labelled: someone else's ConfigMap.
			log.Info("not wiring: a ConfigMap of that name exists without the fleet label", "configMap", key.Name)
			w.o.Recorder.Eventf(cp, corev1.EventTypeWarning, "ConfigMapConflict",
				"ConfigMap %s exists and is not labelled %s=%s; not overwriting it", key.Name, ControlPlaneLabel, req.Name)
			return reconcile.Result{}, nil
		} else if err != nil {
			return reconcile.Result{}, err
		}
		log.Info("created the child webhook configuration ConfigMap", "configMap", key.Name)
		w.o.Recorder.Eventf(cp, corev1.EventTypeNormal, "ChildConfigCreated", "ConfigMap %s holds the child's MutatingWebhookConfiguration %s", key.Name, ChildConfigName)
		return reconcile.Result{}, nil
	}
	if upToDate(existing, want) {
		return reconcile.Result{}, nil
	}
	updated := existing.DeepCopy()
	updated.Data = want.Data
	updated.BinaryData = nil
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	updated.Labels[ControlPlaneLabel] = req.Name
	updated.OwnerReferences = want.OwnerReferences
	if err := w.client.Update(ctx, updated); err != nil {
		return reconcile.Result{}, err
	}
	log.Info("updated the child webhook configuration ConfigMap", "configMap", key.Name)
	w.o.Recorder.Eventf(cp, corev1.EventTypeNormal, "ChildConfigUpdated", "ConfigMap %s updated (URL, CA bundle, namespace scope or owner changed)", key.Name)
	return reconcile.Result{}, nil
}

// remove deletes the ConfigMap of a control plane that lost its ingress or
// is gone. Only a ConfigMap whose owner kind is watched is deleted: one owned
// by a kind not discovered yet may still have its control plane.
func (w *wiring) remove(ctx context.Context, cp *unstructured.Unstructured, existing *corev1.ConfigMap, log logr.Logger) error {
	if existing == nil {
		return nil
	}
	if cp == nil && !w.ownerWatched(existing) {
		return nil
	}
	err := w.client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("deleted the child webhook configuration ConfigMap: no spec.ingress", "configMap", existing.Name)
	if cp != nil {
		w.o.Recorder.Eventf(cp, corev1.EventTypeNormal, "ChildConfigDeleted", "ConfigMap %s deleted: the control plane has no spec.ingress (or is skip-labelled)", existing.Name)
	}
	return nil
}

func (w *wiring) ownerWatched(cm *corev1.ConfigMap) bool {
	served := w.watcher.Served()
	for _, ref := range cm.OwnerReferences {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			continue
		}
		gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
		if slices.ContainsFunc(served, func(gvk schema.GroupVersionKind) bool { return gvk.GroupKind() == gk }) {
			return true
		}
	}
	return false
}

func (w *wiring) namespaceSkipped(ctx context.Context, namespace string) (bool, error) {
	ns := namespaceMeta(namespace)
	if err := w.client.Get(ctx, client.ObjectKeyFromObject(ns), ns); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return ns.Labels[mutate.SkipLabel] == "true", nil
}

var errNoCABundle = errors.New("no CA bundle")

// desired is the ConfigMap of control plane cp as it must be now.
func (w *wiring) desired(cp *unstructured.Unstructured) (*corev1.ConfigMap, error) {
	ca := w.o.CABundle()
	if len(ca) == 0 {
		// A child configuration without a caBundle would make the child's
		// API server distrust the webhook: better none than a broken one.
		return nil, errNoCABundle
	}
	content, err := ChildConfigYAML(cp.GetNamespace(), cp.GetName(), w.o.ChildWebhookURL, ca, CCMNamespaces(w.o.Policy()))
	if err != nil {
		return nil, err
	}
	return DesiredConfigMap(cp, content), nil
}

// DesiredConfigMap is the fleet ConfigMap of cp holding content.
func DesiredConfigMap(cp *unstructured.Unstructured, content []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ConfigMapName(cp.GetName()),
			Namespace: cp.GetNamespace(),
			Labels:    map[string]string{ControlPlaneLabel: cp.GetName()},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: cp.GetAPIVersion(),
				Kind:       cp.GetKind(),
				Name:       cp.GetName(),
				UID:        cp.GetUID(),
				Controller: ptr.To(true),
			}},
		},
		Data: map[string]string{ChildConfigKey: string(content)},
	}
}

// upToDate reports whether existing holds what want says: content, label
// and owner (other labels and annotations are someone else's).
func upToDate(existing, want *corev1.ConfigMap) bool {
	return equality.Semantic.DeepEqual(existing.Data, want.Data) && len(existing.BinaryData) == 0 &&
		existing.Labels[ControlPlaneLabel] == want.Labels[ControlPlaneLabel] &&
		equality.Semantic.DeepEqual(existing.OwnerReferences, want.OwnerReferences)
}

// contentWatch enqueues every control plane when what every ConfigMap
// carries changes: the CA bundle (a rotation) or the policy's namespace
// scope. Checking a fingerprint every CheckInterval costs nothing per
// control plane, where a periodic requeue of each would cost a reconcile.
type contentWatch struct {
	*wiring
	events chan<- event.TypedGenericEvent[*unstructured.Unstructured]
}

func (c *contentWatch) NeedLeaderElection() bool { return true }

func (c *contentWatch) Start(ctx context.Context) error {
	last := c.fingerprint()
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		now := c.fingerprint()
		if bytes.Equal(now, last) {
			return
		}
		last = now
		c.o.Log.Info("CA bundle or CCM namespace scope changed: updating every fleet ConfigMap")
		for _, gvk := range c.watcher.Served() {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.client.List(ctx, list); err != nil {
				c.o.Log.Error(err, "listing control planes", "kind", gvk.String())
				continue
			}
			for i := range list.Items {
				select {
				case c.events <- event.TypedGenericEvent[*unstructured.Unstructured]{Object: &list.Items[i]}:
				case <-ctx.Done():
					return
				}
			}
		}
	}, c.o.CheckInterval)
	return nil
}

func (c *contentWatch) fingerprint() []byte {
	h := sha256.New()
	h.Write(c.o.CABundle())
	fmt.Fprintf(h, "\x00%q", CCMNamespaces(c.o.Policy()))
	return h.Sum(nil)
}
