package framework

import (
	"fmt"
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// K0smotronIngress returns the Ingress that k0smotron (v1.10, the release
// that added spec.ingress) creates for a control plane, from the control plane
// as the API server stored it (so after our webhook):
//
//   - name and backend Service kmc-<name> (a ClusterIP service), in the
//     control plane's namespace, labelled app=k0smotron, cluster=<name>,
//     component=ingress;
//   - annotations: spec.ingress.annotations, copied;
//   - ingressClassName: spec.ingress.className;
//   - one rule per host, path "/" (Prefix): apiHost to spec.service.apiPort,
//     konnectivityHost to spec.service.konnectivityPort;
//   - an ownerReference to the control plane.
//
// The shape is read from k0smotron's generateIngress
// (internal/controller/k0smotron.io/k0smotroncluster_ingress.go).
func K0smotronIngress(cp *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ingress, found, err := unstructured.NestedMap(cp.Object, "spec", "ingress")
	if err != nil || !found {
		return nil, fmt.Errorf("%s %s/%s has no spec.ingress (%v)", cp.GetKind(), cp.GetNamespace(), cp.GetName(), err)
	}
	apiHost, _, _ := unstructured.NestedString(ingress, "apiHost")
	konnectivityHost, _, _ := unstructured.NestedString(ingress, "konnectivityHost")
	className, _, _ := unstructured.NestedString(ingress, "className")
	annotations, _, _ := unstructured.NestedStringMap(ingress, "annotations")
	apiPort, _, _ := unstructured.NestedInt64(cp.Object, "spec", "service", "apiPort")
	konnectivityPort, _, _ := unstructured.NestedInt64(cp.Object, "spec", "service", "konnectivityPort")
	if apiHost == "" || konnectivityHost == "" || apiPort == 0 || konnectivityPort == 0 {
		return nil, fmt.Errorf("%s %s/%s: spec.ingress.apiHost, konnectivityHost and spec.service.apiPort, konnectivityPort are all needed",
			cp.GetKind(), cp.GetNamespace(), cp.GetName())
	}
	name := "kmc-" + cp.GetName()
	rule := func(host string, port int64) any {
		return map[string]any{
			"host": host,
			"http": map[string]any{"paths": []any{map[string]any{
				"path":     "/",
				"pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{
					"name": name,
					"port": map[string]any{"number": port},
				}},
			}}},
		}
	}
	spec := map[string]any{"rules": []any{rule(apiHost, apiPort), rule(konnectivityHost, konnectivityPort)}}
	if className != "" {
		spec["ingressClassName"] = className
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1",
		"kind":       "Ingress",
		"spec":       spec,
	}}
	u.SetName(name)
	u.SetNamespace(cp.GetNamespace())
	u.SetLabels(map[string]string{"app": "k0smotron", "cluster": cp.GetName(), "component": "ingress"})
	if len(annotations) > 0 {
		u.SetAnnotations(maps.Clone(annotations))
	}
	u.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: cp.GetAPIVersion(),
		Kind:       cp.GetKind(),
		Name:       cp.GetName(),
		UID:        cp.GetUID(),
		Controller: ptr.To(true),
	}})
	return u, nil
}
