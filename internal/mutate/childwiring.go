package mutate

import (
	"bytes"
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Fleet wiring (PRODUCT.md "Fleet wiring"): the management webhook keeps, per
// control plane, a ConfigMap holding the child's MutatingWebhookConfiguration;
// an entry of the control plane's spec.manifests makes k0smotron mount it
// into /var/lib/k0s/manifests, from where k0s applies it in the child next to
// the charts that create the CCM. The engine only appends that entry.
const (
	// ChildManifestsEntry is the name of the spec.manifests entry.
	ChildManifestsEntry = "hcp-ingress-child"
	// ChildConfigMapPrefix, followed by the control plane's name, names the
	// ConfigMap the entry mounts.
	ChildConfigMapPrefix = "hcp-ingress-child-"
)

// ChildConfigMapName is the name of the fleet ConfigMap of control plane name.
func ChildConfigMapName(name string) string { return ChildConfigMapPrefix + name }

// childManifest is the spec.manifests entry the engine appends: a k0smotron
// volume (a core/v1 Volume) from the control plane's fleet ConfigMap.
// Optional, so that a control plane admitted before its ConfigMap exists
// still starts.
type childManifest struct {
	Name      string                 `json:"name"`
	ConfigMap childManifestConfigMap `json:"configMap"`
}

type childManifestConfigMap struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional"`
}

// ChildManifest is the spec.manifests entry for control plane name.
func ChildManifest(name string) any {
	return childManifest{Name: ChildManifestsEntry, ConfigMap: childManifestConfigMap{Name: ChildConfigMapName(name), Optional: true}}
}

// manifestEntry is what the engine reads of a spec.manifests entry.
type manifestEntry struct {
	Name string `json:"name"`
}

var manifestsPath = field.NewPath("spec", "manifests")

// wireChild appends the child wiring entry to spec.manifests unless an entry
// of that name is there: on CREATE; on UPDATE only when the update itself
// changes spec.manifests (a chart upgrade that rewrites the list must not
// unwire the child, and adding the entry then costs no extra restart),
// because any change of spec.manifests restarts the control plane.
func (a *ingressAdmission) wireChild(in Input, meta *objectMeta, spec *clusterSpec) error {
	var entries []*manifestEntry
	if hasValue(spec.Manifests) {
		if err := decodeValue(spec.Manifests, &entries, manifestsPath); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(entries, func(e *manifestEntry) bool { return e != nil && e.Name == ChildManifestsEntry }) {
		return nil
	}
	why := "on create"
	if in.Operation == "UPDATE" {
		if !manifestsChanged(in.OldObject, spec.Manifests) {
			a.wiring = "not on this update: it does not change spec.manifests"
			return nil
		}
		why = "this update changes spec.manifests and leaves the entry out"
	}
	configMap := ChildConfigMapName(meta.Name)
	if meta.Name == "" || !isDNS1123Subdomain(configMap) {
		a.wiring = "none: no valid ConfigMap name"
		a.warn("spec.manifests: entry %s not appended (fleet wiring): %q is not a valid ConfigMap name for the control plane's name %q; its child gets no webhook configuration",
			ChildManifestsEntry, configMap, meta.Name)
		return nil
	}
	entry := ChildManifest(meta.Name)
	if hasValue(spec.Manifests) {
		a.Patch = append(a.Patch, jsonpatch.NewOperation("add", "/spec/manifests/-", entry))
	} else {
		a.Patch = append(a.Patch, jsonpatch.NewOperation("add", "/spec/manifests", []any{entry}))
	}
	a.wiring = "appended " + ChildManifestsEntry
	a.changes = append(a.changes, "appended spec.manifests entry "+ChildManifestsEntry)
	a.warn("appended {name: %s, configMap: {name: %s, optional: true}} to spec.manifests (fleet wiring, %s): "+
		"k0s applies that ConfigMap, which the management webhook keeps, in the child cluster, so that the child's API server sends its CCM to the webhook",
		ChildManifestsEntry, configMap, why)
	return nil
}

// hasValue reports whether a raw member is present and not null.
func hasValue(v jsontext.Value) bool {
	return len(v) > 0 && !bytes.Equal(v, []byte("null"))
}

// manifestsChanged reports whether spec.manifests of the old object differs
// from manifests. Without an old object there is no telling, which counts as
// unchanged: never on UPDATE unless sure.
func manifestsChanged(oldObject []byte, manifests jsontext.Value) bool {
	if len(oldObject) == 0 {
		return false
	}
	var old struct {
		Spec *struct {
			Manifests jsontext.Value `json:"manifests"`
		} `json:"spec"`
	}
	if json.Unmarshal(oldObject, &old, decodeOptions) != nil {
		return false
	}
	var before jsontext.Value
	if old.Spec != nil {
		before = old.Spec.Manifests
	}
	return !sameJSON(before, manifests)
}

// sameJSON compares two JSON values as values (RFC 8785 canonical form:
// member order and number spelling do not matter); absent equals null.
func sameJSON(a, b jsontext.Value) bool {
	if !hasValue(a) || !hasValue(b) {
		return hasValue(a) == hasValue(b)
	}
	a, b = a.Clone(), b.Clone()
	if a.Canonicalize() != nil || b.Canonicalize() != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(a, b)
}
