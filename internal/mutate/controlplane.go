package mutate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// MinIngressK0sVersion is the first k0s version whose k0smotron control plane
// can be exposed through an Ingress.
const MinIngressK0sVersion = "v1.34.1+k0s.0"

// minIngressVersion compares versions by their numbers only: k0smotron
// accepts both v1.34.1+k0s.0 and the image-tag spelling v1.34.1-k0s.0, and
// semantic versioning would rank the latter, a "pre-release", below 1.34.1.
var minIngressVersion = version.MustParseGeneric("1.34.1")

// minIngressComponents are minIngressVersion's numbers, for versionLess.
var minIngressComponents = minIngressVersion.Components()

// controlPlaneObject is what ControlPlane reads of a K0smotronControlPlane,
// a K0smotronControlPlaneTemplate or a k0smotron.io Cluster. Everything else
// is never decoded, and the object is never re-marshalled: changes are JSON
// patch operations on the raw object, so unknown fields (spec.k0sConfig is
// free-form) survive byte for byte.
type controlPlaneObject struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   *objectMeta  `json:"metadata"`
	Spec       *clusterSpec `json:"spec"`
}

// clusterSpec is what the engine reads of a k0smotron ClusterSpec. Template
// is there for a K0smotronControlPlaneTemplate, whose spec.template.spec is a
// ClusterSpec: one decoding pass serves every kind.
type clusterSpec struct {
	Version string       `json:"version"`
	Ingress *ingressSpec `json:"ingress"`
	Service struct {
		Type string `json:"type"`
	} `json:"service"`
	// Manifests is kept raw: it is read only with fleet wiring on
	// (see wireChild), and a list the engine does not need must not fail
	// an admission.
	Manifests jsontext.Value   `json:"manifests"`
	Template  *clusterTemplate `json:"template"`
}

// clusterTemplate is spec.template of a K0smotronControlPlaneTemplate.
type clusterTemplate struct {
	Spec *clusterSpec `json:"spec"`
}

// ingressSpec is k0smotron's spec.ingress. Port is a float so that any JSON
// number decodes: the control plane engine warns about one that is not a
// port (the CRD's schema rejects it after admission), and IngressAPIServer
// refuses it; neither truncates it.
type ingressSpec struct {
	Annotations      map[string]string `json:"annotations"`
	ClassName        string            `json:"className"`
	APIHost          string            `json:"apiHost"`
	KonnectivityHost string            `json:"konnectivityHost"`
	Port             *float64          `json:"port"`
}

// ingressAt locates spec.ingress in one kind of object, as a field path for
// messages and as a JSON pointer for the patch.
type ingressAt struct {
	field   string // "spec.ingress"
	pointer string // "/spec/ingress"
}

var (
	controlPlaneIngress = ingressAt{field: "spec.ingress", pointer: "/spec/ingress"}
	templateIngress     = ingressAt{field: "spec.template.spec.ingress", pointer: "/spec/template/spec/ingress"}
)

// ControlPlane makes sure the Ingress k0smotron creates for a hosted control
// plane passes TLS through to the API server: it resolves spec.ingress.className
// to a rule of the policy and adds the rule's annotations to
// spec.ingress.annotations (spec.template.spec.ingress.annotations for a
// K0smotronControlPlaneTemplate). It also warns about what would keep the
// Ingress from working: annotations of another controller, a k0s version
// without ingress support, bad host names, a redundant LoadBalancer. With
// Input.ChildWiring it appends the child's webhook configuration to
// spec.manifests (see wireChild).
//
// An object without spec.ingress, or that opts out with the skip label, is
// left alone. Values it cannot read (spec.ingress a string, annotations a
// list) are errors naming the field.
func ControlPlane(in Input) (Result, error) {
	out := Result{Target: TargetControlPlane}
	if in.passesUnread() {
		return out, nil
	}
	obj, err := in.Decoded.controlPlaneOr(in.Object)
	if err != nil {
		return out, err
	}
	if err := checkTarget(obj.APIVersion, obj.Kind, TargetControlPlane); err != nil {
		return out, err
	}
	if obj.Metadata.skipped() {
		return out, nil
	}

	at, spec := controlPlaneIngress, obj.Spec
	template := obj.Kind == "K0smotronControlPlaneTemplate"
	if template {
		at, spec = templateIngress, nil
		if obj.Spec != nil && obj.Spec.Template != nil {
			spec = obj.Spec.Template.Spec
		}
	}
	if spec == nil || spec.Ingress == nil {
		return out, nil
	}
	if obj.Metadata == nil {
		return out, errors.New("metadata: missing; a Kubernetes object always has metadata")
	}
	a := admitIngress(in.policy(), in.Classes, spec, at, in.Routes)
	// Templates are never wired: the control planes made from them are
	// admitted themselves.
	if in.ChildWiring && !template && a.Denied == "" {
		if err := a.wireChild(in, obj.Metadata, spec); err != nil {
			return out, err
		}
	}
	a.finish(obj.Metadata)
	return a.Result, nil
}

