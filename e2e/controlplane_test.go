package e2e

import (
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// Controllers as their IngressClass objects name them (PRODUCT.md).
const (
	controllerHAProxyTech      = "haproxy.org/ingress-controller/haproxy"
	controllerHAProxyCommunity = "haproxy-ingress.github.io/controller"
	controllerCilium           = "cilium.io/ingress-controller"
	controllerTraefik          = "traefik.io/ingress-controller"

	annotationHAProxyTech      = "haproxy.org/ssl-passthrough"
	annotationHAProxyCommunity = "haproxy-ingress.github.io/ssl-passthrough"
	annotationCilium           = "ingress.cilium.io/tls-passthrough"
)

// The same class name, "haproxy", is used by two controllers that spell the
// passthrough annotation differently: the IngressClass object decides, and
// without one the webhook guesses and says so.
func TestIngressClassDecidesThePassthroughSpelling(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, env.Management, "e2e-spelling", nil)
	cp := k0smotronCP(ns, "spelling", "haproxy")

	steps := []struct {
		name       string
		controller string // "" deletes the IngressClass
		want       string
		wantNot    string
		warning    string
	}{
		{
			name:       "served by the community HAProxy Ingress: its own annotation, and a warning saying so",
			controller: controllerHAProxyCommunity,
			want:       annotationHAProxyCommunity,
			wantNot:    annotationHAProxyTech,
			warning:    regexp.QuoteMeta(annotationHAProxyCommunity),
		},
		{
			name:       "served by HAProxy Technologies' controller: haproxy.org/ssl-passthrough",
			controller: controllerHAProxyTech,
			want:       annotationHAProxyTech,
			wantNot:    annotationHAProxyCommunity,
			warning:    regexp.QuoteMeta(annotationHAProxyTech),
		},
		{
			name:    "with no IngressClass at all: the documented guess, with a warning that it is one",
			want:    annotationHAProxyTech,
			wantNot: annotationHAProxyCommunity,
			warning: `(?i)guess`,
		},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.controller != "" {
				ingressClass(t, "haproxy", step.controller, false)
			} else {
				deleteIngressClass(t, "haproxy")
			}
			// The webhook sees IngressClass changes through an informer.
			var got *unstructured.Unstructured
			res := eventuallyDryRun(t, cp, func(u *unstructured.Unstructured) string {
				got = u
				a := ingressAnnotations(u)
				if a[step.want] != "true" {
					return "annotations are " + mapString(a)
				}
				if _, found := a[step.wantNot]; found {
					return "annotations are " + mapString(a)
				}
				return ""
			})
			requireWarning(t, res, step.warning)
			if got.GetAnnotations()[mutatedAnnotation] == "" {
				t.Errorf("no %s annotation naming the rule:\n%s", mutatedAnnotation, yamlOf(got))
			}
		})
	}
}

