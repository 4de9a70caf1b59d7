package routes

import (
	"maps"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func TestEveryRouteKindAPolicyMayNameIsImplemented(t *testing.T) {
	policyKinds := slices.Sorted(maps.Keys(rules.RouteKinds))
	implemented := slices.Sorted(maps.Keys(Kinds))
	if !slices.Equal(policyKinds, implemented) {
		t.Errorf("rules.RouteKinds %v, routes.Kinds %v: each kind a policy may name needs an implementation, and the other way round", policyKinds, implemented)
	}
}

func TestTheDefaultPolicyKeepsAnIngressRouteTCPForTraefik(t *testing.T) {
	res := rules.Default().ResolveClass("traefik", rules.NewStaticClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}))
	name, kind, ok := RouteKindOf(res)
	if !ok || name != "traefik-ingressroutetcp" || kind.GVK.Kind != "IngressRouteTCP" {
		t.Fatalf("Traefik's rule names route %q (%v, ok %v), want traefik-ingressroutetcp", name, kind.GVK, ok)
	}
	if res.Rule.Unsupported == "" {
		t.Error("Traefik's rule lost its unsupported text, the message when --routes is off")
	}
	res = rules.Default().ResolveClass("haproxy", nil)
	if _, _, ok := RouteKindOf(res); ok {
		t.Error("a controller that passes TLS through with annotations got a route")
	}
}

func TestIngressNameIsK0smotrons(t *testing.T) {
	tests := map[string]struct {
		controlPlane string
		want         string
	}{
		"kmc- and the name":                      {controlPlane: "tenant-a", want: "kmc-tenant-a"},
		"exactly 63 characters stay as they are": {controlPlane: strings.Repeat("a", 59), want: "kmc-" + strings.Repeat("a", 59)},
		// k0smotron: name[:57] + "-" + the first 5 hex digits of md5(name).
		"longer names are cut with an md5 suffix": {controlPlane: strings.Repeat("b", 70), want: "kmc-" + strings.Repeat("b", 53) + "-"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := IngressName(tc.controlPlane)
			if len(got) > 63 || !strings.HasPrefix(got, tc.want) {
				t.Errorf("IngressName(%q) = %q (%d characters), want prefix %q and at most 63", tc.controlPlane, got, len(got), tc.want)
			}
			if msgs := validation.IsDNS1123Subdomain(got); len(msgs) > 0 {
				t.Errorf("IngressName(%q) = %q is not a valid name: %v", tc.controlPlane, got, msgs)
			}
		})
	}
}

const controlPlaneYAML = `
apiVersion: controlplane.cluster.x-k8s.io/v1beta2
kind: K0smotronControlPlane
metadata: {name: hcp, namespace: tenants, uid: 0a3e7c1e-2a43-4c7a-9b0e-6f1d1f9c1c11}
spec:
  service: {type: ClusterIP, apiPort: 6443, konnectivityPort: 8132}
  ingress:
    className: traefik
    apiHost: api.hcp.example.com
    konnectivityHost: konnectivity.hcp.example.com
`

// k0smotronIngress is the Ingress k0smotron makes for controlPlaneYAML.
const k0smotronIngressYAML = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: kmc-hcp
  namespace: tenants
  labels: {app: k0smotron, cluster: hcp, component: ingress}
spec:
  ingressClassName: traefik
  rules:
  - host: api.hcp.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: kmc-hcp, port: {number: 6443}}}}
  - host: konnectivity.hcp.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: kmc-hcp, port: {number: 8132}}}}
`

func controlPlane(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(controlPlaneYAML), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func k0smotronIngress(t *testing.T, edit func(*networkingv1.Ingress)) *networkingv1.Ingress {
	t.Helper()
	var ing networkingv1.Ingress
	if err := yaml.UnmarshalStrict([]byte(k0smotronIngressYAML), &ing); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&ing)
	}
	return &ing
}

func TestTheIngressRouteTCPMatchesEachHostAndPassesTLSThrough(t *testing.T) {
	cp := controlPlane(t)
	routes, err := Desired(Kinds["traefik-ingressroutetcp"], k0smotronIngress(t, nil), cp)
	if err != nil || len(routes) != 1 {
		t.Fatalf("Desired: %d routes, %v", len(routes), err)
	}
	want := `apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata:
  labels:
    app.kubernetes.io/managed-by: hcp-ingress-webhook
    hcp-ingress.io/control-plane: hcp
    hcp-ingress.io/ingress: kmc-hcp
  name: kmc-hcp
  namespace: tenants
  ownerReferences:
  - apiVersion: controlplane.cluster.x-k8s.io/v1beta2
    controller: true
    kind: K0smotronControlPlane
    name: hcp
    uid: 0a3e7c1e-2a43-4c7a-9b0e-6f1d1f9c1c11
spec:
  routes:
  - match: HostSNI(` + "`api.hcp.example.com`" + `)
    services:
    - name: kmc-hcp
      port: 6443
  - match: HostSNI(` + "`konnectivity.hcp.example.com`" + `)
    services:
    - name: kmc-hcp
      port: 8132
  tls:
    passthrough: true
