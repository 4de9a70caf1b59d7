package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/version"
)

// maxChildWorkloads bounds how many Deployments plus DaemonSets of one child
// are examined per pass: a child is a foreign API server, and its answer
// must not cost unbounded memory.
const maxChildWorkloads = 5000

// clusterAPIGroup is the group of Cluster API's Cluster.
const clusterAPIGroup = "cluster.x-k8s.io"

// ChildError is a failure to reach or use a child, with the Event reason.
type ChildError struct {
	Reason string // KubeconfigMissing, KubeconfigInvalid, NoCluster, ChildUnreachable, ...
	Err    error
}

func (e *ChildError) Error() string { return e.Err.Error() }
func (e *ChildError) Unwrap() error { return e.Err }

func childErr(reason string, format string, args ...any) error {
	return &ChildError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ClusterName is the Cluster API Cluster whose kubeconfig Secret reaches the
// child of cp: the owning Cluster of a K0smotronControlPlane (owner
// reference, else the cluster.x-k8s.io/cluster-name label), the name of a
// k0smotron Cluster.
func ClusterName(cp *unstructured.Unstructured) (string, error) {
	if cp.GroupVersionKind().GroupKind() == controlplanes.K0smotronCluster {
		return cp.GetName(), nil
	}
	for _, ref := range cp.GetOwnerReferences() {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err == nil && gv.Group == clusterAPIGroup && ref.Kind == "Cluster" {
			return ref.Name, nil
		}
	}
	if name := cp.GetLabels()["cluster.x-k8s.io/cluster-name"]; name != "" {
		return name, nil
	}
	return "", childErr("NoCluster", "%s %s/%s has no owning Cluster API Cluster (ownerReferences or label cluster.x-k8s.io/cluster-name), so its kubeconfig Secret is unknown",
		cp.GetKind(), cp.GetNamespace(), cp.GetName())
}

// ChildRESTConfig reads the kubeconfig Secret <cluster>-kubeconfig of cp
// through reader and returns a config whose every request is bounded by
// timeout.
func ChildRESTConfig(ctx context.Context, reader client.Reader, cp *unstructured.Unstructured, timeout time.Duration) (*rest.Config, error) {
	cluster, err := ClusterName(cp)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: cp.GetNamespace(), Name: cluster + "-kubeconfig"}
	if err := reader.Get(ctx, key, secret); apierrors.IsNotFound(err) {
		return nil, childErr("KubeconfigMissing", "Secret %s: not found", key)
	} else if err != nil {
		return nil, childErr("KubeconfigMissing", "Secret %s: %w", key, err)
	}
	data := secret.Data[KubeconfigKey]
	if len(data) == 0 {
		return nil, childErr("KubeconfigInvalid", "Secret %s: key %q is empty or absent", key, KubeconfigKey)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, childErr("KubeconfigInvalid", "Secret %s: key %q is not a usable kubeconfig: %v", key, KubeconfigKey, err)
	}
	cfg.Timeout = timeout
	cfg.UserAgent = "hcp-ingress-webhook/" + version.Version + " (fleet repair)"
	cfg.QPS, cfg.Burst = 20, 40
	return cfg, nil
}

// Child is a child cluster's API server as the fleet sees it.
type Child struct {
	Kube kubernetes.Interface
}

// NewChild returns a Child for cfg.
func NewChild(cfg *rest.Config) (*Child, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, childErr("KubeconfigInvalid", "kubeconfig: %v", err)
	}
	return &Child{Kube: kube}, nil
}

func unreachable(what string, err error) error {
	var ce *ChildError
	if errors.As(err, &ce) {
		return err
	}
	return &ChildError{Reason: "ChildUnreachable", Err: fmt.Errorf("%s: %w", what, err)}
}

// WebhookState compares the child's MutatingWebhookConfiguration with want:
// ChildOK, ChildMissing or ChildStale. A want without webhooks checks
// presence only.
func (c *Child) WebhookState(ctx context.Context, want *admissionregistrationv1.MutatingWebhookConfiguration) (string, error) {
	got, err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ChildMissing, nil
	}
	if err != nil {
		return "", unreachable("reading MutatingWebhookConfiguration "+want.Name, err)
	}
	if len(want.Webhooks) == 0 || sameWebhooks(got, want) { // no webhooks: presence only
		return ChildOK, nil
	}
	return ChildStale, nil
}

