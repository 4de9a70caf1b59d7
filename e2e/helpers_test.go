package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// Names the product defines (PRODUCT.md).
const (
	mutatedAnnotation = "hcp-ingress.io/mutated"
	skipLabel         = "hcp-ingress.io/skip"
	injectAnnotation  = "hcp-ingress.io/inject"
	isDefaultClass    = "ingressclass.kubernetes.io/is-default-class"

	pathControlPlane = "/mutate-controlplane"
	pathWorkload     = "/mutate-workload"
)

// eventuallyTimeout bounds every poll: webhook configurations, IngressClass
// informers and policy reloads all settle within a second or two.
const eventuallyTimeout = 20 * time.Second

// requireWebhook fails the test when the webhook is not serving.
func requireWebhook(t *testing.T) {
	t.Helper()
	if webhookErr != nil {
		t.Fatalf("the webhook is not running, so this cannot be tested: %v", webhookErr)
	}
	if env.Webhook.Exited() {
		t.Fatalf("the webhook process has exited; last log lines:\n%s", env.Webhook.LogTail(30))
	}
}

// startWebhook starts one more `serve` for the test (Dir defaults to a
// temporary directory); it is stopped when the test ends, and a failed test
// logs the end of its log, named what.
func startWebhook(t *testing.T, what string, o framework.WebhookOptions) *framework.Webhook {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	w, err := framework.StartWebhook(t.Context(), env.Paths, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last 40 lines):\n%s", what, w.LogTail(40))
		}
		_ = w.Stop()
	})
	return w
}

// admitDirect sends a CREATE review of object in namespace straight to w's
// path (no API server in between) and returns the response.
func admitDirect(t *testing.T, w *framework.Webhook, path, namespace string, object []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "e2e", Operation: admissionv1.Create, Namespace: namespace,
			Object: runtime.RawExtension{Raw: object},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := webhookClient(t, w).Post(w.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(out, &review); err != nil || review.Response == nil {
		t.Fatalf("bad AdmissionReview response %d: %s", resp.StatusCode, out)
	}
	return review.Response
}

var (
	clientsMu sync.Mutex
	clientsBy = map[*framework.Webhook]*http.Client{}
)

// webhookClient is a keep-alive HTTPS client that trusts w's CA.
func webhookClient(t *testing.T, w *framework.Webhook) *http.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clientsBy[w]; ok {
		return c
	}
	c := httpsClient(t, w.CABundle, 0)
	clientsBy[w] = c
	return c
}

// httpsClient is a keep-alive HTTPS client that trusts the certificates of
// caPEM, with conns idle connections per host (0: net/http's default).
func httpsClient(t *testing.T, caPEM []byte, conns int) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the CA bundle holds no certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: conns,
	}}
}

// requireBench skips a measurement unless HCP_BENCH is set, as target
// (make bench, make bench-fleet) does.
func requireBench(t *testing.T, target string) {
	t.Helper()
	if os.Getenv("HCP_BENCH") == "" {
		t.Skipf("a benchmark: run with HCP_BENCH=1 (%s)", target)
	}
}

