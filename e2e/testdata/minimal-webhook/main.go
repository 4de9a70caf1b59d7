// Command minimal-webhook is the memory reference of TestPeakRSS: the least
// a webhook built on the libraries hcp-ingress-webhook must use does. A
// controller-runtime manager with a cache of IngressClasses, its webhook
// server (TLS 1.2+, HTTP/1.1) with one path whose controller-runtime
// admission.Webhook allows every object with a fixed patch, and /metrics
// behind controller-runtime's authentication and authorization filter. It
// is built by the test (go build ./e2e/testdata/minimal-webhook), never
// shipped.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"

	"gomodules.xyz/jsonpatch/v2"
	networkingv1 "k8s.io/api/networking/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func main() {
	// --kubeconfig is controller-runtime's own flag (ctrl.GetConfig).
	port := flag.Int("port", 9443, "webhook port")
	certDir := flag.String("cert-dir", "", "tls.crt and tls.key")
	metrics := flag.String("metrics-bind-address", "0", "metrics address")
	probes := flag.String("health-probe-bind-address", "0", "probe address")
	flag.Parse()
	if err := run(*port, *certDir, *metrics, *probes); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(port int, certDir, metrics, probes string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion, c.NextProtos = tls.VersionTLS12, []string{"http/1.1"} }}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: metrics, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization, TLSOpts: tlsOpts},
		HealthProbeBindAddress: probes,
		WebhookServer:          webhook.NewServer(webhook.Options{Port: port, CertDir: certDir, TLSOpts: tlsOpts}),
	})
	if err != nil {
		return err
	}
	if _, err := mgr.GetCache().GetInformer(context.Background(), &networkingv1.IngressClass{}); err != nil {
		return err
	}
	patch := []jsonpatch.Operation{{Operation: "add", Path: "/metadata/labels", Value: map[string]string{"reference": "patched"}}}
	mgr.GetWebhookServer().Register("/mutate", &admission.Webhook{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response { return admission.Patched("", patch...) })})
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
