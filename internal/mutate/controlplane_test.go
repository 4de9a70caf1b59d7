package mutate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

const (
	cpAPIVersion = "controlplane.cluster.x-k8s.io/v1beta1"
	cpKind       = "K0smotronControlPlane"
)

var communityHAProxy = rules.IngressClass{Name: "haproxy", Controller: "haproxy-ingress.github.io/controller"}

// controlPlaneCase is one admission of a control plane and what must come of it.
type controlPlaneCase struct {
	policy           string               // YAML merged over the defaults; "" for the defaults
	classes          rules.IngressClasses // nil: no IngressClass can be read
	apiVersion, kind string               // default: K0smotronControlPlane v1beta1
	ingress          map[string]any       // spec.ingress; nil leaves it out
	edit             func(obj map[string]any)
	operation        string // default CREATE
	namespaceSkipped bool
	routes           bool // serve --routes

	wantAnnotations map[string]string // spec.ingress.annotations after the patch; nil: absent
	wantUnchanged   bool              // no patch at all
	wantRecord      string            // the hcp-ingress.io/mutated annotation after the patch
	wantRule        string
	wantWarnings    []string // each must be contained in a warning, in this order
	wantNoWarnings  bool
	wantDenied      []string // each must be contained in the denial
	wantAudit       map[string]string
	wantPatch       []jsonpatch.Operation // exact patch, when given
}

// admitControlPlane runs one case, checks the invariants of every admission
// and returns the result and the patched object.
func runControlPlaneCase(t *testing.T, tc controlPlaneCase) (Result, map[string]any) {
	t.Helper()
	apiVersion, kind := tc.apiVersion, tc.kind
	if apiVersion == "" {
		apiVersion = cpAPIVersion
	}
	if kind == "" {
		kind = cpKind
	}
	operation := tc.operation
	if operation == "" {
		operation = "CREATE"
	}
	in := Input{
		Object:           controlPlaneJSON(t, apiVersion, kind, tc.ingress, tc.edit),
		Operation:        operation,
		Namespace:        "tenants",
		NamespaceSkipped: tc.namespaceSkipped,
		Policy:           testPolicy(t, tc.policy),
		Classes:          tc.classes,
		Routes:           tc.routes,
	}
	res, err := ControlPlane(in)
	if err != nil {
		t.Fatalf("ControlPlane: %v", err)
	}
	if res.Target != TargetControlPlane {
		t.Errorf("Target = %q", res.Target)
	}
	var out []byte
	if operation == "CREATE" || operation == "UPDATE" {
		out = checkInvariants(t, ControlPlane, controlPlanePath, in, res)
	} else {
		out = applyPatch(t, in.Object, res.Patch) // re-admitting as UPDATE would mutate
	}
	assertOnlyAllowedChanges(t, in.Object, out)
	obj := decodeJSON(t, out)

	for _, w := range res.Warnings {
		if !strings.HasPrefix(w, "hcp-ingress: ") {
			t.Errorf("warning %q does not say it comes from hcp-ingress", w)
		}
	}
	if len(res.Patch) > 0 && !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.HasPrefix(w, "hcp-ingress: added ") || strings.HasPrefix(w, "hcp-ingress: replaced ") || strings.HasPrefix(w, "hcp-ingress: removed ")
	}) {
		t.Errorf("the object changed but no warning says what was done: %q", res.Warnings)
	}

	path := []string{"spec", "ingress", "annotations"}
	if kind == "K0smotronControlPlaneTemplate" {
		path = []string{"spec", "template", "spec", "ingress", "annotations"}
	}
	if got := stringMap(t, obj, path...); !maps.Equal(got, tc.wantAnnotations) || (got == nil) != (tc.wantAnnotations == nil) {
		t.Errorf("%s = %v, want %v", strings.Join(path, "."), got, tc.wantAnnotations)
	}
	if tc.wantUnchanged && len(res.Patch) > 0 {
		raw, _ := json.Marshal(res.Patch)
		t.Errorf("patch = %s, want none", raw)
	}
	if got := stringMap(t, obj, "metadata", "annotations")[MutatedAnnotation]; got != tc.wantRecord {
		t.Errorf("record annotation = %q, want %q", got, tc.wantRecord)
	}
	if res.Rule != tc.wantRule {
		t.Errorf("Rule = %q, want %q", res.Rule, tc.wantRule)
	}
	assertWarnings(t, res.Warnings, tc.wantWarnings)
	if tc.wantNoWarnings && len(res.Warnings) > 0 {
		t.Errorf("warnings = %q, want none", res.Warnings)
	}
	for _, want := range tc.wantDenied {
		if !strings.Contains(res.Denied, want) {
			t.Errorf("denial = %q, want it to contain %q", res.Denied, want)
		}
	}
	if len(tc.wantDenied) == 0 && res.Denied != "" {
		t.Errorf("denied: %q", res.Denied)
	}
	for k, want := range tc.wantAudit {
		if got, ok := res.AuditAnnotations[k]; !ok || got != want {
			t.Errorf("audit annotation %s = %q, want %q (all: %v)", k, got, want, res.AuditAnnotations)
		}
	}
	if tc.wantPatch != nil {
		got, _ := json.Marshal(res.Patch)
		want, _ := json.Marshal(tc.wantPatch)
		if string(got) != string(want) {
			t.Errorf("patch = %s\nwant    %s", got, want)
		}
	}
	return res, obj
}

