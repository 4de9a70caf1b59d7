package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// scaleControlPlanes is the fleet size of the scale benchmark.
const scaleControlPlanes = 1000

// The fleet at scale, a benchmark (make bench-fleet), not a timed test:
// 1,000 control planes with a realistic 10 KB k0sConfig in one management
// API server. It reports the time until every ConfigMap exists after serve
// starts, serve's peak RSS against the same serve on an empty cluster, and
// the API requests serve made per control plane.
func TestFleetScale(t *testing.T) {
	requireBench(t, "make bench-fleet")
	n := scaleControlPlanes
	if v := os.Getenv("HCP_BENCH_CONTROLPLANES"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("HCP_BENCH_CONTROLPLANES=%q: %v", v, err)
		}
	}
	dir := t.TempDir()
	mgmt, err := framework.StartCluster(t.Context(), env.Paths, "scale", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mgmt.Stop() }()
	if err := mgmt.InstallCRDs(filepath.Join(env.Paths.Root, "e2e", "testdata", "crds")); err != nil {
		t.Fatal(err)
	}
	clients := kubernetes.NewForConfigOrDie(mgmt.Config)
	dyn := dynamic.NewForConfigOrDie(mgmt.Config)
	const ns = "fleet-scale"
	if _, err := clients.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	serve := func(name string, fleet bool) *framework.Webhook {
		args := []string{"--leader-election-namespace", "default"}
		if fleet {
			args = append(args, "--child-webhook-url", "https://hcp-ingress-webhook.hcp-ingress-system.svc")
		}
		w, err := framework.StartWebhook(t.Context(), env.Paths, framework.WebhookOptions{
			Dir:        filepath.Join(dir, name),
			Kubeconfig: mgmt.Kubeconfig,
			ExtraArgs:  args,
		})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	settle := 10 * time.Second

	idle := serve("idle", true)
	time.Sleep(settle)
	idleRSS, err := idle.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	_ = idle.Stop()

	start := time.Now()
	createControlPlanes(t, dyn, ns, n)
	k0sConfig, _ := json.Marshal(realisticK0sConfig())
	t.Logf("created %d control planes (k0sConfig %d bytes of JSON each) in %v", n, len(k0sConfig), time.Since(start).Round(time.Second))

	// The same serve without fleet wiring: admission alone also caches the
	// (trimmed) control planes, so this is what the fleet adds to.
	plain := serve("admission-only", false)
	time.Sleep(settle)
	plainRSS, err := plain.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	_ = plain.Stop()

	w := serve("fleet", true)
	started := time.Now()
	for {
		list, err := clients.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: fleetLabel, ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) >= n {
			break
		}
		if time.Since(started) > 10*time.Minute {
			t.Fatalf("only %d of %d ConfigMaps after 10 minutes", len(list.Items), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wired := time.Since(started)
	time.Sleep(settle)
	peak, err := w.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	byMethod := map[string]float64{}
	var total float64
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		v, err := w.Metric("rest_client_requests_total", `method="`+method+`"`)
		if err != nil {
			t.Fatal(err)
		}
		byMethod[method] = v
		total += v
	}
	_ = w.Stop()
	t.Logf("fleet scale: %d control planes wired in %v after serve started", n, wired.Round(100*time.Millisecond))
	t.Logf("fleet scale: serve --child-webhook-url peak RSS %.1f MiB with %d control planes; %.1f MiB on an empty cluster (%.2fx); serve without fleet wiring %.1f MiB with the same control planes (%.2fx)",
		mib(peak), n, mib(idleRSS), float64(peak)/float64(idleRSS), mib(plainRSS), float64(peak)/float64(plainRSS))
	t.Logf("fleet scale: %0.f API requests in total, %.2f per control plane (GET %0.f incl. lists and watches, POST %0.f, PUT %0.f, PATCH %0.f, DELETE %0.f)",
		total, total/float64(n), byMethod["GET"], byMethod["POST"], byMethod["PUT"], byMethod["PATCH"], byMethod["DELETE"])
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// createControlPlanes creates n K0smotronControlPlanes with ingress and a
// k0sConfig of about 10 KB, 8 at a time.
func createControlPlanes(t *testing.T, dyn dynamic.Interface, ns string, n int) {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta2", Resource: "k0smotroncontrolplanes"}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Go(func() {
			for i := range work {
				cp := scaleControlPlane(ns, fmt.Sprintf("cp-%04d", i))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, cp, metav1.CreateOptions{})
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func scaleControlPlane(ns, name string) *unstructured.Unstructured {
	cp := controlPlane("controlplane.cluster.x-k8s.io/v1beta2", "K0smotronControlPlane", ns, name, ingressBlock(name, "haproxy"))
	cp.Object["spec"].(map[string]any)["k0sConfig"] = realisticK0sConfig()
	return cp
}

// k0sConfigValues is the Helm values string of the k0sConfig's chart: with
// the rest of the ClusterConfig it makes about 10 KB, what a k0rdent
// template with a CNI, a CCM and a CSI chart carries.
var k0sConfigValues = func() string {
	var b strings.Builder
	for i := 0; b.Len() < 9300; i++ {
		fmt.Fprintf(&b, "controller:\n  replicaCount: %d\n  image:\n    repository: registry.example.com/cloud-provider/controller-%d\n    tag: v1.34.%d\n  resources:\n    requests: {cpu: 100m, memory: 128Mi}\n  nodeSelector:\n    node-role.kubernetes.io/control-plane: \"\"\n", i%3+1, i, i)
	}
	return b.String()
}()

func realisticK0sConfig() map[string]any {
	return map[string]any{
		"apiVersion": "k0s.k0sproject.io/v1beta1",
		"kind":       "ClusterConfig",
		"spec": map[string]any{
			"api": map[string]any{"extraArgs": map[string]any{"anonymous-auth": "false", "profiling": "false"}},
			"network": map[string]any{
				"provider":    "calico",
				"podCIDR":     "10.244.0.0/16",
				"serviceCIDR": "10.96.0.0/12",
				"calico":      map[string]any{"mode": "vxlan", "mtu": int64(1450), "wireguard": false},
			},
			"telemetry": map[string]any{"enabled": false},
			"extensions": map[string]any{"helm": map[string]any{
				"repositories": []any{map[string]any{"name": "cloud", "url": "https://charts.example.com/cloud"}},
				"charts": []any{map[string]any{
					"name": "cloud-controller-manager", "chartname": "cloud/ccm", "version": "1.34.0",
					"namespace": "kube-system", "order": int64(1), "values": k0sConfigValues,
				}},
			}},
		},
	}
}
