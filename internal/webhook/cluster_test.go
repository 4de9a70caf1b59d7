package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"strconv"

	"github.com/prometheus/client_golang/prometheus"

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
