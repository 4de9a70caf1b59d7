package e2e

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// TestDryRunLatency measures what the webhook adds to a user's request: the
// median latency of a server-side dry-run create of a control plane through
// the real API server, with the webhook called and without. "Without" is a
// namespace labelled hcp-ingress.io/skip=true, which the registered
// configuration's namespaceSelector excludes, so the API server does not
// call the webhook; both kinds of request alternate, so drift on a shared
// machine hits both alike. Two clients: bin/kubectl (what a user runs,
// process start included) and client-go (the API server round trip alone).
//
// It is a measurement, not a test: it runs only with HCP_BENCH=1 (make
// bench) and asserts nothing about time.
func TestDryRunLatency(t *testing.T) {
	if os.Getenv("HCP_BENCH") == "" {
		t.Skip("a benchmark: set HCP_BENCH=1 (make bench)")
	}
	requireWebhook(t)
	with := newNamespace(t, env.Management, "e2e-latency", nil)
	without := newNamespace(t, env.Management, "e2e-latency-skip", map[string]string{skipLabel: "true"})

	const rounds = 40
	cpWith, cpWithout := k0smotronCP(with, "latency", "haproxy"), k0smotronCP(without, "latency", "haproxy")
	yamlWith, yamlWithout := toYAML(t, cpWith), toYAML(t, cpWithout)
	before := requests(t, pathControlPlane)
	var kWith, kWithout []time.Duration
	for range rounds {
		for _, c := range []struct {
			in  string
			out *[]time.Duration
		}{{yamlWith, &kWith}, {yamlWithout, &kWithout}} {
			start := time.Now()
			mustKubectl(t, env.Management, c.in, "create", "--dry-run=server", "-o", "name", "-f", "-")
			*c.out = append(*c.out, time.Since(start))
		}
	}
	if called := requests(t, pathControlPlane) - before; called < rounds {
		t.Fatalf("the webhook was called %v times for %d requests that should reach it", called, rounds)
	}

	cfg := rest.CopyConfig(env.Management.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.QPS, cfg.Burst = 1000, 1000
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var cWith, cWithout []time.Duration
	dryRunAll := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for range rounds * 5 {
		for _, c := range []struct {
			ns  string
			obj *unstructured.Unstructured
			out *[]time.Duration
		}{{with, cpWith, &cWith}, {without, cpWithout, &cWithout}} {
			start := time.Now()
			if _, err := dyn.Resource(controlPlaneGVR).Namespace(c.ns).Create(context.Background(), c.obj.DeepCopy(), dryRunAll); err != nil {
				t.Fatal(err)
			}
			*c.out = append(*c.out, time.Since(start))
		}
	}

	report := func(client string, with, without []time.Duration) {
		mw, mwo := median(with), median(without)
		t.Logf("latency %-8s create --dry-run=server, median of %d: with webhook %v, without %v, ratio %.3f",
			client, len(with), mw.Round(10*time.Microsecond), mwo.Round(10*time.Microsecond), float64(mw)/float64(mwo))
	}
	report("kubectl", kWith, kWithout)
	report("client-go", cWith, cWithout)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
