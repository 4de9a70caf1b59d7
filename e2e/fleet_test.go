package e2e

import (
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/golden"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// envtest logs through controller-runtime's logger; tests that start a
// cluster late (TestFleetRepair's second child) would otherwise print
// controller-runtime's "SetLogger was never called" stack.
func init() { ctrllog.SetLogger(logr.Discard()) }

// Names of PRODUCT.md's "Fleet wiring".
const (
	fleetLabel        = "hcp-ingress.io/control-plane"
	fleetKey          = "hcp-ingress-child.yaml"
	childConfigName   = "hcp-ingress-child"
	readmittedAt      = "hcp-ingress.io/readmitted-at"
	openstackCCM      = "openstack-cloud-controller-manager"
	k0smotronClusterV = "k0smotron.io/v1beta2"
)

// Fleet wiring: the ConfigMap of every control plane with ingress, kept in
// step with URL and CA, gone with the ingress; applied to a child, it makes
// the child's API server call the webhook for its CCM.
func TestFleetWiring(t *testing.T) {
	requireWebhook(t)
	initial := env.Webhook.CABundle
	f := startFleet(t, "fleet-wiring", framework.FleetOptions{ChildWebhookURL: env.Webhook.URL})
	// The management overlay's webhooks call the fleet process until the
	// test ends: with --child-webhook-url its control-plane webhook appends
	// the spec.manifests entry on CREATE.
	routeTo(t, f.Webhook)
	c := crClient(t, env.Management)
	ns := newNamespace(t, env.Management, "e2e-fleet", nil)
	skippedNS := newNamespace(t, env.Management, "e2e-fleet-skipped", map[string]string{skipLabel: "true"})

	skipped := k0smotronCP(ns, "skipped", "")
	skipped.SetLabels(map[string]string{skipLabel: "true"})
	invalid := k0smotronCP(ns, "invalid", "")
	invalid.Object["spec"].(map[string]any)["ingress"].(map[string]any)["apiHost"] = ""
	shared := controlPlane(k0smotronClusterV, "Cluster", ns, "shared", ingressBlock("shared", ""))
	mustKubectl(t, env.Management, toYAML(t,
		k0smotronCP(ns, "alpha", ""), k0smotronCP(ns, "beta", ""), k0smotronCP(ns, "gamma", "haproxy"),
		controlPlane("controlplane.cluster.x-k8s.io/v1beta2", "K0smotronControlPlane", ns, "plain", nil),
		skipped, k0smotronCP(skippedNS, "in-skipped-namespace", ""), invalid,
		shared, // the k0smotron Cluster first: the control plane must still win
	), "apply", "-f", "-")
	mustKubectl(t, env.Management, toYAML(t, k0smotronCP(ns, "shared", "")), "apply", "-f", "-")

	t.Run("every control plane with ingress gets its ConfigMap, byte for byte what child-config prints", func(t *testing.T) {
		for _, name := range []string{"alpha", "beta", "gamma", "shared"} {
			cm := waitConfigMap(t, c, ns, name, func(*corev1.ConfigMap) string { return "" })
			if got := cm.Labels[fleetLabel]; got != name {
				t.Errorf("%s: label %s=%q, want %q", cm.Name, fleetLabel, got, name)
			}
			if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "K0smotronControlPlane" || cm.OwnerReferences[0].Name != name {
				t.Errorf("%s: ownerReferences %+v, want the K0smotronControlPlane %s", cm.Name, cm.OwnerReferences, name)
			}
			stdout, stderr, err := webhookCLI(t, "child-config", ns+"/"+name, "--url", env.Webhook.URL, "--ca-file", env.Webhook.CAFile)
			if err != nil {
				t.Fatalf("child-config: %v\n%s", err, stderr)
			}
			if cm.Data[fleetKey] != stdout {
				t.Errorf("%s: key %s differs from child-config's output:\n%s\n---\n%s", cm.Name, fleetKey, cm.Data[fleetKey], stdout)
			}
		}
	})

	t.Run("control planes without ingress, skip-labelled or in a skip-labelled namespace get none", func(t *testing.T) {
		time.Sleep(2 * time.Second) // the others were created together with these
		for _, key := range []types.NamespacedName{{Namespace: ns, Name: "plain"}, {Namespace: ns, Name: "skipped"}, {Namespace: skippedNS, Name: "in-skipped-namespace"}, {Namespace: ns, Name: "invalid"}} {
			if cm := getConfigMap(t, c, key.Namespace, key.Name); cm != nil {
				t.Errorf("%s has a ConfigMap", key)
			}
		}
	})

	t.Run("the k0smotron Cluster of the control plane's name shares its ConfigMap and does not fight over it", func(t *testing.T) {
		before := getConfigMap(t, c, ns, "shared")
		time.Sleep(3 * time.Second)
		after := getConfigMap(t, c, ns, "shared")
		if before == nil || after == nil || before.ResourceVersion != after.ResourceVersion {
			t.Errorf("ConfigMap of shared changed while nothing changed (%v -> %v)", rv(before), rv(after))
		}
	})

	t.Run("the control-plane webhook mounts the ConfigMap through spec.manifests on CREATE", func(t *testing.T) {
		cp := get(t, env.Management, "k0smotroncontrolplanes", ns, "alpha")
		manifests, _, _ := unstructured.NestedSlice(cp.Object, "spec", "manifests")
		if len(manifests) == 0 {
			t.Skip("needs engine branch: spec.manifests is appended by the control-plane webhook with --child-webhook-url")
		}
		found := slices.ContainsFunc(manifests, func(m any) bool {
			entry, _ := m.(map[string]any)
			cm, _ := entry["configMap"].(map[string]any)
			return entry["name"] == childConfigName && cm["name"] == "hcp-ingress-child-alpha" && cm["optional"] == true
		})
		if !found {
			t.Errorf("spec.manifests has no entry %s for ConfigMap hcp-ingress-child-alpha (optional): %v", childConfigName, manifests)
		}
	})

	t.Run("an invalid ingress block gives an Event and a log line naming the object, the rest proceeds", func(t *testing.T) {
		eventually(t, "InvalidIngress event on invalid", func() string {
			if len(events(t, env.Management, ns, "invalid", "InvalidIngress")) == 0 {
				return "no event"
			}
			return ""
		})
		if !strings.Contains(f.Log(), ns+"/invalid") {
			t.Errorf("no log line names %s/invalid:\n%s", ns, f.Log())
		}
	})

	t.Run("the ConfigMap's content applied to a child makes a CCM created afterwards get the control plane's host and port", func(t *testing.T) {
		cm := waitConfigMap(t, c, ns, "alpha", func(*corev1.ConfigMap) string { return "" })
		// What k0s does with the manifests directory.
		mustKubectl(t, env.Child, cm.Data[fleetKey], "apply", "-f", "-")
		t.Cleanup(func() {
			cleanupKubectl(t, env.Child, "delete", "mutatingwebhookconfiguration", childConfigName, "--ignore-not-found")
		})
		eventuallyChildDryRun(t, readTestdata(t, "workloads/openstack-ccm-daemonset.yaml"), func(u *unstructured.Unstructured) string {
			e, _ := containerEnv(t, u, openstackCCM, false)
			if e[envHost] != "api.alpha.example.com" || e[envPort] != "443" {
				return "CCM env is " + mapString(e)
			}
			return ""
		})
	})

	t.Run("a control plane that loses spec.ingress loses its ConfigMap", func(t *testing.T) {
		mustKubectl(t, env.Management, "", "patch", "k0smotroncontrolplanes", "beta", "-n", ns, "--type=json", "-p", `[{"op":"remove","path":"/spec/ingress"}]`)
		eventually(t, "ConfigMap of beta deleted", func() string {
			if getConfigMap(t, c, ns, "beta") != nil {
				return "still there"
			}
			return ""
		})
		if len(events(t, env.Management, ns, "beta", "ChildConfigDeleted")) == 0 {
			t.Errorf("no ChildConfigDeleted event on beta")
		}
	})

	t.Run("deleting a control plane removes its ConfigMap and touches no other", func(t *testing.T) {
		alpha := getConfigMap(t, c, ns, "alpha")
		mustKubectl(t, env.Management, "", "delete", "k0smotroncontrolplanes", "shared", "-n", ns)
		// The k0smotron Cluster of that name remains: it now owns the ConfigMap.
		eventually(t, "ConfigMap of shared owned by the k0smotron Cluster", func() string {
			cm := getConfigMap(t, c, ns, "shared")
			if cm == nil || len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "Cluster" {
				return "owner is " + ownerOf(cm)
			}
			return ""
		})
		mustKubectl(t, env.Management, "", "delete", "clusters.k0smotron.io", "shared", "-n", ns)
		eventually(t, "ConfigMap of shared deleted", func() string {
			if getConfigMap(t, c, ns, "shared") != nil {
				return "still there"
			}
			return ""
		})
		if now := getConfigMap(t, c, ns, "alpha"); now == nil || now.ResourceVersion != alpha.ResourceVersion {
			t.Errorf("ConfigMap of alpha changed: %s -> %s", rv(alpha), rv(now))
		}
	})

	t.Run("serve exports the fleet's states as gauges with bounded labels", func(t *testing.T) {
		eventually(t, "hcp_ingress_fleet_controlplanes", func() string {
			// alpha: no class, so no rule; its ConfigMap exists and its
			// spec.manifests mounts it.
			n, err := f.Metric("hcp_ingress_fleet_controlplanes", `passthrough="no-rule",wiring="ok"`)
			if err != nil {
				return err.Error()
			}
			if n < 1 {
				return fmt.Sprintf("%v control planes with passthrough no-rule and wiring ok", n)
			}
			return ""
		})
	})

	t.Run("a ConfigMap deleted by hand is put back", func(t *testing.T) {
		mustKubectl(t, env.Management, "", "delete", "configmap", "hcp-ingress-child-alpha", "-n", ns)
		waitConfigMap(t, c, ns, "alpha", func(*corev1.ConfigMap) string { return "" })
	})

	// Last: the fleet process then serves a certificate of another CA, which
	// the management API server (routed to it) does not trust.
	t.Run("a CA change updates every ConfigMap", func(t *testing.T) {
		other, err := certs.NewCA("e2e rotated CA", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// A CA rotation as cert-manager writes it: a serving certificate
		// of the new CA and both CAs in ca.crt (the overlap). The fleet
		// process's own serving certificate is not called by anyone; the
		// ConfigMaps must carry both CAs.
		rotated := append(append([]byte{}, initial...), other.CertPEM...)
		leaf, err := other.IssueServing([]string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		caFile := filepath.Join(f.CertDir, certs.CAFile)
		for file, data := range map[string][]byte{caFile: rotated, filepath.Join(f.CertDir, "tls.key"): leaf.KeyPEM} {
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(f.CertDir, "tls.crt"), leaf.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for _, name := range []string{"alpha", "gamma"} {
			within(t, time.Minute, "ConfigMap of "+name+" carries the new CA", func() string {
				cm := getConfigMap(t, c, ns, name)
				if cm == nil || !strings.Contains(cm.Data[fleetKey], b64(rotated)) {
					return "still the old caBundle"
				}
				return ""
			})
		}
		t.Logf("every ConfigMap carried the new CA %v after the certificate directory changed", time.Since(start).Round(100*time.Millisecond))
	})
}

// Repair through the children's kubeconfig Secrets, and `audit` of the
// result: two live children (one stopped half-way), a slow one, and
// kubeconfig Secrets that are missing, empty, garbage or point at nothing.
func TestFleetRepair(t *testing.T) {
	requireWebhook(t)
	childB, err := framework.StartCluster(t.Context(), env.Paths, "child-b", env.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	bStopped := false
	t.Cleanup(func() {
		if !bStopped {
			_ = childB.Stop()
		}
	})
	ccm := readTestdata(t, "workloads/openstack-ccm-daemonset.yaml")
	for _, child := range []*framework.Cluster{env.Child, childB} {
		// The CCM runs before the child is wired: no variables.
		mustKubectl(t, child, toYAML(t, ccm), "apply", "-f", "-")
		if e, _ := containerEnv(t, get(t, child, "daemonsets", "kube-system", openstackCCM), openstackCCM, false); e[envHost] != "" {
			t.Fatalf("%s: CCM already has %s=%s before wiring", child.Name, envHost, e[envHost])
		}
	}
	t.Cleanup(func() {
		cleanupKubectl(t, env.Child, "delete", "daemonset", openstackCCM, "-n", "kube-system", "--ignore-not-found")
		cleanupKubectl(t, env.Child, "delete", "mutatingwebhookconfiguration", childConfigName, "--ignore-not-found")
	})
	slow := hangingListener(t)

	ns := "fleet-audit"
	okNS := "fleet-audit-ok"
	slowNS := "fleet-slow" // out of the audit's golden output: its error names a random port
	for _, name := range []string{ns, okNS, slowNS} {
		mustKubectl(t, env.Management, toYAML(t, object("v1", "Namespace", "", name)), "apply", "-f", "-")
	}
	ingressClass(t, "fleet-audit-haproxy", "haproxy.org/ingress-controller/haproxy", false)
	ingressClass(t, "fleet-audit-traefik", "traefik.io/ingress-controller", false)

	secrets := []*unstructured.Unstructured{
		kubeconfigSecret(t, okNS, "cluster-a", readFile(t, env.Child.Kubeconfig)),
		kubeconfigSecret(t, ns, "cluster-b", readFile(t, childB.Kubeconfig)),
		kubeconfigSecret(t, ns, "nowhere", kubeconfigFor(t, "https://127.0.0.1:1")),
		kubeconfigSecret(t, slowNS, "slow", kubeconfigFor(t, "https://"+slow)),
		kubeconfigSecret(t, ns, "empty", ""),
		kubeconfigSecret(t, ns, "garbage", "{{{ not a kubeconfig"),
	}
	mustKubectl(t, env.Management, toYAML(t, secrets...), "apply", "-f", "-")

	cpA := ownedBy(k0smotronCP(okNS, "a", "fleet-audit-haproxy"), "cluster-a")
	cpA.Object["spec"].(map[string]any)["manifests"] = []any{map[string]any{
		"name": childConfigName, "configMap": map[string]any{"name": "hcp-ingress-child-a", "optional": true},
	}}
	cpB := labelledCluster(k0smotronCP(ns, "b", "fleet-audit-haproxy"), "cluster-b")
	wrong := k0smotronCP(ns, "nowhere", "fleet-audit-haproxy")
	wrong.Object["spec"].(map[string]any)["ingress"].(map[string]any)["annotations"] = map[string]any{"haproxy.org/ssl-passthrough": "false"}
	mustKubectl(t, env.Management, toYAML(t,
		cpA, cpB, ownedBy(wrong, "nowhere"),
		ownedBy(k0smotronCP(slowNS, "slow", "fleet-audit-traefik"), "slow"),
		ownedBy(k0smotronCP(ns, "traefik", "fleet-audit-traefik"), "nowhere"),
		ownedBy(k0smotronCP(ns, "empty", "fleet-audit-haproxy"), "empty"),
		ownedBy(k0smotronCP(ns, "garbage", "fleet-audit-haproxy"), "garbage"),
		k0smotronCP(ns, "orphan", "fleet-audit-haproxy"), // no Cluster: no kubeconfig
		ownedBy(k0smotronCP(ns, "missing-secret", "fleet-audit-haproxy"), "missing-secret"),
	), "apply", "-f", "-")

	started := time.Now()
	f := startFleet(t, "fleet-repair", framework.FleetOptions{
		ChildWebhookURL: env.Webhook.URL,
		Repair:          true,
		Args:            []string{"--fleet-child-timeout", "5s", "--fleet-repair-interval", "2s"},
	})

	t.Run("each child with a CCM that ran before wiring gets its webhook configuration and an injected CCM, no manual step", func(t *testing.T) {
		for _, c := range []struct {
			child *framework.Cluster
			host  string
			cp    string
		}{{env.Child, "api.a.example.com", okNS + "/a"}, {childB, "api.b.example.com", ns + "/b"}} {
			waitRepaired(t, c.child, c.host, c.cp)
		}
		t.Logf("both children repaired %v after the fleet started", time.Since(started).Round(100*time.Millisecond))
		for _, reason := range []string{"ChildWebhookApplied", "CCMReadmitted"} {
			eventually(t, reason+" event on "+okNS+"/a", func() string {
				if len(events(t, env.Management, okNS, "a", reason)) == 0 {
					return "none yet"
				}
				return ""
			})
		}
	})

	t.Run("bad kubeconfig Secrets and a slow child each give an Event and a log line naming the object", func(t *testing.T) {
		for _, c := range []struct{ ns, name, reason string }{
			{ns, "nowhere", "ChildUnreachable"}, {slowNS, "slow", "ChildUnreachable"}, {ns, "empty", "KubeconfigInvalid"},
			{ns, "garbage", "KubeconfigInvalid"}, {ns, "orphan", "NoCluster"}, {ns, "missing-secret", "KubeconfigMissing"},
		} {
			eventually(t, c.reason+" event on "+c.name, func() string {
				if len(events(t, env.Management, c.ns, c.name, c.reason)) == 0 {
					return "none yet"
				}
				return ""
			})
			if !strings.Contains(f.Log(), `"controlPlane":"`+c.ns+"/"+c.name+`"`) {
				t.Errorf("no log line names %s/%s", c.ns, c.name)
			}
		}
	})

	t.Run("audit prints the fleet's state and exits 0 when nothing would change", func(t *testing.T) {
		stdout, stderr, err := webhookCLI(t, "audit", "--kubeconfig", env.Management.Kubeconfig, "--children", "-n", okNS)
		if err != nil {
			t.Fatalf("audit: %v\n%s%s", err, stdout, stderr)
		}
		golden.Check(t, "audit-ok.txt", stdout)
	})

	t.Run("audit prints the fleet's state and exits 3 when something would change", func(t *testing.T) {
		for _, c := range []struct{ format, file string }{{"table", "audit.txt"}, {"json", "audit.json"}} {
			stdout, stderr, err := webhookCLI(t, "audit", "--kubeconfig", env.Management.Kubeconfig, "--children", "-n", ns, "-o", c.format, "--child-timeout", "3s")
			if code := exitCode(err); code != 3 {
				t.Errorf("-o %s: exit %d, want 3\n%s%s", c.format, code, stdout, stderr)
			}
			golden.Check(t, c.file, stdout)
		}
	})

	t.Run("audit exits 1 on bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"audit", "--kubeconfig", filepath.Join(env.WorkDir, "no-such.kubeconfig")},
			{"audit", "--kubeconfig", env.Management.Kubeconfig, "-o", "xml"},
		} {
			_, stderr, err := webhookCLI(t, args...)
			if code := exitCode(err); code != 1 || stderr == "" {
				t.Errorf("%v: exit %d (want 1), stderr %q", args, code, stderr)
			}
		}
	})

	t.Run("a stopped child does not delay the repair of another", func(t *testing.T) {
		if err := childB.Stop(); err != nil {
			t.Fatal(err)
		}
		bStopped = true
		// Unwire child A behind the fleet's back: its CCM is recreated
		// without the variables.
		mustKubectl(t, env.Child, "", "delete", "mutatingwebhookconfiguration", childConfigName)
		mustKubectl(t, env.Child, "", "delete", "daemonset", openstackCCM, "-n", "kube-system")
		mustKubectl(t, env.Child, toYAML(t, ccm), "apply", "-f", "-")
		start := time.Now()
		waitRepaired(t, env.Child, "api.a.example.com", okNS+"/a")
		t.Logf("child A repaired again %v after it was unwired, while child B is down", time.Since(start).Round(100*time.Millisecond))
		eventually(t, "ChildUnreachable event on b", func() string {
			if len(events(t, env.Management, ns, "b", "ChildUnreachable")) == 0 {
				return "none yet"
			}
			return ""
		})
	})
}

// startFleet runs `serve --child-webhook-url` against the management
// cluster, with the serving certificate of the shared webhook (whose URL the
// ConfigMaps carry), until the test ends.
func startFleet(t *testing.T, name string, o framework.FleetOptions) *framework.Fleet {
	t.Helper()
	o.CertDir = filepath.Dir(env.Webhook.CAFile)
	f, err := framework.StartFleet(t.Context(), env.Paths, env.Management, filepath.Join(env.WorkDir, name), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.Stop()
		if t.Failed() {
			t.Logf("fleet log (%s):\n%s", f.LogFile, lastLines(f.Log(), 60))
		}
	})
	return f
}

// within is eventually with its own timeout.
func within(t *testing.T, timeout time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %s", what, timeout, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func crClient(t *testing.T, c *framework.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// getConfigMap returns the fleet ConfigMap of control plane name, nil if none.
func getConfigMap(t *testing.T, c client.Client, namespace, name string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := c.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: "hcp-ingress-child-" + name}, cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func waitConfigMap(t *testing.T, c client.Client, namespace, name string, check func(*corev1.ConfigMap) string) *corev1.ConfigMap {
	t.Helper()
	var cm *corev1.ConfigMap
	eventually(t, "ConfigMap of "+namespace+"/"+name, func() string {
		if cm = getConfigMap(t, c, namespace, name); cm == nil {
			return "not created"
		}
		return check(cm)
	})
	return cm
}

func rv(cm *corev1.ConfigMap) string {
	if cm == nil {
		return "<none>"
	}
	return cm.ResourceVersion
}

func ownerOf(cm *corev1.ConfigMap) string {
	if cm == nil {
		return "<no ConfigMap>"
	}
	var out []string
	for _, r := range cm.OwnerReferences {
		out = append(out, r.Kind+"/"+r.Name)
	}
	return strings.Join(out, ",")
}

// events returns the messages of Events with reason on object name in ns.
func events(t *testing.T, c *framework.Cluster, ns, name, reason string) []string {
	t.Helper()
	var list corev1.EventList
	if err := crClient(t, c).List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

// waitRepaired waits until child has the webhook configuration of control
// plane cp and its CCM has host and the readmission annotation.
func waitRepaired(t *testing.T, child *framework.Cluster, host, cp string) {
	t.Helper()
	eventually(t, child.Name+" repaired", func() string {
		res := kubectl(t, child, "", "get", "mutatingwebhookconfiguration", childConfigName, "-o", "jsonpath={.webhooks[0].clientConfig.url}")
		if res.ExitCode != 0 || !strings.HasSuffix(res.Stdout, "/mutate-workload/"+cp) {
			return "webhook configuration: " + res.Stdout + res.Stderr
		}
		ds := get(t, child, "daemonsets", "kube-system", openstackCCM)
		e, _ := containerEnv(t, ds, openstackCCM, false)
		if e[envHost] != host || e[envPort] != "443" {
			return "CCM env is " + mapString(e)
		}
		if ds.GetAnnotations()[readmittedAt] == "" {
			return "CCM lacks " + readmittedAt
		}
		return ""
	})
}

// kubeconfigSecret is a Cluster API kubeconfig Secret <cluster>-kubeconfig.
func kubeconfigSecret(t *testing.T, ns, cluster, kubeconfig string) *unstructured.Unstructured {
	t.Helper()
	s := object("v1", "Secret", ns, cluster+"-kubeconfig")
	s.SetLabels(map[string]string{"cluster.x-k8s.io/cluster-name": cluster})
	s.Object["type"] = "cluster.x-k8s.io/secret"
	s.Object["stringData"] = map[string]any{"value": kubeconfig}
	return s
}

// kubeconfigFor is an admin-looking kubeconfig for server.
func kubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ` + server + `
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: not-a-real-token
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`
}

// ownedBy makes cp owned by the Cluster API Cluster cluster.
func ownedBy(cp *unstructured.Unstructured, cluster string) *unstructured.Unstructured {
	cp.SetOwnerReferences(append(cp.GetOwnerReferences(), ownerRef(cluster)...))
	return cp
}

func ownerRef(cluster string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "cluster.x-k8s.io/v1beta1", Kind: "Cluster", Name: cluster, UID: types.UID("00000000-0000-0000-0000-" + pad12(cluster))}}
}

func pad12(s string) string {
	h := []byte("000000000000")
	for i := 0; i < len(s) && i < 12; i++ {
		h[i] = "0123456789abcdef"[s[i]%16]
	}
	return string(h)
}

// labelledCluster names cp's Cluster through the cluster-name label only.
func labelledCluster(cp *unstructured.Unstructured, cluster string) *unstructured.Unstructured {
	labels := cp.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["cluster.x-k8s.io/cluster-name"] = cluster
	cp.SetLabels(labels)
	return cp
}

// hangingListener accepts connections and never answers: a child whose API
// server is slow. It returns host:port.
func hangingListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }
