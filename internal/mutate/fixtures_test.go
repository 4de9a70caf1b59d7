package mutate

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// fixtureCache holds fixtures converted from YAML, which is how people write
// them, to JSON, which is what the API server sends.
var fixtureCache sync.Map // name -> []byte

// fixture returns testdata/name as JSON.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	if js, ok := fixtureCache.Load(name); ok {
		return js.([]byte)
	}
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	fixtureCache.Store(name, js)
	return js
}

// largeControlPlane is a K0smotronControlPlane of about 10 KB with a large
// free-form spec.k0sConfig, class haproxy and no annotations.
func largeControlPlane(tb testing.TB) []byte {
	return fixture(tb, "k0smotroncontrolplane-large.yaml")
}

// testPolicy loads the embedded default policy with extra YAML merged over
// it; "" is the embedded default itself.
func testPolicy(tb testing.TB, extra string) *rules.Policy {
	tb.Helper()
	if extra == "" {
		return rules.Default()
	}
	p, err := rules.Load("policy.yaml", []byte("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\n"+extra))
	if err != nil {
		tb.Fatalf("test policy: %v", err)
	}
	return p
}

// ingressClasses is a readable set of IngressClasses.
func ingressClasses(list ...rules.IngressClass) rules.IngressClasses {
	return rules.NewStaticClasses(list...)
}

// decodeJSON decodes an object for assertions.
func decodeJSON(tb testing.TB, data []byte) map[string]any {
	tb.Helper()
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
	return obj
}

// nested returns the value at a path of object keys, and whether it exists.
func nested(obj map[string]any, path ...string) (any, bool) {
	var cur any = obj
	for _, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringMap returns the map of strings at path; nil when absent or null.
func stringMap(tb testing.TB, obj map[string]any, path ...string) map[string]string {
	tb.Helper()
	v, ok := nested(obj, path...)
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		tb.Fatalf("%s is %T, not a map", strings.Join(path, "."), v)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// withoutAllowedPaths removes from a decoded control plane what the engine
// may change: spec(.template.spec).ingress.annotations and the record
// annotation (and metadata.annotations when that leaves it empty).
func withoutAllowedPaths(obj map[string]any) map[string]any {
	for _, path := range [][]string{{"spec", "ingress"}, {"spec", "template", "spec", "ingress"}} {
		if ing, ok := nested(obj, path...); ok {
			if m, ok := ing.(map[string]any); ok {
				delete(m, "annotations")
			}
		}
	}
	// Fleet wiring appends one exact entry to spec.manifests.
	if spec, ok := obj["spec"].(map[string]any); ok {
		name, _ := nested(obj, "metadata", "name")
		list, _ := spec["manifests"].([]any)
		if n := len(list); n > 0 && reflect.DeepEqual(list[n-1], childManifestValue(name)) {
			list = list[:n-1]
			spec["manifests"] = list
		}
		if spec["manifests"] == nil || (list != nil && len(list) == 0) {
			delete(spec, "manifests")
		}
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, MutatedAnnotation)
			if len(ann) == 0 {
				delete(meta, "annotations")
			}
		} else if meta["annotations"] == nil {
			delete(meta, "annotations")
		}
	}
	return obj
}

// childManifestValue is the fleet wiring entry for a control plane named
// name, as encoding/json decodes it.
func childManifestValue(name any) any {
	s, _ := name.(string)
	raw, err := json.Marshal(ChildManifest(s))
	if err != nil {
		panic(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return v
}

// assertOnlyAllowedChanges checks that everything of the object but the
// paths the engine may change is the same before and after the patch:
// unknown fields, spec.k0sConfig, status, managed fields.
func assertOnlyAllowedChanges(tb testing.TB, before, after []byte) {
	tb.Helper()
	b := withoutAllowedPaths(decodeJSON(tb, before))
	a := withoutAllowedPaths(decodeJSON(tb, after))
	if !reflect.DeepEqual(a, b) {
		tb.Errorf("the patch changed more than the allowed paths:\nbefore %v\nafter  %v", b, a)
	}
}

// controlPlaneJSON builds a control plane object. ingress nil leaves
// spec.ingress out. The object carries fields the engine does not know, so
// that every test also checks they survive.
func controlPlaneJSON(tb testing.TB, apiVersion, kind string, ingress map[string]any, edit func(obj map[string]any)) []byte {
	tb.Helper()
	spec := map[string]any{
		"replicas": 1,
		"version":  "v1.34.2+k0s.0",
		"service":  map[string]any{"type": "ClusterIP", "apiPort": 30443},
		"k0sConfig": map[string]any{
			"apiVersion": "k0s.k0sproject.io/v1beta1",
			"kind":       "ClusterConfig",
			"spec": map[string]any{
				"network":    map[string]any{"provider": "calico", "calico": map[string]any{"mode": "vxlan"}},
				"extensions": map[string]any{"helm": map[string]any{"charts": []any{map[string]any{"name": "ccm", "values": "a: 1\nb: [2]\n"}}}},
			},
		},
		"unknownFutureField": map[string]any{"nested": []any{1.5, "two", nil, true}},
	}
	if ingress != nil {
		spec["ingress"] = ingress
	}
	obj := map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": "tenant-a", "namespace": "tenants", "labels": map[string]any{"team": "a"}},
		"spec":       spec,
		"status":     map[string]any{"ready": false},
	}
	if kind == "K0smotronControlPlaneTemplate" {
		obj["spec"] = map[string]any{"template": map[string]any{"spec": spec}}
	}
	if edit != nil {
		edit(obj)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// ingress returns a spec.ingress with valid hosts and the given class and
// annotations (nil: no annotations field).
func ingress(className string, annotations map[string]any) map[string]any {
	ing := map[string]any{
		"apiHost":          "api.tenant-a.example.com",
		"konnectivityHost": "konnectivity.tenant-a.example.com",
		"port":             443,
	}
	if className != "" {
		ing["className"] = className
	}
	if annotations != nil {
		ing["annotations"] = maps.Clone(annotations)
	}
	return ing
}
