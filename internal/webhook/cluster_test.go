package webhook

import (
	"errors"
	"testing"

	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
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
