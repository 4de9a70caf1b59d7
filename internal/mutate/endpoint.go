package mutate

import (
	"fmt"
	"math"
	"strconv"

	"github.com/go-json-experiment/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// port returns spec.ingress.port, 0 when unset (k0smotron then uses 443). A
// number that is not an integer from 1 to 65535 is an error: never
// truncated, so that 443.9 is not taken for 443.
func (g *ingressSpec) port() (int32, error) {
	if g.Port == nil || *g.Port == 0 {
		return 0, nil
	}
	p := *g.Port
	if p != math.Trunc(p) || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s is not a port number (an integer from 1 to 65535)", strconv.FormatFloat(p, 'g', -1, 64))
	}
	return int32(p), nil
}

// apiServer returns where the control plane's API server is reachable
// through its Ingress: apiHost and port (443 when unset); nil when there is
// no apiHost.
func (g *ingressSpec) apiServer(at string) (*rules.APIServer, error) {
	if g == nil || g.APIHost == "" {
		return nil, nil
	}
	port, err := g.port()
	if err != nil {
		return nil, fmt.Errorf("%s.port: %w", at, err)
	}
	if port == 0 {
		port = rules.DefaultAPIServerPort // k0smotron's default for spec.ingress.port
	}
	return &rules.APIServer{Host: g.APIHost, Port: port}, nil
}

// ControlPlaneAPIServer returns the host and port at which the API server of
// a control plane (the raw JSON of a K0smotronControlPlane or k0smotron
// Cluster) is reachable through its Ingress: spec.ingress.apiHost and
// spec.ingress.port. ok is false when the object has no spec.ingress
// (absent or null) or no apiHost. It reads spec.ingress with the engine's
// own reader, so that what the offline command and the server take from a
// control plane is what the engine sees in it.
func ControlPlaneAPIServer(object []byte) (api *rules.APIServer, ok bool, err error) {
	obj, err := decodeControlPlane(object)
	if err != nil {
		return nil, false, err
	}
	if obj.Spec == nil {
		return nil, false, nil
	}
	api, err = obj.Spec.Ingress.apiServer(controlPlaneIngress.field)
	return api, api != nil, err
}

// IngressAPIServer is ControlPlaneAPIServer for an object already decoded
// into a map (unstructured, as informers hold them). Only spec.ingress,
// a few hundred bytes, is encoded again for the engine's reader.
func IngressAPIServer(object map[string]any) (api *rules.APIServer, ok bool, err error) {
	spec, found := object["spec"]
	if !found || spec == nil {
		return nil, false, nil
	}
	specMap, isMap := spec.(map[string]any)
	if !isMap {
		return nil, false, fmt.Errorf("spec: must be an object, got %s", goValueKind(spec))
	}
	ingress := specMap["ingress"]
	if ingress == nil {
		return nil, false, nil
	}
	raw, err := json.Marshal(ingress)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", controlPlaneIngress.field, err)
	}
	var g ingressSpec
	if err := decodeValue(raw, &g, field.NewPath("spec", "ingress")); err != nil {
		return nil, false, err
	}
	api, err = g.apiServer(controlPlaneIngress.field)
	return api, api != nil, err
}

// goValueKind names the JSON kind of a value of an unstructured object.
func goValueKind(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, int32, int:
		return "integer"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "another type"
}