`
	got, err := yaml.Marshal(routes[0].Object)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("IngressRouteTCP:\n%s\nwant:\n%s", got, want)
	}
}

func TestBackendsFollowTheIngress(t *testing.T) {
	tests := map[string]struct {
		edit    func(*networkingv1.Ingress)
		want    []string // host -> service:port
		wantErr string
	}{
		"the backend of path / of each rule": {
			want: []string{"api.hcp.example.com kmc-hcp:6443", "konnectivity.hcp.example.com kmc-hcp:8132"},
		},
		"a named Service port stays a name": {
			edit: func(ing *networkingv1.Ingress) {
				ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "api"}
			},
			want: []string{"api.hcp.example.com kmc-hcp:api", "konnectivity.hcp.example.com kmc-hcp:8132"},
		},
		"a changed port follows the Ingress": {
			edit: func(ing *networkingv1.Ingress) {
				ing.Spec.Rules[1].HTTP.Paths[0].Backend.Service.Port.Number = 9132
			},
			want: []string{"api.hcp.example.com kmc-hcp:6443", "konnectivity.hcp.example.com kmc-hcp:9132"},
		},
		"rules repeating a host give one backend per host (the first)": {
			edit: func(ing *networkingv1.Ingress) {
				for range 1000 {
					ing.Spec.Rules = append(ing.Spec.Rules, *ing.Spec.Rules[1].DeepCopy())
				}
				ing.Spec.Rules[len(ing.Spec.Rules)-1].HTTP.Paths[0].Backend.Service.Port.Number = 1
			},
			want: []string{"api.hcp.example.com kmc-hcp:6443", "konnectivity.hcp.example.com kmc-hcp:8132"},
		},
		"a host that could end the HostSNI string is refused": {
			edit: func(ing *networkingv1.Ingress) {
				ing.Spec.Rules[0].Host = "api.example.com`) || HostSNI(`*"
			},
			wantErr: "spec.rules[0].host",
		},
		"no path / at all": {
			edit: func(ing *networkingv1.Ingress) {
				for i := range ing.Spec.Rules {
					ing.Spec.Rules[i].HTTP.Paths[0].Path = "/api"
				}
			},
			wantErr: `no rule has a path "/"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			backends, err := Backends(k0smotronIngress(t, tc.edit))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range backends {
				got = append(got, b.Host+" "+b.Service+":"+b.Port.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("backends %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOnlyTheIngressK0smotronMadeForTheControlPlaneGetsARoute(t *testing.T) {
	tests := map[string]struct {
		edit func(*networkingv1.Ingress)
		want bool
	}{
		"k0smotron's Ingress": {want: true},
		"another name":        {edit: func(i *networkingv1.Ingress) { i.Name = "my-ingress" }},
		"another namespace":   {edit: func(i *networkingv1.Ingress) { i.Namespace = "elsewhere" }},
		"a host that is not the control plane's": {edit: func(i *networkingv1.Ingress) {
			i.Spec.Rules[1].Host = "other.example.com"
		}},
		"no rules": {edit: func(i *networkingv1.Ingress) { i.Spec.Rules = nil }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MadeFor(k0smotronIngress(t, tc.edit), controlPlane(t)); got != tc.want {
				t.Errorf("MadeFor = %v, want %v", got, tc.want)
			}
		})
	}
}

// State is what audit reports; the fake client stands in for the API
// server's answers (the e2e test checks them against a real one).
func TestStateSaysWhetherTheRouteIsAsTheIngressGives(t *testing.T) {
	traefikRule := rules.Default().ResolveClass("traefik", rules.NewStaticClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}))
	cp := controlPlane(t)
	routeFor := func(edit func(*unstructured.Unstructured)) *unstructured.Unstructured {
		routes, err := Desired(Kinds["traefik-ingressroutetcp"], k0smotronIngress(t, nil), cp)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(routes[0])
		}
		return routes[0]
	}
	tests := map[string]struct {
		res     rules.Resolution
		objects []runtime.Object
		want    string
	}{
		"a controller that needs no route":       {res: rules.Default().ResolveClass("haproxy", nil), want: StateNone},
		"no Ingress yet":                         {res: traefikRule, want: StateNoIngress},
		"the Ingress but no route":               {res: traefikRule, objects: []runtime.Object{k0smotronIngress(t, nil)}, want: StateMissing},
		"the route as the Ingress gives":         {res: traefikRule, objects: []runtime.Object{k0smotronIngress(t, nil), routeFor(nil)}, want: StateOK},
		"a route whose port the Ingress changed": {res: traefikRule, objects: []runtime.Object{k0smotronIngress(t, func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Number = 7443 }), routeFor(nil)}, want: StateStale},
		"a route that lost its owner":            {res: traefikRule, objects: []runtime.Object{k0smotronIngress(t, nil), routeFor(func(u *unstructured.Unstructured) { u.SetOwnerReferences(nil) })}, want: StateStale},
		"an Ingress host that is not a DNS name": {res: traefikRule, objects: []runtime.Object{k0smotronIngress(t, func(i *networkingv1.Ingress) {
			i.Spec.Rules = i.Spec.Rules[:1]
			i.Spec.Rules[0].HTTP.Paths[0].Path = "/x"
		})}, want: StateInvalid},
	}
	scheme := runtime.NewScheme()
	if err := networkingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gvk := Kinds["traefik-ingressroutetcp"].GVK
	scheme.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind + "List"}, &unstructured.UnstructuredList{})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(tc.objects...).Build()
			st, err := State(t.Context(), c, cp, tc.res)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.want {
				t.Errorf("state %q (%s), want %q", st.State, st.Detail, tc.want)
			}
		})
	}
}