// assertWarnings checks that each wanted text is in a warning, in order.
func assertWarnings(t *testing.T, got, want []string) {
	t.Helper()
	i := 0
	for _, w := range want {
		for i < len(got) && !strings.Contains(got[i], w) {
			i++
		}
		if i == len(got) {
			t.Errorf("no warning (after the ones matched before) contains %q; warnings:\n  %s", w, strings.Join(got, "\n  "))
			return
		}
		i++
	}
}

func TestControlPlane(t *testing.T) {
	tests := map[string]controlPlaneCase{
		// Resolution and the rule it finds.
		"adds the community HAProxy annotation for an IngressClass served by HAProxy Ingress": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings: []string{`hcp-ingress: added haproxy-ingress.github.io/ssl-passthrough: "true" to spec.ingress.annotations ` +
				`(ingress class "haproxy" is served by controller "haproxy-ingress.github.io/controller", HAProxy Ingress (community))`},
			wantAudit: map[string]string{
				"rule": "controllers/haproxy-ingress.github.io/controller", "rule-source": "built-in", "class": "haproxy",
				"controller": "haproxy-ingress.github.io/controller", "resolution": "controller", "outcome": "mutated",
				"changes": "added haproxy-ingress.github.io/ssl-passthrough",
			},
			wantPatch: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/spec/ingress/annotations", map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
				jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{MutatedAnnotation: "controllers/haproxy-ingress.github.io/controller"}),
			},
		},
		"adds HAProxy Technologies' annotation for a controller registered with a class suffix": {
			classes:         ingressClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy.org/ingress-controller",
			wantRule:        "controllers/haproxy.org/ingress-controller",
			wantWarnings:    []string{`added haproxy.org/ssl-passthrough: "true" to spec.ingress.annotations (ingress class "haproxy" is served by controller "haproxy.org/ingress-controller/haproxy", HAProxy Kubernetes Ingress Controller (HAProxy Technologies))`},
		},
		"guesses HAProxy Technologies for class haproxy when no IngressClass can be read": {
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy.org/ingress-controller",
			wantRule:        "controllers/haproxy.org/ingress-controller",
			wantWarnings: []string{
				`hcp-ingress: the controller of ingress class "haproxy" is a guess from its name and could not be confirmed`,
				`added haproxy.org/ssl-passthrough: "true" to spec.ingress.annotations (ingress class "haproxy" is guessed to be served by controller "haproxy.org/ingress-controller"`,
			},
			wantAudit: map[string]string{"resolution": "guess"},
		},
		"a class rule in the user's policy wins over the IngressClass": {
			policy:          "ingressClasses:\n  haproxy:\n    project: our HAProxy\n    annotations: {haproxy-ingress.github.io/ssl-passthrough: \"true\"}\n",
			classes:         ingressClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller"}),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "ingressClasses/haproxy",
			wantRule:        "ingressClasses/haproxy",
			wantWarnings:    []string{`(ingress class "haproxy" has its own rule in the policy, ingressClasses/haproxy, our HAProxy)`},
			wantAudit:       map[string]string{"resolution": "ingressClass", "rule-source": "policy.yaml", "controller": "haproxy.org/ingress-controller"},
		},
		"an IngressClass whose controller has no rule is left unchanged with a warning, not guessed": {
			classes:      ingressClasses(rules.IngressClass{Name: "haproxy", Controller: "example.net/haproxy-fork"}),
			ingress:      ingress("haproxy", nil),
			wantWarnings: []string{`IngressClass "haproxy" is served by controller "example.net/haproxy-fork", which has no SSL passthrough rule`, "spec.ingress.annotations left unchanged"},
			wantAudit:    map[string]string{"resolution": "none", "outcome": "no rule", "controller": "example.net/haproxy-fork"},
		},
		"an unknown class is left unchanged with a warning (onUnknownClass: Warn)": {
			ingress:      ingress("mystery", nil),
			wantWarnings: []string{`hcp-ingress: spec.ingress.annotations left unchanged: no SSL passthrough rule for ingress class "mystery"; add one under ingressClasses or controllers`},
		},
		"an unknown class is denied with the policy snippet to add (onUnknownClass: Deny)": {
			policy:  "onUnknownClass: Deny\n",
			ingress: ingress("mystery", nil),
			wantDenied: []string{`ingress class "mystery" has no SSL passthrough rule, and the policy sets onUnknownClass: Deny`,
				"ingressClasses:\n  mystery:\n    annotations:\n      <annotation that turns on SSL passthrough>: \"true\"\n"},
			wantAudit: map[string]string{"outcome": "denied"},
		},
		"a class of an unknown controller is denied with a controllers snippet": {
			policy:     "onUnknownClass: Deny\n",
			classes:    ingressClasses(rules.IngressClass{Name: "edge", Controller: "example.net/edge"}),
			ingress:    ingress("edge", nil),
			wantDenied: []string{`ingress class "edge" (controller "example.net/edge") has no SSL passthrough rule`, "controllers:\n  example.net/edge:\n"},
		},
		"an unknown class is admitted silently (onUnknownClass: Ignore)": {
			policy:         "onUnknownClass: Ignore\n",
			classes:        ingressClasses(rules.IngressClass{Name: "edge", Controller: "example.net/edge"}),
			ingress:        ingress("edge", nil),
			wantNoWarnings: true,
			wantAudit:      map[string]string{"outcome": "ignored"},
		},
		"Ignore still warns about the object itself": {
			policy: "onUnknownClass: Ignore\n",
			ingress: func() map[string]any {
				ing := ingress("mystery", nil)
				ing["apiHost"] = "192.0.2.10"
				return ing
			}(),
			wantWarnings: []string{`spec.ingress.apiHost "192.0.2.10" is an IP address`},
		},
		"with serve --routes, a controller whose rule names a route is handled, not unsupported": {
			classes: ingressClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}),
			ingress: ingress("traefik", nil),
			routes:  true,
			wantWarnings: []string{`hcp-ingress: SSL passthrough is handled by a route (ingress class "traefik" is served by controller "traefik.io/ingress-controller", Traefik): ` +
				"the webhook keeps a traefik.io/v1alpha1 IngressRouteTCP with tls.passthrough: true for the Ingress k0smotron creates"},
			wantUnchanged: true,
			wantRule:      "controllers/traefik.io/ingress-controller",
			wantAudit:     map[string]string{"outcome": "route"},
		},
		"with serve --routes, onUnknownClass: Deny does not deny a controller whose route is kept": {
			policy:    "onUnknownClass: Deny\n",
			classes:   ingressClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}),
			ingress:   ingress("traefik", nil),
			routes:    true,
			wantRule:  "controllers/traefik.io/ingress-controller",
			wantAudit: map[string]string{"outcome": "route"},
		},
		"with serve --routes, a controller without a route kind stays unsupported": {
			classes:      ingressClasses(rules.IngressClass{Name: "contour", Controller: "projectcontour.io/ingress-controller"}),
			ingress:      ingress("contour", nil),
			routes:       true,
			wantWarnings: []string{"cannot turn on SSL passthrough (ingress class \"contour\" is served by controller \"projectcontour.io/ingress-controller\", Contour): Contour needs an HTTPProxy"},
			wantRule:     "controllers/projectcontour.io/",
			wantAudit:    map[string]string{"outcome": "unsupported"},
		},
		"a controller that cannot pass TLS through gets a warning saying what to use instead": {
			classes: ingressClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}),
			ingress: ingress("traefik", nil),
			wantWarnings: []string{`hcp-ingress: spec.ingress.annotations cannot turn on SSL passthrough (ingress class "traefik" is served by controller "traefik.io/ingress-controller", Traefik): ` +
				"Traefik needs an IngressRouteTCP with tls.passthrough: true"},
			wantRule:  "controllers/traefik.io/ingress-controller",
			wantAudit: map[string]string{"outcome": "unsupported"},
		},
		"a controller that cannot pass TLS through is denied with onUnknownClass: Deny": {
			policy:  "onUnknownClass: Deny\n",
			classes: ingressClasses(rules.IngressClass{Name: "contour", Controller: "projectcontour.io/contour"}),
			ingress: ingress("contour", map[string]any{"haproxy.org/ssl-passthrough": "true"}),
			wantDenied: []string{`ingress class "contour" (controller "projectcontour.io/contour", Contour) cannot be set up for SSL passthrough with Ingress annotations, and the policy sets onUnknownClass: Deny: ` +
				"Contour needs an HTTPProxy"},
			wantAnnotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
			wantRule:        "controllers/projectcontour.io/",
		},
		"ingress-nginx gets its annotation and the warning about its controller flag": {
			classes:         ingressClasses(rules.IngressClass{Name: "nginx", Controller: "k8s.io/ingress-nginx"}),
			ingress:         ingress("nginx", nil),
			wantAnnotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/k8s.io/ingress-nginx",
			wantRule:        "controllers/k8s.io/ingress-nginx",
			wantWarnings:    []string{"added nginx.ingress.kubernetes.io/ssl-passthrough", "--enable-ssl-passthrough"},
		},
		"an empty className uses the cluster's default IngressClass": {
			classes:         ingressClasses(rules.IngressClass{Name: "public", Controller: "cilium.io/ingress-controller", IsDefault: true}),
			ingress:         ingress("", nil),
			wantAnnotations: map[string]string{"ingress.cilium.io/tls-passthrough": "enabled"},
			wantRecord:      "controllers/cilium.io/ingress-controller",
			wantRule:        "controllers/cilium.io/ingress-controller",
			wantWarnings:    []string{`spec.ingress.className is empty, so the cluster's default IngressClass "public" was used`, `added ingress.cilium.io/tls-passthrough: "enabled"`},
		},
		"an empty className uses the policy's defaultIngressClass when the cluster has no default": {
			policy:          "defaultIngressClass: nginx\n",
			ingress:         ingress("", nil),
			wantAnnotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/k8s.io/ingress-nginx",
			wantRule:        "controllers/k8s.io/ingress-nginx",
			wantWarnings:    []string{`the policy's defaultIngressClass "nginx" was used`, "guess", "added"},
		},
		"an empty className with no default anywhere is left unchanged with a warning": {
			classes:      ingressClasses(communityHAProxy),
			ingress:      ingress("", nil),
			wantWarnings: []string{"spec.ingress.annotations left unchanged: spec.ingress.className is empty and there is no default IngressClass"},
		},
		"an empty className with no default anywhere is denied with onUnknownClass: Deny": {
			policy:     "onUnknownClass: Deny\n",
			ingress:    ingress("", nil),
			wantDenied: []string{"spec.ingress.className is empty", "defaultIngressClass: <your ingress class>"},
		},

		// The annotations map.
		"adds to existing annotations and keeps the others": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"example.com/team": "a", "haproxy-ingress.github.io/timeout-tunnel": "1h"}),
			wantAnnotations: map[string]string{"example.com/team": "a", "haproxy-ingress.github.io/timeout-tunnel": "1h", "haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantPatch: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/spec/ingress/annotations/haproxy-ingress.github.io~1ssl-passthrough", "true"),
				jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{MutatedAnnotation: "controllers/haproxy-ingress.github.io/controller"}),
			},
		},
		"annotations: null is replaced by a map": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         func() map[string]any { ing := ingress("haproxy", nil); ing["annotations"] = nil; return ing }(),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
		"an annotation already right changes nothing and says nothing": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantUnchanged:   true,
			wantNoWarnings:  true,
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantAudit:       map[string]string{"outcome": "unchanged"},
		},
		"a conflicting value is kept with a warning (onConflict: Keep)": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "false"}),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "false"},
			wantUnchanged:   true,
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{`hcp-ingress: kept haproxy-ingress.github.io/ssl-passthrough: "false" (the rule sets "true") in spec.ingress.annotations, so SSL passthrough may not be on (onConflict: Keep; ingress class "haproxy"`},
			wantAudit:       map[string]string{"outcome": "kept"},
		},
		"a conflicting value is replaced with a warning (onConflict: Override)": {
			policy:          "onConflict: Override\n",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "1"}),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{`hcp-ingress: replaced haproxy-ingress.github.io/ssl-passthrough: "1" with "true" in spec.ingress.annotations (onConflict: Override;`},
			wantPatch: []jsonpatch.Operation{
				jsonpatch.NewOperation("replace", "/spec/ingress/annotations/haproxy-ingress.github.io~1ssl-passthrough", "true"),
				jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{MutatedAnnotation: "controllers/haproxy-ingress.github.io/controller"}),
			},
		},
		"the annotation of another controller is reported, naming both (the k0rdent docs mistake)": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy.org/ssl-passthrough": "true"}),
			wantAnnotations: map[string]string{"haproxy.org/ssl-passthrough": "true", "haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings: []string{"added haproxy-ingress.github.io/ssl-passthrough",
				`hcp-ingress: spec.ingress.annotations has haproxy.org/ssl-passthrough, an annotation of controller "haproxy.org/ingress-controller" (HAProxy Kubernetes Ingress Controller (HAProxy Technologies)), ` +
					`but ingress class "haproxy" is served by controller "haproxy-ingress.github.io/controller", HAProxy Ingress (community): it has no effect there (removeForeignAnnotations: true in the policy removes it)`},
		},
		"the annotation of another controller is removed with removeForeignAnnotations": {
			policy:          "removeForeignAnnotations: true\n",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy.org/ssl-passthrough": "true", "example.com/team": "a"}),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true", "example.com/team": "a"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{"added", `hcp-ingress: removed haproxy.org/ssl-passthrough from spec.ingress.annotations: it is an annotation of controller "haproxy.org/ingress-controller"`},
			wantAudit:       map[string]string{"changes": "added haproxy-ingress.github.io/ssl-passthrough; removed haproxy.org/ssl-passthrough"},
		},
		"removing a foreign annotation alone still records the rule": {
			policy:          "removeForeignAnnotations: true\n",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", map[string]any{"haproxy.org/ssl-passthrough": "true", "haproxy-ingress.github.io/ssl-passthrough": "true"}),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{"removed haproxy.org/ssl-passthrough"},
		},
		"a foreign annotation next to an unsupported controller is reported too": {
			classes:         ingressClasses(rules.IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}),
			ingress:         ingress("traefik", map[string]any{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}),
			wantAnnotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"},
			wantRule:        "controllers/traefik.io/ingress-controller",
			wantWarnings:    []string{"spec.ingress.annotations has nginx.ingress.kubernetes.io/ssl-passthrough", "cannot turn on SSL passthrough"},
		},

		// The record annotation.
		"the record joins existing metadata annotations": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			edit:            func(obj map[string]any) { meta(obj)["annotations"] = map[string]any{"example.com/owner": "a"} },
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantPatch: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/spec/ingress/annotations", map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
				jsonpatch.NewOperation("add", "/metadata/annotations/hcp-ingress.io~1mutated", "controllers/haproxy-ingress.github.io/controller"),
			},
		},
		"a stale record is updated when something changes": {
			classes: ingressClasses(communityHAProxy),
			ingress: ingress("haproxy", nil),
			edit: func(obj map[string]any) {
				meta(obj)["annotations"] = map[string]any{MutatedAnnotation: "controllers/haproxy.org/ingress-controller"}
			},
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
		"a stale record stays when nothing changes": {
			classes: ingressClasses(communityHAProxy),
			ingress: ingress("haproxy", map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
			edit: func(obj map[string]any) {
				meta(obj)["annotations"] = map[string]any{MutatedAnnotation: "ingressClasses/old"}
			},
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "ingressClasses/old",
			wantUnchanged:   true,
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},

		// Kinds and versions.
		"K0smotronControlPlane v1beta2": {
			apiVersion:      "controlplane.cluster.x-k8s.io/v1beta2",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
		"K0smotronControlPlaneTemplate: spec.template.spec.ingress": {
			kind:            "K0smotronControlPlaneTemplate",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{`added haproxy-ingress.github.io/ssl-passthrough: "true" to spec.template.spec.ingress.annotations`},
			wantPatch: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/spec/template/spec/ingress/annotations", map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
				jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{MutatedAnnotation: "controllers/haproxy-ingress.github.io/controller"}),
			},
		},
		"K0smotronControlPlaneTemplate v1beta2 warnings name the template's fields": {
			apiVersion: "controlplane.cluster.x-k8s.io/v1beta2",
			kind:       "K0smotronControlPlaneTemplate",
			classes:    ingressClasses(communityHAProxy),
			ingress:    ingress("haproxy", map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "true"}),
			edit: func(obj map[string]any) {
				s := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				s["version"] = "v1.33.1+k0s.0"
				s["service"] = map[string]any{"type": "LoadBalancer"}
			},
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantUnchanged:   true,
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
			wantWarnings:    []string{`spec.template.spec.version "v1.33.1+k0s.0" is older than v1.34.1+k0s.0`, "spec.template.spec.service.type is LoadBalancer although spec.template.spec.ingress is set"},
		},
		"a template's ingress is only read under spec.template.spec": {
			kind:          "K0smotronControlPlaneTemplate",
			classes:       ingressClasses(communityHAProxy),
			edit:          func(obj map[string]any) { obj["spec"].(map[string]any)["ingress"] = ingress("haproxy", nil) },
			wantUnchanged: true, wantNoWarnings: true,
		},
		"standalone k0smotron Cluster v1beta1": {
			apiVersion:      "k0smotron.io/v1beta1",
			kind:            "Cluster",
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
		"standalone k0smotron Cluster v1beta2": {
			apiVersion:      "k0smotron.io/v1beta2",
			kind:            "Cluster",
			ingress:         ingress("cilium", nil),
			wantAnnotations: map[string]string{"ingress.cilium.io/tls-passthrough": "enabled"},
			wantRecord:      "controllers/cilium.io/ingress-controller",
			wantRule:        "controllers/cilium.io/ingress-controller",
		},

		// Objects that are left alone.
		"no spec.ingress: unchanged and silent": {
			classes: ingressClasses(communityHAProxy), wantUnchanged: true, wantNoWarnings: true,
		},
		"spec.ingress: null: unchanged and silent": {
			edit:          func(obj map[string]any) { obj["spec"].(map[string]any)["ingress"] = nil },
			wantUnchanged: true, wantNoWarnings: true,
		},
		"no spec at all: unchanged": {
			edit:          func(obj map[string]any) { delete(obj, "spec") },
			wantUnchanged: true, wantNoWarnings: true,
		},
		"the skip label on the object": {
			classes:       ingressClasses(communityHAProxy),
			ingress:       ingress("haproxy", nil),
			edit:          func(obj map[string]any) { meta(obj)["labels"] = map[string]any{SkipLabel: "true"} },
			wantUnchanged: true, wantNoWarnings: true,
		},
		"a skip label that is not \"true\" does not skip": {
			classes:         ingressClasses(communityHAProxy),
			ingress:         ingress("haproxy", nil),
			edit:            func(obj map[string]any) { meta(obj)["labels"] = map[string]any{SkipLabel: "false"} },
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
		"a skipped namespace": {
			classes: ingressClasses(communityHAProxy), ingress: ingress("haproxy", nil), namespaceSkipped: true,
			wantUnchanged: true, wantNoWarnings: true,
		},
		"DELETE is not mutated": {
			classes: ingressClasses(communityHAProxy), ingress: ingress("haproxy", nil), operation: "DELETE",
			wantUnchanged: true, wantNoWarnings: true,
		},
		"UPDATE is mutated like CREATE": {
			classes: ingressClasses(communityHAProxy), ingress: ingress("haproxy", nil), operation: "UPDATE",
			wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			wantRecord:      "controllers/haproxy-ingress.github.io/controller",
			wantRule:        "controllers/haproxy-ingress.github.io/controller",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { runControlPlaneCase(t, tc) })
	}
}

