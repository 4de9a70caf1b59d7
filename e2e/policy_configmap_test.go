package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// The policy ConfigMap of the default install (manifests/base).
const (
	policyNamespace = "hcp-ingress-system"
	policyName      = "hcp-ingress-policy"
	flipClass       = "e2e-flip"
)

var controlPlaneGVR = schema.GroupVersionResource{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta2", Resource: "k0smotroncontrolplanes"}

// flipPolicy gives class e2e-flip two annotations that always carry the same
// value: an admission that sees them differ has seen half a policy.
func flipPolicy(value string) string {
	return fmt.Sprintf(`apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
ingressClasses:
  %s:
    annotations:
      example.com/flip-x: %q
      example.com/flip-y: %q
`, flipClass, value, value)
}

const invalidConfigMapPolicy = `apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
onUnknownClass: Sometimes
ingressClasses:
  e2e-flip:
    annotations:
      "example.com/flip x": "broken"
`

// TestPolicyConfigMap runs a second webhook process with --policy-configmap
// (the default install) and points the management cluster's webhook
// configurations, rendered from manifests/, at it for the duration of the
// test: the ConfigMap is watched, validated at admission, and reported.
func TestPolicyConfigMap(t *testing.T) {
	requireWebhook(t)
	clients, err := kubernetes.NewForConfig(env.Management.Config)
	if err != nil {
		t.Fatal(err)
	}
	quiet := rest.CopyConfig(env.Management.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(quiet)
	if err != nil {
		t.Fatal(err)
	}
	ensurePolicyNamespace(t)
	deletePolicyConfigMap(t, clients)

	w := startConfigMapWebhook(t, false)
	routeTo(t, w)
	ns := newNamespace(t, env.Management, "e2e-policy-cm", nil)
	cp := k0smotronCP(ns, "flip", flipClass)

	t.Run("without the ConfigMap the embedded defaults apply", func(t *testing.T) {
		readyz := readyzVerbose(t, w)
		if !strings.Contains(readyz, "embedded default") {
			t.Errorf("/readyz?verbose does not name the embedded default policy:\n%s", readyz)
		}
		if got := flipAnnotations(t, w, cp); got != "" {
			t.Errorf("class %s has no rule in the defaults, yet got %s", flipClass, got)
		}
	})

	t.Run("a valid ConfigMap change applies to the next admission within one second", func(t *testing.T) {
		var latencies []time.Duration
		for i := range 6 {
			value := fmt.Sprintf("v%d", i)
			start := applyPolicyConfigMap(t, clients, flipPolicy(value))
			for flipAnnotations(t, w, cp) != value+"/"+value {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("policy %s not in force 10s after the ConfigMap update", value)
				}
				time.Sleep(2 * time.Millisecond)
			}
			latencies = append(latencies, time.Since(start))
		}
		slices.Sort(latencies)
		t.Logf("ConfigMap update -> first admission that uses it, 6 updates: min %v, median %v, max %v",
			latencies[0], latencies[len(latencies)/2], latencies[len(latencies)-1])
		if median := latencies[len(latencies)/2]; median > time.Second {
			t.Errorf("median reload latency %v is over one second", median)
		}
		// And through the API server, as a user sees it.
		mutated, _ := dryRun(t, env.Management, cp)
		if a := ingressAnnotations(mutated); a["example.com/flip-x"] != "v5" {
			t.Errorf("kubectl apply --dry-run=server: annotations %v, want the last policy's", a)
		}
		events := policyEvents(t, "PolicyLoaded")
		if len(events) == 0 || !strings.Contains(events[len(events)-1], "generation") {
			t.Errorf("no Normal PolicyLoaded Event naming the generation: %q", events)
		}
	})

	t.Run("a ConfigMap that would not load is rejected by /validate-policy with every field path", func(t *testing.T) {
		cm := policyConfigMapYAML(t, invalidConfigMapPolicy)
		for _, args := range [][]string{{"apply", "--dry-run=server", "-f", "-"}, {"apply", "-f", "-"}} {
			res := kubectl(t, env.Management, cm, args...)
			if res.Err() == nil {
				t.Fatalf("kubectl %s accepted an invalid policy", strings.Join(args, " "))
			}
			for _, want := range []string{"onUnknownClass", "ingressClasses[e2e-flip].annotations"} {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("kubectl %s: the rejection does not name %s:\n%s", strings.Join(args, " "), want, res.Stderr)
				}
			}
		}
		if got := flipAnnotations(t, w, cp); got != "v5/v5" {
			t.Errorf("the rejected policy changed admissions: %s", got)
		}
	})

	t.Run("valid but risky settings come back as warnings", func(t *testing.T) {
		risky := flipPolicy("v5") + "onUnknownClass: Deny\nreplaceDefaults: true\n"
		res := mustKubectl(t, env.Management, policyConfigMapYAML(t, risky), "apply", "--dry-run=server", "-f", "-")
		requireWarning(t, res, "onUnknownClass")
		requireWarning(t, res, "replaceDefaults")
	})

	t.Run("a bad policy that gets past validation never replaces the working one", func(t *testing.T) {
		before := metric(t, w, "hcp_ingress_policy_load_errors_total")
		// The validating webhook is feedback, not protection: without it (or
		// with it down, failurePolicy Ignore) a bad policy can be stored.
		mustKubectl(t, env.Management, "", "delete", "validatingwebhookconfiguration", "hcp-ingress-webhook")
		t.Cleanup(func() { registerWebhooks(t, w) })
		eventually(t, "the API server stores an invalid policy ConfigMap", func() string {
			res := kubectl(t, env.Management, policyConfigMapYAML(t, invalidConfigMapPolicy), "apply", "-f", "-")
			if res.Err() != nil {
				return res.Stderr
			}
			return ""
		})
		eventually(t, "a Warning Event on the ConfigMap lists the errors", func() string {
			events := policyEvents(t, "PolicyInvalid")
			for _, e := range events {
				if strings.Contains(e, "onUnknownClass") && strings.Contains(e, "ingressClasses[e2e-flip].annotations") {
					return ""
				}
			}
			return fmt.Sprintf("PolicyInvalid events: %q", events)
		})
		if after := metric(t, w, "hcp_ingress_policy_load_errors_total"); after <= before {
			t.Errorf("hcp_ingress_policy_load_errors_total did not move: %v -> %v", before, after)
		}
		if got := flipAnnotations(t, w, cp); got != "v5/v5" {
			t.Errorf("admissions no longer use the last good policy: %s", got)
		}
		if readyz := readyzVerbose(t, w); !strings.Contains(readyz, "last policy load failed") {
			t.Errorf("/readyz?verbose does not report the failed load:\n%s", readyz)
		}
	})

	t.Run("deleting the ConfigMap returns to the embedded defaults", func(t *testing.T) {
		applyPolicyConfigMap(t, clients, flipPolicy("back"))
		eventually(t, "the fixed policy is in force", func() string {
			if got := flipAnnotations(t, w, cp); got != "back/back" {
				return got
			}
			return ""
		})
		deletePolicyConfigMap(t, clients)
		eventually(t, "the embedded defaults are back", func() string {
			if got := flipAnnotations(t, w, cp); got != "" {
				return "class " + flipClass + " still has a rule: " + got
			}
			return ""
		})
		if readyz := readyzVerbose(t, w); !strings.Contains(readyz, "embedded default") {
			t.Errorf("/readyz?verbose does not say the defaults are in force:\n%s", readyz)
		}
		eventually(t, "an Event says the defaults apply", func() string {
			if events := policyEvents(t, "PolicyDefaults"); len(events) == 0 {
				return "no PolicyDefaults Event"
			}
			return ""
		})
	})

	t.Run("the policy flips 50 times under load: no failed or inconsistent admission", func(t *testing.T) {
		loaded := metric(t, w, "hcp_ingress_policy_generation")
		applyPolicyConfigMap(t, clients, flipPolicy("a"))
		waitGeneration(t, w, loaded)
		var total, failed, inconsistent, seenA, seenB atomic.Int64
		var firstProblem atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := dyn.Resource(controlPlaneGVR).Namespace(ns).Create(t.Context(), cp.DeepCopy(),
						metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					total.Add(1)
					if err != nil {
						failed.Add(1)
						firstProblem.CompareAndSwap(nil, err.Error())
						continue
					}
					a := ingressAnnotations(got)
					switch x, y := a["example.com/flip-x"], a["example.com/flip-y"]; {
					case x != y || (x != "a" && x != "b"):
						inconsistent.Add(1)
						firstProblem.CompareAndSwap(nil, fmt.Sprintf("annotations %v", a))
					case x == "a":
						seenA.Add(1)
					default:
						seenB.Add(1)
					}
				}
			})
		}
		start := time.Now()
		generation := metric(t, w, "hcp_ingress_policy_generation")
		for i := range 50 {
			value := "b"
			if i%2 == 1 {
				value = "a"
			}
			applyPolicyConfigMap(t, clients, flipPolicy(value))
			generation = waitGeneration(t, w, generation)
		}
		close(stop)
		wg.Wait()
		t.Logf("50 policy flips in %v; %d admissions through the API server: %d failed, %d inconsistent (%d saw a, %d saw b)",
			time.Since(start).Round(time.Millisecond), total.Load(), failed.Load(), inconsistent.Load(), seenA.Load(), seenB.Load())
		if failed.Load() != 0 || inconsistent.Load() != 0 {
			t.Errorf("%d failed and %d inconsistent admissions; first: %v", failed.Load(), inconsistent.Load(), firstProblem.Load())
		}
		if seenA.Load() == 0 || seenB.Load() == 0 {
			t.Errorf("the load never saw both policies (a: %d, b: %d)", seenA.Load(), seenB.Load())
		}
	})

	t.Run("policy show and policy diff read the live ConfigMap", func(t *testing.T) {
		live := []string{"--kubeconfig", env.Management.Kubeconfig, "--policy-configmap", policyNamespace + "/" + policyName}
		stdout, stderr, err := webhookCLI(t, append([]string{"policy", "show"}, live...)...)
		if err != nil {
			t.Fatalf("policy show: %v\n%s", err, stderr)
		}
		for _, want := range []string{
			"# source: configmap " + policyNamespace + "/" + policyName, // the user's rule
			"# source: built-in", // the merged defaults
			"example.com/flip-x: a",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("policy show lacks %q:\n%s", want, stdout)
			}
		}
		file := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(file, []byte(flipPolicy("z")), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, _, err = webhookCLI(t, append([]string{"policy", "diff", "-f", file}, live...)...)
		if err == nil || !strings.Contains(stdout, "-      example.com/flip-x: a") || !strings.Contains(stdout, "+      example.com/flip-x: z") {
			t.Errorf("policy diff against a different file: err=%v\n%s", err, stdout)
		}
		if err := os.WriteFile(file, []byte(flipPolicy("a")), 0o644); err != nil {
			t.Fatal(err)
		}
		if stdout, stderr, err := webhookCLI(t, append([]string{"policy", "diff", "-f", file}, live...)...); err != nil || stdout != "" {
			t.Errorf("policy diff against the same policy: err=%v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
	})

	t.Run("an invalid ConfigMap at start leaves the server not ready, with the reason, until a valid one appears", func(t *testing.T) {
		mustKubectl(t, env.Management, "", "delete", "validatingwebhookconfiguration", "hcp-ingress-webhook")
		t.Cleanup(func() { registerWebhooks(t, w) })
		eventually(t, "the API server stores an invalid policy ConfigMap", func() string {
			if res := kubectl(t, env.Management, policyConfigMapYAML(t, invalidConfigMapPolicy), "apply", "-f", "-"); res.Err() != nil {
				return res.Stderr
			}
			return ""
		})
		fresh := startConfigMapWebhook(t, true)
		eventually(t, "a webhook started on an invalid policy says why it is not ready", func() string {
			code, body := readyz(t, fresh)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "onUnknownClass") {
				return fmt.Sprintf("/readyz: %d %s", code, body)
			}
			return ""
		})
		applyPolicyConfigMap(t, clients, flipPolicy("fixed"))
		eventually(t, "the webhook becomes ready once the policy is valid", func() string {
			if code, body := readyz(t, fresh); code != http.StatusOK {
				return fmt.Sprintf("/readyz: %d %s", code, body)
			}
			return ""
		})
		if got := flipAnnotations(t, fresh, cp); got != "fixed/fixed" {
			t.Errorf("the fixed policy is not in force: %s", got)
		}
	})
}

