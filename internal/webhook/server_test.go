package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// freeAddress returns a loopback address with a free port.
func freeAddress(t testing.TB) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

type runningServer struct {
	base, probes, metrics string
	client                *http.Client
	caPool                *x509.CertPool
	policyFile            string
}

// startServer runs Serve without an API server, with a policy file (the
// defaults plus policyExtra, YAML lines of the Policy), and waits until
// /readyz answers.
func startServer(t testing.TB, policyExtra string) *runningServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewServingDir(filepath.Join(dir, "certs"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\n"+policyExtra), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port := freeAddress(t)
	_, probePort := freeAddress(t)
	_, metricsPort := freeAddress(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{
			BindAddress: host, Port: port, CertDir: filepath.Join(dir, "certs"),
			PolicyFile:             policyFile,
			HealthProbeBindAddress: fmt.Sprintf("127.0.0.1:%d", probePort),
			MetricsBindAddress:     fmt.Sprintf("127.0.0.1:%d", metricsPort),
			Log:                    logr.Discard(),
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not shut down")
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	s := &runningServer{
		base:       fmt.Sprintf("https://%s:%d", host, port),
		probes:     fmt.Sprintf("http://127.0.0.1:%d", probePort),
		metrics:    fmt.Sprintf("http://127.0.0.1:%d", metricsPort),
		caPool:     pool,
		policyFile: policyFile,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 64,
		}},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.probes + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reviewBody(t testing.TB, object string) []byte {
	t.Helper()
	return reviewBodyIn(t, "tenants", object)
}

// reviewBodyIn is a CREATE review of object in namespace.
func reviewBodyIn(t testing.TB, namespace, object string) []byte {
	t.Helper()
	req := request(admissionv1.Create, namespace, object).AdmissionRequest
	review := admissionv1.AdmissionReview{Request: &req}
	review.APIVersion, review.Kind = "admission.k8s.io/v1", "AdmissionReview"
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (s *runningServer) admit(t testing.TB, path string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := s.client.Post(s.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &out); err != nil || out.Response == nil {
		t.Fatalf("bad review response %d: %s", resp.StatusCode, raw)
	}
	return out.Response
}

func TestServeWithoutAPIServer(t *testing.T) {
	s := startServer(t, "")

	resp := s.admit(t, PathControlPlane, reviewBody(t, haproxyControlPlane))
	if !resp.Allowed || !strings.Contains(string(resp.Patch), `"haproxy.org/ssl-passthrough":"true"`) {
		t.Fatalf("no IngressClass readable: want the guessed HAProxy Technologies rule, got %s %q", resp.Patch, resp.Warnings)
	}
	if resp.AuditAnnotations["policy-generation"] != "1" {
		t.Errorf("audit annotations: %v", resp.AuditAnnotations)
	}

	t.Run("TLS below 1.2 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), &tls.Config{
			RootCAs: s.caPool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
		})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("HTTP/2 is not offered on the admission port", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), &tls.Config{
			RootCAs: s.caPool, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
			t.Fatalf("negotiated %q; the admission port must speak HTTP/1.1 only", p)
		}
	})

	t.Run("policy file reloads without restart", func(t *testing.T) {
		policy := "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\ningressClasses:\n  haproxy:\n    annotations:\n      example.com/passthrough: \"yes\"\n"
		if err := os.WriteFile(s.policyFile, []byte(policy), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return strings.Contains(string(s.admit(t, PathControlPlane, reviewBody(t, haproxyControlPlane)).Patch), `"example.com/passthrough":"yes"`)
		})
	})

	t.Run("metrics count what was done", func(t *testing.T) {
		resp, err := http.Get(s.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`hcp_ingress_admissions_total{outcome="patched",target="controlplane"}`,
			"hcp_ingress_policy_generation 2",
			"hcp_ingress_certificate_expiry_timestamp_seconds",
			"controller_runtime_webhook_requests_total",
		} {
			if !strings.Contains(string(text), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("readyz details name the policy generation", func(t *testing.T) {
		resp, err := http.Get(s.probes + "/readyz?verbose")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(text), "generation 2") {
			t.Errorf("/readyz?verbose: %d %s", resp.StatusCode, text)
		}
	})
}

// controller-runtime logs through a global logger; tests keep it quiet.
func init() { ctrllog.SetLogger(logr.Discard()) }
