package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/webhook"
)

func runChildConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("child-config", stderr)
	url := fs.String("url", "", "https://<webhook address> as the child's API server reaches it (required)")
	caFile := fs.String("ca-file", "", "PEM CA bundle of the webhook's serving certificate (default: the caBundle of our own webhook configuration)")
	policyFile := fs.String("policy", "", "policy file whose ccm.namespaces scopes the child's webhook (default: the embedded default policy)")
	kubeconfig := fs.String("kubeconfig", "", "management cluster kubeconfig, to read the caBundle when --ca-file is not given")
	ownConfig := fs.String("webhook-configuration", "hcp-ingress-webhook", "name of our MutatingWebhookConfiguration in the management cluster")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hcp-ingress-webhook child-config NAMESPACE/NAME --url https://<webhook> [--ca-file FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want exactly one NAMESPACE/NAME of a control plane, got %d arguments", fs.NArg())
	}
	namespace, name, ok := strings.Cut(fs.Arg(0), "/")
	if !ok {
		return fmt.Errorf("%q: want NAMESPACE/NAME", fs.Arg(0))
	}
	if *url == "" {
		return fmt.Errorf("--url is required")
	}
	policy, err := loadPolicyFile(*policyFile)
	if err != nil {
		return err
	}
	var caBundle []byte
	if *caFile != "" {
		if caBundle, err = os.ReadFile(*caFile); err != nil {
			return err
		}
	} else if caBundle, err = ownCABundle(*kubeconfig, *ownConfig); err != nil {
		return fmt.Errorf("no --ca-file, and the caBundle of MutatingWebhookConfiguration %s could not be read: %w", *ownConfig, err)
	}
	var namespaces []string
	if ccm := policy.Effective().CCM; ccm != nil {
		namespaces = ccm.Namespaces
	}
	config, err := webhook.ChildConfig(namespace, name, *url, caBundle, namespaces)
	if err != nil {
		return err
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// ownCABundle reads the caBundle cert-manager injected into our own webhook
// configuration in the management cluster.
func ownCABundle(kubeconfig, name string) ([]byte, error) {
	cfg, err := clusterConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("no --kubeconfig and not in a cluster")
	}
	clients, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mwc, err := clients.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	for _, hook := range mwc.Webhooks {
		if len(hook.ClientConfig.CABundle) > 0 {
			return hook.ClientConfig.CABundle, nil
		}
	}
	return nil, fmt.Errorf("it has no caBundle yet (is cert-manager's CA injector running?)")
}
