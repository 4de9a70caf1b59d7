package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// manifests/k0rdent: the HelmRepository, the ServiceTemplate, the
// MultiClusterService that installs the chart into the management cluster
// and the ClusterDeployment snippet for the in-child topology. Validated by
// the API server against test CRDs with k0rdent's (and FluxCD's) schema for
// the fields used, checked to point at each other and at this chart, and
// their chart values rendered through the chart.
func TestK0rdentObjects(t *testing.T) {
	objects := k0rdentObjects(t)
	ensureNamespace(t, "kcm-system", nil)

	t.Run("every object passes server-side validation without a warning", func(t *testing.T) {
		res := mustKubectl(t, toYAML(t, objects...), "apply", "--dry-run=server", "-f", "-")
		if w := res.Warnings(); len(w) != 0 {
			t.Errorf("warnings:\n  %s", strings.Join(w, "\n  "))
		}
		if n := strings.Count(res.Stdout, "(server dry run)"); n != len(objects) {
			t.Errorf("%d of %d objects went through the API server:\n%s", n, len(objects), res.Stdout)
		}
	})

	repo := findKind(t, objects, "HelmRepository")
	template := findKind(t, objects, "ServiceTemplate")
	mcs := findKind(t, objects, "MultiClusterService")
	deployment := findKind(t, objects, "ClusterDeployment")

	t.Run("the ServiceTemplate is this chart, from the HelmRepository k0rdent manages", func(t *testing.T) {
		chart := chartMetadata(t)
		spec := nested(t, template, "spec", "helm", "chartSpec")
		if spec["chart"] != chart["name"] || spec["version"] != chart["version"] {
			t.Errorf("chartSpec %v@%v, Chart.yaml %v@%v", spec["chart"], spec["version"], chart["name"], chart["version"])
		}
		ref := spec["sourceRef"].(map[string]any)
		if ref["kind"] != "HelmRepository" || ref["name"] != repo.GetName() || template.GetNamespace() != repo.GetNamespace() {
			t.Errorf("sourceRef %v in %s, HelmRepository %s/%s", ref, template.GetNamespace(), repo.GetNamespace(), repo.GetName())
		}
		if repo.GetLabels()["k0rdent.mirantis.com/managed"] != "true" {
			t.Errorf("HelmRepository %s lacks the label k0rdent.mirantis.com/managed: \"true\" (k0rdent ignores it)", repo.GetName())
		}
		if want := strings.ReplaceAll(chart["name"].(string)+"-"+chart["version"].(string), ".", "-"); template.GetName() != want {
			t.Errorf("ServiceTemplate %s, want %s (immutable spec: one template per chart version)", template.GetName(), want)
		}
	})

	cases := map[string]struct {
		object   *unstructured.Unstructured
		topology string
	}{
		"the MultiClusterService installs the management topology into the management cluster": {mcs, "management"},
		"the ClusterDeployment snippet installs the child topology into the child":             {deployment, "child"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.object == mcs {
				if self, _, _ := unstructured.NestedBool(mcs.Object, "spec", "serviceSpec", "provider", "selfManagement"); !self {
					t.Errorf("MultiClusterService %s: serviceSpec.provider.selfManagement is not true", mcs.GetName())
				}
			}
			services, _, _ := unstructured.NestedSlice(tc.object.Object, "spec", "serviceSpec", "services")
			if len(services) != 1 {
				t.Fatalf("%s %s: %d services, want 1", tc.object.GetKind(), tc.object.GetName(), len(services))
			}
			service := services[0].(map[string]any)
			if service["template"] != template.GetName() {
				t.Errorf("service template %v, want the ServiceTemplate %s", service["template"], template.GetName())
			}
			if tc.object.GetKind() == "ClusterDeployment" && tc.object.GetNamespace() != template.GetNamespace() {
				t.Errorf("ClusterDeployment in %s, ServiceTemplate in %s: k0rdent looks the template up in the ClusterDeployment's namespace", tc.object.GetNamespace(), template.GetNamespace())
			}
			values, _ := service["values"].(string)
			rendered := render(t, service["namespace"].(string), values)
			deployment := find(rendered, "Deployment", "")
			if deployment == nil {
				t.Fatalf("the values render no Deployment: %v", kinds(rendered))
			}
			wantPort := map[string]string{"management": "--port=9443", "child": "--port=10270"}[tc.topology]
			if args := containerArgs(t, deployment); !strings.Contains(strings.Join(args, " "), wantPort) {
				t.Errorf("values %q render the wrong topology: args %v", values, args)
			}
		})
	}

	// The fixtures are only worth something if they reject what k0rdent's
	// CRDs reject.
	rejects := map[string]struct {
		object *unstructured.Unstructured
		change func(*unstructured.Unstructured)
		want   string
	}{
		"a ServiceTemplate without chartSpec.interval": {template, func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "helm", "chartSpec", "interval")
		}, "interval"},
		"a ServiceTemplate whose chart source is an OCIRepository": {template, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "OCIRepository", "spec", "helm", "chartSpec", "sourceRef", "kind")
		}, "sourceRef.kind"},
		"a ServiceTemplate with no chart at all": {template, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, map[string]any{}, "spec", "helm")
		}, "one of chartSpec, chartRef or chartSource must be set"},
		"a MultiClusterService with selfManagement as a string": {mcs, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "yes", "spec", "serviceSpec", "provider", "selfManagement")
		}, "selfManagement"},
		"a MultiClusterService service without a template": {mcs, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "x", "namespace": "y"}}, "spec", "serviceSpec", "services")
		}, "template"},
		"a ClusterDeployment without a cluster template": {deployment, func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "template")
		}, "spec.template"},
		"a HelmRepository with an ftp URL": {repo, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "ftp://charts.example.com", "spec", "url")
		}, "spec.url"},
	}
	for name, tc := range rejects {
		t.Run("the test CRDs reject "+name, func(t *testing.T) {
			bad := tc.object.DeepCopy()
			tc.change(bad)
			res := kubectl(t, toYAML(t, bad), "apply", "--dry-run=server", "-f", "-")
			if res.ExitCode == 0 {
				t.Fatalf("accepted:\n%s", toYAML(t, bad))
			}
			if !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("error lacks %q:\n%s", tc.want, res.Stderr)
			}
		})
	}
}

func k0rdentObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(paths.Root, "manifests", "k0rdent", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests/k0rdent/*.yaml (err %v)", err)
	}
	var objects []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := framework.DecodeObjects(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		objects = append(objects, decoded...)
	}
	return objects
}

func findKind(t *testing.T, objects []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	o := find(objects, kind, "")
	if o == nil {
		t.Fatalf("no %s in manifests/k0rdent; have %v", kind, kinds(objects))
	}
	return o
}

func nested(t *testing.T, o *unstructured.Unstructured, fields ...string) map[string]any {
	t.Helper()
	m, found, err := unstructured.NestedMap(o.Object, fields...)
	if err != nil || !found {
		t.Fatalf("%s %s has no %s (err %v)", o.GetKind(), o.GetName(), strings.Join(fields, "."), err)
	}
	return m
}

func chartMetadata(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(paths.Root, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart map[string]any
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatalf("Chart.yaml: %v", err)
	}
	return chart
}
