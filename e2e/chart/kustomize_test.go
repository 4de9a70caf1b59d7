package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// One source of truth: the chart and manifests/ install the same objects.
// Like is compared with like: the management overlay uses cert-manager, so
// it is compared with the chart in cert-manager mode; the chart's default,
// self-managed certificates, with the overlay plus the self-managed-certs
// component. Released as hcp-ingress-webhook into hcp-ingress-system. A
// difference fails with a diff of the object.
func TestChartMatchesKustomize(t *testing.T) {
	const namespace = "hcp-ingress-system"
	cases := map[string]struct {
		overlay    string
		components []string // added to the overlay
		needs      string   // a component the overlay itself uses
		values     string
	}{
		"cert-manager mode is the management overlay": {overlay: framework.OverlayManagement, values: certManagerValues},
		"default values are the management overlay with self-managed certificates": {
			overlay:    framework.OverlayManagement,
			components: []string{"self-managed-certs"},
		},
		"fleet.repair is the fleet-repair component": {
			overlay:    framework.OverlayManagement,
			components: []string{"self-managed-certs", "fleet-repair"},
			values:     "fleet:\n  repair: true\n",
		},
		"routes.enabled is the routes component": {
			overlay:    framework.OverlayManagement,
			components: []string{"self-managed-certs", "routes"},
			values:     "routes:\n  enabled: true\n",
		},
		// The workload overlay's own example policy and API server.
		"the child topology is the workload overlay": {
			overlay: framework.OverlayWorkload,
			needs:   "self-managed-certs",
			values: `topology: child
policy:
  ccm:
    apiServer:
      host: api.example.com
      port: 443
    namespaces: [kube-system]
    onConflict: Override
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.needs != "" {
				requireComponent(t, tc.needs)
			}
			rendered := kustomize(t, tc.overlay, tc.components...)
			kustomized, err := framework.DecodeObjects(rendered)
			if err != nil {
				t.Fatal(err)
			}
			charted := render(t, namespace, tc.values)

			want := normalise(t, kustomized, true)
			got := normalise(t, charted, false)
			for _, key := range sortedKeys(want, got) {
				w, inKustomize := want[key]
				g, inChart := got[key]
				switch {
				case !inChart:
					t.Errorf("%s is in the kustomize install but the chart does not render it", key)
				case !inKustomize:
					t.Errorf("the chart renders %s, which the kustomize install does not have", key)
				case w != g:
					diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
						A: difflib.SplitLines(w), B: difflib.SplitLines(g),
						FromFile: "kustomize " + key, ToFile: "helm " + key, Context: 3,
					})
					t.Errorf("%s differs (normalised):\n%s", key, diff)
				}
			}
		})
	}
}

// kustomize renders manifests/overlays/<overlay> with the components of
// manifests/components added, through a kustomization in a temporary
// directory, as an operator composes them.
func kustomize(t *testing.T, overlay string, components ...string) []byte {
	t.Helper()
	if len(components) == 0 {
		rendered, err := framework.RenderOverlay(t.Context(), paths, overlay)
		if err != nil {
			t.Fatal(err)
		}
		return rendered
	}
	dir := t.TempDir()
	rel := func(path string) string {
		r, err := filepath.Rel(dir, path)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " +
		rel(filepath.Join(paths.Root, "manifests", "overlays", overlay)) + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + rel(requireComponent(t, c)) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	res := mustKubectl(t, "", "kustomize", dir)
	return []byte(res.Stdout)
}

// requireComponent returns the directory of manifests/components/<name>.
func requireComponent(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(paths.Root, "manifests", "components", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("manifests/components/%s: %v", name, err)
	}
	return path
}

// helmOnlyLabels are the labels a chart adds by convention and kustomize has
// no equivalent for (release name, chart version, manager).
var helmOnlyLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
	"app.kubernetes.io/managed-by",
}

// mapLists are the pod-template lists whose order means nothing (none of
// the env values refers to another), with their key.
var mapLists = map[string]string{"env": "name", "volumes": "name", "volumeMounts": "mountPath"}

// chartNames maps the chart's names (the release's full name plus a suffix,
// the Helm convention) to the kustomize names. Both sides go through it, so
// a kustomize name that happens to be the chart's spelling compares equal.
var chartNames = []struct {
	pattern *regexp.Regexp
	name    string
}{
	{nameBoundary(releaseName + "-policy"), "hcp-ingress-policy"},
	{nameBoundary(releaseName + "-selfsigned"), "hcp-ingress-selfsigned"},
	{nameBoundary(releaseName + "-ca"), "hcp-ingress-ca"},
}

// nameBoundary matches name where it is a whole name: in "ns/NAME",
// "--flag=ns/NAME" or "== 'NAME'", not inside a longer name.
func nameBoundary(name string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^a-z0-9.-])` + regexp.QuoteMeta(name) + `($|[^a-z0-9.-])`)
}

// normalise returns each object as YAML keyed by kind/namespace/name, after:
// dropping the Namespace (a chart does not create its release namespace;
// docs/install.md says how to label it), dropping Helm-only labels,
// renaming chart names to kustomize names, collapsing the whitespace of CEL
// expressions, ordering the flags of serve and env, volumes and volumeMounts
// by key, and parsing policy.yaml so that its comments do not count.
func normalise(t *testing.T, objects []*unstructured.Unstructured, fromKustomize bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objects {
		if fromKustomize && o.GetKind() == "Namespace" {
			continue
		}
		c := o.DeepCopy()
		c.Object = normaliseValue(c.Object).(map[string]any)
		if c.GetKind() == "ConfigMap" {
			if policy, found, _ := unstructured.NestedString(c.Object, "data", "policy.yaml"); found {
				var parsed map[string]any
				if err := yaml.Unmarshal([]byte(policy), &parsed); err != nil {
					t.Fatalf("%s %s: policy.yaml: %v", c.GetKind(), c.GetName(), err)
				}
				_ = unstructured.SetNestedField(c.Object, mustYAML(t, parsed), "data", "policy.yaml")
			}
		}
		key := fmt.Sprintf("%s/%s/%s", c.GetKind(), c.GetNamespace(), c.GetName())
		if _, dup := out[key]; dup {
			t.Fatalf("two objects %s", key)
		}
		out[key] = mustYAML(t, c.Object)
	}
	return out
}

func normaliseValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for _, l := range helmOnlyLabels {
			if _, isLabel := v[l].(string); isLabel {
				delete(v, l)
			}
		}
		for k, sub := range v {
			v[k] = normaliseValue(sub)
		}
		// CEL ignores whitespace, and kustomize re-folds the `>-` blocks
		// of matchConditions differently from the text Helm copies.
		if expression, ok := v["expression"].(string); ok {
			v["expression"] = strings.Join(strings.Fields(expression), " ")
		}
		// Flags: their order means nothing to serve (none is repeated), and
		// kustomize appends an overlay's before or after a component's
		// depending on how they are composed.
		if args, ok := v["args"].([]any); ok && len(args) > 1 && args[0] == "serve" {
			sort.SliceStable(args[1:], func(i, j int) bool { return fmt.Sprint(args[1+i]) < fmt.Sprint(args[1+j]) })
		}
		// Lists the API keys by name (listType map): a kustomize patch
		// puts its entries first, a template where they are written.
		for list, key := range mapLists {
			if items, ok := v[list].([]any); ok {
				sort.SliceStable(items, func(i, j int) bool {
					return fmt.Sprint(items[i].(map[string]any)[key]) < fmt.Sprint(items[j].(map[string]any)[key])
				})
			}
		}
		return v
	case []any:
		for i, sub := range v {
			v[i] = normaliseValue(sub)
		}
		return v
	case string:
		for _, n := range chartNames {
			v = n.pattern.ReplaceAllString(v, "${1}"+n.name+"${2}")
		}
		return v
	default:
		return v
	}
}

func sortedKeys(maps ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range maps {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func TestNameBoundaryRenamesWholeNamesOnly(t *testing.T) {
	cases := map[string]string{
		"hcp-ingress-webhook-ca":                               "hcp-ingress-ca",
		"hcp-ingress-system/hcp-ingress-webhook-ca":            "hcp-ingress-system/hcp-ingress-ca",
		"--policy-configmap=ns/hcp-ingress-webhook-policy":     "--policy-configmap=ns/hcp-ingress-policy",
		"object.metadata.name == 'hcp-ingress-webhook-policy'": "object.metadata.name == 'hcp-ingress-policy'",
		"hcp-ingress-webhook-cabundle":                         "hcp-ingress-webhook-cabundle",
		"hcp-ingress-webhook":                                  "hcp-ingress-webhook",
		"hcp-ingress-webhook-tls":                              "hcp-ingress-webhook-tls",
	}
	for in, want := range cases {
		if got := normaliseValue(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}