// decodeControlPlane reads what the engine needs of a control plane object.
func decodeControlPlane(data []byte) (*controlPlaneObject, error) {
	return decodeObject[controlPlaneObject](data)
}

// admitIngress applies the resolved rule to spec.ingress and adds the checks
// that do not depend on it. finish completes the result.
func admitIngress(policy *rules.Policy, classes rules.IngressClasses, spec *clusterSpec, at ingressAt, routes bool) *ingressAdmission {
	ingress := spec.Ingress
	res := policy.ResolveClass(ingress.ClassName, classes)
	a := &ingressAdmission{
		Result:          Result{Target: TargetControlPlane},
		policy:          policy,
		res:             res,
		ingress:         ingress,
		annotationsPath: at.pointer + "/annotations",
		annotationsName: at.field + ".annotations",
	}
	if res.Rule != nil {
		a.Rule = res.RuleName
	}
	silent := res.Rule == nil && policy.OnUnknownClass() == rules.UnknownIgnore
	if !silent {
		for _, note := range res.Notes {
			a.warn("%s", note)
		}
	}

	switch {
	case res.Rule == nil:
		a.noRule()
	case res.Rule.Route != nil && routes:
		a.routed()
	case res.Rule.Unsupported != "":
		a.unsupported()
	default:
		a.applyRule()
	}
	if res.Rule != nil && res.Rule.Warning != "" {
		a.warn("%s (rule %s for ingress class %q)", res.Rule.Warning, res.RuleName, res.Class)
	}
	a.checkIngress(spec, at)
	return a
}

// finish records the rule that applied on a changed object, and fills the
// audit annotations.
func (a *ingressAdmission) finish(meta *objectMeta) {
	if len(a.Patch) > 0 && a.res.RuleName != "" {
		a.Patch = append(a.Patch, recordOps(meta, a.res.RuleName)...)
	}
	a.audit()
}

// ingressAdmission collects the outcome of one control plane admission.
type ingressAdmission struct {
	Result
	policy          *rules.Policy
	res             rules.Resolution
	ingress         *ingressSpec
	annotationsPath string // JSON pointer of spec.ingress.annotations
	annotationsName string // field path of spec.ingress.annotations, for messages
	changes         []string
	outcome         string
	// wiring says what fleet wiring did, for the audit annotations.
	wiring string
}

func (a *ingressAdmission) warn(format string, args ...any) {
	a.Warnings = append(a.Warnings, "hcp-ingress: "+fmt.Sprintf(format, args...))
}

// context says which rule applies and why, for the end of every message:
// the class-name ambiguity is the reason this webhook exists, so every
// message names the controller it decided on.
func (a *ingressAdmission) context() string {
	r := a.res
	project := ""
	if r.Rule != nil && r.Rule.Project != "" {
		project = ", " + r.Rule.Project
	}
	switch r.Source {
	case rules.FromIngressClass:
		return fmt.Sprintf("ingress class %q is served by controller %q%s", r.Class, r.Controller, project)
	case rules.FromGuess:
		return fmt.Sprintf("ingress class %q is guessed to be served by controller %q%s", r.Class, r.Controller, project)
	case rules.FromPolicyClass:
		return fmt.Sprintf("ingress class %q has its own rule in the policy, %s%s", r.Class, r.RuleName, project)
	}
	return fmt.Sprintf("ingress class %q", r.Class)
}