// sameWebhooks compares what ChildConfig sets, after the API server's
// defaulting (an empty objectSelector).
func sameWebhooks(got, want *admissionregistrationv1.MutatingWebhookConfiguration) bool {
	if len(got.Webhooks) != len(want.Webhooks) {
		return false
	}
	for k, v := range want.Labels {
		if got.Labels[k] != v {
			return false
		}
	}
	for i := range want.Webhooks {
		g, w := got.Webhooks[i].DeepCopy(), want.Webhooks[i].DeepCopy()
		if g.ObjectSelector != nil && len(g.ObjectSelector.MatchLabels) == 0 && len(g.ObjectSelector.MatchExpressions) == 0 {
			g.ObjectSelector = nil
		}
		if !equality.Semantic.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

// ApplyWebhook server-side-applies want in the child (field manager
// FieldManager).
func (c *Child) ApplyWebhook(ctx context.Context, want *admissionregistrationv1.MutatingWebhookConfiguration) error {
	body, err := json.Marshal(want)
	if err != nil {
		return err
	}
	_, err = c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, want.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
	if err != nil {
		return unreachable("applying MutatingWebhookConfiguration "+want.Name, err)
	}
	return nil
}

// Workload is a Deployment or DaemonSet of a child.
type Workload struct {
	Kind, Namespace, Name string
}

func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// CCMState runs the engine over every Deployment and DaemonSet in the
// policy's CCM namespaces of the child, as the webhook would admit them for
// control plane api: CCMInjected (every CCM has the variables), CCMMissing
// (lacking lists those that do not), CCMNoneFound.
func (c *Child) CCMState(ctx context.Context, policy *rules.Policy, api *rules.APIServer) (state string, lacking []Workload, err error) {
	namespaces := []string{metav1.NamespaceAll}
	if scope := CCMNamespaces(policy); len(scope) > 0 && !slices.Contains(scope, rules.AllNamespaces) {
		namespaces = scope
	}
	skipped := map[string]bool{}
	found, seen := 0, 0
	for _, ns := range namespaces {
		deployments, err := c.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{Limit: maxChildWorkloads})
		if err != nil {
			return "", nil, unreachable("listing Deployments", err)
		}
		daemonSets, err := c.Kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{Limit: maxChildWorkloads})
		if err != nil {
			return "", nil, unreachable("listing DaemonSets", err)
		}
		var objects []runtime.Object
		for i := range deployments.Items {
			d := &deployments.Items[i]
			d.APIVersion, d.Kind = "apps/v1", "Deployment"
			objects = append(objects, d)
		}
		for i := range daemonSets.Items {
			d := &daemonSets.Items[i]
			d.APIVersion, d.Kind = "apps/v1", "DaemonSet"
			objects = append(objects, d)
		}
		for _, obj := range objects {
			if seen++; seen > maxChildWorkloads {
				return "", nil, childErr("TooManyWorkloads", "more than %d Deployments and DaemonSets in the CCM namespaces %v", maxChildWorkloads, namespaces)
			}
			m := obj.(metav1.Object)
			if _, ok := skipped[m.GetNamespace()]; !ok {
				skipped[m.GetNamespace()] = c.namespaceSkipped(ctx, m.GetNamespace())
			}
			isCCM, needs, err := needsInjection(obj, m.GetNamespace(), skipped[m.GetNamespace()], policy, api)
			if err != nil {
				return "", nil, err
			}
			if isCCM {
				found++
			}
			if needs {
				lacking = append(lacking, Workload{Kind: obj.GetObjectKind().GroupVersionKind().Kind, Namespace: m.GetNamespace(), Name: m.GetName()})
			}
		}
	}
	switch {
	case len(lacking) > 0:
		return CCMMissing, lacking, nil
	case found == 0:
		return CCMNoneFound, nil, nil
	}
	return CCMInjected, nil, nil
}

func (c *Child) namespaceSkipped(ctx context.Context, name string) bool {
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	return err == nil && ns.Labels[mutate.SkipLabel] == "true"
}

// needsInjection asks the engine whether the webhook, admitting obj through
// the management-hosted path of api, would change it.
func needsInjection(obj runtime.Object, namespace string, namespaceSkipped bool, policy *rules.Policy, api *rules.APIServer) (isCCM, needs bool, err error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return false, false, err
	}
	res, err := mutate.Workload(mutate.Input{
		Object: raw, Operation: "UPDATE", Namespace: namespace, NamespaceSkipped: namespaceSkipped,
		Policy: policy, APIServer: api, ManagementHosted: true,
	})
	if err != nil {
		// A workload the engine cannot read is not ours to fix.
		return false, false, nil
	}
	return res.Rule != "", len(res.Patch) > 0, nil
}

// Readmit sends w through admission again with an UPDATE that only sets
// ReadmittedAnnotation, and returns whether the stored object now has the
// variables: the webhook, never this loop, writes env.
func (c *Child) Readmit(ctx context.Context, w Workload, policy *rules.Policy, api *rules.APIServer, now time.Time) (bool, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		ReadmittedAnnotation: now.UTC().Format(time.RFC3339),
	}}})
	if err != nil {
		return false, err
	}
	var obj runtime.Object
	switch w.Kind {
	case "Deployment":
		d, err := c.Kube.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err != nil {
			return false, unreachable("re-admitting "+w.String(), err)
		}
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		obj = d
	case "DaemonSet":
		d, err := c.Kube.AppsV1().DaemonSets(w.Namespace).Patch(ctx, w.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err != nil {
			return false, unreachable("re-admitting "+w.String(), err)
		}
		d.APIVersion, d.Kind = "apps/v1", "DaemonSet"
		obj = d
	default:
		return false, fmt.Errorf("unknown workload kind %q", w.Kind)
	}
	_, needs, err := needsInjection(obj, w.Namespace, false, policy, api)
	return !needs, err
}

// workloadNames lists workloads for a message.
func workloadNames(ws []Workload) string {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.String()
	}
	return strings.Join(names, ", ")
}