// kubectl runs bin/kubectl against cluster c; it fails the test only when
// kubectl cannot be run at all.
func kubectl(t *testing.T, c *framework.Cluster, stdin string, args ...string) framework.KubectlResult {
	t.Helper()
	res, err := c.Kubectl(t.Context(), stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustKubectl is kubectl that also fails the test on a non-zero exit.
func mustKubectl(t *testing.T, c *framework.Cluster, stdin string, args ...string) framework.KubectlResult {
	t.Helper()
	res := kubectl(t, c, stdin, args...)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

var namespaceCounter atomic.Int64

// newNamespace creates a namespace with a unique name and the labels. The
// namespaces are not deleted: envtest runs no namespace controller, they
// would stay Terminating, and the clusters are thrown away at the end.
func newNamespace(t *testing.T, c *framework.Cluster, prefix string, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaceCounter.Add(1))
	ns := object("v1", "Namespace", "", name)
	ns.SetLabels(labels)
	mustKubectl(t, c, toYAML(t, ns), "apply", "-f", "-")
	return name
}

func object(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	return u
}

// controlPlane returns a K0smotronControlPlane (or another kind with the
// ingress block at spec.ingress) with a k0sConfig and the ingress fields.
func controlPlane(apiVersion, kind, namespace, name string, ingress map[string]any) *unstructured.Unstructured {
	u := object(apiVersion, kind, namespace, name)
	u.Object["spec"] = map[string]any{
		"version":  "v1.34.1-k0s.0",
		"replicas": int64(1),
		"service":  map[string]any{"type": "ClusterIP", "apiPort": int64(6443), "konnectivityPort": int64(8132)},
		"k0sConfig": map[string]any{
			"apiVersion": "k0s.k0sproject.io/v1beta1",
			"kind":       "ClusterConfig",
			"spec":       map[string]any{"network": map[string]any{"provider": "calico"}},
		},
	}
	if ingress != nil {
		u.Object["spec"].(map[string]any)["ingress"] = ingress
	}
	return u
}

// k0smotronCP is a v1beta2 K0smotronControlPlane with ingress class className
// ("" for none), hosts derived from its name.
func k0smotronCP(namespace, name, className string) *unstructured.Unstructured {
	return controlPlane("controlplane.cluster.x-k8s.io/v1beta2", "K0smotronControlPlane", namespace, name, ingressBlock(name, className))
}

func ingressBlock(name, className string) map[string]any {
	ingress := map[string]any{
		"apiHost":          "api." + name + ".example.com",
		"konnectivityHost": "konnectivity." + name + ".example.com",
	}
	if className != "" {
		ingress["className"] = className
	}
	return ingress
}

func toYAML(t *testing.T, objects ...*unstructured.Unstructured) string {
	t.Helper()
	data, err := framework.EncodeObjects(objects)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func readTestdata(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	objects, err := framework.DecodeObjects(data)
	if err != nil || len(objects) != 1 {
		t.Fatalf("testdata/%s: want one object, got %d (%v)", name, len(objects), err)
	}
	return objects[0]
}

// decode parses kubectl's -o json output.
func decode(t *testing.T, res framework.KubectlResult) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(res.Stdout)); err != nil {
		t.Fatalf("decoding kubectl output: %v\n%s", err, res)
	}
	return u
}

// dryRun is `kubectl apply --dry-run=server -o json`: the object as the API
// server would store it, after every mutating webhook, with the warnings.
func dryRun(t *testing.T, c *framework.Cluster, obj *unstructured.Unstructured) (*unstructured.Unstructured, framework.KubectlResult) {
	t.Helper()
	res := mustKubectl(t, c, toYAML(t, obj), "apply", "--dry-run=server", "-o", "json", "-f", "-")
	return decode(t, res), res
}

// get is `kubectl get -o json`.
func get(t *testing.T, c *framework.Cluster, resource, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	return decode(t, mustKubectl(t, c, "", "get", resource, name, "-n", namespace, "-o", "json"))
}

// ingressAnnotations returns spec.ingress.annotations (or the template's).
func ingressAnnotations(u *unstructured.Unstructured) map[string]string {
	path := []string{"spec", "ingress", "annotations"}
	if u.GetKind() == "K0smotronControlPlaneTemplate" {
		path = []string{"spec", "template", "spec", "ingress", "annotations"}
	}
	m, _, _ := unstructured.NestedStringMap(u.Object, path...)
	return m
}

// webhookWarnings are the warnings kubectl printed, except the API server's
// deprecation notices for served-but-deprecated versions (k0smotron.io/v1beta1).
func webhookWarnings(res framework.KubectlResult) []string {
	var out []string
	for _, w := range res.Warnings() {
		if strings.Contains(w, " is deprecated") {
			continue
		}
		out = append(out, w)
	}
	return out
}

// requireWarning fails unless some warning matches the regular expression.
func requireWarning(t *testing.T, res framework.KubectlResult, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for _, w := range res.Warnings() {
		if re.MatchString(w) {
			return
		}
	}
	t.Errorf("no warning matches %q; warnings:\n  %s", pattern, strings.Join(res.Warnings(), "\n  "))
}

// eventually polls check until it returns "" (done) or the timeout passes,
// then fails with the last message. It returns how long it took.
func eventually(t *testing.T, what string, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(eventuallyTimeout)
	for {
		msg := check()
		if msg == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %s", what, eventuallyTimeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requests is how often the API server has called the webhook on path.
func requests(t *testing.T, path string) float64 {
	t.Helper()
	n, err := env.Webhook.RequestCount(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ingressClass creates (or replaces) an IngressClass and deletes it when the
// test ends. spec.controller is immutable, so a different controller means
// delete and create.
func ingressClass(t *testing.T, name, controller string, isDefault bool) {
	t.Helper()
	ic := object("networking.k8s.io/v1", "IngressClass", "", name)
	ic.Object["spec"] = map[string]any{"controller": controller}
	if isDefault {
		ic.SetAnnotations(map[string]string{isDefaultClass: "true"})
	}
	mustKubectl(t, env.Management, "", "delete", "ingressclass", name, "--ignore-not-found", "--wait=false")
	mustKubectl(t, env.Management, toYAML(t, ic), "apply", "-f", "-")
	t.Cleanup(func() { cleanupKubectl(t, env.Management, "delete", "ingressclass", name, "--ignore-not-found") })
}

// cleanupKubectl runs kubectl from a t.Cleanup function, where t.Context()
// is already cancelled, and only logs failures.
func cleanupKubectl(t *testing.T, c *framework.Cluster, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Kubectl(ctx, "", args...)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// deleteIngressClass removes an IngressClass now.
func deleteIngressClass(t *testing.T, name string) {
	t.Helper()
	mustKubectl(t, env.Management, "", "delete", "ingressclass", name, "--ignore-not-found")
}

// policyGeneration is the generation of the policy in force.
func policyGeneration(t *testing.T) float64 {
	t.Helper()
	n, err := env.Webhook.Metric("hcp_ingress_policy_generation", "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writePolicy writes the policy file atomically (rename) or in place, and
// with wait, polls until the webhook's policy generation moves on.
func writePolicy(t *testing.T, policy string, wait bool) {
	t.Helper()
	before := policyGeneration(t)
	tmp := env.PolicyFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, env.PolicyFile); err != nil {
		t.Fatal(err)
	}
	if wait {
		eventually(t, "the webhook loads the rewritten policy file", func() string {
			if g := policyGeneration(t); g <= before {
				return fmt.Sprintf("policy generation is still %v", g)
			}
			return ""
		})
	}
}

// containerEnv returns the env of the named container of a workload's pod
// template as name -> value ("valueFrom" for references).
func containerEnv(t *testing.T, u *unstructured.Unstructured, container string, init bool) (map[string]string, bool) {
	t.Helper()
	return podContainerEnv(u, container, init)
}

// podContainerEnv is containerEnv for goroutines that have no *testing.T.
func podContainerEnv(u *unstructured.Unstructured, container string, init bool) (map[string]string, bool) {
	field := "containers"
	if init {
		field = "initContainers"
	}
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", field)
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		if cm["name"] != container {
			continue
		}
		env := map[string]string{}
		list, _ := cm["env"].([]any)
		for _, e := range list {
			em, _ := e.(map[string]any)
			name, _ := em["name"].(string)
			if v, ok := em["value"].(string); ok {
				env[name] = v
			} else if _, ok := em["valueFrom"]; ok {
				env[name] = "valueFrom"
			} else {
				env[name] = ""
			}
		}
		return env, true
	}
	return nil, false
}

// yamlOf renders an object for failure messages.
func yamlOf(u *unstructured.Unstructured) string {
	data, _ := yaml.Marshal(u.Object)
	return string(data)
}

// rbacObjects returns the objects among objects that grant permissions (and
// the namespace and ServiceAccount they need), to apply them without the rest.
func rbacObjects(objects []*unstructured.Unstructured) []*unstructured.Unstructured {
	var rbac []*unstructured.Unstructured
	for _, o := range objects {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	return rbac
}

// requirePermissions checks, with `kubectl auth can-i ... --as serviceAccount`
// on cluster c, that each verb and resource (kubectl's words, e.g. "get
// secrets -n default") is allowed exactly when want says so.
func requirePermissions(t *testing.T, c *framework.Cluster, cases map[string]bool) {
	t.Helper()
	for args, want := range cases {
		t.Run(args, func(t *testing.T) {
			res := kubectl(t, c, "", append(append([]string{"auth", "can-i"}, strings.Fields(args)...), "--as", serviceAccount)...)
			if res.ExitCode > 1 {
				t.Fatal(res.Err())
			}
			if got := res.ExitCode == 0; got != want {
				t.Errorf("kubectl auth can-i %s: %v, want %v", args, got, want)
			}
		})
	}
}
