package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The HTTPS paths of PRODUCT.md.
const (
	PathControlPlane         = "/mutate-controlplane"
	PathWorkload             = "/mutate-workload"
	PathWorkloadControlPlane = "/mutate-workload/{namespace}/{name}"
	PathValidatePolicy       = "/validate-policy"
)

// Options configure Serve; they mirror the flags of `serve`.
type Options struct {
	BindAddress string
	Port        int
	CertDir     string
	// PolicyFile and PolicyConfigMap (NAMESPACE/NAME) are exclusive; with
	// neither, the embedded default policy applies.
	PolicyFile      string
	PolicyConfigMap string
	// RestConfig is nil when no API server is configured: IngressClass lookup
	// and management-hosted control planes are then unavailable.
	RestConfig             *rest.Config
	MetricsBindAddress     string // "0" disables
	HealthProbeBindAddress string // "0" disables
	// Namespace is the webhook's own namespace, never mutated.
	Namespace string
	Log       logr.Logger
}

// Serve runs the admission server until ctx ends, then shuts down
// gracefully, finishing requests in flight.
func Serve(ctx context.Context, o Options) error {
	log := o.Log
	metrics := RegisteredMetrics()
	store := NewPolicyStore(metrics)
	group, ctx := errgroup.WithContext(ctx)

	if o.PolicyFile != "" && o.PolicyConfigMap != "" {
		return errors.New("--policy-file and --policy-configmap are exclusive")
	}
	if o.PolicyConfigMap != "" && o.RestConfig == nil {
		return errors.New("--policy-configmap needs an API server (--kubeconfig or in-cluster config)")
	}

	// The policy first: an invalid --policy-file is the error to report.
	switch {
	case o.PolicyFile != "":
		file := &PolicyFile{Path: o.PolicyFile, Store: store, Log: log.WithName("policy")}
		if err := file.Load(); err != nil {
			return err // an invalid --policy-file at start is fatal
		}
		group.Go(func() error { return file.Run(ctx) })
	case o.PolicyConfigMap == "":
		store.Set(rules.Default(), EmbeddedSource)
	}

	// Certificate: loaded now (fatal if missing), reloaded when it changes.
	certs, err := certwatcher.New(filepath.Join(o.CertDir, "tls.crt"), filepath.Join(o.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("serving certificate in %s: %w", o.CertDir, err)
	}
	certs.RegisterCallback(metrics.certificateLoaded)
	group.Go(func() error { return certs.Start(ctx) })

	var (
		classes       *IngressClassCache
		controlPlanes ControlPlaneLookup
		configMap     *PolicyConfigMap
	)
	if o.RestConfig != nil {
		clients, err := kubernetes.NewForConfig(o.RestConfig)
		if err != nil {
			return err
		}
		factory := informers.NewSharedInformerFactory(clients, 0)
		classes = NewIngressClassCache(factory)
		factory.Start(ctx.Done())
		cp, err := NewControlPlaneCache(ctx, o.RestConfig, log.WithName("controlplanes"))
		if err != nil {
			return err
		}
		controlPlanes = cp
		if o.PolicyConfigMap != "" {
			if configMap, err = NewPolicyConfigMap(o.PolicyConfigMap, clients, store, log.WithName("policy")); err != nil {
				return err
			}
			group.Go(func() error { return configMap.Run(ctx) })
		}
	}

	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: o.BindAddress,
		Port: o.Port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.GetCertificate = certs.GetCertificate
		}},
	})
	classView := ClassSource(classes.View)
	admitter := func(target mutate.Target, cps ControlPlaneLookup) *Admitter {
		return &Admitter{Target: target, Policies: store, Classes: classView, ControlPlanes: cps, OwnNamespace: o.Namespace, Metrics: metrics}
	}
	srv.Register(PathControlPlane, &admission.Webhook{Handler: admitter(mutate.TargetControlPlane, nil)})
	srv.Register(PathWorkload, &admission.Webhook{Handler: admitter(mutate.TargetWorkload, nil)})
	srv.Register(PathWorkloadControlPlane, &admission.Webhook{
		Handler:         admitter(mutate.TargetWorkload, nonNilLookup(controlPlanes)),
		WithContextFunc: withControlPlaneFromPath,
	})
	srv.Register(PathValidatePolicy, &admission.Webhook{Handler: &PolicyValidator{}})
	group.Go(func() error { return srv.Start(ctx) })

	readiness := &Readiness{Policies: store, WebhookStarted: srv.StartedChecker(), ConfigMap: configMap}
	probes := http.NewServeMux()
	probes.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	probes.Handle("/readyz", readiness)
	if err := serveHTTP(ctx, group, o.HealthProbeBindAddress, probes, log.WithName("probes")); err != nil {
		return err
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	if err := serveHTTP(ctx, group, o.MetricsBindAddress, metricsMux, log.WithName("metrics")); err != nil {
		return err
	}
	log.Info("serving", "address", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.Port)),
		"cluster", o.RestConfig != nil, "policyFile", o.PolicyFile, "policyConfigMap", o.PolicyConfigMap)
	return group.Wait()
}

// nonNilLookup keeps a typed nil out of the interface.
func nonNilLookup(l ControlPlaneLookup) ControlPlaneLookup {
	if cp, ok := l.(*ControlPlaneCache); ok && cp == nil {
		return nil
	}
	return l
}

// serveHTTP serves handler on address until ctx ends; "0" or "" disables it.
func serveHTTP(ctx context.Context, group *errgroup.Group, address string, handler http.Handler, log logr.Logger) error {
	if address == "" || address == "0" {
		return nil
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", address, err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	group.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return server.Shutdown(shutdown)
	})
	group.Go(func() error {
		log.Info("listening", "address", listener.Addr().String())
		if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// Readiness is /readyz: ready once a policy and the serving certificate are
// loaded and the webhook server answers TLS. `?verbose` lists every check and
// the policy in force with its generation and the last load error.
type Readiness struct {
	Policies       *PolicyStore
	WebhookStarted func(*http.Request) error
	ConfigMap      *PolicyConfigMap
}

func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var lines []string
	ready := true
	check := func(name string, err error) {
		if err != nil {
			ready = false
			lines = append(lines, fmt.Sprintf("[-]%s failed: %v", name, err))
			return
		}
		lines = append(lines, fmt.Sprintf("[+]%s ok", name))
	}
	state := r.Policies.Current()
	failure := r.Policies.LastFailure()
	switch {
	case state != nil:
		check(fmt.Sprintf("policy (generation %d, %s)", state.Generation, state.Source), nil)
	case failure != nil:
		check("policy", fmt.Errorf("%s did not load: %v", failure.Source, failure.Err))
	default:
		check("policy", errors.New("no policy loaded yet"))
	}
	if state != nil && failure != nil {
		lines = append(lines, fmt.Sprintf("[!]last policy load failed (%s, %s), still serving generation %d: %v",
			failure.Source, failure.At.UTC().Format(time.RFC3339), state.Generation, failure.Err))
	}
	check("webhook-server", r.WebhookStarted(req))
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if !ready || req.URL.Query().Has("verbose") {
		_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	if ready {
		_, _ = fmt.Fprintln(w, "ok")
	}
}
