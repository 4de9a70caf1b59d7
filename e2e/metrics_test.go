package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// TestMetricsSecureByDefault: with no metrics flag, /metrics is HTTPS and
// answers only a bearer token that the API server authenticates
// (TokenReview) and authorizes for GET /metrics (SubjectAccessReview), which
// the manifests' hcp-ingress-webhook-metrics-reader ClusterRole grants.
func TestMetricsSecureByDefault(t *testing.T) {
	requireWebhook(t)
	w := startWebhook(t, "webhook", framework.WebhookOptions{
		Kubeconfig:    env.Management.Kubeconfig,
		PolicyFile:    env.PolicyFile,
		MetricsSecure: true,
	})
	if !strings.HasPrefix(w.MetricsURL, "https://") {
		t.Fatalf("MetricsURL = %s, want https", w.MetricsURL)
	}

	ns := newNamespace(t, env.Management, "metrics", nil)
	mustKubectl(t, env.Management, "", "-n", ns, "create", "serviceaccount", "scraper")
	mustKubectl(t, env.Management, "", "-n", ns, "create", "serviceaccount", "stranger")
	mustKubectl(t, env.Management, "", "create", "clusterrole", ns+"-metrics-reader", "--verb=get", "--non-resource-url=/metrics")
	t.Cleanup(func() {
		cleanupKubectl(t, env.Management, "delete", "clusterrole", ns+"-metrics-reader", "--ignore-not-found")
	})
	mustKubectl(t, env.Management, "", "create", "clusterrolebinding", ns+"-scraper", "--clusterrole="+ns+"-metrics-reader", "--serviceaccount="+ns+":scraper")
	t.Cleanup(func() {
		cleanupKubectl(t, env.Management, "delete", "clusterrolebinding", ns+"-scraper", "--ignore-not-found")
	})
	token := func(sa string) string {
		return strings.TrimSpace(mustKubectl(t, env.Management, "", "-n", ns, "create", "token", sa).Stdout)
	}
	scraper, stranger := token("scraper"), token("stranger")
	// The API server's RBAC authorizer sees the new binding a moment later;
	// a denial before then would be cached by the metrics filter.
	eventually(t, "the scraper may get /metrics", func() string {
		res := kubectl(t, env.Management, "", "auth", "can-i", "get", "/metrics", "--as=system:serviceaccount:"+ns+":scraper")
		if res.ExitCode != 0 {
			return fmt.Sprintf("kubectl auth can-i: exit %d: %s %s", res.ExitCode, res.Stdout, res.Stderr)
		}
		return ""
	})

	// The metrics server's certificate is self-signed: the point here is who
	// may read, not the chain (a ServiceMonitor sets its own tlsConfig).
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
	}}
	get := func(bearer string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, w.MetricsURL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  []int
	}{
		{"no token is unauthenticated", "", []int{http.StatusUnauthorized}},
		// The TokenReview answers with an error for a malformed token, which
		// controller-runtime's filter reports as 500: refused all the same.
		{"a token the API server rejects", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"a ServiceAccount without the reader role", stranger, []int{http.StatusForbidden}},
		{"a ServiceAccount bound to the reader ClusterRole", scraper, []int{http.StatusOK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.token)
			if !slices.Contains(tc.want, code) {
				t.Fatalf("status %d, want one of %v: %.200s", code, tc.want, body)
			}
			if code != http.StatusOK && strings.Contains(body, "hcp_ingress_") {
				t.Fatalf("a refused request got metrics:\n%.300s", body)
			}
			if code == http.StatusOK && !strings.Contains(body, "hcp_ingress_policy_generation") {
				t.Errorf("/metrics lacks hcp_ingress_policy_generation:\n%.500s", body)
			}
		})
	}

	t.Run("plain HTTP is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + strings.TrimPrefix(w.MetricsURL, "https://") + "/metrics")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("plain HTTP /metrics answered 200")
			}
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(w.MetricsURL, "https://"), &tls.Config{
			InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, //nolint:gosec // the test
		})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
}

// TestReadinessNamesEveryView: /readyz?verbose lists each view the webhook
// decides from, so that an operator sees which one holds readiness back.
func TestReadinessNamesEveryView(t *testing.T) {
	requireWebhook(t)
	resp, err := http.Get(env.Webhook.ProbeURL + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s\n%s", resp.Status, body)
	}
	for _, check := range []string{"[+]policy", "[+]webhook-server ok", "[+]ingressclasses ok", "[+]controlplanes ok"} {
		if !strings.Contains(string(body), check) {
			t.Errorf("/readyz?verbose lacks %q:\n%s", check, body)
		}
	}
}
