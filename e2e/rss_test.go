package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// TestPeakRSS measures the webhook's memory under load against, in the same
// run, the least a webhook built on the same libraries needs:
// e2e/testdata/minimal-webhook, a controller-runtime manager with a cache of
// IngressClasses, its webhook server with a no-op admission.Webhook that
// answers a fixed patch, and /metrics behind the same authentication and
// authorization filter. Both are started fresh against the e2e API server and
// take the same admissions over HTTPS from 16 keep-alive clients: the ~10 KB
// kcm control plane, the OpenStack CCM DaemonSet and the cluster-autoscaler
// Deployment in turn. For each: RSS once ready, then peak RSS (VmHWM) and
// RSS split into anonymous memory (heap, stacks) and file-backed pages (the
// binary's code and data that the process touched).
//
// A measurement, not a test: it runs only with HCP_BENCH=1 (make bench).
func TestPeakRSS(t *testing.T) {
	requireBench(t, "make bench")
	const admissions = 30000
	dir := t.TempDir()

	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "minimal-webhook"), "./e2e/testdata/minimal-webhook")
	build.Dir = env.Paths.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the reference webhook: %v\n%s", err, out)
	}

	inputs := rssInputs(t)
	ours := startWebhook(t, "webhook", framework.WebhookOptions{
		Dir: filepath.Join(dir, "ours"), Kubeconfig: env.Management.Kubeconfig, MetricsSecure: true,
	})
	measureRSS(t, "hcp-ingress-webhook", ours.PID(), admissions, ours.CABundle, func(i int) (string, []byte) {
		in := inputs[i%len(inputs)]
		path := "/mutate-workload"
		if in.controlPlane {
			path = "/mutate-controlplane"
		}
		return ours.URL + path, in.body
	})

	ref := startMinimalWebhook(t, filepath.Join(dir, "minimal-webhook"), filepath.Join(dir, "reference"))
	measureRSS(t, "minimal-webhook", ref.PID(), admissions, ref.ca, func(i int) (string, []byte) {
		return ref.url + "/mutate", inputs[i%len(inputs)].body
	})
}

type rssInput struct {
	controlPlane bool
	body         []byte
}

// rssInputs are the AdmissionReviews of BenchmarkServer.
func rssInputs(t *testing.T) []rssInput {
	t.Helper()
	var inputs []rssInput
	for _, in := range []struct {
		file, namespace string
		controlPlane    bool
	}{
		{"internal/mutate/testdata/k0smotroncontrolplane-large.yaml", "tenants", true},
		{"examples/workloads/openstack-ccm-daemonset.yaml", "kube-system", false},
		{"examples/workloads/cluster-autoscaler.yaml", "kube-system", false},
	} {
		data, err := os.ReadFile(filepath.Join(env.Paths.Root, in.file))
		if err != nil {
			t.Fatal(err)
		}
		object, err := yaml.YAMLToJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", in.file, err)
		}
		review := admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{UID: "rss", Operation: admissionv1.Create, Namespace: in.namespace}}
		review.APIVersion, review.Kind = "admission.k8s.io/v1", "AdmissionReview"
		review.Request.Object.Raw = object
		inputs = append(inputs, rssInput{in.controlPlane, mustJSON(t, review)})
	}
	return inputs
}

type minimalWebhook struct {
	*framework.Program
	url string
	ca  []byte
}

// startMinimalWebhook runs the reference webhook until the test ends.
func startMinimalWebhook(t *testing.T, binary, dir string) minimalWebhook {
	t.Helper()
	ca, err := certs.NewServingDir(filepath.Join(dir, "certs"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := framework.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := framework.StartProgram(t.Context(), binary, []string{"--kubeconfig", env.Management.Kubeconfig,
		"--port", strconv.Itoa(ports[0]), "--cert-dir", filepath.Join(dir, "certs"),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}, filepath.Join(dir, "minimal-webhook.log"), fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reference webhook log (last 40 lines):\n%s", p.LogTail(40))
		}
		_ = p.Stop()
	})
	return minimalWebhook{Program: p, url: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), ca: ca.CertPEM}
}

// measureRSS logs pid's memory once ready and after n admissions from 16
// keep-alive clients; request(i) is the URL and body of the i-th.
func measureRSS(t *testing.T, name string, pid, n int, caPEM []byte, request func(i int) (string, []byte)) {
	t.Helper()
	time.Sleep(2 * time.Second) // informers synced, start-up garbage collected
	idle := memoryOf(t, pid)
	client := httpsClient(t, caPEM, 16)
	defer client.CloseIdleConnections()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				url, body := request(i)
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%s: %d of %d admissions failed", name, failed.Load(), n)
	}
	loaded := memoryOf(t, pid)
	peak, err := framework.ProcStatus(pid, "VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	t.Logf("rss %-19s ready: RSS %.1f MiB (anon %.1f, file %.1f); after %d admissions in %v: peak RSS (VmHWM) %.1f MiB, RSS %.1f MiB (anon %.1f, file %.1f)",
		name, float64(idle.rss)/mib, float64(idle.anon)/mib, float64(idle.file)/mib, n, elapsed.Round(100*time.Millisecond),
		float64(peak)/mib, float64(loaded.rss)/mib, float64(loaded.anon)/mib, float64(loaded.file)/mib)
}

type memory struct{ rss, anon, file int64 }

func memoryOf(t *testing.T, pid int) memory {
	t.Helper()
	var m memory
	for field, into := range map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file} {
		v, err := framework.ProcStatus(pid, field)
		if err != nil {
			t.Fatal(err)
		}
		*into = v
	}
	return m
}
