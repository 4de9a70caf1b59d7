package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
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
	"k8s.io/client-go/kubernetes"
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
	requireBench(t, "make bench")
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
// admissions) for our webhook and, in the same run, for two reference
// webhooks: HTTPS servers on the same machine that decode the review with
// encoding/json into k8s.io/api types and answer with its uid, each
// registered for control planes in a namespace of its own with the same CEL
// matchConditions as ours.
//
//   - fixed-patch answers with a one-operation patch (a label);
//   - same-response answers with the response our webhook gives for this
//     object (the same patch, warnings and audit annotations), fetched from
//     it once: the API server then applies and records the same response
//     for both, so the ratio is the webhook server's own work.
//
// The three alternate request by request.
func apiServerPerCall(t *testing.T, dyn dynamic.Interface, cp *unstructured.Unstructured, ours string) {
	matchConditions := ourMatchConditions(t)
	oursResponse := admitDirect(t, env.Webhook, "/mutate-controlplane", ours, mustJSON(t, cp.Object))
	if len(oursResponse.Patch) == 0 || len(oursResponse.Warnings) == 0 {
		t.Fatalf("our webhook's response has no patch or no warnings: %+v", oursResponse)
	}
	jsonPatch := admissionv1.PatchTypeJSONPatch
	fixed := referenceWebhook(t, "fixed-patch", matchConditions, admissionv1.AdmissionResponse{
		Allowed: true, Patch: []byte(`[{"op":"add","path":"/metadata/labels","value":{"hcp-ingress-bench":"patched"}}]`),
		PatchType: &jsonPatch,
	})
	same := referenceWebhook(t, "same-response", matchConditions, *oursResponse)

	dryRunAll := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	create := func(ns string) error {
		obj := cp.DeepCopy()
		obj.SetNamespace(ns)
		_, err := dyn.Resource(controlPlaneGVR).Namespace(ns).Create(context.Background(), obj, dryRunAll)
		return err
	}
	metrics := apiServerMetrics(t)
	// A new configuration reaches the API server's webhook cache a moment
	// after it is stored.
	for _, ref := range []reference{fixed, same} {
		eventually(t, "the "+ref.name+" webhook is called", func() string {
			if err := create(ref.namespace); err != nil {
				return err.Error()
			}
			if d := webhookDurations(t, metrics(), ref.webhook); d[ref.webhook].count == 0 {
				return "not called yet"
			}
			return ""
		})
	}
	webhooks := []reference{{"ours", "controlplane.hcp-ingress.io", ours}, fixed, same}
	names := make([]string, len(webhooks))
	for i, w := range webhooks {
		names[i] = w.webhook
	}
	// One call of each webhook per round, in a shuffled order, then one
	// scrape: the difference of the histogram's sum is the duration of that
	// one call, so medians can be taken, which the mean of the histogram
	// alone would not give (a stray pause of the shared machine moves a mean
	// of 200 by a few percent).
	const rounds = 200
	samples := make([][]float64, len(webhooks))
	previous := webhookDurations(t, metrics(), names...)
	order := []int{0, 1, 2}
	for round := range rounds {
		rand.New(rand.NewPCG(uint64(round), 7)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			if err := create(webhooks[i].namespace); err != nil {
				t.Fatal(err)
			}
		}
		now := webhookDurations(t, metrics(), names...)
		for i, name := range names {
			if now[name].count != previous[name].count+1 {
				t.Fatalf("webhook %s: %v calls in a round, want 1", name, now[name].count-previous[name].count)
			}
			samples[i] = append(samples[i], now[name].sum-previous[name].sum)
		}
		previous = now
	}
	med, mean := make([]float64, len(webhooks)), make([]float64, len(webhooks))
	for i := range webhooks {
		slices.Sort(samples[i])
		med[i] = samples[i][len(samples[i])/2]
		for _, d := range samples[i] {
			mean[i] += d / float64(len(samples[i]))
		}
	}
	for i, w := range webhooks[1:] {
		t.Logf("latency apiserver per webhook call (apiserver_admission_webhook_admission_duration_seconds, %d CREATEs each): ours median %.0fµs mean %.0fµs, %s median %.0fµs mean %.0fµs, ratio of medians %.3f, of means %.3f",
			rounds, med[0]*1e6, mean[0]*1e6, w.name, med[i+1]*1e6, mean[i+1]*1e6, med[0]/med[i+1], mean[0]/mean[i+1])
	}
}

// reference is a reference webhook of apiServerPerCall.
type reference struct{ name, webhook, namespace string }

// referenceWebhook serves response (with each request's uid) over HTTPS on
// 127.0.0.1 and registers it for CREATEs of control planes in a new
// namespace, which our webhook's configuration excludes.
func referenceWebhook(t *testing.T, name, matchConditions string, response admissionv1.AdmissionResponse) reference {
	t.Helper()
	ref := reference{name: name, webhook: name + ".bench.hcp-ingress.io"}
	ref.namespace = newNamespace(t, env.Management, "e2e-latency-"+name, map[string]string{skipLabel: "true", "hcp-ingress-bench": name})
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
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		answer := response
		answer.UID = review.Request.UID
		review.Response, review.Request = &answer, nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })

	config := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: hcp-ingress-bench-%s
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
        hcp-ingress-bench: %s
    matchConditions: %s
    sideEffects: None
    admissionReviewVersions: ["v1"]
    failurePolicy: Fail
    timeoutSeconds: 10
`, name, ref.webhook, listener.Addr().String(), base64.StdEncoding.EncodeToString(ca.CertPEM), name, matchConditions)
	mustKubectl(t, env.Management, config, "apply", "-f", "-")
	t.Cleanup(func() {
		cleanupKubectl(t, env.Management, "delete", "mutatingwebhookconfiguration", "hcp-ingress-bench-"+name, "--ignore-not-found")
	})
	return ref
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

// apiServerMetrics returns a function that scrapes kube-apiserver's
// /metrics.
func apiServerMetrics(t *testing.T) func() []byte {
	t.Helper()
	client, err := kubernetes.NewForConfig(env.Management.Config)
	if err != nil {
		t.Fatal(err)
	}
	return func() []byte {
		raw, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
}

// histogram is the sum and count of one webhook's CREATE admission
// durations.
type histogram struct{ sum, count float64 }

// webhookDurations reads kube-apiserver's admission duration histogram
// (apiserver_admission_webhook_admission_duration_seconds) of the CREATE
// admissions of the named webhooks from a scrape.
func webhookDurations(t *testing.T, scrape []byte, names ...string) map[string]histogram {
	t.Helper()
	out := make(map[string]histogram, len(names))
	for line := range strings.SplitSeq(string(scrape), "\n") {
		if !strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_") || !strings.Contains(line, `operation="CREATE"`) {
			continue
		}
		for _, name := range names {
			if !strings.Contains(line, `name="`+name+`"`) {
				continue
			}
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				t.Fatalf("apiserver metrics line %q: %v", line, err)
			}
			h := out[name]
			switch {
			case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_sum"):
				h.sum += v
			case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_count"):
				h.count += v
			}
			out[name] = h
		}
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
