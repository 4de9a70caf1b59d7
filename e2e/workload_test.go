package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

const (
	envHost = "KUBERNETES_SERVICE_HOST"
	envPort = "KUBERNETES_SERVICE_PORT"
)

// In-child topology: the webhook configuration of manifests/overlays/workload
// registered in the child cluster; host and port come from the policy's
// ccm.apiServer (basePolicy).
func TestCCMInjectionInChild(t *testing.T) {
	requireWebhook(t)
	registerInChild(t, framework.OverlayWorkload)
	ccm := readTestdata(t, "workloads/openstack-ccm-daemonset.yaml")
	const container = "openstack-cloud-controller-manager"

	t.Run("the CCM container gets the API server of ccm.apiServer, its init container and sidecar do not", func(t *testing.T) {
		var got *unstructured.Unstructured
		res := eventuallyChildDryRun(t, ccm, func(u *unstructured.Unstructured) string {
			got = u
			e, _ := containerEnv(t, u, container, false)
			if e[envHost] != "api.in-child.example.com" || e[envPort] != "6443" {
				return "CCM env is " + mapString(e)
			}
			return ""
		})
		requireWarning(t, res, regexp.QuoteMeta(envHost))
		for _, c := range []struct {
			name string
			init bool
		}{{"metrics-proxy", false}, {"wait-for-cloud-config", true}} {
			e, found := containerEnv(t, got, c.name, c.init)
			if !found {
				t.Fatalf("container %s missing from the result", c.name)
			}
			if _, set := e[envHost]; set {
				t.Errorf("container %s got %s: %v", c.name, envHost, e)
			}
		}
		if e, _ := containerEnv(t, got, container, false); e["CLOUD_CONFIG"] != "/etc/config/cloud.conf" {
			t.Errorf("the CCM's own variables changed: %v", e)
		}
	})

	t.Run("a variable already set to another value is replaced, with a warning", func(t *testing.T) {
		got, res := dryRun(t, env.Child, readTestdata(t, "workloads/gcp-ccm-preset-env.yaml"))
		e, _ := containerEnv(t, got, "cloud-controller-manager", false)
		if e[envHost] != "api.in-child.example.com" || e[envPort] != "6443" {
			t.Errorf("env %v, want the 127.0.0.1 replaced", e)
		}
		requireWarning(t, res, regexp.QuoteMeta("127.0.0.1"))
		if n := countEnv(t, got, "cloud-controller-manager", envHost); n != 1 {
			t.Errorf("%s appears %d times", envHost, n)
		}
	})

	t.Run("an applied CCM is stable: a second apply is a no-op and an update keeps one copy of each variable", func(t *testing.T) {
		mustKubectl(t, env.Child, toYAML(t, ccm), "apply", "-f", "-")
		t.Cleanup(func() {
			cleanupKubectl(t, env.Child, "delete", "daemonset", ccm.GetName(), "-n", "kube-system", "--ignore-not-found")
		})
		before := get(t, env.Child, "daemonsets", "kube-system", ccm.GetName())
		// kubectl may still print "configured": its strategic merge patch for
		// the env list carries a $setElementOrder directive even when nothing
		// changes. What matters is that the API server stores nothing new, so
		// a GitOps sync never rolls the CCM.
		mustKubectl(t, env.Child, toYAML(t, ccm), "apply", "-f", "-")
		after := get(t, env.Child, "daemonsets", "kube-system", ccm.GetName())
		if before.GetResourceVersion() != after.GetResourceVersion() || before.GetGeneration() != after.GetGeneration() {
			t.Errorf("a second apply changed the stored DaemonSet (resourceVersion %s -> %s, generation %d -> %d)",
				before.GetResourceVersion(), after.GetResourceVersion(), before.GetGeneration(), after.GetGeneration())
		}
		if diff := kubectl(t, env.Child, toYAML(t, ccm), "diff", "-f", "-"); diff.ExitCode != 0 {
			t.Errorf("kubectl diff after a second apply: %s", diff)
		}
		updated := ccm.DeepCopy()
		updated.SetLabels(map[string]string{"k8s-app": "openstack-cloud-controller-manager", "example.com/rev": "2"})
		mustKubectl(t, env.Child, toYAML(t, updated), "apply", "-f", "-")
		stored := get(t, env.Child, "daemonsets", "kube-system", ccm.GetName())
		if n := countEnv(t, stored, container, envHost); n != 1 {
			t.Errorf("%s appears %d times after an update:\n%s", envHost, n, yamlOf(stored))
		}
	})

	t.Run("left alone", func(t *testing.T) {
		optedOut := ccm.DeepCopy()
		optedOut.SetName("opted-out-cloud-controller-manager")
		optedOut.SetAnnotations(map[string]string{injectAnnotation: "false"})
		skipped := ccm.DeepCopy()
		skipped.SetName("skipped-cloud-controller-manager")
		skipped.SetLabels(map[string]string{"k8s-app": "openstack-cloud-controller-manager", skipLabel: "true"})
		cases := map[string]struct {
			obj         *unstructured.Unstructured
			neverCalled bool // kept away by the webhook configuration
		}{
			"cluster-autoscaler, although it passes --cloud-provider": {obj: readTestdata(t, "workloads/cluster-autoscaler.yaml")},
			"a CSI controller":                            {obj: readTestdata(t, "workloads/csi-controller.yaml")},
			"kube-controller-manager":                     {obj: readTestdata(t, "workloads/kube-controller-manager.yaml")},
			"a CCM annotated hcp-ingress.io/inject=false": {obj: optedOut, neverCalled: true},
			"a CCM labelled hcp-ingress.io/skip=true":     {obj: skipped, neverCalled: true},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				calls := requests(t, pathWorkload)
				got, res := dryRun(t, env.Child, tc.obj)
				if tc.neverCalled && requests(t, pathWorkload) != calls {
					t.Errorf("the API server called the webhook: the webhook configuration should keep this object away")
				}
				containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					name, _ := c.(map[string]any)["name"].(string)
					if e, _ := containerEnv(t, got, name, false); e[envHost] != "" {
						t.Errorf("container %s got %s=%s", name, envHost, e[envHost])
					}
				}
				if got.GetAnnotations()[mutatedAnnotation] != "" {
					t.Errorf("marked %s: %s (warnings %v)", mutatedAnnotation, got.GetAnnotations()[mutatedAnnotation], res.Warnings())
				}
			})
		}
	})
}

