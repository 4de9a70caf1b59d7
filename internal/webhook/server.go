package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/fleet"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/routes"
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
	// MetricsSecure serves /metrics over HTTPS behind controller-runtime's
	// authentication and authorization filter (TokenReview and
	// SubjectAccessReview); false serves plain HTTP.
	MetricsSecure bool
	// LeaderElect elects one replica for the work only one may do (fleet
	// wiring, certificate rotation); admission runs on every replica.
	LeaderElect             bool
	LeaderElectionNamespace string
	// Routes keeps a passthrough route (Traefik's IngressRouteTCP, ...) for
	// every k0smotron Ingress whose controller's rule names a route kind
	// (serve --routes); it needs an API server.
	Routes bool
	// ChildWebhookURL turns fleet wiring on (--child-webhook-url): the base
	// URL child API servers dial. FleetRepair also repairs children through
	// their kubeconfig Secrets (--fleet-repair). See internal/fleet.
	ChildWebhookURL string
	FleetRepair     bool
	// FleetChildTimeout and FleetRepairInterval tune repair; 0: defaults.
	FleetChildTimeout   time.Duration
	FleetRepairInterval time.Duration
	// Namespace is the webhook's own namespace, never mutated.
	Namespace string
	Log       logr.Logger
	// Certs are the certificate flags (--cert-mode and the self-managed
	// ones); the directory is CertDir.
	Certs CertOptions
}

// LeaderElectionID names the Lease the replicas elect a leader with.
const LeaderElectionID = "hcp-ingress-webhook"