// startConfigMapWebhook starts `serve --policy-configmap` against the
// management cluster; it is stopped when the test ends.
func startConfigMapWebhook(t *testing.T, noReadyWait bool) *framework.Webhook {
	t.Helper()
	return startWebhook(t, "--policy-configmap webhook", framework.WebhookOptions{
		Kubeconfig:      env.Management.Kubeconfig,
		PolicyConfigMap: policyNamespace + "/" + policyName,
		NoReadyWait:     noReadyWait,
	})
}

// routeTo registers the management overlay's webhook configurations against
// w and waits until the API server calls it; when the test ends they go back
// to the shared webhook.
func routeTo(t *testing.T, w *framework.Webhook) {
	t.Helper()
	registerWebhooks(t, w)
	t.Cleanup(func() { registerWebhooks(t, env.Webhook) })
}

// registerWebhooks points the management overlay's webhook configurations at
// w and waits until the API server calls it. It also runs in cleanups, after
// t.Context() has ended, so it uses its own context.
func registerWebhooks(t *testing.T, w *framework.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventuallyTimeout)
	defer cancel()
	if _, err := framework.RegisterOverlayWebhooks(ctx, env.Paths, env.Management, framework.OverlayManagement, w); err != nil {
		t.Fatal(err)
	}
	probe := toYAML(t, k0smotronCP("default", "route-probe", ""))
	for {
		before, err := w.RequestCount("/mutate-controlplane")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.Management.Kubectl(ctx, probe, "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		if after, _ := w.RequestCount("/mutate-controlplane"); after > before {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the API server did not call %s within %v of registration", w.URL, eventuallyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensurePolicyNamespace(t *testing.T) {
	t.Helper()
	ns := object("v1", "Namespace", "", policyNamespace)
	ns.SetLabels(map[string]string{"kubernetes.io/metadata.name": policyNamespace, skipLabel: "true"})
	mustKubectl(t, env.Management, toYAML(t, ns), "apply", "-f", "-")
}

func policyConfigMap(policy string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: policyName, Namespace: policyNamespace},
		Data:       map[string]string{"policy.yaml": policy},
	}
}