// applyRule adds the rule's annotations and deals with conflicting and
// foreign ones.
func (a *ingressAdmission) applyRule() {
	current := a.ingress.Annotations
	rule := a.res.Rule
	set := make(map[string]string, len(rule.Annotations))
	var added, replaced, kept []string
	for _, key := range a.res.AnnotationKeys {
		want := rule.Annotations[key]
		have, present := current[key]
		switch {
		case !present:
			set[key] = want
			added = append(added, fmt.Sprintf("%s: %q", key, want))
			a.changes = append(a.changes, "added "+key)
		case have == want:
		case a.policy.OnConflict() == rules.ConflictOverride:
			set[key] = want
			replaced = append(replaced, fmt.Sprintf("%s: %q with %q", key, have, want))
			a.changes = append(a.changes, "replaced "+key)
		default:
			kept = append(kept, fmt.Sprintf("%s: %q (the rule sets %q)", key, have, want))
		}
	}
	a.Patch = append(a.Patch, setMapEntries(a.annotationsPath, current, set)...)
	if len(added) > 0 {
		a.warn("added %s to %s (%s)", strings.Join(added, ", "), a.annotationsName, a.context())
	}
	if len(replaced) > 0 {
		a.warn("replaced %s in %s (onConflict: Override; %s)", strings.Join(replaced, ", "), a.annotationsName, a.context())
	}
	if len(kept) > 0 {
		a.warn("kept %s in %s, so SSL passthrough may not be on (onConflict: Keep; %s)", strings.Join(kept, ", "), a.annotationsName, a.context())
	}
	a.foreign()

	switch {
	case len(a.Patch) > 0:
		a.outcome = "mutated"
	case len(kept) > 0:
		a.outcome = "kept"
	default:
		a.outcome = "unchanged"
	}
}

// foreign reports, and with removeForeignAnnotations removes, passthrough
// annotations of another controller than the resolved one.
func (a *ingressAdmission) foreign() {
	remove := a.policy.RemoveForeignAnnotations()
	for _, f := range a.policy.ForeignAnnotations(a.res, a.ingress.Annotations) {
		owner := fmt.Sprintf("the policy rule %s", f.RuleName)
		if f.Controller != "" {
			owner = fmt.Sprintf("controller %q", f.Controller)
		}
		if f.Project != "" {
			owner += " (" + f.Project + ")"
		}
		if remove {
			a.Patch = append(a.Patch, jsonpatch.NewOperation("remove", a.annotationsPath+"/"+pointerEscape(f.Key), nil))
			a.changes = append(a.changes, "removed "+f.Key)
			a.warn("removed %s from %s: it is an annotation of %s, but %s (removeForeignAnnotations: true)",
				f.Key, a.annotationsName, owner, a.context())
			continue
		}
		a.warn("%s has %s, an annotation of %s, but %s: it has no effect there (removeForeignAnnotations: true in the policy removes it)",
			a.annotationsName, f.Key, owner, a.context())
	}
}

// unsupported reports a controller that cannot pass TLS through with
// annotations: a warning, or a denial with onUnknownClass: Deny.
func (a *ingressAdmission) unsupported() {
	text := a.res.Rule.Unsupported
	if a.policy.OnUnknownClass() == rules.UnknownDeny {
		a.Denied = fmt.Sprintf("hcp-ingress: %s cannot be set up for SSL passthrough with Ingress annotations, and the policy sets onUnknownClass: Deny: %s",
			a.subject(), text)
		a.outcome = "denied"
		return
	}
	a.foreign()
	a.warn("%s cannot turn on SSL passthrough (%s): %s", a.annotationsName, a.context(), text)
	a.outcome = "unsupported"
	if len(a.Patch) > 0 {
		a.outcome = "mutated"
	}
}

// routed reports a controller whose passthrough route `serve --routes` keeps.
func (a *ingressAdmission) routed() {
	a.foreign()
	a.warn("SSL passthrough is handled by a route (%s): the webhook keeps %s for the Ingress k0smotron creates from this control plane",
		a.context(), rules.RouteKinds[a.res.Rule.Route.Kind])
	a.outcome = "route"
	if len(a.Patch) > 0 {
		a.outcome = "mutated"
	}
}

// subject names the class and controller in a denial.
func (a *ingressAdmission) subject() string {
	s := fmt.Sprintf("ingress class %q", a.res.Class)
	if a.res.Controller != "" {
		s += fmt.Sprintf(" (controller %q", a.res.Controller)
		if a.res.Rule != nil && a.res.Rule.Project != "" {
			s += ", " + a.res.Rule.Project
		}
		s += ")"
	}
	return s
}

