package mutate

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// IngressAPIServer returns the host and port at which a control plane's API
// server is reachable through its Ingress: spec.ingress.apiHost and
// spec.ingress.port (443 when unset). ok is false when the object has no
// spec.ingress or no apiHost. The server reads control planes from an
// informer cache and the offline command from its input; both call this.
func IngressAPIServer(object map[string]any) (api *rules.APIServer, ok bool, err error) {
	ingress, found, err := unstructured.NestedMap(object, "spec", "ingress")
	if err != nil {
		return nil, false, fmt.Errorf("spec.ingress: %w", err)
	}
	if !found || ingress == nil {
		return nil, false, nil
	}
	host, _, err := unstructured.NestedString(ingress, "apiHost")
	if err != nil {
		return nil, false, fmt.Errorf("spec.ingress.apiHost: %w", err)
	}
	if host == "" {
		return nil, false, nil
	}
	port := int64(rules.DefaultAPIServerPort) // k0smotron's default for spec.ingress.port
	switch p := ingress["port"].(type) {
	case nil:
	case int64:
		port = p
	case float64:
		port = int64(p)
	default:
		return nil, false, fmt.Errorf("spec.ingress.port: expected an integer, got %T", p)
	}
	if port < 1 || port > 65535 {
		return nil, false, fmt.Errorf("spec.ingress.port: %d is not a port (1-65535)", port)
	}
	return &rules.APIServer{Host: host, Port: int32(port)}, true, nil
}
