package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// BenchmarkServer compares, in one run, the real admission server (TLS 1.2+,
// our ReviewHandler on controller-runtime's webhook server, the engine, patch
// and warnings) with reference servers under the same TLS settings, driven
// over loopback with keep-alive by 16 concurrent clients with real-size
// inputs in turn: the ~10 KB kcm control plane, the OpenStack CCM DaemonSet
// and a non-CCM Deployment (cluster-autoscaler).
//
//   - minimal: the least any correct webhook does: decode the AdmissionReview
//     with encoding/json into k8s.io/api types and answer with the uid and a
//     fixed patch. The target is at least 0.8x its throughput.
//
//   - canned: writes a fixed response without reading the request.
//
//   - controller-runtime-noop: controller-runtime's admission.Webhook with a
//     handler that allows without looking.
//
//     go test -run '^$' -bench BenchmarkServer -benchtime 5s -count 6 ./internal/webhook
func BenchmarkServer(b *testing.B) {
	s := startServer(b, "ccm:\n  apiServer:\n    host: api.bench.example.com\n    port: 443\n")
	inputs := []benchInput{
		{PathControlPlane, reviewBody(b, yamlFileAsJSON(b, "../mutate/testdata/k0smotroncontrolplane-large.yaml"))},
		// Both in kube-system, as in a cluster: the CCM gets its variables,
		// the autoscaler is read and left alone.
		{PathWorkload, reviewBodyIn(b, "kube-system", yamlFileAsJSON(b, "../../examples/workloads/openstack-ccm-daemonset.yaml"))},
		{PathWorkload, reviewBodyIn(b, "kube-system", yamlFileAsJSON(b, "../../examples/workloads/cluster-autoscaler.yaml"))},
	}
	for _, in := range inputs {
		if resp := s.admit(b, in.path, in.body); !resp.Allowed || (in.path == PathControlPlane || bytes.Contains(in.body, []byte("openstack"))) != (len(resp.Patch) > 0) {
			b.Fatalf("%s: unexpected response: allowed %v, patch %s, warnings %q", in.path, resp.Allowed, resp.Patch, resp.Warnings)
		}
	}
	canned := s.admitRaw(b, s.base+inputs[0].path, inputs[0].body)

	b.Run("webhook", func(b *testing.B) { driveHTTPS(b, s.client, s.base, inputs) })

	dir := filepath.Dir(s.policyFile)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "certs", "tls.crt"), filepath.Join(dir, "certs", "tls.key"))
	if err != nil {
		b.Fatal(err)
	}
	reference := func(name string, handler http.Handler) {
		listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}})
		if err != nil {
			b.Fatal(err)
		}
		server := &http.Server{Handler: handler}
		go func() { _ = server.Serve(listener) }()
		defer server.Close()
		b.Run(name, func(b *testing.B) {
			driveHTTPS(b, s.client, "https://"+listener.Addr().(*net.TCPAddr).String(), inputs)
		})
	}

	fixedPatch := []byte(`[{"op":"add","path":"/metadata/annotations","value":{"hcp-ingress.io/mutated":"bench"}}]`)
	jsonPatch := admissionv1.PatchTypeJSONPatch
	reference("minimal", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: fixedPatch, PatchType: &jsonPatch}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	}))
	reference("canned", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(canned)
	}))
	reference("controller-runtime-noop", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
}

type benchInput struct {
	path string
	body []byte
}

// yamlFileAsJSON reads a one-document YAML file as JSON.
func yamlFileAsJSON(b *testing.B, path string) string {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	return string(j)
}

func (s *runningServer) admitRaw(b *testing.B, url string, body []byte) []byte {
	resp, err := s.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// driveHTTPS posts the inputs in turn, b.N requests in all, from 16 client
// goroutines, and reports throughput and latency percentiles.
func driveHTTPS(b *testing.B, client *http.Client, base string, inputs []benchInput) {
	var mu sync.Mutex
	var latencies []time.Duration
	var next atomic.Int64
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			in := inputs[next.Add(1)%int64(len(inputs))]
			t0 := time.Now()
			resp, err := client.Post(base+in.path, "application/json", bytes.NewReader(in.body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkReviewHandler is one admission of the ~10 KB kcm control plane
// through ReviewHandler without the network, its object read in the review's
// own pass (one-pass) and, for comparison, by a handler that is not an
// objectHandler, which gets the raw object to read again (two-pass).
//
//	go test -run '^$' -bench BenchmarkReviewHandler -count 6 ./internal/webhook
func BenchmarkReviewHandler(b *testing.B) {
	body := reviewBody(b, yamlFileAsJSON(b, "../mutate/testdata/k0smotroncontrolplane-large.yaml"))
	admitter := &Admitter{Target: mutate.TargetControlPlane, Policies: storeWith(b, rules.Default()),
		Classes: func() (rules.IngressClasses, error) {
			return rules.NewStaticClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}), nil
		}}
	for name, handler := range map[string]admission.Handler{
		"one-pass": admitter,
		"two-pass": admission.HandlerFunc(admitter.Handle),
	} {
		b.Run(name, func(b *testing.B) {
			h := &ReviewHandler{Handler: handler, Log: logr.Discard()}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathControlPlane, bytes.NewReader(body)))
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Body)
				}
			}
		})
	}
}