func policyConfigMapYAML(t *testing.T, policy string) string {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(policyConfigMap(policy))
	if err != nil {
		t.Fatal(err)
	}
	delete(u["metadata"].(map[string]any), "creationTimestamp")
	data, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// applyPolicyConfigMap creates or updates the policy ConfigMap through the
// API server (the validating webhook included) and returns when the write is
// stored.
func applyPolicyConfigMap(t *testing.T, clients kubernetes.Interface, policy string) time.Time {
	t.Helper()
	cms := clients.CoreV1().ConfigMaps(policyNamespace)
	current, err := cms.Get(t.Context(), policyName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(t.Context(), policyConfigMap(policy), metav1.CreateOptions{})
	case err == nil:
		current.Data = map[string]string{"policy.yaml": policy}
		_, err = cms.Update(t.Context(), current, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("writing the policy ConfigMap: %v", err)
	}
	return time.Now()
}

func deletePolicyConfigMap(t *testing.T, clients kubernetes.Interface) {
	t.Helper()
	err := clients.CoreV1().ConfigMaps(policyNamespace).Delete(t.Context(), policyName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// flipAnnotations sends cp straight to w's /mutate-controlplane (no API
// server in between, so polling it is cheap and exact) and returns
// "x/y" of the flip annotations after the patch, "" when neither is set.
func flipAnnotations(t *testing.T, w *framework.Webhook, cp interface{ MarshalJSON() ([]byte, error) }) string {
	t.Helper()
	raw, err := cp.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	response := admitDirect(t, w, "/mutate-controlplane", "e2e", raw)
	if !response.Allowed {
		t.Fatalf("denied: %v", response.Result)
	}
	mutated := raw
	if len(response.Patch) > 0 {
		patch, err := jsonpatch.DecodePatch(response.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if mutated, err = patch.Apply(raw); err != nil {
			t.Fatal(err)
		}
	}
	var obj struct {
		Spec struct {
			Ingress struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"ingress"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(mutated, &obj); err != nil {
		t.Fatal(err)
	}
	x, y := obj.Spec.Ingress.Annotations["example.com/flip-x"], obj.Spec.Ingress.Annotations["example.com/flip-y"]
	if x == "" && y == "" {
		return ""
	}
	return x + "/" + y
}

func readyz(t *testing.T, w *framework.Webhook) (int, string) {
	t.Helper()
	resp, err := http.Get(w.ProbeURL + "/readyz?verbose")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func readyzVerbose(t *testing.T, w *framework.Webhook) string {
	t.Helper()
	_, body := readyz(t, w)
	return body
}

func metric(t *testing.T, w *framework.Webhook, name string) float64 {
	t.Helper()
	v, err := w.Metric(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitGeneration waits until w's policy generation is past after, and
// returns the new generation.
func waitGeneration(t *testing.T, w *framework.Webhook, after float64) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if g := metric(t, w, "hcp_ingress_policy_generation"); g > after {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy generation still %v after 10s", after)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// policyEvents returns the messages of the Events with reason on the policy
// ConfigMap, oldest first.
func policyEvents(t *testing.T, reason string) []string {
	t.Helper()
	res := mustKubectl(t, env.Management, "", "get", "events", "-n", policyNamespace,
		"--field-selector", "involvedObject.name="+policyName+",reason="+reason, "--sort-by=.lastTimestamp", "-o", "json")
	var list corev1.EventList
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("%v: %s", err, res.Stdout)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Message)
	}
	return out
}
