package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/version"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/webhook"
)

func runServe(args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var o webhook.Options
	fs.StringVar(&o.BindAddress, "bind-address", "0.0.0.0", "address the HTTPS webhook server listens on")
	fs.IntVar(&o.Port, "port", 9443, "port of the HTTPS webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key, reloaded when they change (self-managed: where the certificate in use is written)")
	fs.StringVar(&o.Certs.Mode, "cert-mode", webhook.CertModeFiles, "files: tls.crt/tls.key of --cert-dir (cert-manager or any source); self-managed: the webhook makes, renews and rotates its own CA and certificate")
	fs.StringVar(&o.Certs.Secret, "cert-secret", "hcp-ingress-system/hcp-ingress-webhook-certs", "self-managed: NAMESPACE/NAME of the Secret holding the CA and serving certificate (created if missing)")
	fs.StringSliceVar(&o.Certs.DNSNames, "cert-dns-names", []string{"hcp-ingress-webhook.hcp-ingress-system.svc"}, "self-managed: the serving certificate's DNS names, the ones API servers dial")
	fs.StringVar(&o.Certs.WebhookConfigName, "webhook-config-name", "hcp-ingress-webhook", "self-managed: the MutatingWebhookConfiguration and ValidatingWebhookConfiguration whose caBundle is kept current (files: where expiry Events go without POD_NAME)")
	fs.DurationVar(&o.Certs.Schedule.CertLifetime, "cert-lifetime", certs.DefaultCertLifetime, "self-managed: serving certificate lifetime; renewed once two thirds have passed")
	fs.DurationVar(&o.Certs.Schedule.CALifetime, "ca-lifetime", certs.DefaultCALifetime, "self-managed: CA lifetime; the next CA is trusted from two thirds on and signs from five sixths on")
	fs.StringVar(&o.PolicyFile, "policy-file", "", "policy document, reloaded when it changes")
	fs.StringVar(&o.PolicyConfigMap, "policy-configmap", "", "NAMESPACE/NAME of a ConfigMap whose key policy.yaml is the policy, watched")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster to read IngressClasses and control planes from (default: in-cluster config)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0" disables)`)
	fs.BoolVar(&o.Routes, "routes", false, "keep a passthrough route (Traefik IngressRouteTCP) for every k0smotron Ingress whose controller needs one")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", true, "serve /metrics over HTTPS with authentication (TokenReview) and authorization (SubjectAccessReview); false: plain HTTP")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect one replica for fleet wiring and certificate rotation (admission runs on every replica)")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace, else hcp-ingress-system)")
	fs.StringVar(&o.ChildWebhookURL, "child-webhook-url", "", "base URL child API servers dial (https://...); enables fleet wiring: a ConfigMap hcp-ingress-child-<name> per control plane with ingress")
	fs.BoolVar(&o.FleetRepair, "fleet-repair", false, "also wire and repair children through their Cluster API kubeconfig Secrets (needs Secret get)")
	fs.DurationVar(&o.FleetChildTimeout, "fleet-child-timeout", 20*time.Second, "time allowed for one repair pass against one child")
	fs.DurationVar(&o.FleetRepairInterval, "fleet-repair-interval", 5*time.Minute, "how often a repaired child is looked at again")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}

	var handler slog.Handler = slog.NewJSONHandler(stderr, nil)
	if *logFormat == "text" {
		handler = slog.NewTextHandler(stderr, nil)
	}
	log := logr.FromSlogHandler(handler)
	ctrllog.SetLogger(log)
	o.Log = log
	o.Namespace = os.Getenv("POD_NAMESPACE")
	o.Certs.PodName = os.Getenv("POD_NAME")
	o.Certs.PodUID = types.UID(os.Getenv("POD_UID"))

	cfg, err := clusterConfig(*kubeconfig)
	if err != nil {
		return err
	}
	if cfg == nil {
		log.Info("no kubeconfig and not in a cluster: IngressClass lookup and management-hosted control planes are off")
	}
	o.RestConfig = cfg

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("starting", "version", version.String())
	return webhook.Serve(ctx, o)
}

// clusterConfig returns the config of --kubeconfig, else the in-cluster
// config, else nil: serve works without an API server when given a policy
// file.
func clusterConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, nil
	}
	cfg.UserAgent = "hcp-ingress-webhook/" + version.Version
	return cfg, nil
}