// Serve runs the admission server until ctx ends, then shuts down
// gracefully, finishing requests in flight.
//
// With an API server it runs on a controller-runtime manager: one cache
// (IngressClasses, control planes trimmed by controlplanes.Transform) started
// with the server, readiness that waits for it, and leader election for what
// only one replica may do. Without one (serve --policy-file on a laptop or in
// a child cluster before its API is reachable) the same runnables run on
// their own.
func Serve(ctx context.Context, o Options) error {
	log := o.Log
	metrics := RegisteredMetrics()
	store := NewPolicyStore(metrics)
	var runnables []manager.Runnable

	if o.PolicyFile != "" && o.PolicyConfigMap != "" {
		return errors.New("--policy-file and --policy-configmap are exclusive")
	}
	if (o.ChildWebhookURL != "" || o.FleetRepair) && o.RestConfig == nil {
		return errors.New("--child-webhook-url and --fleet-repair need an API server (--kubeconfig or in-cluster config)")
	}
	if o.PolicyConfigMap != "" && o.RestConfig == nil {
		return errors.New("--policy-configmap needs an API server (--kubeconfig or in-cluster config)")
	}
	if o.Routes && o.RestConfig == nil {
		return errors.New("--routes needs an API server (--kubeconfig or in-cluster config)")
	}

	// The policy first: an invalid --policy-file is the error to report.
	switch {
	case o.PolicyFile != "":
		file := &PolicyFile{Path: o.PolicyFile, Store: store, Log: log.WithName("policy")}
		if err := file.Load(); err != nil {
			return err // an invalid --policy-file at start is fatal
		}
		runnables = append(runnables, everyReplica(file.Run))
	case o.PolicyConfigMap == "":
		store.Set(rules.Default(), EmbeddedSource)
	}

	var (
		certSource    certs.Source
		certRunnable  manager.Runnable
		mgr           manager.Manager
		classes       *IngressClassCache
		controlPlanes ControlPlaneLookup
		checks        []ReadinessCheck
		err           error
	)
	if o.RestConfig != nil {
		// ConfigMaps only with the fleet label (one per control plane).
		cacheOptions := cache.Options{DefaultTransform: controlplanes.Transform, ByObject: fleet.CacheByObject()}
		if o.Routes {
			// Only the Ingresses k0smotron makes.
			maps.Copy(cacheOptions.ByObject, routes.CacheByObject())
		}
		mgr, err = ctrl.NewManager(managerConfig(o.RestConfig), manager.Options{
			Scheme: clientgoscheme.Scheme,
			Logger: log,
			// One cache for everything the webhook reads; control planes are
			// trimmed to what is read (a k0sConfig is ~10 KB each).
			Cache: cacheOptions,
			// Metrics and probes are served below, the same way with or
			// without a cluster.
			Metrics:                       metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress:        "0",
			LeaderElection:                o.LeaderElect && o.needsLeader(),
			LeaderElectionID:              LeaderElectionID,
			LeaderElectionNamespace:       o.leaderElectionNamespace(),
			LeaderElectionReleaseOnCancel: true,
		})
		if err != nil {
			return fmt.Errorf("creating the controller manager: %w", err)
		}
		classes = NewIngressClassCache(mgr.GetCache())
		watcher := controlplanes.NewWatcher(mgr.GetCache(), mgr.GetRESTMapper(), log.WithName("controlplanes"))
		controlPlanes = &ControlPlaneCache{Watcher: watcher}
		runnables = append(runnables, classes, watcher)
		if o.Routes {
			if err := routes.Setup(mgr, routes.Options{
				Policy:        store.Policy,
				Classes:       classes.View,
				ControlPlanes: watcher,
				Log:           log.WithName("routes"),
			}); err != nil {
				return fmt.Errorf("routes controller: %w", err)
			}
		}
		checks = append(checks,
			ReadinessCheck{Name: "ingressclasses", Check: classes.Synced},
			ReadinessCheck{Name: "controlplanes", Check: watcher.Synced})
		err = fleet.Setup(mgr, watcher, fleet.Options{
			ChildWebhookURL: o.ChildWebhookURL,
			Repair:          o.FleetRepair,
			// The serving certificate's source is made below; the fleet
			// asks for its CA bundle only once the manager runs.
			CABundle: func() []byte { return certSource.CABundle() },
			Policy: func() *rules.Policy {
				if state := store.Current(); state != nil {
					return state.Policy
				}
				return nil
			},
			Log:            log.WithName("fleet"),
			Recorder:       mgr.GetEventRecorderFor("hcp-ingress-webhook"),
			ChildTimeout:   o.FleetChildTimeout,
			RepairInterval: o.FleetRepairInterval,
		})
		if err != nil {
			return err
		}
		if o.PolicyConfigMap != "" {
			clients, err := kubernetes.NewForConfig(o.RestConfig)
			if err != nil {
				return err
			}
			configMap, err := NewPolicyConfigMap(o.PolicyConfigMap, clients, store, log.WithName("policy"))
			if err != nil {
				return err
			}
			runnables = append(runnables, everyReplica(configMap.Run))
		}
	}

	// The serving certificate: files mode loads it now (fatal if missing);
	// the self-managed mode adds its runnables to the manager.
	certSource, certRunnable, err = certificateSource(ctx, o, mgr, metrics)
	if err != nil {
		return err
	}
	if certRunnable != nil {
		runnables = append(runnables, certRunnable)
	}
	checks = append(checks, ReadinessCheck{Name: "certificate", Check: certSource.Healthy})

	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    o.BindAddress,
		Port:    o.Port,
		TLSOpts: []func(*tls.Config){minTLS12, http1Only, func(c *tls.Config) { c.GetCertificate = certSource.GetCertificate }},
	})
	classView := ClassSource(classes.View)
	admitter := func(target mutate.Target, cps ControlPlaneLookup) *Admitter {
		return &Admitter{Target: target, Policies: store, Classes: classView, ControlPlanes: cps, OwnNamespace: o.Namespace,
			Routes: o.Routes, ChildWiring: o.ChildWebhookURL != "", Metrics: metrics}
	}
	review := func(h admission.Handler, fromPath bool) *ReviewHandler {
		return &ReviewHandler{Handler: h, WithControlPlaneFromPath: fromPath, Log: log.WithName("admission")}
	}
	srv.Register(PathControlPlane, review(admitter(mutate.TargetControlPlane, nil), false))
	srv.Register(PathWorkload, review(admitter(mutate.TargetWorkload, nil), false))
	srv.Register(PathWorkloadControlPlane, review(admitter(mutate.TargetWorkload, controlPlanes), true))
	srv.Register(PathValidatePolicy, review(&PolicyValidator{}, false))
	runnables = append(runnables, srv)

	readiness := &Readiness{Policies: store, WebhookStarted: srv.StartedChecker(), Checks: checks}
	probes := http.NewServeMux()
	probes.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	probes.Handle("/readyz", readiness)
	if r, err := plainHTTP(o.HealthProbeBindAddress, probes, log.WithName("probes")); err != nil {
		return err
	} else if r != nil {
		runnables = append(runnables, r)
	}
	if r, err := metricsServer(o, log.WithName("metrics")); err != nil {
		return err
	} else if r != nil {
		runnables = append(runnables, r)
	}

	log.Info("serving", "address", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.Port)),
		"cluster", o.RestConfig != nil, "policyFile", o.PolicyFile, "policyConfigMap", o.PolicyConfigMap,
		"metricsSecure", o.MetricsSecure)
	if mgr != nil {
		for _, r := range runnables {
			if err := mgr.Add(r); err != nil {
				return err
			}
		}
		return mgr.Start(ctx)
	}
	group, ctx := errgroup.WithContext(ctx)
	for _, r := range runnables {
		group.Go(func() error { return r.Start(ctx) })
	}
	return group.Wait()
}

