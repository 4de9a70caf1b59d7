package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// `helm install` with no values into the API server, then the real webhook
// binary with the arguments the chart rendered into its Deployment (no
// kubelet runs pods here), under the chart's ServiceAccount (impersonated,
// so the chart's RBAC is what it gets): it must make its certificate and
// point the webhook configurations the chart created at the Service with a
// caBundle that verifies the certificate it serves.
func TestChartInstall(t *testing.T) {
	cases := map[string]struct {
		namespace, values string
	}{
		"no values": {namespace: "chart-install"},
		// The same with the webhook configurations alone to keep current.
		"no fleet wiring": {namespace: "chart-install-no-fleet", values: "fleet:\n  enabled: false\n"},
		// The routes controller's Ingress cache syncs under <fullname>-routes.
		"passthrough routes": {namespace: "chart-install-routes", values: "routes:\n  enabled: true\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { installAndServe(t, tc.namespace, tc.values) })
	}
}

func installAndServe(t *testing.T, ns, values string) {
	ensureNamespace(t, ns, map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"hcp-ingress.io/skip":                "true",
	})
	args := []string{"install", releaseName, chartDir, "--namespace", ns}
	if values != "" {
		args = append(args, "--values", "-")
	}
	res := helm(t, values, args...)
	if err := res.err(); err != nil {
		t.Fatal(err)
	}
	// The other tests dry-run objects of the same cluster-scoped names.
	t.Cleanup(func() {
		if err := helmContext(t, context.Background(), "", "uninstall", releaseName, "--namespace", ns).err(); err != nil {
			t.Error(err)
		}
	})
	for _, want := range []string{"STATUS: deployed", "What to check next", "secret " + releaseName + "-certs", "pod-security.kubernetes.io/enforce=restricted"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("helm install output (with NOTES.txt) lacks %q:\n%s", want, res.stdout)
		}
	}
	for _, o := range []string{"deployment/" + releaseName, "service/" + releaseName, "configmap/" + releaseName + "-policy",
		"mutatingwebhookconfiguration/" + releaseName, "validatingwebhookconfiguration/" + releaseName} {
		mustKubectl(t, "", "get", "-n", ns, o)
	}

	var deployment unstructured.Unstructured
	if err := json.Unmarshal([]byte(mustKubectl(t, "", "get", "-n", ns, "deployment", releaseName, "-o", "json").Stdout), &deployment.Object); err != nil {
		t.Fatal(err)
	}
	rendered := containerArgs(t, &deployment)
	help, _ := exec.CommandContext(t.Context(), paths.Webhook, "serve", "--help").CombinedOutput()
	for _, a := range rendered[1:] {
		// A boolean flag is listed as --flag[=true|false] when its
		// default is true.
		if flag, _, _ := strings.Cut(a, "="); !strings.Contains(string(help), flag+" ") && !strings.Contains(string(help), flag+"[=") {
			// Integration: a flag of a feature on another branch.
			t.Skipf("needs serve %s", flag)
		}
	}
	ports, err := framework.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args = localArgs(t, rendered, map[string]string{
		"--bind-address":              "127.0.0.1",
		"--port":                      strconv.Itoa(ports[0]),
		"--metrics-bind-address":      "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(ports[2]),
		"--cert-dir":                  filepath.Join(dir, "tls"), // the pod's emptyDir
	})
	args = append(args, "--kubeconfig", serviceAccountKubeconfig(t, dir, ns), "--log-format", "text")
	t.Logf("hcp-ingress-webhook %s", strings.Join(args, " "))

	logFile := filepath.Join(dir, "webhook.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(paths.Webhook, args...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+ns, "POD_NAME="+releaseName+"-local", "POD_UID=00000000-0000-0000-0000-000000000001")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			_ = err // the exit status of an interrupted serve says nothing
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			data, _ := os.ReadFile(logFile)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			t.Logf("webhook log (last 40 lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})

	service := releaseName + "." + ns + ".svc"
	var configs []*unstructured.Unstructured
	deadline := time.Now().Add(90 * time.Second)
	for {
		configs = webhookConfigurations(t)
		if allHaveCABundle(configs) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the webhook exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no caBundle in the webhook configurations within 90s:\n%s", toYAML(t, configs...))
		}
		time.Sleep(500 * time.Millisecond)
	}

	hookPaths := map[string]string{
		"controlplane.hcp-ingress.io": "/mutate-controlplane",
		"policy.hcp-ingress.io":       "/validate-policy",
	}
	for _, c := range configs {
		hooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
		for _, h := range hooks {
			hook := h.(map[string]any)
			name := hook["name"].(string)
			t.Run(c.GetKind()+" "+name+" calls the Service and trusts the certificate the webhook serves", func(t *testing.T) {
				cc := hook["clientConfig"].(map[string]any)
				svc, _ := cc["service"].(map[string]any)
				want := map[string]any{"name": releaseName, "namespace": ns, "path": hookPaths[name], "port": int64(443)}
				if fmt.Sprint(svc) != fmt.Sprint(want) || cc["url"] != nil {
					t.Errorf("clientConfig %v, want service %v", cc, want)
				}
				pemBundle, err := base64.StdEncoding.DecodeString(cc["caBundle"].(string))
				if err != nil {
					t.Fatalf("caBundle: %v", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pemBundle) {
					t.Fatalf("caBundle holds no PEM certificate:\n%s", pemBundle)
				}
				// What the API server does: dial the Service name, verify
				// against the caBundle.
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(ports[0]),
					&tls.Config{ServerName: service, RootCAs: pool, MinVersion: tls.VersionTLS12})
				if err != nil {
					t.Fatalf("TLS to the webhook as %s with the caBundle: %v", service, err)
				}
				leaf := conn.ConnectionState().PeerCertificates[0]
				_ = conn.Close()
				t.Logf("serving certificate %v, issued by %q, valid until %s", leaf.DNSNames, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339))
			})
		}
	}

	t.Run("the Secret holds the CA and the serving certificate", func(t *testing.T) {
		var secret unstructured.Unstructured
		out := mustKubectl(t, "", "get", "-n", ns, "secret", releaseName+"-certs", "-o", "json").Stdout
		if err := json.Unmarshal([]byte(out), &secret.Object); err != nil {
			t.Fatal(err)
		}
		data, _, _ := unstructured.NestedStringMap(secret.Object, "data")
		for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if data[key] == "" {
				t.Errorf("Secret %s-certs has no %s (keys %v)", releaseName, key, keysOf(data))
			}
		}
	})

	t.Run("it becomes ready under the chart's RBAC", func(t *testing.T) {
		url := "http://127.0.0.1:" + strconv.Itoa(ports[2]) + "/readyz?verbose"
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(url)
			if err == nil {
				body := new(bytes.Buffer)
				_, _ = body.ReadFrom(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz: %s\n%s", resp.Status, body)
				}
			} else if time.Now().After(deadline) {
				t.Fatalf("/readyz: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// localArgs replaces the values of the flags in set (--flag=value form, as
// the chart renders them); every flag in set must be present.
func localArgs(t *testing.T, args []string, set map[string]string) []string {
	t.Helper()
	out := make([]string, 0, len(args))
	seen := map[string]bool{}
	for _, a := range args {
		flag, _, hasValue := strings.Cut(a, "=")
		if value, ok := set[flag]; ok && hasValue {
			a = flag + "=" + value
			seen[flag] = true
		}
		out = append(out, a)
	}
	for flag := range set {
		if !seen[flag] {
			t.Fatalf("the chart's Deployment has no %s=...: %v", flag, args)
		}
	}
	if len(out) == 0 || out[0] != "serve" {
		t.Fatalf("the chart's Deployment does not run serve: %v", args)
	}
	return out
}

// serviceAccountKubeconfig writes the cluster's admin kubeconfig with
// impersonation of the chart's ServiceAccount: the webhook then has exactly
// the permissions the chart grants it.
func serviceAccountKubeconfig(t *testing.T, dir, ns string) string {
	t.Helper()
	data, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	users, _ := config["users"].([]any)
	if len(users) == 0 {
		t.Fatalf("%s has no users", cluster.Kubeconfig)
	}
	for _, u := range users {
		user := u.(map[string]any)["user"].(map[string]any)
		user["as"] = "system:serviceaccount:" + ns + ":" + releaseName
		user["as-groups"] = []any{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "service-account.kubeconfig")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func webhookConfigurations(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(mustKubectl(t, "", "get", kind, releaseName, "-o", "json").Stdout), &u.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func allHaveCABundle(configs []*unstructured.Unstructured) bool {
	for _, c := range configs {
		hooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
		if len(hooks) == 0 {
			return false
		}
		for _, h := range hooks {
			if bundle, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle"); bundle == "" {
				return false
			}
		}
	}
	return true
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
