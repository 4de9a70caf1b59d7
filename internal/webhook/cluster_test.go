package webhook

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func TestIngressClassViewIsNeverGuessedWhileSyncing(t *testing.T) {
	var none *IngressClassCache
	if view, err := none.View(); view != nil || err != nil {
		t.Fatalf("without a cluster: View() = %v, %v; want nil, nil (classes are guessed, with a warning)", view, err)
	}
	syncing := &IngressClassCache{}
	if view, err := syncing.View(); view != nil || !errors.Is(err, errClassesSyncing) {
		t.Fatalf("while syncing: View() = %v, %v; want nil, %v", view, err, errClassesSyncing)
	}
	if err := syncing.Synced(); err == nil {
		t.Fatal("Synced() = nil before the informer synced")
	}
}

// TestMutationMetricLabelsAreBounded: container names come from the request;
// thousands of distinct ones must not become thousands of series.
func TestMutationMetricLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	for i := range 1000 {
		m.admitted(mutate.TargetWorkload, "patched", &mutate.Result{Rule: "ccm/container-" + strconv.Itoa(i)})
	}
	m.admitted(mutate.TargetControlPlane, "patched", &mutate.Result{Rule: "controllers/haproxy.org/ingress-controller"})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() == "hcp_ingress_mutations_total" {
			n = len(f.GetMetric())
		}
	}
	if n != 2 {
		t.Fatalf("hcp_ingress_mutations_total has %d series after 1000 distinct workload records, want 2 (ccm and one control-plane rule)", n)
	}
}

// countingLookup counts control-plane lookups.
type countingLookup struct {
	staticLookup
	calls int
}

func (c *countingLookup) IngressAPIServer(ctx context.Context, namespace, name string) (*rules.APIServer, string, error) {
	c.calls++
	return c.staticLookup.IngressAPIServer(ctx, namespace, name)
}

// TestControlPlaneIsLookedUpOnlyForACCMTarget: the management-hosted path
// reads the control plane only once the engine has found a CCM container
// whose host is not in the workload's annotations; every other workload of
// a child's kube-system costs no lookup.
func TestControlPlaneIsLookedUpOnlyForACCMTarget(t *testing.T) {
	notCCM := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"coredns","namespace":"kube-system"},
	  "spec":{"template":{"spec":{"containers":[{"name":"coredns","image":"registry.k8s.io/coredns/coredns:v1.12.0"}]}}}}`
	annotated := strings.Replace(ccmDaemonSet, `"namespace": "kube-system"`, `"namespace": "kube-system","annotations":{"hcp-ingress.io/api-host":"api.annotated.example.com"}`, 1)
	ctx := context.WithValue(context.Background(), controlPlaneKey{}, controlPlaneRef{"tenants", "cp"})
	for name, tc := range map[string]struct {
		object    string
		wantCalls int
	}{
		"a workload that is not a CCM":                     {notCCM, 0},
		"a CCM with its host in its annotations":           {annotated, 0},
		"a CCM that takes its host from the control plane": {ccmDaemonSet, 1},
	} {
		t.Run(name, func(t *testing.T) {
			lookup := &countingLookup{staticLookup: staticLookup{"tenants/cp": {Host: "api.cp.example.com", Port: 443}}}
			a := &Admitter{Target: mutate.TargetWorkload, Policies: storeWith(t, rules.Default()), ControlPlanes: lookup}
			resp := a.Handle(ctx, request(admissionv1.Create, "kube-system", tc.object))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			if lookup.calls != tc.wantCalls {
				t.Fatalf("%d control-plane lookups, want %d", lookup.calls, tc.wantCalls)
			}
		})
	}
}

// TestIngressClassViewFollowsEvents: the view admissions read is rebuilt
// from the informer's events, a view already handed out never changes, and
// the default class is the lexically smallest of the defaults.
func TestIngressClassViewFollowsEvents(t *testing.T) {
	informers := &informertest.FakeInformers{}
	informer, err := informers.FakeInformerFor(t.Context(), &networkingv1.IngressClass{})
	if err != nil {
		t.Fatal(err)
	}
	informer.Synced = true
	c := NewIngressClassCache(informers)
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	class := func(name, controller string, isDefault bool) *networkingv1.IngressClass {
		ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
		if isDefault {
			ic.Annotations = map[string]string{rules.IsDefaultClassAnnotation: "true"}
		}
		return ic
	}
	view := func() rules.IngressClasses {
		t.Helper()
		v, err := c.View()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	controllerOf := func(v rules.IngressClasses, name string) string {
		ic, ok := v.IngressClass(name)
		if !ok {
			return "(none)"
		}
		return ic.Controller
	}
	defaultOf := func(v rules.IngressClasses) string {
		ic, ok := v.DefaultIngressClass()
		if !ok {
			return "(none)"
		}
		return ic.Name
	}

	empty := view()
	informer.Add(class("haproxy", "haproxy.org/ingress-controller/haproxy", false))
	informer.Add(class("b", "example.com/b", true))
	informer.Add(class("a", "example.com/a", true))
	v := view()
	if got := controllerOf(v, "haproxy"); got != "haproxy.org/ingress-controller/haproxy" {
		t.Errorf("haproxy: controller %q", got)
	}
	if got := defaultOf(v); got != "a" {
		t.Errorf("default class %q, want a (the smallest of the defaults)", got)
	}
	if got := controllerOf(empty, "haproxy"); got != "(none)" {
		t.Errorf("a view handed out before the class was added changed: haproxy has controller %q", got)
	}

	informer.Update(class("haproxy", "haproxy.org/ingress-controller/haproxy", false), class("haproxy", "haproxy-ingress.github.io/controller", false))
	informer.Delete(class("a", "example.com/a", true))
	v2 := view()
	if got := controllerOf(v2, "haproxy"); got != "haproxy-ingress.github.io/controller" {
		t.Errorf("after the update: haproxy has controller %q", got)
	}
	if got := defaultOf(v2); got != "b" {
		t.Errorf("after deleting a: default class %q, want b", got)
	}
	if got := controllerOf(v, "haproxy"); got != "haproxy.org/ingress-controller/haproxy" {
		t.Errorf("a view handed out before the update changed: haproxy has controller %q", got)
	}
	if view() != v2 {
		t.Error("the view was rebuilt although nothing changed")
	}
}
