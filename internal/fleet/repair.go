package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
)

// repair wires and fixes each child through its Cluster API kubeconfig:
// it applies the child's MutatingWebhookConfiguration and sends every CCM
// workload lacking the variables through admission again. Each child is one
// queue item: a slow or unreachable child holds one of RepairWorkers workers
// for at most ChildTimeout, and failures are retried with exponential
// backoff (RetryBase..RetryMax), so the others proceed.
type repair struct {
	cache   client.Client // the manager's cache (namespaces)
	secrets client.Reader // the API server: kubeconfig Secrets are never cached
	watcher *controlplanes.Watcher
	o       Options
}

func setupRepair(mgr manager.Manager, watcher *controlplanes.Watcher, o Options) error {
	r := &repair{cache: mgr.GetClient(), secrets: mgr.GetAPIReader(), watcher: watcher, o: o}
	c, err := controller.New("fleet-repair", mgr, controller.Options{
		Reconciler:              r,
		MaxConcurrentReconciles: o.RepairWorkers,
		NeedLeaderElection:      ptr.To(true),
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](o.RetryBase, o.RetryMax),
	})
	if err != nil {
		return err
	}
	return watchControlPlanes(mgr, watcher, c, o)
}

// webhookSettle is how long after applying the child's webhook
// configuration the workloads are looked at: the child's API server loads
// webhook configurations asynchronously (about a second).
const webhookSettle = 2 * time.Second

// Reconcile implements reconcile.Reconciler.
func (r *repair) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := r.watcher.Synced(); err != nil {
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	cp, err := r.watcher.Get(ctx, req.Namespace, req.Name)
	if err != nil || cp == nil {
		return reconcile.Result{}, err
	}
	w := &wiring{client: r.cache, watcher: r.watcher, o: r.o}
	skipped, err := w.namespaceSkipped(ctx, req.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	t := decide(cp, skipped)
	policy := r.o.Policy()
	if !t.Wired {
		return reconcile.Result{}, nil
	}
	if policy == nil {
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	log := r.o.Log.WithValues("controlPlane", req.String(), "kind", cp.GetKind())

	ctx, cancel := context.WithTimeout(ctx, r.o.ChildTimeout)
	defer cancel()
	cfg, err := ChildRESTConfig(ctx, r.secrets, cp, r.o.ChildTimeout)
	if err != nil {
		return r.fail(cp, log, err)
	}
	child, err := NewChild(cfg)
	if err != nil {
		return r.fail(cp, log, err)
	}
	ca := r.o.CABundle()
	if len(ca) == 0 {
		log.Info("not repairing yet: no CA bundle yet (the serving certificate source has none)")
		return reconcile.Result{RequeueAfter: r.o.CheckInterval}, nil
	}
	want, err := ChildConfig(cp.GetNamespace(), cp.GetName(), r.o.ChildWebhookURL, ca, CCMNamespaces(policy))
	if err != nil {
		return reconcile.Result{}, err
	}
	state, err := child.WebhookState(ctx, want)
	if err != nil {
		return r.fail(cp, log, err)
	}
	if state != ChildOK {
		if err := child.ApplyWebhook(ctx, want); err != nil {
			return r.fail(cp, log, err)
		}
		log.Info("applied the child's MutatingWebhookConfiguration", "was", state, "name", want.Name)
		r.o.Recorder.Eventf(cp, corev1.EventTypeNormal, "ChildWebhookApplied",
			"MutatingWebhookConfiguration %s applied in the child (it was %s)", want.Name, state)
		return reconcile.Result{RequeueAfter: webhookSettle}, nil
	}
	_, lacking, err := child.CCMState(ctx, policy, t.API)
	if err != nil {
		return r.fail(cp, log, err)
	}
	if len(lacking) == 0 {
		return reconcile.Result{RequeueAfter: r.o.RepairInterval}, nil
	}
	var fixed, notFixed []Workload
	for _, wl := range lacking {
		ok, err := child.Readmit(ctx, wl, policy, t.API, time.Now())
		if err != nil {
			return r.fail(cp, log, err)
		}
		if ok {
			fixed = append(fixed, wl)
		} else {
			notFixed = append(notFixed, wl)
		}
	}
	if len(fixed) > 0 {
		log.Info("re-admitted CCM workloads, the webhook injected the API server", "workloads", workloadNames(fixed))
		r.o.Recorder.Eventf(cp, corev1.EventTypeNormal, "CCMReadmitted",
			"re-admitted %s in the child: the webhook set KUBERNETES_SERVICE_HOST/PORT to %s:%d", workloadNames(fixed), t.API.Host, t.API.Port)
	}
	if len(notFixed) > 0 {
		return r.fail(cp, log, &ChildError{Reason: "CCMNotInjected", Err: fmt.Errorf(
			"re-admitted %s, but the child's API server did not get the variables from the webhook (can it reach %s?)",
			workloadNames(notFixed), r.o.ChildWebhookURL)})
	}
	return reconcile.Result{RequeueAfter: r.o.RepairInterval}, nil
}

// fail records err as a Warning Event on the control plane and a log line,
// and returns it so that the queue retries with backoff.
func (r *repair) fail(cp *unstructured.Unstructured, log logr.Logger, err error) (reconcile.Result, error) {
	reason := "ChildRepairFailed"
	var ce *ChildError
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "ChildUnreachable"
	}
	log.Error(err, "repairing the child failed; retrying with backoff", "reason", reason)
	r.o.Recorder.Eventf(cp, corev1.EventTypeWarning, reason, "child not repaired: %v", err)
	return reconcile.Result{}, err
}