// managerConfig is cfg with a client-side rate limit fit for fleet wiring,
// unless the caller set one: client-go's default (5 requests/s) made wiring
// 1,000 control planes take 3m19s (make bench-fleet: a ConfigMap and an
// Event each); the API server's priority and fairness protects it.
func managerConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = 50, 100
	}
	return cfg
}

// needsLeader reports whether anything that only one replica may do is on.
func (o Options) needsLeader() bool {
	return o.Certs.Mode == CertModeSelfManaged || o.Routes || o.ChildWebhookURL != ""
}

// leaderElectionNamespace is where the Lease lives: the flag, else the
// webhook's own namespace, else the install's default namespace (serve run
// outside a cluster).
func (o Options) leaderElectionNamespace() string {
	switch {
	case o.LeaderElectionNamespace != "":
		return o.LeaderElectionNamespace
	case o.Namespace != "":
		return o.Namespace
	default:
		return "hcp-ingress-system"
	}
}

func minTLS12(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }

// http1Only turns off HTTP/2 on the admission port, which controller-runtime
// offers by default: as in kubebuilder's scaffolds it closes the HTTP/2
// rapid-reset and stream-flood class of attacks (CVE-2023-44487,
// CVE-2023-39325), and kube-apiserver's per-call measure of our webhook
// (TestDryRunLatency, mean of 200 CREATEs, two runs each) fell from
// 961-1,212 µs over HTTP/2 to 777-813 µs over HTTP/1.1.
func http1Only(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }

// everyReplica is a runnable that runs on every replica, leader or not.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (f everyReplica) NeedLeaderElection() bool        { return false }

// metricsServer serves /metrics (controller-runtime's registry, where ours are
// registered too). Secure by default: HTTPS, and every request authenticated
// with a TokenReview and authorized with a SubjectAccessReview for GET
// /metrics, as kubebuilder projects do. Without an API server nothing can
// authenticate, so secure metrics are then off, with a log line.
func metricsServer(o Options, log logr.Logger) (manager.Runnable, error) {
	if o.MetricsBindAddress == "" || o.MetricsBindAddress == "0" {
		return nil, nil
	}
	opts := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	var httpClient *http.Client
	if o.MetricsSecure {
		if o.RestConfig == nil {
			log.Info("no API server to authenticate metrics requests with: /metrics is off (use --metrics-secure=false to serve it over plain HTTP)")
			return nil, nil
		}
		var err error
		if httpClient, err = rest.HTTPClientFor(o.RestConfig); err != nil {
			return nil, err
		}
		opts.SecureServing = true
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
		opts.TLSOpts = []func(*tls.Config){minTLS12}
	}
	srv, err := metricsserver.NewServer(opts, o.RestConfig, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics server on %s: %w", o.MetricsBindAddress, err)
	}
	return srv, nil
}

// plainHTTP is a runnable serving handler over plain HTTP on address until
// its context ends; "0" or "" disables it. The kubelet probes over HTTP.
func plainHTTP(address string, handler http.Handler, log logr.Logger) (manager.Runnable, error) {
	if address == "" || address == "0" {
		return nil, nil
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", address, err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	return everyReplica(func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = server.Shutdown(shutdown)
		}()
		log.Info("listening", "address", listener.Addr().String())
		if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}), nil
}

// Readiness is /readyz: ready once a policy is loaded, the webhook server
// answers TLS, and every view in Checks has synced. `?verbose` lists every check and
// the policy in force with its generation and the last load error.
type Readiness struct {
	Policies       *PolicyStore
	WebhookStarted func(*http.Request) error
	// Checks are the views the webhook decides from (IngressClasses, control
	// planes, the serving certificate): not ready until each returns nil.
	Checks []ReadinessCheck
}

// ReadinessCheck is one named condition of /readyz.
type ReadinessCheck struct {
	Name  string
	Check func() error
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
	for _, c := range r.Checks {
		check(c.Name, c.Check())
	}
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
