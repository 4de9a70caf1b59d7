package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// soakEnv holds how long TestSoak puts load on the webhook (a Go duration:
// `make soak` sets $(SOAK_MINUTES)m, `make soak-short` 40s). Unset: the test
// is skipped, so `make e2e` does not run it.
const soakEnv = "HCP_SOAK_DURATION"

// The two policies the soak flips between. They differ where an admission
// shows which one it saw: the annotations of class soak-flip (two, always
// equal, so half a policy shows) and the in-child API server of CCMs.
var soakPolicies = map[string]struct{ host, port string }{
	"a": {"api-a.soak.example.com", "6443"},
	"b": {"api-b.soak.example.com", "7443"},
}

func soakPolicy(name string) string {
	p := soakPolicies[name]
	return fmt.Sprintf(`apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
ingressClasses:
  soak-flip:
    annotations:
      soak.example.com/policy-x: %q
      soak.example.com/policy-y: %q
ccm:
  apiServer:
    host: %s
    port: %s
`, name, name, p.host, p.port)
}

// soakClasses are the IngressClasses of the management cluster during the
// soak and the annotations the built-in rules give each class. "haproxy" is
// the community controller's here: a class-name guess would give HAProxy
// Technologies' annotation, the wrong one.
var soakClasses = []struct {
	name, controller string
	annotations      map[string]string
}{
	{"haproxy", "haproxy-ingress.github.io/controller", map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"}},
	{"soak-haproxy-tech", "haproxy.org/ingress-controller/soak-haproxy-tech", map[string]string{"haproxy.org/ssl-passthrough": "true"}},
	{"soak-cilium", "cilium.io/ingress-controller", map[string]string{"ingress.cilium.io/tls-passthrough": "enabled"}},
}

// Where the management-hosted CCMs get their API server: the control plane
// named in the child's webhook URL.
const (
	hostedControlPlane = "hosted"
	hostedAPIHost      = "api.hosted.example.com"
	hostedAPIPort      = "6443"
	soakPathLabel      = "soak.example.com/path"
)

var (
	daemonSetGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	deploymentGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// TestSoak puts mixed admissions through the real API servers onto a
// `serve --policy-configmap` process while the policy ConfigMap flips between
// two valid policies, the serving certificate is rotated on disk and the
// management cluster's kube-apiserver is restarted once. Every admitted object
// must carry the result of one of the two policies; no admission may fail
// except requests to the management API server while it restarts (counted
// and reported apart); RSS and goroutines of the webhook must stay flat.
//
// HCP_SOAK_DURATION=40s go test -count=1 -v -run '^TestSoak$' ./e2e
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	requireWebhook(t)

	// Clients with a per-request bound and no client-side rate limit below
	// the load (envtest's default is 1000 QPS).
	management := soakClients(t, env.Management)
	child := soakClients(t, env.Child)

	ensurePolicyNamespace(t)
	applyPolicyConfigMap(t, management.typed, soakPolicy("a"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = management.typed.CoreV1().ConfigMaps(policyNamespace).Delete(ctx, policyName, metav1.DeleteOptions{})
	})
	w := startConfigMapWebhook(t, false)
	routeTo(t, w)
	for _, c := range soakClasses {
		ingressClass(t, c.name, c.controller, false)
	}
	ns := newNamespace(t, env.Management, "e2e-soak", nil)
	hosted := k0smotronCP(ns, hostedControlPlane, "soak-cilium")
	_ = unstructured.SetNestedField(hosted.Object, int64(6443), "spec", "ingress", "port")
	mustKubectl(t, env.Management, toYAML(t, hosted), "apply", "-f", "-")
	registerSoakChildWebhooks(t, w, ns+"/"+hostedControlPlane)

	s := &soak{t: t, w: w, ns: ns, management: management, child: child, seen: map[string]int64{}}
	s.loadWorkloads()
	ops := s.operations()
	// Warm-up, and proof that every operation works before anything is
	// disturbed: caches synced, registrations loaded by both API servers.
	for _, op := range ops {
		eventually(t, "warm-up: "+op.name, func() string {
			if err := op.run(t.Context()); err != nil {
				return err.Error()
			}
			return ""
		})
	}

	t.Logf("soak: %v of load from %d workers (3 client-go, 1 kubectl) on webhook pid %d; policy flips every %v, %d certificate rotations, one kube-apiserver restart",
		duration, soakWorkers+1, w.PID(), soakFlipEvery, soakRotations)
	s.run(duration, ops)
}

const (
	soakWorkers     = 3                     // client-go workers; one more runs kubectl
	soakPace        = 40 * time.Millisecond // per client-go worker: at most 25 admissions/s each
	soakKubectl     = 250 * time.Millisecond
	soakFlipEvery   = 3 * time.Second
	soakRotations   = 4
	soakStopGrace   = 5 * time.Second // SIGTERM, then SIGKILL: a kubelet with a short grace period
	soakDowntime    = 2 * time.Second // kube-apiserver stopped before it starts again
	soakSampleEvery = 5 * time.Second
)

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	value := os.Getenv(soakEnv)
	if value == "" {
		t.Skipf("%s is not set: run `make soak` or `make soak-short`", soakEnv)
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 20*time.Second || d > 24*time.Hour {
		t.Fatalf("%s=%q: want a duration between 20s and 24h", soakEnv, value)
	}
	return d
}

type soakClient struct {
	typed   kubernetes.Interface
	dynamic dynamic.Interface
}

func soakClients(t *testing.T, c *framework.Cluster) soakClient {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = 15 * time.Second
	cfg.WarningHandler = rest.NoWarnings{}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return soakClient{typed: typed, dynamic: dyn}
}

// registerSoakChildWebhooks registers both CCM paths in the child cluster,
// pointed at w: the workload overlay's configuration (in-child, host from the
// policy) and `child-config NS/NAME` (management-hosted, host from the
// control plane). The one change to each is an objectSelector on
// soak.example.com/path, so that each workload is sent to one path and its
// result says which.
func registerSoakChildWebhooks(t *testing.T, w *framework.Webhook, controlPlane string) {
	t.Helper()
	rendered, err := framework.RenderOverlay(t.Context(), env.Paths, framework.OverlayWorkload)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := framework.LocalWebhookConfigurations(rendered, w.URL, w.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	var register []*unstructured.Unstructured
	for _, c := range configs {
		if c.GetKind() == "MutatingWebhookConfiguration" {
			register = append(register, withObjectSelector(t, c, "in-child"))
		}
	}
	stdout, stderr, err := webhookCLI(t, "child-config", controlPlane, "--url", w.URL, "--ca-file", w.CAFile)
	if err != nil {
		t.Fatalf("child-config %s: %v\n%s", controlPlane, err, stderr)
	}
	hosted, err := framework.DecodeObjects([]byte(stdout))
	if err != nil || len(hosted) != 1 {
		t.Fatalf("child-config printed %d objects (%v):\n%s", len(hosted), err, stdout)
	}
	register = append(register, withObjectSelector(t, hosted[0], "hosted"))
	mustKubectl(t, env.Child, toYAML(t, register...), "apply", "-f", "-")
	t.Cleanup(func() {
		for _, c := range register {
			cleanupKubectl(t, env.Child, "delete", strings.ToLower(c.GetKind()), c.GetName(), "--ignore-not-found")
		}
	})
}

func withObjectSelector(t *testing.T, config *unstructured.Unstructured, path string) *unstructured.Unstructured {
	t.Helper()
	hooks, _, err := unstructured.NestedSlice(config.Object, "webhooks")
	if err != nil {
		t.Fatal(err)
	}
	for i := range hooks {
		hook := hooks[i].(map[string]any)
		hook["objectSelector"] = map[string]any{"matchLabels": map[string]any{soakPathLabel: path}}
	}
	if err := unstructured.SetNestedSlice(config.Object, hooks, "webhooks"); err != nil {
		t.Fatal(err)
	}
	return config
}

// soak is one run: the operations, their tallies, and the restart window.
type soak struct {
	t          *testing.T
	w          *framework.Webhook
	ns         string
	management soakClient
	child      soakClient

	serial    atomic.Int64 // object names
	workloads map[string]*unstructured.Unstructured

	// The restart window: from the stop of the management kube-apiserver
	// until an admission through it succeeds again (unix nanoseconds; 0: none).
	restartFrom, restartUntil atomic.Int64

	mu       sync.Mutex
	tallies  map[string]*soakTally
	problems []string         // the first few failures and wrong results, for the log
	outages  map[string]int64 // errors during the restart window, by kind
	examples []string         // the first of each kind
	// Admissions that came back right during the restart window: the child's
	// API server keeps calling the webhook while the management one is down.
	rightDuringRestart int64
	seen               map[string]int64
}

type soakTally struct{ ok, wrong, failed, unavailable int64 }

// soakOp is one kind of admission. run returns nil when the API server
// admitted the object with the result of one of the two policies,
// errWrongResult (wrapped) when it admitted a wrong one, and the client error
// otherwise.
type soakOp struct {
	name       string
	management bool // sent to the management API server (the one restarted)
	run        func(ctx context.Context) error
}

var errWrongResult = errors.New("wrong result")

func wrongResult(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errWrongResult, fmt.Sprintf(format, args...))
}

func (s *soak) name(prefix string) string {
	return fmt.Sprintf("soak-%s-%d", prefix, s.serial.Add(1))
}

// operations lists every admission the workers send, in their round-robin
// order.
func (s *soak) operations() []soakOp {
	var ops []soakOp
	for _, class := range append([]string{"soak-flip"}, soakClassNames()...) {
		ops = append(ops, soakOp{
			name: "control plane, class " + class + ", client-go dry-run", management: true,
			run: func(ctx context.Context) error {
				got, err := s.management.dynamic.Resource(controlPlaneGVR).Namespace(s.ns).Create(ctx,
					k0smotronCP(s.ns, s.name("cp"), class), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				if err != nil {
					return err
				}
				return s.checkControlPlane(got, class)
			},
		})
	}
	ops = append(ops, soakOp{
		name: "control plane, class haproxy, client-go create and delete", management: true,
		run: func(ctx context.Context) error {
			cps := s.management.dynamic.Resource(controlPlaneGVR).Namespace(s.ns)
			got, err := cps.Create(ctx, k0smotronCP(s.ns, s.name("stored"), "haproxy"), metav1.CreateOptions{})
			if err != nil {
				return err
			}
			// Best effort: a leftover (the API server restarting) is harmless.
			_ = cps.Delete(ctx, got.GetName(), metav1.DeleteOptions{})
			return s.checkControlPlane(got, "haproxy")
		},
	})
	for _, path := range []string{"in-child", "hosted"} {
		ops = append(ops,
			soakOp{
				name: "CCM DaemonSet, " + path + ", client-go dry-run",
				run: func(ctx context.Context) error {
					got, err := s.child.dynamic.Resource(daemonSetGVR).Namespace("kube-system").Create(ctx,
						s.workload("workloads/openstack-ccm-daemonset.yaml", path), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					if err != nil {
						return err
					}
					return s.checkCCM(got, path)
				},
			},
			soakOp{
				name: "non-CCM Deployment, " + path + ", client-go dry-run",
				run: func(ctx context.Context) error {
					obj := s.workload("workloads/cluster-autoscaler.yaml", path)
					if path == "hosted" {
						obj = s.workload("workloads/csi-controller.yaml", path)
					}
					got, err := s.child.dynamic.Resource(deploymentGVR).Namespace("kube-system").Create(ctx,
						obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					if err != nil {
						return err
					}
					return checkLeftAlone(got)
				},
			})
	}
	return ops
}

// kubectlOperations run `kubectl apply --dry-run=server` as a user does.
func (s *soak) kubectlOperations() []soakOp {
	apply := func(ctx context.Context, c *framework.Cluster, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		data, err := framework.EncodeObjects([]*unstructured.Unstructured{obj})
		if err != nil {
			return nil, err
		}
		res, err := c.Kubectl(ctx, string(data), "apply", "--dry-run=server", "-o", "json", "-f", "-")
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		return u, u.UnmarshalJSON([]byte(res.Stdout))
	}
	return []soakOp{
		{
			name: "control plane, class soak-flip, kubectl apply --dry-run=server", management: true,
			run: func(ctx context.Context) error {
				got, err := apply(ctx, env.Management, k0smotronCP(s.ns, s.name("kubectl"), "soak-flip"))
				if err != nil {
					return err
				}
				return s.checkControlPlane(got, "soak-flip")
			},
		},
		{
			name: "CCM DaemonSet, in-child, kubectl apply --dry-run=server",
			run: func(ctx context.Context) error {
				got, err := apply(ctx, env.Child, s.workload("workloads/openstack-ccm-daemonset.yaml", "in-child"))
				if err != nil {
					return err
				}
				return s.checkCCM(got, "in-child")
			},
		},
	}
}

func soakClassNames() []string {
	var names []string
	for _, c := range soakClasses {
		names = append(names, c.name)
	}
	return names
}

// workload copies a testdata workload (read by loadWorkloads), names it
// uniquely and labels it for one CCM path.
func (s *soak) workload(file, path string) *unstructured.Unstructured {
	obj := s.workloads[file].DeepCopy()
	obj.SetName(s.name("wl"))
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[soakPathLabel] = path
	obj.SetLabels(labels)
	return obj
}

func (s *soak) loadWorkloads() {
	s.workloads = map[string]*unstructured.Unstructured{}
	for _, file := range []string{"workloads/openstack-ccm-daemonset.yaml", "workloads/cluster-autoscaler.yaml", "workloads/csi-controller.yaml"} {
		s.workloads[file] = readTestdata(s.t, file)
	}
}

// checkControlPlane accepts exactly the annotations a policy gives the class:
// the built-in rule of its IngressClass's controller, or for soak-flip the
// two equal annotations of policy a or b.
func (s *soak) checkControlPlane(got *unstructured.Unstructured, class string) error {
	annotations := ingressAnnotations(got)
	if got.GetAnnotations()[mutatedAnnotation] == "" {
		return wrongResult("control plane of class %s admitted without %s (ingress annotations %v)", class, mutatedAnnotation, annotations)
	}
	if class == "soak-flip" {
		x, y := annotations["soak.example.com/policy-x"], annotations["soak.example.com/policy-y"]
		if _, known := soakPolicies[x]; !known || x != y || len(annotations) != 2 {
			return wrongResult("control plane of class soak-flip got %v: not the result of policy a or b", annotations)
		}
		s.see("soak-flip policy " + x)
		return nil
	}
	for _, c := range soakClasses {
		if c.name != class {
			continue
		}
		if !equalMaps(annotations, c.annotations) {
			return wrongResult("control plane of class %s (controller %s) got %v, want %v", class, c.controller, annotations, c.annotations)
		}
		return nil
	}
	return fmt.Errorf("no expectation for class %s", class)
}

// checkCCM accepts the CCM container with the API server of policy a or b
// (in-child) or of the control plane (hosted), and no other container changed.
func (s *soak) checkCCM(got *unstructured.Unstructured, path string) error {
	const container = "openstack-cloud-controller-manager"
	e, _ := podContainerEnv(got, container, false)
	host, port := e[envHost], e[envPort]
	switch {
	case host == "":
		return wrongResult("CCM (%s) admitted without %s: env %v", path, envHost, e)
	case e["CLOUD_CONFIG"] != "/etc/config/cloud.conf":
		return wrongResult("CCM (%s): its own variables changed: %v", path, e)
	case path == "hosted" && (host != hostedAPIHost || port != hostedAPIPort):
		return wrongResult("CCM (hosted) got %s:%s, want %s:%s from the control plane", host, port, hostedAPIHost, hostedAPIPort)
	case path == "in-child":
		policy := strings.TrimSuffix(strings.TrimPrefix(host, "api-"), ".soak.example.com")
		if p, known := soakPolicies[policy]; !known || p.port != port {
			return wrongResult("CCM (in-child) got %s:%s: not the API server of policy a or b", host, port)
		}
		s.see("in-child CCM policy " + policy)
	}
	for _, c := range []struct {
		name string
		init bool
	}{{"metrics-proxy", false}, {"wait-for-cloud-config", true}} {
		if e, _ := podContainerEnv(got, c.name, c.init); e[envHost] != "" {
			return wrongResult("CCM (%s): container %s got %s", path, c.name, envHost)
		}
	}
	return nil
}

// checkLeftAlone accepts a workload no container of which got the variables.
func checkLeftAlone(got *unstructured.Unstructured) error {
	containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		name, _ := c.(map[string]any)["name"].(string)
		if e, _ := podContainerEnv(got, name, false); e[envHost] != "" {
			return wrongResult("%s %s is not a CCM, yet container %s got %s", got.GetKind(), got.GetName(), name, envHost)
		}
	}
	if m := got.GetAnnotations()[mutatedAnnotation]; m != "" {
		return wrongResult("%s %s is not a CCM, yet is marked %s: %s", got.GetKind(), got.GetName(), mutatedAnnotation, m)
	}
	return nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func (s *soak) see(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[what]++
}

// record classifies one operation's outcome. An error from the management
// API server inside the restart window is an outage of the API server, not a
// failed admission; every other error, and every wrong result, counts.
func (s *soak) record(op soakOp, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tally := s.tallies[op.name]
	if tally == nil {
		tally = &soakTally{}
		s.tallies[op.name] = tally
	}
	note := func(list *[]string, msg string) {
		if len(*list) < 8 {
			*list = append(*list, fmt.Sprintf("[%s] %s: %s", at.Format("15:04:05.000"), op.name, msg))
		}
	}
	switch {
	case err == nil:
		tally.ok++
		if !op.management && s.inRestartWindow(at) {
			s.rightDuringRestart++
		}
	case errors.Is(err, errWrongResult):
		tally.wrong++
		note(&s.problems, err.Error())
	case op.management && s.inRestartWindow(at) && !strings.Contains(err.Error(), "failed calling webhook"):
		tally.unavailable++
		kind := outageKind(err)
		if s.outages[kind] == 0 {
			s.examples = append(s.examples, fmt.Sprintf("[%s] %s: %s", at.Format("15:04:05.000"), op.name, err))
		}
		s.outages[kind]++
	default:
		tally.failed++
		note(&s.problems, err.Error())
	}
}

// outageKind names what a client saw of the API server restart.
func outageKind(err error) string {
	msg := err.Error()
	for _, kind := range []string{"refused", "connection reset", "EOF", "not yet ready", "Timeout", "timeout"} {
		if strings.Contains(msg, kind) {
			return kind
		}
	}
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return msg
}

func (s *soak) inRestartWindow(at time.Time) bool {
	from := s.restartFrom.Load()
	if from == 0 || at.UnixNano() < from {
		return false
	}
	until := s.restartUntil.Load()
	return until == 0 || at.UnixNano() <= until
}

// worker runs ops round-robin, one every pace, until ctx ends. An operation
// cut short by the end of the run is not counted.
func (s *soak) worker(ctx context.Context, ops []soakOp, first int, pace time.Duration) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := first; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		op := ops[i%len(ops)]
		err := op.run(ctx)
		if ctx.Err() != nil {
			return
		}
		s.record(op, err, time.Now())
	}
}

// soakSample is the webhook's footprint at one moment.
type soakSample struct {
	at         time.Duration
	rssKiB     int64
	goroutines float64
}

func (s *soak) sample(start time.Time) soakSample {
	s.t.Helper()
	rss, err := s.w.RSS()
	if err != nil {
		s.t.Fatal(err)
	}
	g, err := s.w.Metric("go_goroutines", "")
	if err != nil {
		s.t.Fatal(err)
	}
	return soakSample{at: time.Since(start).Round(time.Second), rssKiB: rss / 1024, goroutines: g}
}

// run puts the load on for duration and drives the disruptions from this
// goroutine, in time order: flips, rotations and the restart never overlap,
// and each waits for its effect before the next.
func (s *soak) run(duration time.Duration, ops []soakOp) {
	t := s.t
	s.tallies = map[string]*soakTally{}
	s.seen = map[string]int64{}
	s.outages = map[string]int64{}
	start := time.Now()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // also when a disruption fails the test
	for i := range soakWorkers {
		wg.Go(func() { s.worker(ctx, ops, i*len(ops)/soakWorkers, soakPace) })
	}
	wg.Go(func() { s.worker(ctx, s.kubectlOperations(), 0, soakKubectl) })
	readiness := s.watchReadiness(ctx, &wg)

	warmUp := min(max(duration/8, 5*time.Second), 30*time.Second)
	end := start.Add(duration)
	restartAt := start.Add(duration / 2)
	var rotationsAt []time.Time
	for k := range soakRotations {
		rotationsAt = append(rotationsAt, start.Add(duration*time.Duration(2*k+1)/(2*soakRotations)))
	}
	nextFlip := start.Add(soakFlipEvery / 2)
	nextSample := start.Add(warmUp)
	var samples []soakSample
	var flips, rotations int
	var flipLatencies, rotationLatencies []time.Duration
	var restart soakRestart
	policy := "a"
	generation := metric(t, s.w, "hcp_ingress_policy_generation")
	for {
		upcoming := []time.Time{end, nextFlip, nextSample}
		if len(rotationsAt) > 0 {
			upcoming = append(upcoming, rotationsAt[0])
		}
		if restart.stopped.IsZero() {
			upcoming = append(upcoming, restartAt)
		}
		next := slices.MinFunc(upcoming, time.Time.Compare)
		time.Sleep(time.Until(next))
		now := time.Now()
		switch {
		case !now.Before(end):
			if len(samples) == 0 || time.Since(start)-samples[len(samples)-1].at > time.Second {
				samples = append(samples, s.sample(start))
			}
			stop()
			wg.Wait()
			s.report(time.Since(start), samples, flips, rotations, flipLatencies, rotationLatencies, restart, readiness())
			return
		case !now.Before(nextSample):
			samples = append(samples, s.sample(start))
			nextSample = now.Add(soakSampleEvery)
		case restart.stopped.IsZero() && !now.Before(restartAt):
			restart = s.restartAPIServer()
		case len(rotationsAt) > 0 && !now.Before(rotationsAt[0]):
			rotationsAt = rotationsAt[1:]
			rotationLatencies = append(rotationLatencies, s.rotate())
			rotations++
		default:
			if policy == "a" {
				policy = "b"
			} else {
				policy = "a"
			}
			written := s.writePolicy(soakPolicy(policy))
			if !restart.stopped.IsZero() && restart.firstFlip == 0 {
				// The first write after the restart waits for the policy
				// informer's watch to come back (client-go's reflector backs
				// off while the API server is down): reported on its own.
				generation = s.waitGeneration(generation, time.Minute)
				restart.firstFlip = time.Since(written)
			} else {
				generation = s.waitGeneration(generation, 10*time.Second)
				flipLatencies = append(flipLatencies, time.Since(written))
			}
			flips++
			nextFlip = now.Add(soakFlipEvery)
		}
	}
}

// waitGeneration waits until the webhook's policy generation is past after
// and returns the new one.
func (s *soak) waitGeneration(after float64, timeout time.Duration) float64 {
	deadline := time.Now().Add(timeout)
	for {
		if g := metric(s.t, s.w, "hcp_ingress_policy_generation"); g > after {
			return g
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("policy generation still %v %v after the ConfigMap update", after, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writePolicy updates the policy ConfigMap, retrying a conflict or a
// transient error a few times (bounded).
func (s *soak) writePolicy(policy string) time.Time {
	t := s.t
	cms := s.management.typed.CoreV1().ConfigMaps(policyNamespace)
	var err error
	for range 5 {
		var current *corev1.ConfigMap
		if current, err = cms.Get(t.Context(), policyName, metav1.GetOptions{}); err == nil {
			current.Data = map[string]string{"policy.yaml": policy}
			if _, err = cms.Update(t.Context(), current, metav1.UpdateOptions{}); err == nil {
				return time.Now()
			}
		}
		if !apierrors.IsConflict(err) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Fatalf("writing the policy ConfigMap: %v", err)
	return time.Time{}
}

// rotate writes a new serving certificate and returns how long the webhook
// took to present it.
func (s *soak) rotate() time.Duration {
	t := s.t
	written := time.Now()
	serial, err := s.w.RotateServingCertificate()
	if err != nil {
		t.Fatalf("rotating the serving certificate: %v", err)
	}
	for {
		served, err := s.w.ServedSerial()
		if err == nil && served.Cmp(serial) == 0 {
			return time.Since(written)
		}
		if time.Since(written) > eventuallyTimeout {
			t.Fatalf("the webhook still serves another certificate %v after the rotation (err %v)", eventuallyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type soakRestart struct {
	stopped                    time.Time
	graceful                   bool          // exited on SIGTERM within soakStopGrace
	firstFlip                  time.Duration // ConfigMap write -> loaded, first after the restart
	down, start, ready, admits time.Duration
}

// restartAPIServer stops the management kube-apiserver, keeps it down for
// soakDowntime, starts it on the same etcd and port, and waits until the
// webhook is ready and the API server sends it admissions that come back
// right. The restart window for the record ends there.
func (s *soak) restartAPIServer() soakRestart {
	t := s.t
	r := soakRestart{stopped: time.Now()}
	s.restartFrom.Store(r.stopped.UnixNano())
	graceful, err := env.Management.StopAPIServer(soakStopGrace)
	if err != nil {
		t.Fatal(err)
	}
	r.graceful = graceful
	r.down = time.Since(r.stopped)
	time.Sleep(soakDowntime)
	started := time.Now()
	if err := env.Management.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	r.start = time.Since(started)
	eventually(t, "the webhook is ready after the kube-apiserver restart", func() string {
		if code, body := readyz(t, s.w); code != http.StatusOK {
			return fmt.Sprintf("/readyz: %d %s", code, body)
		}
		return ""
	})
	r.ready = time.Since(started)
	probe := soakOp{}
	for _, op := range s.operations() {
		if op.management {
			probe = op
			break
		}
	}
	eventually(t, "an admission through the restarted kube-apiserver comes back right", func() string {
		if err := probe.run(t.Context()); err != nil {
			return err.Error()
		}
		return ""
	})
	r.admits = time.Since(started)
	s.restartUntil.Store(time.Now().UnixNano())
	return r
}

// watchReadiness polls the webhook's /readyz and returns a function that
// reports the intervals it was not ready.
func (s *soak) watchReadiness(ctx context.Context, wg *sync.WaitGroup) func() []string {
	var mu sync.Mutex
	var notReady []string
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var since time.Time
		var reason string
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			code, body := readyz(s.t, s.w)
			switch {
			case code != http.StatusOK && since.IsZero():
				since, reason = time.Now(), strings.Join(strings.Fields(body), " ")
			case code == http.StatusOK && !since.IsZero():
				mu.Lock()
				notReady = append(notReady, fmt.Sprintf("%s for %v: %s", since.Format("15:04:05.000"), time.Since(since).Round(10*time.Millisecond), reason))
				mu.Unlock()
				since = time.Time{}
			}
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), notReady...)
	}
}

// report logs the figures and asserts the outcome.
func (s *soak) report(elapsed time.Duration, samples []soakSample, flips, rotations int,
	flipLatencies, rotationLatencies []time.Duration, restart soakRestart, notReady []string) {
	t := s.t
	var total, ok, wrong, failed, unavailable int64
	names := make([]string, 0, len(s.tallies))
	for name := range s.tallies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := s.tallies[name]
		t.Logf("soak: %-62s %6d ok %3d wrong %3d failed %3d unavailable", name, c.ok, c.wrong, c.failed, c.unavailable)
		ok, wrong, failed, unavailable = ok+c.ok, wrong+c.wrong, failed+c.failed, unavailable+c.unavailable
	}
	total = ok + wrong + failed + unavailable
	t.Logf("soak: %d requests in %v (%.0f/s): %d admitted with a right result, %d wrong results, %d failed, %d unavailable (management kube-apiserver restarting)",
		total, elapsed.Round(time.Second), float64(total)/elapsed.Seconds(), ok, wrong, failed, unavailable)
	t.Logf("soak: policies seen: %v", s.seen)
	t.Logf("soak: %d policy flips, ConfigMap write -> generation loaded: %s; the first after the restart %v",
		flips, latencySummary(flipLatencies), restart.firstFlip.Round(time.Millisecond))
	t.Logf("soak: %d certificate rotations, write -> new certificate served: %s", rotations, latencySummary(rotationLatencies))
	how := "exited on SIGTERM"
	if !restart.graceful {
		how = fmt.Sprintf("killed after %v", soakStopGrace)
	}
	t.Logf("soak: kube-apiserver restart: stop %v (%s), down %v, start %v; webhook ready %v and admissions right again %v after the start",
		restart.down.Round(time.Millisecond), how, soakDowntime, restart.start.Round(time.Millisecond), restart.ready.Round(time.Millisecond), restart.admits.Round(time.Millisecond))
	if len(notReady) == 0 {
		t.Logf("soak: webhook /readyz: 200 at every poll (every 250ms)")
	}
	for _, n := range notReady {
		t.Logf("soak: webhook not ready at %s", n)
	}
	t.Logf("soak: during the restart window %d admissions came back right (through the child's API server); the management API server's clients saw %v",
		s.rightDuringRestart, s.outages)
	for _, e := range s.examples {
		t.Logf("soak: during the restart, for example: %s", e)
	}
	// About ten lines whatever the duration, and the peaks of all samples.
	step := max(1, len(samples)/10)
	peak := samples[0]
	for i, smp := range samples {
		if i%step == 0 || i == len(samples)-1 {
			t.Logf("soak: at %6v RSS %6.1f MiB, %4.0f goroutines", smp.at, float64(smp.rssKiB)/1024, smp.goroutines)
		}
		peak.rssKiB, peak.goroutines = max(peak.rssKiB, smp.rssKiB), max(peak.goroutines, smp.goroutines)
	}
	t.Logf("soak: peak of %d samples (every %v): RSS %.1f MiB, %.0f goroutines", len(samples), soakSampleEvery, float64(peak.rssKiB)/1024, peak.goroutines)
	served, _ := s.w.Metric("controller_runtime_webhook_requests_total", "")
	errorLines := webhookLogErrors(s.w)
	t.Logf("soak: the webhook served %.0f admission requests and logged %d errors", served, len(errorLines))
	for i, line := range errorLines {
		if i == 5 {
			break
		}
		t.Logf("soak: webhook log: %s", line)
	}

	for _, p := range s.problems {
		t.Errorf("soak: %s", p)
	}
	if wrong != 0 || failed != 0 {
		t.Errorf("soak: %d wrong results and %d failed admissions, want 0", wrong, failed)
	}
	for _, want := range []string{"soak-flip policy a", "soak-flip policy b", "in-child CCM policy a", "in-child CCM policy b"} {
		if s.seen[want] == 0 {
			t.Errorf("soak: no admission saw %s: the flips did not reach the load", want)
		}
	}
	if restart.stopped.IsZero() {
		t.Errorf("soak: the kube-apiserver was never restarted")
	}
	first, last := samples[0], samples[len(samples)-1]
	rssLimit := first.rssKiB*3/2 + 10*1024
	t.Logf("soak: RSS %.1f MiB after warm-up -> %.1f MiB at the end (limit %.1f MiB); goroutines %.0f -> %.0f (limit %.0f)",
		float64(first.rssKiB)/1024, float64(last.rssKiB)/1024, float64(rssLimit)/1024, first.goroutines, last.goroutines, goroutineLimit(first.goroutines))
	if last.rssKiB > rssLimit {
		t.Errorf("soak: RSS grew from %d KiB to %d KiB, over 1.5x + 10 MiB", first.rssKiB, last.rssKiB)
	}
	if last.goroutines > goroutineLimit(first.goroutines) {
		t.Errorf("soak: goroutines grew from %.0f to %.0f", first.goroutines, last.goroutines)
	}
}

// webhookLogErrors returns the webhook's log lines at level ERROR (the
// informers report a lost API server there).
func webhookLogErrors(w *framework.Webhook) []string {
	data, err := os.ReadFile(w.LogFile)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
		}
	}
	return out
}

// goroutineLimit allows for the connections the API servers hold open to
// the webhook, whose number follows their load; a leak per request, flip,
// rotation or restart goes far past it.
func goroutineLimit(start float64) float64 { return start*1.25 + 10 }

func latencySummary(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	sorted := append([]time.Duration(nil), d...)
	slices.Sort(sorted)
	return fmt.Sprintf("min %v, median %v, max %v", sorted[0].Round(time.Millisecond),
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
}