// Management-hosted topology: a second cluster stands in for the child whose
// API server runs in the management cluster. Its webhook configuration is the
// output of `hcp-ingress-webhook child-config`, and the webhook takes host and
// port from the K0smotronControlPlane in the management cluster.
func TestCCMInjectionManagementHosted(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, env.Management, "e2e-hosted", nil)
	cp := k0smotronCP(ns, "child", "e2e-hosted-class")
	_ = unstructured.SetNestedField(cp.Object, int64(6443), "spec", "ingress", "port")
	mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
	registerChildConfig(t, ns+"/child")
	ccm := readTestdata(t, "workloads/openstack-ccm-daemonset.yaml")
	const container = "openstack-cloud-controller-manager"

	t.Run("the CCM in the child gets host and port of its control plane in the management cluster", func(t *testing.T) {
		res := eventuallyChildDryRun(t, ccm, func(u *unstructured.Unstructured) string {
			e, _ := containerEnv(t, u, container, false)
			if e[envHost] != "api.child.example.com" || e[envPort] != "6443" {
				return "CCM env is " + mapString(e)
			}
			return ""
		})
		requireWarning(t, res, regexp.QuoteMeta(envHost))
	})

	t.Run("a change of the control plane reaches the next admission", func(t *testing.T) {
		mustKubectl(t, env.Management, "", "patch", "k0smotroncontrolplanes", "child", "-n", ns, "--type=merge",
			"-p", `{"spec":{"ingress":{"apiHost":"api2.child.example.com","port":null}}}`)
		eventuallyChildDryRun(t, ccm, func(u *unstructured.Unstructured) string {
			// port removed: the CRD defaults it to 443.
			if e, _ := containerEnv(t, u, container, false); e[envHost] != "api2.child.example.com" || e[envPort] != "443" {
				return "CCM env is " + mapString(e)
			}
			return ""
		})
	})

	t.Run("the workload's own annotations win over the control plane", func(t *testing.T) {
		pinned := ccm.DeepCopy()
		pinned.SetAnnotations(map[string]string{"hcp-ingress.io/api-host": "pinned.example.com", "hcp-ingress.io/api-port": "7443"})
		got, _ := dryRun(t, env.Child, pinned)
		if e, _ := containerEnv(t, got, container, false); e[envHost] != "pinned.example.com" || e[envPort] != "7443" {
			t.Errorf("CCM env is %s", mapString(e))
		}
	})

	t.Run("a path naming no control plane with ingress: allowed unchanged, with a warning", func(t *testing.T) {
		registerChildConfig(t, ns+"/no-such-control-plane")
		res := eventuallyChildDryRun(t, ccm, func(u *unstructured.Unstructured) string {
			if e, _ := containerEnv(t, u, container, false); e[envHost] != "" {
				return "CCM env is " + mapString(e)
			}
			return ""
		})
		requireWarning(t, res, regexp.QuoteMeta("no-such-control-plane"))
	})
}

