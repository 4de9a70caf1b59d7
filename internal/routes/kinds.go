// Package routes keeps passthrough routes for ingress controllers that cannot
// pass TLS through with Ingress annotations (PRODUCT.md "Routes"). With
// `serve --routes`, for every Ingress that k0smotron made for a control plane
// whose resolved rule names a route kind (rules.RouteRule), it keeps the
// equivalent route objects in the Ingress's namespace: one SNI match per host,
// the Ingress rule's backend Service and port, TLS passed through, owned by
// the control plane so that garbage collection removes them with it.
//
// A route kind is one entry of Kinds (and its name in rules.RouteKinds).
// Implemented: Traefik's IngressRouteTCP. Not implemented, and how each would
// be one more entry (docs/passthrough.md): F5 NGINX TransportServer, Contour
// HTTPProxy, Gateway API TLSRoute.
package routes

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Backend is one host of the Ingress and where its TLS goes.
type Backend struct {
	Host    string
	Service string
	// Port is the Service port as the Ingress rule names it: a number or a
	// port name.
	Port intstr.IntOrString
}

// Route is one route object to keep: its name and spec (the controller adds
// metadata: namespace, labels, owner).
type Route struct {
	Name string
	Spec map[string]any
}

// Kind is one kind of passthrough route.
type Kind struct {
	GVK schema.GroupVersionKind
	// Routes returns the route objects for the Ingress named ingress with
	// these backends (at least one; hosts are valid DNS names). A kind that
	// takes one host per object names them ingress-0, ingress-1, ...
	Routes func(ingress string, backends []Backend) []Route
}

// Kinds are the implemented route kinds, keyed by the name a policy rule uses
// (route.kind); rules.RouteKinds holds the same names with their descriptions.
var Kinds = map[string]Kind{
	"traefik-ingressroutetcp": {
		GVK:    schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "IngressRouteTCP"},
		Routes: traefikIngressRouteTCP,
	},
}

// traefikIngressRouteTCP is one IngressRouteTCP for all hosts: a route per
// host matching HostSNI, to the Ingress rule's Service and port, with
// tls.passthrough so that Traefik forwards the TLS stream unopened. No
// entryPoints: Traefik then attaches it to its default entry points, as it
// does for the Ingress.
func traefikIngressRouteTCP(ingress string, backends []Backend) []Route {
	routes := make([]any, 0, len(backends))
	for _, b := range backends {
		routes = append(routes, map[string]any{
			// Hosts are DNS-1123 names (checked before): no backquote can
			// end the rule's string early.
			"match":    fmt.Sprintf("HostSNI(`%s`)", b.Host),
			"services": []any{map[string]any{"name": b.Service, "port": portValue(b.Port)}},
		})
	}
	return []Route{{
		Name: ingress,
		Spec: map[string]any{
			"routes": routes,
			"tls":    map[string]any{"passthrough": true},
		},
	}}
}

// portValue is a port as unstructured JSON holds it.
func portValue(p intstr.IntOrString) any {
	if p.Type == intstr.String {
		return p.StrVal
	}
	return int64(p.IntVal)
}