// noRule acts on a class that resolved to no rule, as onUnknownClass says.
func (a *ingressAdmission) noRule() {
	switch a.policy.OnUnknownClass() {
	case rules.UnknownIgnore:
		a.outcome = "ignored"
	case rules.UnknownDeny:
		a.outcome = "denied"
		if a.res.Class == "" {
			a.Denied = "hcp-ingress: spec.ingress.className is empty and there is no default IngressClass or policy defaultIngressClass " +
				"to resolve it, and the policy sets onUnknownClass: Deny. Set spec.ingress.className, or add to policy.yaml in the webhook's policy ConfigMap:\n" +
				"defaultIngressClass: <your ingress class>\n"
			return
		}
		a.Denied = fmt.Sprintf("hcp-ingress: %s has no SSL passthrough rule, and the policy sets onUnknownClass: Deny. "+
			"Add a rule to policy.yaml in the webhook's policy ConfigMap, for example:\n%s",
			a.subject(), rules.SuggestedRule(a.res.Class, a.res.Controller))
	default:
		a.outcome = "no rule"
		if a.res.Class == "" {
			a.warn("%s left unchanged: spec.ingress.className is empty and there is no default IngressClass or policy defaultIngressClass to resolve it",
				a.annotationsName)
			return
		}
		a.warn("%s left unchanged: no SSL passthrough rule for %s; add one under ingressClasses or controllers in the webhook's policy",
			a.annotationsName, a.subject())
	}
}

// checkIngress warns about what would keep the Ingress from working, or makes
// it pointless. None of it blocks: k0smotron decides what it accepts.
func (a *ingressAdmission) checkIngress(spec *clusterSpec, at ingressAt) {
	specField := strings.TrimSuffix(at.field, ".ingress")
	if v := spec.Version; v != "" {
		parsed, ok := parseGenericVersion(v)
		switch {
		case !ok:
			a.warn("%s.version %q could not be checked against %s, the first k0s version that supports %s: it is not a version number",
				specField, v, MinIngressK0sVersion, at.field)
		case versionLess(parsed, minIngressComponents):
			a.warn("%s.version %q is older than %s, the first k0s version that supports %s: k0smotron will not expose this control plane through an Ingress",
				specField, v, MinIngressK0sVersion, at.field)
		}
	}

	ing := spec.Ingress
	a.checkHost(at.field+".apiHost", ing.APIHost)
	a.checkHost(at.field+".konnectivityHost", ing.KonnectivityHost)
	if ing.APIHost != "" && ing.APIHost == ing.KonnectivityHost {
		a.warn("%s.apiHost and %s.konnectivityHost are both %q: the Ingress routes by host name, so API and konnectivity traffic need different hosts",
			at.field, at.field, ing.APIHost)
	}
	if _, err := ing.port(); err != nil {
		a.warn("%s.port %v", at.field, err)
	}
	if spec.Service.Type == "LoadBalancer" {
		a.warn("%s.service.type is LoadBalancer although %s is set: the load balancer is not needed when the Ingress exposes the control plane (ClusterIP is enough)",
			specField, at.field)
	}
}

// checkHost warns about a host the Ingress cannot route by. An IP address is
// not accepted: an Ingress rule's host must be a DNS name, and TLS
// passthrough routes by the SNI name, which an IP address does not send.
func (a *ingressAdmission) checkHost(name, host string) {
	switch {
	case host == "":
		a.warn("%s is empty: k0smotron needs a host name for the Ingress rule", name)
	case isIP(host):
		a.warn("%s %q is an IP address: an Ingress rule needs a DNS host name, and passthrough routes by the TLS server name (SNI)", name, host)
	default:
		if !isDNS1123Subdomain(host) {
			a.warn("%s %q is not a valid DNS host name: an Ingress host is a lowercase RFC 1123 name such as api.example.com", name, host)
		}
	}
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

// audit fills the audit annotations: which rule, why, and what changed.
func (a *ingressAdmission) audit() {
	r := a.res
	a.AuditAnnotations = map[string]string{"resolution": string(r.Source), "outcome": a.outcome}
	if r.Class != "" {
		a.AuditAnnotations["class"] = r.Class
	}
	if r.Controller != "" {
		a.AuditAnnotations["controller"] = r.Controller
	}
	if r.RuleName != "" {
		a.AuditAnnotations["rule"] = r.RuleName
		if src := a.policy.RuleSource(r.RuleName); src != "" {
			a.AuditAnnotations["rule-source"] = src
		}
	}
	if len(a.changes) > 0 {
		a.AuditAnnotations["changes"] = strings.Join(a.changes, "; ")
	}
	if a.wiring != "" {
		a.AuditAnnotations["child-wiring"] = a.wiring
	}
}