// registerInChild registers an overlay's webhook configurations in the child
// cluster until the test ends.
func registerInChild(t *testing.T, overlay string) {
	t.Helper()
	configs, err := framework.RegisterOverlayWebhooks(t.Context(), env.Paths, env.Child, overlay, env.Webhook)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range configs {
			cleanupKubectl(t, env.Child, "delete", strings.ToLower(c.GetKind()), c.GetName(), "--ignore-not-found")
		}
	})
}

// registerChildConfig applies `hcp-ingress-webhook child-config NS/NAME` to
// the child cluster until the test ends.
func registerChildConfig(t *testing.T, controlPlane string) {
	t.Helper()
	stdout, stderr, err := webhookCLI(t, "child-config", controlPlane, "--url", env.Webhook.URL, "--ca-file", env.Webhook.CAFile)
	if err != nil {
		t.Fatalf("hcp-ingress-webhook child-config %s: %v\n%s", controlPlane, err, stderr)
	}
	objects, err := framework.DecodeObjects([]byte(stdout))
	if err != nil || len(objects) != 1 || objects[0].GetKind() != "MutatingWebhookConfiguration" {
		t.Fatalf("child-config printed %d objects (%v), want one MutatingWebhookConfiguration:\n%s", len(objects), err, stdout)
	}
	if want := env.Webhook.URL + "/mutate-workload/" + controlPlane; !strings.Contains(stdout, want) {
		t.Errorf("child-config does not point at %s:\n%s", want, stdout)
	}
	mustKubectl(t, env.Child, stdout, "apply", "-f", "-")
	name := objects[0].GetName()
	t.Cleanup(func() {
		cleanupKubectl(t, env.Child, "delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
	})
}

// webhookCLI runs bin/hcp-ingress-webhook with args.
func webhookCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), env.Paths.Webhook, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), err
}

// eventuallyChildDryRun repeats a server-side dry-run in the child cluster
// until check accepts the result: webhook configurations and the webhook's
// control-plane cache settle asynchronously.
func eventuallyChildDryRun(t *testing.T, obj *unstructured.Unstructured, check func(*unstructured.Unstructured) string) (res framework.KubectlResult) {
	t.Helper()
	eventually(t, "dry-run of "+obj.GetKind()+" "+obj.GetName()+" in the child", func() string {
		var got *unstructured.Unstructured
		got, res = dryRun(t, env.Child, obj)
		return check(got)
	})
	return res
}

// countEnv counts the entries named name in a container's env.
func countEnv(t *testing.T, u *unstructured.Unstructured, container, name string) int {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	n := 0
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		if cm["name"] != container {
			continue
		}
		list, _ := cm["env"].([]any)
		for _, e := range list {
			if e.(map[string]any)["name"] == name {
				n++
			}
		}
	}
	return n
}
