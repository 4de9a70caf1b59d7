package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

const (
	installNamespace = "hcp-ingress-system"
	serviceAccount   = "system:serviceaccount:hcp-ingress-system:hcp-ingress-webhook"
)

// manifests/ as an operator installs it: rendered by bin/kubectl kustomize and
// validated by the API server (cert-manager's real CRDs included), with Pod
// Security admission on.
func TestManifests(t *testing.T) {
	management := render(t, framework.OverlayManagement)
	workload := render(t, framework.OverlayWorkload)

	t.Run("the management overlay passes server-side validation in its restricted namespace without a warning", func(t *testing.T) {
		ns := only(t, management, "Namespace")
		if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Fatalf("namespace %s enforces %q, want restricted", ns.GetName(), got)
		}
		mustKubectl(t, env.Management, toYAML(t, ns), "apply", "-f", "-")
		res := mustKubectl(t, env.Management, toYAML(t, management...), "apply", "--dry-run=server", "-f", "-")
		if w := res.Warnings(); len(w) != 0 {
			t.Errorf("warnings:\n  %s", strings.Join(w, "\n  "))
		}
		for _, kind := range []string{"Issuer", "Certificate", "Deployment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			if !strings.Contains(strings.ToLower(res.Stdout), strings.ToLower(kind)) {
				t.Errorf("no %s in the dry-run output:\n%s", kind, res.Stdout)
			}
		}
	})

	t.Run("the workload overlay passes server-side validation in the child without a warning", func(t *testing.T) {
		ns := only(t, workload, "Namespace")
		mustKubectl(t, env.Child, toYAML(t, ns), "apply", "-f", "-")
		res := mustKubectl(t, env.Child, toYAML(t, workload...), "apply", "--dry-run=server", "-f", "-")
		if w := res.Warnings(); len(w) != 0 {
			t.Errorf("warnings:\n  %s", strings.Join(w, "\n  "))
		}
		if kinds := kindsOf(workload); slices.Contains(kinds, "Certificate") || slices.Contains(kinds, "ValidatingWebhookConfiguration") {
			t.Errorf("the in-child install should have neither cert-manager objects nor the policy validator: %v", kinds)
		}
	})

	t.Run("the workload overlay's pod is restricted except for host networking", func(t *testing.T) {
		restricted := newNamespace(t, env.Child, "e2e-restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		deployment := only(t, workload, "Deployment")
		deployment.SetNamespace(restricted)
		res := mustKubectl(t, env.Child, toYAML(t, deployment), "apply", "--dry-run=server", "-f", "-")
		if len(res.Warnings()) == 0 {
			t.Fatalf("no Pod Security warning for a hostNetwork pod in a restricted namespace: is PodSecurity admission on?")
		}
		for _, w := range res.Warnings() {
			for _, violation := range podSecurityViolations(w) {
				if violation != "host namespaces" && violation != "hostPort" {
					t.Errorf("restricted violation other than host networking: %q in %q", violation, w)
				}
			}
		}
	})

	t.Run("the service account can read what the webhook needs and nothing more", func(t *testing.T) {
		mustKubectl(t, env.Management, toYAML(t, rbacObjects(management)...), "apply", "-f", "-")
		requirePermissions(t, env.Management, map[string]bool{
			"watch ingressclasses.networking.k8s.io":                                 true,  // watch IngressClasses
			"list k0smotroncontrolplanes.controlplane.cluster.x-k8s.io -A":           true,  // list K0smotronControlPlanes in all namespaces
			"get clusters.k0smotron.io -n default":                                   true,  // get k0smotron Clusters
			"watch configmaps/hcp-ingress-policy -n " + installNamespace:             true,  // watch the policy ConfigMap
			"create events -n " + installNamespace:                                   true,  // create Events in its namespace
			"patch events -n " + installNamespace:                                    true,  // patch Events in its namespace
			"get secrets -n " + installNamespace:                                     false, // read Secrets
			"list secrets -A":                                                        false, // list Secrets anywhere
			"update k0smotroncontrolplanes.controlplane.cluster.x-k8s.io -n default": false, // change a K0smotronControlPlane
			"patch ingressclasses.networking.k8s.io":                                 false, // change an IngressClass
			"list pods -A":                                                           false, // read Pods
			// Fleet wiring: the ConfigMaps hcp-ingress-child-<name> next to
			// every control plane, the skip label of their namespaces, and
			// Events on the control planes.
			"create configmaps -n default": true,  // create a fleet ConfigMap next to a control plane
			"update configmaps -n default": true,  // update a fleet ConfigMap
			"delete configmaps -n default": true,  // delete a fleet ConfigMap
			"watch configmaps -A":          true,  // watch ConfigMaps in all namespaces
			"list namespaces":              true,  // read Namespaces
			"update namespaces":            false, // change a Namespace
			"create events -n default":     true,  // create Events on control planes
		})
	})

	t.Run("the management overlay turns fleet wiring on with the Service URL", func(t *testing.T) {
		args := toStrings(only(t, management, "Deployment").Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["args"])
		if !slices.Contains(args, "--child-webhook-url=https://hcp-ingress-webhook.hcp-ingress-system.svc") {
			t.Errorf("serve args %v lack --child-webhook-url", args)
		}
		if slices.Contains(args, "--fleet-repair") {
			t.Errorf("repair is on by default: %v", args)
		}
	})

	t.Run("the fleet-repair component adds --fleet-repair and Secret get, nothing else", func(t *testing.T) {
		data, err := framework.RenderWithComponents(t.Context(), env.Paths, framework.OverlayManagement, "fleet-repair")
		if err != nil {
			t.Fatal(err)
		}
		objects, err := framework.DecodeObjects(data)
		if err != nil {
			t.Fatal(err)
		}
		args := toStrings(only(t, objects, "Deployment").Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["args"])
		if !slices.Contains(args, "--fleet-repair") || !slices.Contains(args, "--child-webhook-url=https://hcp-ingress-webhook.hcp-ingress-system.svc") {
			t.Errorf("serve args %v, want --child-webhook-url and --fleet-repair", args)
		}
		res := mustKubectl(t, env.Management, toYAML(t, objects...), "apply", "--dry-run=server", "-f", "-")
		if w := res.Warnings(); len(w) != 0 {
			t.Errorf("warnings:\n  %s", strings.Join(w, "\n  "))
		}
		var rbac []*unstructured.Unstructured
		for _, o := range objects {
			if strings.HasPrefix(o.GetName(), "hcp-ingress-webhook-fleet-repair") {
				rbac = append(rbac, o)
			}
		}
		if len(rbac) != 2 {
			t.Fatalf("want a ClusterRole and a ClusterRoleBinding hcp-ingress-webhook-fleet-repair, got %d objects", len(rbac))
		}
		mustKubectl(t, env.Management, toYAML(t, rbac...), "apply", "-f", "-")
		t.Cleanup(func() {
			cleanupKubectl(t, env.Management, "delete", "clusterrolebinding,clusterrole", "hcp-ingress-webhook-fleet-repair", "--ignore-not-found")
		})
		requirePermissions(t, env.Management, map[string]bool{
			"get secrets -n default": true, "list secrets -A": false, "watch secrets -A": false, "update secrets -n default": false,
		})
	})

	t.Run("the webhook configurations have the documented settings", func(t *testing.T) {
		want := map[string]string{ // webhook name -> failurePolicy
			"controlplane.hcp-ingress.io": "Fail",
			"policy.hcp-ingress.io":       "Ignore",
			"workload.hcp-ingress.io":     "Ignore",
		}
		seen := map[string]string{}
		for overlay, objects := range map[string][]*unstructured.Unstructured{"management": management, "workload": workload} {
			for _, o := range objects {
				if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
					continue
				}
				hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
				for _, h := range hooks {
					hook := h.(map[string]any)
					name := hook["name"].(string)
					seen[name] = overlay
					if hook["failurePolicy"] != want[name] {
						t.Errorf("%s: failurePolicy %v, want %s", name, hook["failurePolicy"], want[name])
					}
					if hook["sideEffects"] != "None" || !slices.Equal(toStrings(hook["admissionReviewVersions"]), []string{"v1"}) {
						t.Errorf("%s: sideEffects %v, admissionReviewVersions %v", name, hook["sideEffects"], hook["admissionReviewVersions"])
					}
					if timeout, _, _ := unstructured.NestedInt64(hook, "timeoutSeconds"); timeout < 1 || timeout > 5 {
						t.Errorf("%s: timeoutSeconds %v, want 1..5", name, hook["timeoutSeconds"])
					}
					if o.GetKind() == "MutatingWebhookConfiguration" && hook["reinvocationPolicy"] != "IfNeeded" {
						t.Errorf("%s: reinvocationPolicy %v", name, hook["reinvocationPolicy"])
					}
					if conditions, _ := hook["matchConditions"].([]any); len(conditions) == 0 {
						t.Errorf("%s: no matchConditions", name)
					}
				}
			}
		}
		wantOverlay := map[string]string{"controlplane.hcp-ingress.io": "management", "policy.hcp-ingress.io": "management", "workload.hcp-ingress.io": "workload"}
		for name, overlay := range wantOverlay {
			if seen[name] != overlay {
				t.Errorf("webhook %s is in overlay %q, want only in %q", name, seen[name], overlay)
			}
		}
	})
}

func render(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	data, err := framework.RenderOverlay(t.Context(), env.Paths, overlay)
	if err != nil {
		t.Fatalf("manifests/overlays/%s: %v", overlay, err)
	}
	objects, err := framework.DecodeObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	return objects
}

// only returns a copy of the one object of a kind.
func only(t *testing.T, objects []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, found %d", kind, len(found))
	}
	return found[0].DeepCopy()
}

func kindsOf(objects []*unstructured.Unstructured) []string {
	var kinds []string
	for _, o := range objects {
		kinds = append(kinds, o.GetKind())
	}
	return kinds
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

var parenthesized = regexp.MustCompile(`\([^)]*\)`)

// podSecurityViolations splits `would violate PodSecurity "restricted:latest":
// host namespaces (hostNetwork=true), hostPort (...)` into its check names.
func podSecurityViolations(warning string) []string {
	_, list, found := strings.Cut(warning, `": `)
	if !found {
		return []string{warning}
	}
	var out []string
	for _, v := range strings.Split(parenthesized.ReplaceAllString(list, ""), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
