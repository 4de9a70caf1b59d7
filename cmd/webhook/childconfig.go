package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/fleet"
)

func runChildConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("child-config", stderr)
	webhookURL := fs.String("url", "", "https://<webhook address> as the child's API server reaches it (required)")
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
	namespace, name, err := parseControlPlaneRef(fs.Arg(0))
	if err != nil {
		return err
	}
	if *webhookURL == "" {
		return fmt.Errorf("--url is required")
	}
	if err := validateWebhookURL(*webhookURL); err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	policy, err := loadPolicyArg(*policyFile)
	if err != nil {
		return err
	}
	var caBundle []byte
	if *caFile != "" {
		if caBundle, err = readCABundle(*caFile); err != nil {
			return err
		}
	} else if caBundle, err = ownCABundle(*kubeconfig, *ownConfig); err != nil {
		return fmt.Errorf("no --ca-file, and the caBundle of MutatingWebhookConfiguration %s could not be read: %w", *ownConfig, err)
	}
	out, err := fleet.ChildConfigYAML(namespace, name, *webhookURL, caBundle, fleet.CCMNamespaces(policy))
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// parseControlPlaneRef splits NAMESPACE/NAME: exactly two parts, a valid
// namespace (DNS-1123 label) and a valid object name (DNS-1123 subdomain),
// since they end up in the URL path the child's API server calls.
func parseControlPlaneRef(ref string) (namespace, name string, err error) {
	parts := strings.Split(ref, "/")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%q: want NAMESPACE/NAME of a control plane", ref)
	}
	namespace, name = parts[0], parts[1]
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return "", "", fmt.Errorf("%q: namespace %q: %s", ref, namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", "", fmt.Errorf("%q: name %q: %s", ref, name, strings.Join(msgs, "; "))
	}
	return namespace, name, nil
}

// validateWebhookURL checks a base URL that child API servers dial: https,
// a host, nothing the path would be appended after (query, fragment), and
// no credentials (they would be shipped to every child).
func validateWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	case u.Scheme != "https":
		return fmt.Errorf("%q: must start with https:// (an admission webhook is called over TLS)", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q: has no host", raw)
	case u.User != nil:
		return fmt.Errorf("%q: must not carry credentials", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q: must not have a query: /mutate-workload/NAMESPACE/NAME is appended to it", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q: must not have a fragment: /mutate-workload/NAMESPACE/NAME is appended to it", raw)
	}
	return nil
}

// maxCABundleBytes bounds --ca-file: a bundle of a few certificates is a few
// kilobytes.
const maxCABundleBytes = 1 << 20

// readCABundle reads a PEM bundle for a webhook's caBundle: at least one
// CERTIFICATE block, every block a certificate that parses, and nothing
// else (a private key, or text that is not PEM, would be shipped to every
// child).
func readCABundle(name string) ([]byte, error) {
	data, err := readInput(name)
	if err != nil {
		return nil, err
	}
	if len(data) > maxCABundleBytes {
		return nil, fmt.Errorf("%s: %d bytes is larger than %d KiB, more than any CA bundle", name, len(data), maxCABundleBytes>>10)
	}
	rest := data
	certs := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %s, not a CERTIFICATE: a CA bundle holds certificates only", name, certs+1, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, certs+1, err)
		}
		certs++
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s: has text that is not a PEM CERTIFICATE block after certificate %d", name, certs)
	}
	if certs == 0 {
		return nil, fmt.Errorf("%s: holds no PEM CERTIFICATE", name)
	}
	return data, nil
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