// meta returns an object's metadata map.
func meta(obj map[string]any) map[string]any { return obj["metadata"].(map[string]any) }

// The checks that do not depend on the rule: never blocking, always a
// sentence naming the field.
func TestControlPlaneWarnsAboutTheIngressSettings(t *testing.T) {
	right := map[string]any{"haproxy-ingress.github.io/ssl-passthrough": "true"}
	tests := map[string]struct {
		edit         func(spec, ing map[string]any)
		wantWarnings []string // nil: no warning at all
	}{
		"a k0s version older than v1.34.1+k0s.0": {
			edit:         func(spec, ing map[string]any) { spec["version"] = "v1.33.4+k0s.0" },
			wantWarnings: []string{`hcp-ingress: spec.version "v1.33.4+k0s.0" is older than v1.34.1+k0s.0, the first k0s version that supports spec.ingress`},
		},
		"v1.34.0 is one patch too old": {
			edit:         func(spec, ing map[string]any) { spec["version"] = "v1.34.0+k0s.1" },
			wantWarnings: []string{`spec.version "v1.34.0+k0s.1" is older than v1.34.1+k0s.0`},
		},
		"the minimum version itself":                      {edit: func(spec, ing map[string]any) { spec["version"] = "v1.34.1+k0s.0" }},
		"the image-tag spelling of the minimum version":   {edit: func(spec, ing map[string]any) { spec["version"] = "v1.34.1-k0s.0" }},
		"a newer minor version":                           {edit: func(spec, ing map[string]any) { spec["version"] = "v1.35.0+k0s.0" }},
		"a version without the v and k0s suffix":          {edit: func(spec, ing map[string]any) { spec["version"] = "1.36.2" }},
		"no version: k0smotron picks one, nothing to say": {edit: func(spec, ing map[string]any) { delete(spec, "version") }},
		"a version that cannot be parsed": {
			edit:         func(spec, ing map[string]any) { spec["version"] = "latest" },
			wantWarnings: []string{`spec.version "latest" could not be checked against v1.34.1+k0s.0`},
		},
		"an apiHost that is an IPv4 address": {
			edit:         func(spec, ing map[string]any) { ing["apiHost"] = "192.0.2.10" },
			wantWarnings: []string{`hcp-ingress: spec.ingress.apiHost "192.0.2.10" is an IP address: an Ingress rule needs a DNS host name`},
		},
		"a konnectivityHost that is an IPv6 address": {
			edit:         func(spec, ing map[string]any) { ing["konnectivityHost"] = "2001:db8::7" },
			wantWarnings: []string{`spec.ingress.konnectivityHost "2001:db8::7" is an IP address`},
		},
		"an apiHost with capitals": {
			edit:         func(spec, ing map[string]any) { ing["apiHost"] = "API.tenant-a.example.com" },
			wantWarnings: []string{`spec.ingress.apiHost "API.tenant-a.example.com" is not a valid DNS host name: an Ingress host is a lowercase RFC 1123 name`},
		},
		"a wildcard apiHost": {
			edit:         func(spec, ing map[string]any) { ing["apiHost"] = "*.tenant-a.example.com" },
			wantWarnings: []string{`spec.ingress.apiHost "*.tenant-a.example.com" is not a valid DNS host name`},
		},
		"a host with a control character is quoted": {
			edit:         func(spec, ing map[string]any) { ing["apiHost"] = "api\n.example.com" },
			wantWarnings: []string{`spec.ingress.apiHost "api\n.example.com" is not a valid DNS host name`},
		},
		"apiHost equal to konnectivityHost": {
			edit: func(spec, ing map[string]any) { ing["konnectivityHost"] = ing["apiHost"] },
			wantWarnings: []string{`hcp-ingress: spec.ingress.apiHost and spec.ingress.konnectivityHost are both "api.tenant-a.example.com": ` +
				"the Ingress routes by host name, so API and konnectivity traffic need different hosts"},
		},
		"an empty konnectivityHost": {
			edit:         func(spec, ing map[string]any) { delete(ing, "konnectivityHost") },
			wantWarnings: []string{"spec.ingress.konnectivityHost is empty: k0smotron needs a host name for the Ingress rule"},
		},
		"a LoadBalancer service next to the ingress": {
			edit:         func(spec, ing map[string]any) { spec["service"] = map[string]any{"type": "LoadBalancer"} },
			wantWarnings: []string{"hcp-ingress: spec.service.type is LoadBalancer although spec.ingress is set: the load balancer is not needed"},
		},
		"a NodePort service is fine":   {edit: func(spec, ing map[string]any) { spec["service"] = map[string]any{"type": "NodePort"} }},
		"port 0 means k0smotron's 443": {edit: func(spec, ing map[string]any) { ing["port"] = 0 }},
		"port out of range": {
			edit:         func(spec, ing map[string]any) { ing["port"] = 70000 },
			wantWarnings: []string{"spec.ingress.port 70000 is not a port number (an integer from 1 to 65535)"},
		},
		"negative port": {
			edit:         func(spec, ing map[string]any) { ing["port"] = -443 },
			wantWarnings: []string{"spec.ingress.port -443 is not a port number (an integer from 1 to 65535)"},
		},
		"fractional port": {
			edit:         func(spec, ing map[string]any) { ing["port"] = 443.5 },
			wantWarnings: []string{"spec.ingress.port 443.5 is not a port number (an integer from 1 to 65535)"},
		},
		"everything at once, in order": {
			edit: func(spec, ing map[string]any) {
				spec["version"] = "v1.30.0+k0s.0"
				ing["apiHost"] = "10.0.0.1"
				ing["konnectivityHost"] = "10.0.0.1"
				ing["port"] = 0.5
				spec["service"] = map[string]any{"type": "LoadBalancer"}
			},
			wantWarnings: []string{"spec.version", "spec.ingress.apiHost", "spec.ingress.konnectivityHost", "are both", "spec.ingress.port", "spec.service.type"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, _ := runControlPlaneCase(t, controlPlaneCase{
				classes: ingressClasses(communityHAProxy),
				ingress: ingress("haproxy", right),
				edit: func(obj map[string]any) {
					spec := obj["spec"].(map[string]any)
					tc.edit(spec, spec["ingress"].(map[string]any))
				},
				wantAnnotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
				wantUnchanged:   true,
				wantRule:        "controllers/haproxy-ingress.github.io/controller",
				wantWarnings:    tc.wantWarnings,
				wantNoWarnings:  tc.wantWarnings == nil,
			})
			if len(res.Warnings) != len(tc.wantWarnings) && name != "everything at once, in order" {
				t.Errorf("warnings = %q, want %d", res.Warnings, len(tc.wantWarnings))
			}
		})
	}
}