func TestControlPlanePassthrough(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, env.Management, "e2e-controlplane", nil)
	ingressClass(t, "e2e-hatech", "haproxy.org/ingress-controller/e2e-hatech", false)
	ingressClass(t, "e2e-hacomm", controllerHAProxyCommunity, false)
	ingressClass(t, "e2e-traefik", controllerTraefik, false)
	// Wait once for the webhook's IngressClass cache to hold the classes.
	eventuallyDryRun(t, k0smotronCP(ns, "cache-warmup", "e2e-hacomm"), func(u *unstructured.Unstructured) string {
		if ingressAnnotations(u)[annotationHAProxyCommunity] != "true" {
			return "IngressClass e2e-hacomm not seen yet: " + mapString(ingressAnnotations(u))
		}
		return ""
	})

	t.Run("apply stores the annotation and names the rule", func(t *testing.T) {
		cp := k0smotronCP(ns, "applied", "e2e-hatech")
		res := mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
		if !strings.Contains(res.Stdout, "created") {
			t.Errorf("kubectl apply did not create: %s", res)
		}
		requireWarning(t, res, regexp.QuoteMeta(annotationHAProxyTech))
		stored := get(t, env.Management, "k0smotroncontrolplanes", ns, "applied")
		if got := ingressAnnotations(stored)[annotationHAProxyTech]; got != "true" {
			t.Errorf("stored %s = %q, want \"true\":\n%s", annotationHAProxyTech, got, yamlOf(stored))
		}
		if stored.GetAnnotations()[mutatedAnnotation] == "" {
			t.Errorf("stored object has no %s annotation", mutatedAnnotation)
		}

		t.Run("a second apply changes nothing and kubectl diff is empty", func(t *testing.T) {
			res := mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
			if !strings.Contains(res.Stdout, "unchanged") {
				t.Errorf("second apply was not a no-op: %s", res)
			}
			if diff := kubectl(t, env.Management, toYAML(t, cp), "diff", "-f", "-"); diff.ExitCode != 0 {
				t.Errorf("kubectl diff after a second apply: %s", diff)
			}
		})

		t.Run("an update of spec is admitted again and the annotations stay as they are", func(t *testing.T) {
			before := get(t, env.Management, "k0smotroncontrolplanes", ns, "applied")
			calls := requests(t, pathControlPlane)
			changed := cp.DeepCopy()
			_ = unstructured.SetNestedField(changed.Object, int64(3), "spec", "replicas")

			diff := kubectl(t, env.Management, toYAML(t, changed), "diff", "-f", "-")
			if diff.ExitCode != 1 || !strings.Contains(diff.Stdout, "replicas: 3") {
				t.Errorf("kubectl diff should show the replicas change: %s", diff)
			}
			if strings.Contains(diff.Stdout, "-      "+annotationHAProxyTech) {
				t.Errorf("kubectl diff would drop the webhook's annotation: %s", diff)
			}

			mustKubectl(t, env.Management, toYAML(t, changed), "apply", "-f", "-")
			after := get(t, env.Management, "k0smotroncontrolplanes", ns, "applied")
			if requests(t, pathControlPlane) <= calls {
				t.Errorf("a spec change did not reach the webhook")
			}
			if !reflect.DeepEqual(ingressAnnotations(before), ingressAnnotations(after)) ||
				before.GetAnnotations()[mutatedAnnotation] != after.GetAnnotations()[mutatedAnnotation] {
				t.Errorf("re-admission changed the annotations:\nbefore %v %q\nafter  %v %q",
					ingressAnnotations(before), before.GetAnnotations()[mutatedAnnotation],
					ingressAnnotations(after), after.GetAnnotations()[mutatedAnnotation])
			}
		})
	})

	t.Run("apply --dry-run=server -o yaml shows the mutation and the warnings, and stores nothing", func(t *testing.T) {
		cp := k0smotronCP(ns, "preview", "e2e-hatech")
		res := mustKubectl(t, env.Management, toYAML(t, cp), "apply", "--dry-run=server", "-o", "yaml", "-f", "-")
		if !strings.Contains(res.Stdout, annotationHAProxyTech+`: "true"`) {
			t.Errorf("dry-run output lacks the annotation:\n%s", res.Stdout)
		}
		if len(webhookWarnings(res)) == 0 {
			t.Errorf("dry-run printed no warnings on stderr: %s", res)
		}
		if strings.Contains(res.Stdout, "Warning:") {
			t.Errorf("warnings leaked into the YAML on stdout")
		}
		if got := kubectl(t, env.Management, "", "get", "k0smotroncontrolplanes", "preview", "-n", ns); got.ExitCode == 0 {
			t.Errorf("the dry-run persisted the object: %s", got)
		}
	})

	t.Run("kubectl diff of a new object shows the annotation the webhook adds", func(t *testing.T) {
		cp := k0smotronCP(ns, "diffed", "e2e-hatech")
		res := kubectl(t, env.Management, toYAML(t, cp), "diff", "-f", "-")
		if res.ExitCode != 1 || !strings.Contains(res.Stdout, "+      "+annotationHAProxyTech+`: "true"`) {
			t.Errorf("kubectl diff should exit 1 and show the added annotation: %s", res)
		}
	})

	t.Run("create, then update to a class of another controller", func(t *testing.T) {
		cp := k0smotronCP(ns, "switched", "e2e-hatech")
		mustKubectl(t, env.Management, toYAML(t, cp), "create", "-f", "-")
		res := mustKubectl(t, env.Management, "", "patch", "k0smotroncontrolplanes", "switched", "-n", ns,
			"--type=merge", "-p", `{"spec":{"ingress":{"className":"e2e-hacomm"}}}`)
		stored := get(t, env.Management, "k0smotroncontrolplanes", ns, "switched")
		a := ingressAnnotations(stored)
		if a[annotationHAProxyCommunity] != "true" {
			t.Errorf("after the update %s = %q, want \"true\": %v", annotationHAProxyCommunity, a[annotationHAProxyCommunity], a)
		}
		// The annotation of the other HAProxy is the mistake the k0rdent docs
		// warn about: reported (and kept, removeForeignAnnotations is false).
		requireWarning(t, res, regexp.QuoteMeta(annotationHAProxyTech))
		if _, kept := a[annotationHAProxyTech]; !kept {
			t.Errorf("the foreign annotation was removed although removeForeignAnnotations is false: %v", a)
		}
	})

	t.Run("every kind and version with an ingress block", func(t *testing.T) {
		cases := map[string]*unstructured.Unstructured{
			"K0smotronControlPlane v1beta1":                                      controlPlane("controlplane.cluster.x-k8s.io/v1beta1", "K0smotronControlPlane", ns, "kcp-v1beta1", ingressBlock("kcp-v1beta1", "e2e-hatech")),
			"K0smotronControlPlane v1beta2":                                      controlPlane("controlplane.cluster.x-k8s.io/v1beta2", "K0smotronControlPlane", ns, "kcp-v1beta2", ingressBlock("kcp-v1beta2", "e2e-hatech")),
			"k0smotron Cluster v1beta1":                                          controlPlane("k0smotron.io/v1beta1", "Cluster", ns, "kmc-v1beta1", ingressBlock("kmc-v1beta1", "e2e-hatech")),
			"k0smotron Cluster v1beta2":                                          controlPlane("k0smotron.io/v1beta2", "Cluster", ns, "kmc-v1beta2", ingressBlock("kmc-v1beta2", "e2e-hatech")),
			"K0smotronControlPlaneTemplate v1beta1 (spec.template.spec.ingress)": template("controlplane.cluster.x-k8s.io/v1beta1", ns, "tpl-v1beta1", "e2e-hatech"),
			"K0smotronControlPlaneTemplate v1beta2 (spec.template.spec.ingress)": template("controlplane.cluster.x-k8s.io/v1beta2", ns, "tpl-v1beta2", "e2e-hatech"),
		}
		for name, obj := range cases {
			t.Run(name, func(t *testing.T) {
				got, res := dryRun(t, env.Management, obj)
				if ingressAnnotations(got)[annotationHAProxyTech] != "true" {
					t.Errorf("no %s: warnings %v\n%s", annotationHAProxyTech, res.Warnings(), yamlOf(got))
				}
			})
		}
	})

	t.Run("unknown fields and other annotations survive", func(t *testing.T) {
		cp := k0smotronCP(ns, "unknown-fields", "e2e-hatech")
		spec := cp.Object["spec"].(map[string]any)
		spec["futureField"] = map[string]any{"nested": []any{"a", int64(1), true}}
		spec["ingress"].(map[string]any)["annotations"] = map[string]any{"example.com/keep": "me"}
		got, _ := dryRun(t, env.Management, cp)
		gotSpec := got.Object["spec"].(map[string]any)
		for _, field := range []string{"futureField", "k0sConfig", "service", "version", "replicas"} {
			if !reflect.DeepEqual(gotSpec[field], spec[field]) {
				t.Errorf("spec.%s changed:\nsent %#v\ngot  %#v", field, spec[field], gotSpec[field])
			}
		}
		a := ingressAnnotations(got)
		if a["example.com/keep"] != "me" || a[annotationHAProxyTech] != "true" {
			t.Errorf("annotations %v, want example.com/keep kept and %s added", a, annotationHAProxyTech)
		}
	})

	t.Run("the default IngressClass decides for an empty className", func(t *testing.T) {
		ingressClass(t, "e2e-default-cilium", controllerCilium, true)
		cp := k0smotronCP(ns, "default-class", "")
		eventuallyDryRun(t, cp, func(u *unstructured.Unstructured) string {
			if got := ingressAnnotations(u)[annotationCilium]; got != "enabled" {
				return "annotations are " + mapString(ingressAnnotations(u))
			}
			return ""
		})
		deleteIngressClass(t, "e2e-default-cilium")
	})

	t.Run("an unsupported controller is allowed unchanged with a warning that says what to use", func(t *testing.T) {
		cp := k0smotronCP(ns, "traefik", "e2e-traefik")
		got, res := dryRun(t, env.Management, cp)
		if a := ingressAnnotations(got); len(a) != 0 {
			t.Errorf("annotations added for an unsupported controller: %v", a)
		}
		requireWarning(t, res, `IngressRouteTCP`)
	})
}

