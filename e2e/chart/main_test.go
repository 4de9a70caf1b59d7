// Package chart tests charts/hcp-ingress-webhook and manifests/k0rdent the
// way an operator uses them: bin/helm (built from its Go module) lints,
// renders and installs the chart; every rendered object goes through a real
// kube-apiserver with --dry-run=server (cert-manager's real CRDs, Pod
// Security admission, test CRDs of k0rdent's kinds); the chart is compared
// with the kustomize install; and the real webhook binary runs with the
// arguments the chart rendered. No mocks.
//
// `make chart-test` runs it (it builds bin/helm). It is not part of `make
// e2e`, which would run it a second time in `make test`: without
// HCP_CHART_E2E=1 the package skips.
package chart

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

const (
	chartDir    = "charts/hcp-ingress-webhook"
	releaseName = "hcp-ingress-webhook"
)

var (
	paths   framework.Paths
	cluster *framework.Cluster
	// helmHome isolates helm's cache, config and data from the user's.
	helmHome string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || os.Getenv("HCP_CHART_E2E") == "" {
		fmt.Println("e2e/chart: skipped; run `make chart-test` (or HCP_CHART_E2E=1 go test ./e2e/chart/ with bin/helm built)")
		os.Exit(0)
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("e2e/chart [%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx := context.Background()
	var err error
	if paths, err = framework.FindPaths(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(paths.Bin, "helm")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/chart: %v: run `make helm`\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "hcp-ingress-chart-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	helmHome = filepath.Join(dir, "helm")

	logf("starting etcd + kube-apiserver…")
	var certManagerDir string
	certManagerDone := make(chan error, 1)
	go func() {
		var err error
		certManagerDir, err = framework.CertManagerCRDs(ctx, dir)
		certManagerDone <- err
	}()
	cluster, err = framework.StartCluster(ctx, paths, "chart", dir)
	if cmErr := <-certManagerDone; err == nil {
		err = cmErr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e/chart: %v\n", err)
		_ = cluster.Stop()
		return 1
	}
	crds := filepath.Join(paths.Root, "e2e", "testdata", "crds")
	if err := cluster.InstallCRDs(crds, certManagerDir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/chart: %v\n", err)
		_ = cluster.Stop()
		return 1
	}
	logf("control plane ready, CRDs installed (test fixtures of k0smotron, k0rdent and FluxCD kinds; cert-manager %s)", framework.CertManagerVersion)

	code := m.Run()

	if err := cluster.Stop(); err != nil {
		logf("stopping: %v", err)
	}
	if code != 0 {
		logf("kept %s for inspection", dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	return code
}

// helmResult is what one bin/helm run printed and how it exited.
type helmResult struct {
	args           []string
	stdout, stderr string
	exitCode       int
}

func (r helmResult) err() error {
	if r.exitCode == 0 {
		return nil
	}
	return fmt.Errorf("helm %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.exitCode, r.stdout, r.stderr)
}

// helm runs bin/helm in the repository root, against the test cluster when
// kubeconfig is set. Only failing to start helm fails the test.
func helm(t *testing.T, stdin string, args ...string) helmResult {
	t.Helper()
	return helmContext(t, t.Context(), stdin, args...)
}

// helmContext is helm with a context of its own, for t.Cleanup (where
// t.Context is already cancelled).
func helmContext(t *testing.T, ctx context.Context, stdin string, args ...string) helmResult {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(paths.Bin, "helm"), args...)
	cmd.Dir = paths.Root
	cmd.Env = []string{
		"HOME=" + helmHome,
		"PATH=" + os.Getenv("PATH"),
		"HELM_CACHE_HOME=" + filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME=" + filepath.Join(helmHome, "data"),
		"KUBECONFIG=" + cluster.Kubeconfig,
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := helmResult{args: args}
	if err := cmd.Run(); err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running helm: %v", err)
		}
		res.exitCode = exit.ExitCode()
	}
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// render runs `helm template` of the chart as release hcp-ingress-webhook in
// namespace with the values (YAML, may be empty) and fails the test on any
// error.
func render(t *testing.T, namespace, values string) []*unstructured.Unstructured {
	t.Helper()
	res := helmTemplate(t, namespace, values)
	if err := res.err(); err != nil {
		t.Fatal(err)
	}
	objects, err := framework.DecodeObjects([]byte(res.stdout))
	if err != nil {
		t.Fatalf("decoding helm template output: %v", err)
	}
	return objects
}

func helmTemplate(t *testing.T, namespace, values string) helmResult {
	t.Helper()
	args := []string{"template", releaseName, chartDir, "--namespace", namespace}
	if values != "" {
		args = append(args, "--values", "-")
	}
	return helm(t, values, args...)
}

func kubectl(t *testing.T, stdin string, args ...string) framework.KubectlResult {
	t.Helper()
	res, err := cluster.Kubectl(t.Context(), stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustKubectl(t *testing.T, stdin string, args ...string) framework.KubectlResult {
	t.Helper()
	res := kubectl(t, stdin, args...)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

// ensureNamespace creates (or updates) a namespace with the labels.
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	ns.SetName(name)
	ns.SetLabels(labels)
	mustKubectl(t, toYAML(t, ns), "apply", "-f", "-")
}

func toYAML(t *testing.T, objects ...*unstructured.Unstructured) string {
	t.Helper()
	data, err := framework.EncodeObjects(objects)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func kinds(objects []*unstructured.Unstructured) map[string]int {
	out := map[string]int{}
	for _, o := range objects {
		out[o.GetKind()]++
	}
	return out
}

func find(objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objects {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

// policyOf returns policy.yaml of the rendered policy ConfigMap.
func policyOf(t *testing.T, objects []*unstructured.Unstructured) string {
	t.Helper()
	cm := find(objects, "ConfigMap", releaseName+"-policy")
	if cm == nil {
		t.Fatalf("no ConfigMap %s-policy in %v", releaseName, kinds(objects))
	}
	policy, found, err := unstructured.NestedString(cm.Object, "data", "policy.yaml")
	if err != nil || !found {
		t.Fatalf("ConfigMap %s has no data.policy.yaml (err %v)", cm.GetName(), err)
	}
	return policy
}

// containerArgs returns the args of the Deployment's webhook container.
func containerArgs(t *testing.T, deployment *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", deployment.GetName(), len(containers))
	}
	var args []string
	for _, a := range containers[0].(map[string]any)["args"].([]any) {
		args = append(args, a.(string))
	}
	return args
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