// Every built-in controller that passes TLS through gets its annotation.
func TestControlPlaneBuiltinPassthroughRules(t *testing.T) {
	for prefix, rule := range rules.Default().Effective().Controllers {
		if rule.Unsupported != "" {
			continue
		}
		t.Run(prefix, func(t *testing.T) {
			res, _ := runControlPlaneCase(t, controlPlaneCase{
				classes:         ingressClasses(rules.IngressClass{Name: "edge", Controller: prefix + "/edge"}),
				ingress:         ingress("edge", nil),
				wantAnnotations: rule.Annotations,
				wantRecord:      "controllers/" + prefix,
				wantRule:        "controllers/" + prefix,
				wantWarnings:    []string{fmt.Sprintf(`to spec.ingress.annotations (ingress class "edge" is served by controller %q, %s)`, prefix+"/edge", rule.Project)},
			})
			if rule.Warning != "" {
				assertWarnings(t, res.Warnings, []string{rule.Warning})
			}
		})
	}
}

// Every built-in controller that cannot pass TLS through gets a warning
// saying what to use instead, and nothing changes.
func TestControlPlaneBuiltinUnsupportedRules(t *testing.T) {
	for prefix, rule := range rules.Default().Effective().Controllers {
		if rule.Unsupported == "" {
			continue
		}
		t.Run(prefix, func(t *testing.T) {
			controller := strings.TrimSuffix(prefix, "/") + "/edge"
			runControlPlaneCase(t, controlPlaneCase{
				classes:       ingressClasses(rules.IngressClass{Name: "edge", Controller: controller}),
				ingress:       ingress("edge", nil),
				wantUnchanged: true,
				wantRule:      "controllers/" + prefix,
				wantWarnings:  []string{fmt.Sprintf("cannot turn on SSL passthrough (ingress class \"edge\" is served by controller %q, %s): %s", controller, rule.Project, rule.Unsupported)},
			})
		})
	}
}

