package framework

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Overlays of manifests/.
const (
	OverlayManagement = "management"
	OverlayWorkload   = "workload"
)

// RenderOverlay runs `bin/kubectl kustomize manifests/overlays/<overlay>`.
func RenderOverlay(ctx context.Context, paths Paths, overlay string) ([]byte, error) {
	return kustomize(ctx, paths, filepath.Join(paths.Root, "manifests", "overlays", overlay))
}

// kustomize runs `bin/kubectl kustomize dir`.
func kustomize(ctx context.Context, paths Paths, dir string) ([]byte, error) {
	res, err := runKubectl(ctx, paths.Kubectl, "", "", "", "kustomize", dir)
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	return []byte(res.Stdout), nil
}

// DecodeObjects splits multi-document YAML (or JSON) into objects.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objects []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, err
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || string(trimmed) == "null" || string(trimmed) == "{}" {
			continue
		}
		// Through the unstructured JSON scheme: integers stay int64, as in
		// objects read from the API server.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		objects = append(objects, u)
	}
}

// EncodeObjects joins objects into multi-document YAML for kubectl.
func EncodeObjects(objects []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objects {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// LocalWebhookConfigurations takes the Mutating- and
// ValidatingWebhookConfigurations out of a rendered overlay and points them
// at a webhook on this machine. The only change: each clientConfig.service
// becomes clientConfig.url <baseURL><service.path> with caBundle, and the
// cert-manager inject annotation goes (there is no cainjector here). Rules,
// selectors, matchConditions and failure policies stay as shipped, so the
// tests exercise the real registration.
func LocalWebhookConfigurations(rendered []byte, baseURL string, caBundle []byte) ([]*unstructured.Unstructured, error) {
	objects, err := DecodeObjects(rendered)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() != "MutatingWebhookConfiguration" && o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		annotations := o.GetAnnotations()
		delete(annotations, "cert-manager.io/inject-ca-from")
		o.SetAnnotations(annotations)
		hooks, _, err := unstructured.NestedSlice(o.Object, "webhooks")
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		for i, h := range hooks {
			hook, _ := h.(map[string]any)
			path, found, err := unstructured.NestedString(hook, "clientConfig", "service", "path")
			if err != nil || !found {
				return nil, fmt.Errorf("%s %s: webhook %v has no clientConfig.service.path", o.GetKind(), o.GetName(), hook["name"])
			}
			hook["clientConfig"] = map[string]any{
				"url":      strings.TrimSuffix(baseURL, "/") + path,
				"caBundle": base64.StdEncoding.EncodeToString(caBundle),
			}
			hooks[i] = hook
		}
		if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, errors.New("the rendered overlay has no webhook configuration")
	}
	return out, nil
}

// RegisterOverlayWebhooks renders the overlay, points its webhook
// configurations at w and applies them to the cluster. It returns the applied
// configurations.
func RegisterOverlayWebhooks(ctx context.Context, paths Paths, c *Cluster, overlay string, w *Webhook) ([]*unstructured.Unstructured, error) {
	rendered, err := RenderOverlay(ctx, paths, overlay)
	if err != nil {
		return nil, err
	}
	configs, err := LocalWebhookConfigurations(rendered, w.URL, w.CABundle)
	if err != nil {
		return nil, fmt.Errorf("manifests/overlays/%s: %w", overlay, err)
	}
	data, err := EncodeObjects(configs)
	if err != nil {
		return nil, err
	}
	res, err := c.Kubectl(ctx, string(data), "apply", "-f", "-")
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("registering the webhooks of manifests/overlays/%s in %s: %w", overlay, c.Name, err)
	}
	return configs, nil
}

func certPool(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("no certificate in the CA bundle")
	}
	return pool, nil
}

// RenderWithComponents renders manifests/overlays/<overlay> with the
// kustomize components manifests/components/<name>, as an operator's own
// kustomization would (in a temporary directory; kustomize wants relative
// paths).
func RenderWithComponents(ctx context.Context, paths Paths, overlay string, components ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "hcp-ingress-kustomize-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	manifests, err := filepath.Rel(dir, filepath.Join(paths.Root, "manifests"))
	if err != nil {
		return nil, err
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " +
		filepath.ToSlash(filepath.Join(manifests, "overlays", overlay)) + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + filepath.ToSlash(filepath.Join(manifests, "components", c)) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return nil, err
	}
	return kustomize(ctx, paths, dir)
}
