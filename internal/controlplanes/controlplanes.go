// Package controlplanes is the management cluster's view of hosted control
// planes (K0smotronControlPlane and the standalone k0smotron Cluster) as the
// webhook and the fleet controllers read them: from one controller-runtime
// cache, trimmed to the few fields anyone reads.
//
// The control-plane CRDs may be installed after the webhook starts (or never,
// in a cluster without k0smotron), so a kind is watched from the moment the
// API server serves it: Watcher polls discovery until then and tells its
// subscribers (the fleet controllers) when a kind appears.
package controlplanes

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The kinds whose spec.ingress names the API host of a hosted control plane,
// in lookup order: a K0smotronControlPlane and the k0smotron Cluster that
// k0smotron derives from it share a name, and the control plane is the
// source of truth.
var (
	K0smotronControlPlane = schema.GroupKind{Group: "controlplane.cluster.x-k8s.io", Kind: "K0smotronControlPlane"}
	K0smotronCluster      = schema.GroupKind{Group: "k0smotron.io", Kind: "Cluster"}
	Kinds                 = []schema.GroupKind{K0smotronControlPlane, K0smotronCluster}
)

// IsControlPlane reports whether gk is one of Kinds.
func IsControlPlane(gk schema.GroupKind) bool {
	return gk == K0smotronControlPlane || gk == K0smotronCluster
}

// keptSpec are the spec fields anyone reads from the cache: the ingress block
// (passthrough and CCM host), the manifests list (fleet wiring), and what the
// engine warns about. A control plane also carries a k0sConfig of ~10 KB and a
// status; dropping them keeps the cache's memory flat in the fleet size.
var keptSpec = []string{"ingress", "manifests", "version", "service"}

// keptMetadata are the metadata fields anyone reads. managedFields, often the
// largest part of metadata, is dropped.
var keptMetadata = []string{
	"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
	"deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers",
}

// Transform is the cache transform (cache.Options.DefaultTransform): control
// planes are trimmed to metadata and the spec fields in keptSpec; every other
// object loses its managedFields.
func Transform(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	}
	if !IsControlPlane(u.GroupVersionKind().GroupKind()) {
		u.SetManagedFields(nil)
		return u, nil
	}
	return Trim(u), nil
}

// Trim returns the part of a control plane that the webhook and the fleet
// controllers read.
func Trim(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}
	if metadata, ok := u.Object["metadata"].(map[string]any); ok {
		kept := make(map[string]any, len(keptMetadata))
		for _, k := range keptMetadata {
			if v, ok := metadata[k]; ok {
				kept[k] = v
			}
		}
		out["metadata"] = kept
	}
	if spec, ok := u.Object["spec"].(map[string]any); ok {
		kept := map[string]any{}
		for _, k := range keptSpec {
			if v, ok := spec[k]; ok {
				kept[k] = v
			}
		}
		out["spec"] = kept
	} else if spec, ok := u.Object["spec"]; ok {
		out["spec"] = spec // wrong-typed: kept, so that readers report it
	}
	return &unstructured.Unstructured{Object: out}
}