// Every class-name guess applies when no IngressClass can be read, always
// with the warning that it could not be confirmed.
func TestControlPlaneClassGuesses(t *testing.T) {
	p := rules.Default().Effective()
	for class, prefix := range p.ClassGuesses {
		rule := p.Controllers[prefix]
		for name, view := range map[string]rules.IngressClasses{"nothing readable": nil, "class not found": ingressClasses()} {
			t.Run(class+"/"+name, func(t *testing.T) {
				tc := controlPlaneCase{
					classes:      view,
					ingress:      ingress(class, nil),
					wantRule:     "controllers/" + prefix,
					wantWarnings: []string{fmt.Sprintf("the controller of ingress class %q is a guess from its name and could not be confirmed", class)},
				}
				if rule.Unsupported != "" {
					tc.wantUnchanged = true
					tc.wantWarnings = append(tc.wantWarnings, rule.Unsupported)
				} else {
					tc.wantAnnotations = rule.Annotations
					tc.wantRecord = "controllers/" + prefix
					tc.wantWarnings = append(tc.wantWarnings, fmt.Sprintf("is guessed to be served by controller %q", prefix))
				}
				runControlPlaneCase(t, tc)
			})
		}
	}
}

// The realistic control plane: everything but the annotations survives, the
// large k0sConfig included, and a second admission changes nothing.
func TestControlPlaneLargeObjectKeepsEverythingElse(t *testing.T) {
	in := Input{Object: largeControlPlane(t), Operation: "CREATE", Policy: rules.Default(),
		Classes: ingressClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"})}
	res, err := ControlPlane(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patch) != 2 {
		t.Fatalf("patch = %v, want the annotations and the record", res.Patch)
	}
	out := checkInvariants(t, ControlPlane, controlPlanePath, in, res)
	assertOnlyAllowedChanges(t, in.Object, out)
	before, after := decodeJSON(t, in.Object), decodeJSON(t, out)
	for _, path := range [][]string{{"spec", "k0sConfig"}, {"spec", "futureField"}, {"status"}, {"metadata", "managedFields"}, {"metadata", "annotations", "example.com/owner"}} {
		b, _ := nested(before, path...)
		a, ok := nested(after, path...)
		if !ok || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s changed", strings.Join(path, "."))
		}
	}
	if got := stringMap(t, after, "spec", "ingress", "annotations"); got["haproxy.org/ssl-passthrough"] != "true" {
		t.Errorf("annotations = %v", got)
	}
}