// What reaches the webhook is decided by the API server, from the webhook
// configuration of manifests/overlays/management: its rules, namespaceSelector
// and matchConditions. Whatever the webhook answers, objects it would leave
// alone must never be sent (with failurePolicy Fail, every call is a
// dependency on its uptime).
func TestControlPlaneWebhookScope(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, env.Management, "e2e-scope", nil)
	skippedNS := newNamespace(t, env.Management, "e2e-skipped", map[string]string{skipLabel: "true"})
	labelled := k0smotronCP(ns, "skip-label", "e2e-scope")
	labelled.SetLabels(map[string]string{skipLabel: "true"})
	withoutIngress := template("controlplane.cluster.x-k8s.io/v1beta2", ns, "tpl-no-ingress", "")
	unstructured.RemoveNestedField(withoutIngress.Object, "spec", "template", "spec", "ingress")

	cases := map[string]struct {
		obj  *unstructured.Unstructured
		sent bool
	}{
		"K0smotronControlPlane v1beta1 with ingress":         {controlPlane("controlplane.cluster.x-k8s.io/v1beta1", "K0smotronControlPlane", ns, "kcp1", ingressBlock("kcp1", "e2e-scope")), true},
		"K0smotronControlPlane v1beta2 with ingress":         {k0smotronCP(ns, "kcp2", "e2e-scope"), true},
		"k0smotron Cluster v1beta1 with ingress":             {controlPlane("k0smotron.io/v1beta1", "Cluster", ns, "kmc1", ingressBlock("kmc1", "e2e-scope")), true},
		"k0smotron Cluster v1beta2 with ingress":             {controlPlane("k0smotron.io/v1beta2", "Cluster", ns, "kmc2", ingressBlock("kmc2", "e2e-scope")), true},
		"a template with spec.template.spec.ingress":         {template("controlplane.cluster.x-k8s.io/v1beta1", ns, "tpl", "e2e-scope"), true},
		"a template without ingress":                         {withoutIngress, false},
		"a control plane without ingress":                    {controlPlane("controlplane.cluster.x-k8s.io/v1beta2", "K0smotronControlPlane", ns, "no-ingress", nil), false},
		"a control plane with the skip label":                {labelled, false},
		"a control plane in a namespace with the skip label": {k0smotronCP(skippedNS, "in-skipped-ns", "e2e-scope"), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			calls := requests(t, pathControlPlane)
			got, res := dryRun(t, env.Management, tc.obj)
			if sent := requests(t, pathControlPlane) > calls; sent != tc.sent {
				t.Errorf("sent to the webhook: %v, want %v", sent, tc.sent)
			}
			if tc.sent {
				return
			}
			if len(ingressAnnotations(got)) != 0 || got.GetAnnotations()[mutatedAnnotation] != "" {
				t.Errorf("object changed:\n%s", yamlOf(got))
			}
			if w := webhookWarnings(res); len(w) != 0 {
				t.Errorf("warnings for an object left alone: %v", w)
			}
		})
	}

	t.Run("updates reach the webhook only when spec changes", func(t *testing.T) {
		cp := k0smotronCP(ns, "updated", "e2e-scope")
		mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
		calls := requests(t, pathControlPlane)
		mustKubectl(t, env.Management, "", "label", "k0smotroncontrolplanes", "updated", "-n", ns, "example.com/touched=yes")
		mustKubectl(t, env.Management, "", "annotate", "k0smotroncontrolplanes", "updated", "-n", ns, "example.com/note=hi")
		if got := requests(t, pathControlPlane); got != calls {
			t.Errorf("metadata-only updates were sent to the webhook (%v -> %v requests)", calls, got)
		}
		mustKubectl(t, env.Management, "", "patch", "k0smotroncontrolplanes", "updated", "-n", ns, "--type=merge", "-p", `{"spec":{"replicas":2}}`)
		if got := requests(t, pathControlPlane); got <= calls {
			t.Errorf("a spec update was not sent to the webhook")
		}
	})
}

// template is a K0smotronControlPlaneTemplate with the ingress block at
// spec.template.spec.ingress.
func template(apiVersion, namespace, name, className string) *unstructured.Unstructured {
	inner := controlPlane(apiVersion, "K0smotronControlPlaneTemplate", namespace, name, ingressBlock(name, className))
	u := object(apiVersion, "K0smotronControlPlaneTemplate", namespace, name)
	u.Object["spec"] = map[string]any{"template": map[string]any{"spec": inner.Object["spec"]}}
	return u
}

// eventuallyDryRun repeats a server-side dry-run until check accepts the
// result, and returns the accepted run (for its warnings).
func eventuallyDryRun(t *testing.T, obj *unstructured.Unstructured, check func(*unstructured.Unstructured) string) (res framework.KubectlResult) {
	t.Helper()
	eventually(t, "dry-run of "+obj.GetKind()+" "+obj.GetName(), func() string {
		var got *unstructured.Unstructured
		got, res = dryRun(t, env.Management, obj)
		return check(got)
	})
	return res
}

func mapString(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
