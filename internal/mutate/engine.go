// Package mutate is the engine: a raw object and a prepared policy in, a JSON
// patch, warnings and audit annotations out. It is pure: no client, no
// globals, no clock. The admission server and the offline `mutate` command use
// the same functions, so the offline output equals what the webhook patches.
//
// Objects are never round-tripped through Go structs: the engine reads only the
// fields it needs and writes JSON patch operations for the paths PRODUCT.md
// names, so unknown fields of CRDs it does not own survive untouched.
package mutate

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Record annotations and labels shared by both targets.
const (
	// MutatedAnnotation names the rule that applied to an object.
	MutatedAnnotation = "hcp-ingress.io/mutated"
	// SkipLabel on an object or its namespace makes the webhook leave it alone.
	SkipLabel = "hcp-ingress.io/skip"
)

// Target is the kind of object the engine changes.
type Target string

const (
	TargetControlPlane Target = "controlplane"
	TargetWorkload     Target = "workload"
)

// Input is one object to admit.
type Input struct {
	// Object is the raw JSON of the object as admitted.
	Object []byte
	// Decoded, when set, is Object already read by the engine's decoder in
	// the caller's pass over the document that holds it (the webhook's
	// AdmissionReview); the engine then does not read Object again.
	Decoded *Decoded
	// Operation is the admission operation, CREATE or UPDATE.
	Operation string
	// Namespace is the object's namespace ("default" offline when unset).
	Namespace string
	// NamespaceSkipped is true when the namespace carries the skip label.
	NamespaceSkipped bool
	// Policy is the prepared policy; nil means the embedded default.
	Policy *rules.Policy
	// Classes is the view of IngressClass objects; nil when none can be read.
	Classes rules.IngressClasses
	// APIServer is the host and port for CCM injection taken from outside the
	// object (the control plane named in a management-hosted path, or
	// `mutate --api-server`). Nil falls back to the policy's ccm.apiServer,
	// unless ManagementHosted.
	APIServer *rules.APIServer
	// ManagementHosted is set for /mutate-workload/<namespace>/<name>: the
	// host comes from that control plane (or the workload's annotations) and
	// never from the policy's ccm.apiServer, which is for the in-child
	// topology only. A path naming no control plane with ingress changes
	// nothing.
	ManagementHosted bool
	// LookupAPIServer, when set, finds the host and port that APIServer
	// would hold (the control plane named in a management-hosted path). The
	// engine calls it only once it has found a CCM target whose host does not
	// come from the workload's annotations, so that the other workloads of a
	// child's kube-system cost no lookup; note, when not empty, says why
	// nothing was found and becomes a warning.
	LookupAPIServer func() (api *rules.APIServer, note string)
	// ChildWiring turns on fleet wiring (serve --child-webhook-url, or
	// mutate --child-webhook-url): the control plane engine appends the
	// child's webhook configuration to spec.manifests on CREATE, and on an
	// UPDATE that itself changes spec.manifests (see wireChild).
	ChildWiring bool
	// OldObject is the raw JSON of the object before an UPDATE (the
	// AdmissionRequest's oldObject); nil on CREATE. Fleet wiring compares
	// spec.manifests with it.
	OldObject []byte
	// Routes is set when `serve --routes` keeps passthrough routes: a rule
	// that names a route kind is then handled, not unsupported.
	Routes bool
}

// Result is what the engine decided. An empty Patch means nothing changes.
type Result struct {
	Target Target
	// Patch holds JSON patch operations against Input.Object.
	Patch []jsonpatch.Operation
	// Warnings are admission warnings, printed by kubectl (dry-run included).
	Warnings []string
	// AuditAnnotations are added to the audit event (keys without prefix; the
	// API server prefixes them with the webhook name).
	AuditAnnotations map[string]string
	// Denied, when not empty, is the reason to reject the object.
	Denied string
	// Rule names the rule that applied, for records and metrics; empty when
	// none did.
	Rule string
}

// ErrNotATarget is returned by ControlPlane and Workload for kinds they do
// not mutate.
var ErrNotATarget = errors.New("not an object the webhook mutates")

// TargetOf tells which engine handles an apiVersion and kind.
func TargetOf(apiVersion, kind string) (Target, bool) {
	group, version, _ := strings.Cut(apiVersion, "/")
	if version == "" { // core group: "v1"
		return "", false
	}
	switch {
	case group == "controlplane.cluster.x-k8s.io" && (version == "v1beta1" || version == "v1beta2") &&
		(kind == "K0smotronControlPlane" || kind == "K0smotronControlPlaneTemplate"):
		return TargetControlPlane, true
	case group == "k0smotron.io" && (version == "v1beta1" || version == "v1beta2") && kind == "Cluster":
		return TargetControlPlane, true
	case group == "apps" && version == "v1" && (kind == "Deployment" || kind == "DaemonSet"):
		return TargetWorkload, true
	}
	return "", false
}

// Both engines start the same way: passesUnread before decoding, then
// checkTarget, then the object's skip label, then in.policy().

// passesUnread reports whether the admission is let through without reading
// the object: a skip-labelled namespace, or an operation other than CREATE
// and UPDATE (an empty Operation is a CREATE, as offline).
func (in *Input) passesUnread() bool {
	return in.NamespaceSkipped || (in.Operation != "" && in.Operation != "CREATE" && in.Operation != "UPDATE")
}

// policy is the policy in force: the embedded default when the caller has
// none.
func (in *Input) policy() *rules.Policy {
	if in.Policy == nil {
		return rules.Default()
	}
	return in.Policy
}

// checkTarget returns an error wrapping ErrNotATarget unless apiVersion and
// kind are objects of the engine want.
func checkTarget(apiVersion, kind string, want Target) error {
	if target, ok := TargetOf(apiVersion, kind); !ok || target != want {
		return fmt.Errorf("kind %q of apiVersion %q: %w", kind, apiVersion, ErrNotATarget)
	}
	return nil
}

// objectMeta is what both engines read of metadata. Annotations is nil when
// metadata.annotations is absent or null, and an empty map when it is {}.
type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// skipped reports whether the object opts out through the skip label.
func (m *objectMeta) skipped() bool { return m != nil && m.Labels[SkipLabel] == "true" }

// pointerEscape escapes one JSON pointer reference token (RFC 6901), so that
// "haproxy.org/ssl-passthrough" becomes "haproxy.org~1ssl-passthrough".
var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1").Replace

// setMapEntries returns the operations that make the string map at path (whose
// current value is current; nil when absent or null) hold every entry of set.
// A missing map is created whole with one operation.
func setMapEntries(path string, current map[string]string, set map[string]string) []jsonpatch.Operation {
	if len(set) == 0 {
		return nil
	}
	if current == nil {
		return []jsonpatch.Operation{jsonpatch.NewOperation("add", path, set)}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic patches
	ops := make([]jsonpatch.Operation, 0, len(keys))
	for _, k := range keys {
		op := "add"
		if _, exists := current[k]; exists {
			op = "replace"
		}
		ops = append(ops, jsonpatch.NewOperation(op, path+"/"+pointerEscape(k), set[k]))
	}
	return ops
}

// recordOps returns the operations that set the hcp-ingress.io/mutated record
// annotation to rule, or none when it already says so.
func recordOps(meta *objectMeta, rule string) []jsonpatch.Operation {
	if meta.Annotations[MutatedAnnotation] == rule {
		return nil
	}
	return setMapEntries("/metadata/annotations", meta.Annotations, map[string]string{MutatedAnnotation: rule})
}
