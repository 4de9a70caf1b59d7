// Package fleet wires the children of a management cluster to the webhook:
// the ConfigMap that ships the child's MutatingWebhookConfiguration in each
// control plane's spec.manifests (Wiring), the repair of children through
// their Cluster API kubeconfig (Repair), and the audit of both (Assess,
// used by the `audit` command and the serve gauges). It reuses the engine
// (internal/mutate) and the resolver (internal/rules).
package fleet

import (
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// ChildConfigName is the name of the MutatingWebhookConfiguration shipped to a
// child cluster.
const ChildConfigName = "hcp-ingress-child"

// skipCondition and optOutCondition keep objects the webhook would not change
// from reaching it at all (CEL, evaluated by the child's API server).
var (
	skipCondition = admissionregistrationv1.MatchCondition{
		Name:       "not-skipped",
		Expression: `!has(object.metadata.labels) || !('hcp-ingress.io/skip' in object.metadata.labels) || object.metadata.labels['hcp-ingress.io/skip'] != 'true'`,
	}
	optOutCondition = admissionregistrationv1.MatchCondition{
		Name:       "not-opted-out",
		Expression: `!has(object.metadata.annotations) || !('hcp-ingress.io/inject' in object.metadata.annotations) || object.metadata.annotations['hcp-ingress.io/inject'] != 'false'`,
	}
)

// ChildConfig is the MutatingWebhookConfiguration a child cluster needs so that
// its API server calls the webhook for CCM workloads, with the control plane
// NAMESPACE/NAME in the URL: the webhook then reads the ingress API host from
// that control plane in the management cluster.
//
// namespaces is the policy's ccm.namespaces; "*" means every namespace.
// failurePolicy is Ignore: a webhook outage must never block the child's
// kube-system; a CCM created meanwhile misses the variables until its next
// update, which is the status quo without the webhook.
func ChildConfig(namespace, name, baseURL string, caBundle []byte, namespaces []string) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	if namespace == "" || name == "" {
		return nil, fmt.Errorf("control plane must be NAMESPACE/NAME")
	}
	if !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("--url %q must start with https://", baseURL)
	}
	url := strings.TrimSuffix(baseURL, "/") + "/mutate-workload/" + namespace + "/" + name
	hook := admissionregistrationv1.MutatingWebhook{
		Name: "ccm.hcp-ingress.io",
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			URL:      &url,
			CABundle: caBundle,
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{"apps"},
				APIVersions: []string{"v1"},
				Resources:   []string{"deployments", "daemonsets"},
				Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}},
		FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](5),
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		MatchConditions:         []admissionregistrationv1.MatchCondition{skipCondition, optOutCondition},
	}
	// Namespaces labelled hcp-ingress.io/skip=true never reach the webhook;
	// the policy's namespace scope is applied here too, so workloads outside
	// it cost the child's API server no call at all.
	selector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "hcp-ingress.io/skip", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"},
	}}}
	if len(namespaces) > 0 && !slices.Contains(namespaces, "*") {
		selector.MatchExpressions = append(selector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: slices.Sorted(slices.Values(namespaces)),
		})
	}
	hook.NamespaceSelector = selector
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ChildConfigName,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "hcp-ingress-webhook",
				"app.kubernetes.io/component":  "ccm-injection",
				"hcp-ingress.io/control-plane": namespace + "." + name,
			},
		},
		Webhooks: []admissionregistrationv1.MutatingWebhook{hook},
	}, nil
}

// ChildConfigYAML is ChildConfig as YAML: what `child-config` prints and what
// the fleet ConfigMap holds under ChildConfigKey, byte for byte.
func ChildConfigYAML(namespace, name, baseURL string, caBundle []byte, namespaces []string) ([]byte, error) {
	config, err := ChildConfig(namespace, name, baseURL, caBundle, namespaces)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(config)
}

// BaseURL returns the base URL a child configuration was rendered with (the
// inverse of ChildConfig's URL), and false when it does not have that shape.
func BaseURL(config *admissionregistrationv1.MutatingWebhookConfiguration, namespace, name string) (string, bool) {
	if len(config.Webhooks) != 1 || config.Webhooks[0].ClientConfig.URL == nil {
		return "", false
	}
	return strings.CutSuffix(*config.Webhooks[0].ClientConfig.URL, "/mutate-workload/"+namespace+"/"+name)
}
