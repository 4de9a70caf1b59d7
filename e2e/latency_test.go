package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
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

	apiServerPerCall(t, dyn, cpWith, with)
}

// apiServerPerCall compares kube-apiserver's own measure of one webhook call
// (apiserver_admission_webhook_admission_duration_seconds, mean of the CREATE
// admissions) for our webhook and for a fixed-patch webhook: an HTTPS server
// on the same machine that decodes the review and answers with its uid and a
// fixed patch, registered for control planes in a namespace of its own with
// the same CEL matchConditions as ours.
func apiServerPerCall(t *testing.T, dyn dynamic.Interface, cp *unstructured.Unstructured, ours string) {
	const fixedName = "fixed-patch.bench.hcp-ingress.io"
	fixed := newNamespace(t, env.Management, "e2e-latency-fixed", map[string]string{skipLabel: "true", "hcp-ingress-bench": "fixed"})
	dir := t.TempDir()
	ca, err := certs.NewServingDir(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte(`[{"op":"add","path":"/metadata/labels","value":{"hcp-ingress-bench":"patched"}}]`)
	jsonPatch := admissionv1.PatchTypeJSONPatch
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &jsonPatch}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })

	config := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: hcp-ingress-bench-fixed-patch
webhooks:
  - name: %s
    clientConfig:
      url: https://%s/
      caBundle: %s
    rules:
      - operations: ["CREATE"]
        apiGroups: ["controlplane.cluster.x-k8s.io"]
        apiVersions: ["*"]
        resources: ["k0smotroncontrolplanes"]
    namespaceSelector:
      matchLabels:
        hcp-ingress-bench: fixed
    matchConditions: %s
    sideEffects: None
    admissionReviewVersions: ["v1"]
    failurePolicy: Fail
    timeoutSeconds: 10
`, fixedName, listener.Addr().String(), base64.StdEncoding.EncodeToString(ca.CertPEM), ourMatchConditions(t))
	mustKubectl(t, env.Management, config, "apply", "-f", "-")
	t.Cleanup(func() {
		cleanupKubectl(t, env.Management, "delete", "mutatingwebhookconfiguration", "hcp-ingress-bench-fixed-patch", "--ignore-not-found")
	})
	fixedCP := cp.DeepCopy()
	fixedCP.SetNamespace(fixed)
	dryRunAll := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	create := func(ns string, obj *unstructured.Unstructured) error {
		_, err := dyn.Resource(controlPlaneGVR).Namespace(ns).Create(context.Background(), obj.DeepCopy(), dryRunAll)
		return err
	}
	// The new configuration reaches the API server's webhook cache a moment
	// after it is stored.
	eventually(t, "the fixed-patch webhook is called", func() string {
		if err := create(fixed, fixedCP); err != nil {
			return err.Error()
		}
		if sum, _ := webhookDuration(t, fixedName); sum == 0 {
			return "not called yet"
		}
		return ""
	})
	oursName := "controlplane.hcp-ingress.io"
	sumOurs0, nOurs0 := webhookDuration(t, oursName)
	sumFixed0, nFixed0 := webhookDuration(t, fixedName)
	for range 200 {
		if err := create(ours, cp); err != nil {
			t.Fatal(err)
		}
		if err := create(fixed, fixedCP); err != nil {
			t.Fatal(err)
		}
	}
	sumOurs, nOurs := webhookDuration(t, oursName)
	sumFixed, nFixed := webhookDuration(t, fixedName)
	meanOurs := (sumOurs - sumOurs0) / (nOurs - nOurs0)
	meanFixed := (sumFixed - sumFixed0) / (nFixed - nFixed0)
	t.Logf("latency apiserver per webhook call (apiserver_admission_webhook_admission_duration_seconds, mean of %v CREATEs): ours %.0fµs, fixed-patch %.0fµs, ratio %.3f",
		nOurs-nOurs0, meanOurs*1e6, meanFixed*1e6, meanOurs/meanFixed)
}

// ourMatchConditions returns, as JSON, the CEL matchConditions of our
// registered control-plane webhook: the fixed-patch webhook gets the same, so
// that the API server does the same work around both calls and the ratio
// measures the webhooks themselves.
func ourMatchConditions(t *testing.T) string {
	t.Helper()
	var mwc struct {
		Webhooks []struct {
			Name            string          `json:"name"`
			MatchConditions json.RawMessage `json:"matchConditions"`
		} `json:"webhooks"`
	}
	raw := mustKubectl(t, env.Management, "", "get", "mutatingwebhookconfiguration", "hcp-ingress-webhook", "-o", "json").Stdout
	if err := json.Unmarshal([]byte(raw), &mwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range mwc.Webhooks {
		if w.Name == "controlplane.hcp-ingress.io" && len(w.MatchConditions) > 0 {
			return string(w.MatchConditions)
		}
	}
	t.Fatal("the registered configuration has no controlplane.hcp-ingress.io matchConditions")
	return ""
}

// webhookDuration returns sum and count of kube-apiserver's admission
// duration histogram for one webhook's CREATE admissions.
func webhookDuration(t *testing.T, name string) (sum, count float64) {
	t.Helper()
	raw := mustKubectl(t, env.Management, "", "get", "--raw", "/metrics").Stdout
	for _, line := range strings.Split(raw, "\n") {
		if !strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_") ||
			!strings.Contains(line, `name="`+name+`"`) || !strings.Contains(line, `operation="CREATE"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("apiserver metrics line %q: %v", line, err)
		}
		switch {
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_sum"):
			sum += v
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_count"):
			count += v
		}
	}
	return sum, count
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
