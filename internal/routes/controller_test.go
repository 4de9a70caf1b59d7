package routes

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// fakeControlPlanes is the control-plane view: a map, or an error.
type fakeControlPlanes struct {
	cps map[string]*unstructured.Unstructured
	err error
}

func (f fakeControlPlanes) Get(_ context.Context, namespace, name string) (*unstructured.Unstructured, error) {
	return f.cps[namespace+"/"+name], f.err
}
func (fakeControlPlanes) OnServed(func(schema.GroupVersionKind)) {}

func routeScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := networkingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gvk := Kinds["traefik-ingressroutetcp"].GVK
	scheme.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(gvk.GroupVersion().WithKind(gvk.Kind+"List"), &unstructured.UnstructuredList{})
	return scheme
}

// The reconciler against a fake API server: the real one is in
// e2e/passthrough_test.go, with Traefik passing TLS through the route.
func TestReconcileKeepsOrRemovesTheRoute(t *testing.T) {
	traefikClass := rules.NewStaticClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"})
	haproxyClass := rules.NewStaticClasses(rules.IngressClass{Name: "traefik", Controller: "haproxy.org/ingress-controller"})
	tests := map[string]struct {
		ingress   bool // k0smotron's Ingress exists
		route     bool // a route from before exists
		classes   rules.IngressClasses
		classErr  error
		cpErr     error
		noCP      bool
		wantRoute bool
		wantErr   bool
	}{
		"the Ingress of a Traefik control plane gets its route":           {ingress: true, classes: traefikClass, wantRoute: true},
		"a route edited by hand is applied again":                         {ingress: true, route: true, classes: traefikClass, wantRoute: true},
		"a class now served by a controller that needs no route: removed": {ingress: true, route: true, classes: haproxyClass},
		"the Ingress is gone: removed":                                    {route: true, classes: traefikClass},
		"no control plane for the Ingress any more: removed":              {ingress: true, route: true, classes: traefikClass, noCP: true},
		"an IngressClass view not synced yet keeps the route and retries": {ingress: true, route: true, classErr: errors.New("not synced"), wantRoute: true, wantErr: true},
		"a control-plane view error keeps the route and retries":          {ingress: true, route: true, classes: traefikClass, cpErr: errors.New("boom"), wantRoute: true, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cp := controlPlane(t)
			var objects []runtime.Object
			if tc.ingress {
				objects = append(objects, k0smotronIngress(t, nil))
			}
			if tc.route {
				routes, err := Desired(Kinds["traefik-ingressroutetcp"], k0smotronIngress(t, nil), cp)
				if err != nil {
					t.Fatal(err)
				}
				_ = unstructured.SetNestedField(routes[0].Object, false, "spec", "tls", "passthrough") // edited by hand
				objects = append(objects, routes[0])
			}
			c := fake.NewClientBuilder().WithScheme(routeScheme(t)).WithRuntimeObjects(objects...).Build()
			cps := fakeControlPlanes{cps: map[string]*unstructured.Unstructured{"tenants/hcp": cp}, err: tc.cpErr}
			if tc.noCP {
				cps.cps = nil
			}
			r := &Reconciler{Client: c, Reader: c, Options: Options{
				Policy:        rules.Default,
				Classes:       func() (rules.IngressClasses, error) { return tc.classes, tc.classErr },
				ControlPlanes: cps,
				Log:           logr.Discard(),
				Resync:        DefaultResync,
			}}
			_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "tenants", Name: "kmc-hcp"}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Reconcile error %v, want error: %v", err, tc.wantErr)
			}
			route := &unstructured.Unstructured{}
			route.SetGroupVersionKind(Kinds["traefik-ingressroutetcp"].GVK)
			err = c.Get(t.Context(), client.ObjectKey{Namespace: "tenants", Name: "kmc-hcp"}, route)
			switch {
			case tc.wantRoute && err != nil:
				t.Fatalf("route: %v", err)
			case !tc.wantRoute && !apierrors.IsNotFound(err):
				t.Fatalf("route still there (err %v)", err)
			}
			if tc.wantRoute && !tc.wantErr {
				if pass, _, _ := unstructured.NestedBool(route.Object, "spec", "tls", "passthrough"); !pass {
					t.Errorf("tls.passthrough is not true after the reconcile")
				}
			}
		})
	}
}
