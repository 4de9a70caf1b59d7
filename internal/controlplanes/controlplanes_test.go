package controlplanes

import (
	"reflect"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestTransformKeepsOnlyWhatIsRead(t *testing.T) {
	big := strings.Repeat("x", 10_000)
	cp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
		"kind":       "K0smotronControlPlane",
		"metadata": map[string]any{
			"name": "cp", "namespace": "tenants", "uid": "u1", "resourceVersion": "7",
			"labels":          map[string]any{"cluster.x-k8s.io/cluster-name": "c1"},
			"ownerReferences": []any{map[string]any{"kind": "Cluster", "name": "c1"}},
			"managedFields":   []any{map[string]any{"manager": "kubectl", "fieldsV1": big}},
		},
		"spec": map[string]any{
			"version":   "v1.34.1+k0s.0",
			"ingress":   map[string]any{"apiHost": "api.example.com", "port": int64(443)},
			"manifests": []any{map[string]any{"name": "a"}},
			"service":   map[string]any{"type": "ClusterIP"},
			"k0sConfig": map[string]any{"spec": big},
			"replicas":  int64(3),
		},
		"status": map[string]any{"ready": true, "big": big},
	}}
	got, err := Transform(cp)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
		"kind":       "K0smotronControlPlane",
		"metadata": map[string]any{
			"name": "cp", "namespace": "tenants", "uid": "u1", "resourceVersion": "7",
			"labels":          map[string]any{"cluster.x-k8s.io/cluster-name": "c1"},
			"ownerReferences": []any{map[string]any{"kind": "Cluster", "name": "c1"}},
		},
		"spec": map[string]any{
			"version":   "v1.34.1+k0s.0",
			"ingress":   map[string]any{"apiHost": "api.example.com", "port": int64(443)},
			"manifests": []any{map[string]any{"name": "a"}},
			"service":   map[string]any{"type": "ClusterIP"},
		},
	}
	if !reflect.DeepEqual(got.(*unstructured.Unstructured).Object, want) {
		t.Fatalf("Transform kept\n%v\nwant\n%v", got.(*unstructured.Unstructured).Object, want)
	}
}

func TestTransformDropsManagedFieldsOfOtherObjects(t *testing.T) {
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "haproxy", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	got, err := Transform(ic)
	if err != nil {
		t.Fatal(err)
	}
	if mf := got.(*networkingv1.IngressClass).ManagedFields; mf != nil {
		t.Fatalf("managedFields kept: %v", mf)
	}
}

func TestTransformKeepsAWrongTypedSpecForReadersToReport(t *testing.T) {
	cp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k0smotron.io/v1beta1", "kind": "Cluster",
		"metadata": map[string]any{"name": "c"}, "spec": "nope",
	}}
	got, _ := Transform(cp)
	if spec := got.(*unstructured.Unstructured).Object["spec"]; spec != "nope" {
		t.Fatalf("spec = %v, want the original wrong-typed value", spec)
	}
}
