package routes

import (
	"crypto/md5" //nolint:gosec // k0smotron's name shortening, not security
	"errors"
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Labels on every route the webhook keeps: who manages it, and the Ingress
// and control plane it was made for (pruning finds routes by the Ingress).
const (
	ManagedByLabel    = "app.kubernetes.io/managed-by"
	ManagedBy         = "hcp-ingress-webhook"
	IngressLabel      = "hcp-ingress.io/ingress"
	ControlPlaneLabel = "hcp-ingress.io/control-plane"
	// FieldManager is the server-side apply field manager of the routes.
	FieldManager = "hcp-ingress-webhook"
)

// IngressName is the name k0smotron gives the Ingress of control plane name:
// kmc-<name>, shortened to 63 characters with an md5 suffix as k0smotron does
// (getObjectName in its API types).
func IngressName(controlPlane string) string {
	name := "kmc-" + controlPlane
	const limit = 63
	if len(name) > limit {
		sum := md5.Sum([]byte(name)) //nolint:gosec // naming, not security
		return fmt.Sprintf("%s-%x", name[:limit-6], sum)[:limit]
	}
	return name
}

// controlPlaneHosts returns spec.ingress.apiHost and konnectivityHost (the
// ones set) and spec.ingress.className.
func controlPlaneHosts(cp *unstructured.Unstructured) (hosts []string, className string, ok bool) {
	ingress, found, err := unstructured.NestedMap(cp.Object, "spec", "ingress")
	if err != nil || !found {
		return nil, "", false
	}
	for _, field := range []string{"apiHost", "konnectivityHost"} {
		if h, ok := ingress[field].(string); ok && h != "" {
			hosts = append(hosts, h)
		}
	}
	className, _ = ingress["className"].(string)
	return hosts, className, len(hosts) > 0
}

// MadeFor reports whether ing is the Ingress k0smotron made for cp: the name
// k0smotron gives it, in the control plane's namespace, and every host of its
// rules one of the control plane's spec.ingress hosts.
func MadeFor(ing *networkingv1.Ingress, cp *unstructured.Unstructured) bool {
	hosts, _, ok := controlPlaneHosts(cp)
	if !ok || ing.Namespace != cp.GetNamespace() || ing.Name != IngressName(cp.GetName()) || len(ing.Spec.Rules) == 0 {
		return false
	}
	for _, r := range ing.Spec.Rules {
		if !slices.Contains(hosts, r.Host) {
			return false
		}
	}
	return true
}

// RouteKindOf returns the route kind the resolved rule names, if any.
func RouteKindOf(res rules.Resolution) (string, Kind, bool) {
	if res.Rule == nil || res.Rule.Route == nil {
		return "", Kind{}, false
	}
	k, ok := Kinds[res.Rule.Route.Kind]
	return res.Rule.Route.Kind, k, ok
}

// Backends are the passthrough backends of an Ingress k0smotron made: per
// host, the backend of path "/" of its first rule (the path k0smotron writes,
// and the one Traefik's ingress-nginx provider passes through). One backend
// per host, so an Ingress edited to repeat a host thousands of times still
// gives one route per host. The hosts must be DNS names: they end up inside
// route match expressions.
func Backends(ing *networkingv1.Ingress) ([]Backend, error) {
	var out []Backend
	var errs []error
	seen := map[string]bool{}
	for i, r := range ing.Spec.Rules {
		if seen[r.Host] {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(r.Host); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("spec.rules[%d].host %q: %s", i, r.Host, strings.Join(msgs, "; ")))
			continue
		}
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Path != "/" || p.Backend.Service == nil {
				continue
			}
			port := intstr.FromInt32(p.Backend.Service.Port.Number)
			if p.Backend.Service.Port.Name != "" {
				port = intstr.FromString(p.Backend.Service.Port.Name)
			}
			out = append(out, Backend{Host: r.Host, Service: p.Backend.Service.Name, Port: port})
			seen[r.Host] = true
			break
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New(`no rule has a path "/" with a service backend`))
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("ingress %s/%s: %w", ing.Namespace, ing.Name, errors.Join(errs...))
	}
	return out, nil
}

// Desired returns the route objects of kind for ing, made for cp: in the
// Ingress's namespace, labelled, owned by the control plane.
func Desired(kind Kind, ing *networkingv1.Ingress, cp *unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	backends, err := Backends(ing)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, r := range kind.Routes(ing.Name, backends) {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": r.Spec}}
		u.SetGroupVersionKind(kind.GVK)
		u.SetName(r.Name)
		u.SetNamespace(ing.Namespace)
		u.SetLabels(map[string]string{
			ManagedByLabel:    ManagedBy,
			IngressLabel:      ing.Name,
			ControlPlaneLabel: cp.GetName(),
		})
		u.SetOwnerReferences([]metav1.OwnerReference{ownerOf(cp)})
		out = append(out, u)
	}
	return out, nil
}

// ownerOf is the ownerReference to the control plane. No
// blockOwnerDeletion: that would need update rights on the control plane's
// finalizers.
func ownerOf(cp *unstructured.Unstructured) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: cp.GetAPIVersion(),
		Kind:       cp.GetKind(),
		Name:       cp.GetName(),
		UID:        cp.GetUID(),
		Controller: ptr.To(true),
	}
}
