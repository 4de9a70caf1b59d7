package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

const haproxyControlPlane = `{
  "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
  "kind": "K0smotronControlPlane",
  "metadata": {"name": "cp", "namespace": "tenants"},
  "spec": {"version": "v1.34.1-k0s.0", "k0sConfig": {"spec": {"x": 1}},
           "ingress": {"className": "haproxy", "apiHost": "api.cp.example.com", "konnectivityHost": "konn.cp.example.com"}}
}`

const ccmDaemonSet = `{
  "apiVersion": "apps/v1", "kind": "DaemonSet",
  "metadata": {"name": "openstack-cloud-controller-manager", "namespace": "kube-system"},
  "spec": {"template": {"metadata": {"labels": {"k8s-app": "openstack-cloud-controller-manager"}},
    "spec": {"containers": [{"name": "openstack-cloud-controller-manager",
      "image": "registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.34.0",
      "args": ["/bin/openstack-cloud-controller-manager", "--cloud-provider=openstack"]}]}}}
}`

func request(op admissionv1.Operation, namespace, object string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Operation: op,
		Namespace: namespace,
		Object:    runtime.RawExtension{Raw: []byte(object)},
	}}
}

func withOldObject(req admission.Request, old string) admission.Request {
	req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	return req
}

func storeWith(t testing.TB, p *rules.Policy) *PolicyStore {
	t.Helper()
	s := NewPolicyStore(NewMetrics(nil))
	if p != nil {
		s.Set(p, "test")
	}
	return s
}

// staticLookup answers control plane lookups from a map, standing in for the
// informer cache in these adapter tests; e2e covers the real one.
type staticLookup map[string]*rules.APIServer

func (s staticLookup) IngressAPIServer(_ context.Context, namespace, name string) (*rules.APIServer, string, error) {
	api, ok := s[namespace+"/"+name]
	if !ok {
		return nil, "", nil
	}
	return api, "K0smotronControlPlane", nil
}

func patchPaths(resp admission.Response) string {
	var paths []string
	for _, op := range resp.Patches {
		value, _ := json.Marshal(op.Value)
		paths = append(paths, op.Operation+" "+op.Path+" "+string(value))
	}
	return strings.Join(paths, "\n")
}

func TestAdmitter(t *testing.T) {
	community := rules.NewStaticClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy-ingress.github.io/controller"})
	cases := map[string]struct {
		admitter   Admitter
		policy     string // policy document; the embedded default when empty
		req        admission.Request
		ctx        context.Context
		allowed    bool
		code       int32
		patchHas   string
		noPatch    bool
		warningHas string
	}{
		"delete is let through before any decoding": {
			admitter: Admitter{Target: mutate.TargetControlPlane},
			req:      request(admissionv1.Delete, "tenants", "not json"),
			allowed:  true, noPatch: true,
		},
		"own namespace is never mutated": {
			admitter: Admitter{Target: mutate.TargetControlPlane, OwnNamespace: "hcp-ingress-system"},
			req:      request(admissionv1.Create, "hcp-ingress-system", "not json"),
			allowed:  true, noPatch: true,
		},
		"no policy loaded yet is an error the failurePolicy decides on": {
			admitter: Admitter{Target: mutate.TargetControlPlane},
			req:      request(admissionv1.Create, "tenants", haproxyControlPlane),
			allowed:  false, code: http.StatusServiceUnavailable,
		},
		"class haproxy served by the community controller": {
			admitter: Admitter{Target: mutate.TargetControlPlane, Classes: func() (rules.IngressClasses, error) { return community, nil }},
			req:      request(admissionv1.Create, "tenants", haproxyControlPlane),
			allowed:  true, patchHas: "haproxy-ingress.github.io/ssl-passthrough", warningHas: "haproxy-ingress.github.io/ssl-passthrough",
		},
		"class haproxy with no IngressClass readable is guessed": {
			admitter: Admitter{Target: mutate.TargetControlPlane, Classes: func() (rules.IngressClasses, error) { return nil, nil }},
			req:      request(admissionv1.Create, "tenants", haproxyControlPlane),
			allowed:  true, patchHas: "haproxy.org/ssl-passthrough",
		},
		"class haproxy while the IngressClass view is syncing is never guessed": {
			admitter: Admitter{Target: mutate.TargetControlPlane, Classes: func() (rules.IngressClasses, error) { return nil, errClassesSyncing }},
			req:      request(admissionv1.Create, "tenants", haproxyControlPlane),
			allowed:  false, code: http.StatusServiceUnavailable,
		},
		"an object the engine cannot read is let through with the reason": {
			admitter: Admitter{Target: mutate.TargetControlPlane},
			req:      request(admissionv1.Create, "tenants", `{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"x"},"spec":{"ingress":"nope"}}`),
			allowed:  true, noPatch: true, warningHas: "spec.ingress",
		},
		"fleet wiring appends the child's manifests entry on create": {
			admitter: Admitter{Target: mutate.TargetControlPlane, ChildWiring: true},
			req:      request(admissionv1.Create, "tenants", haproxyControlPlane),
			allowed:  true, patchHas: `add /spec/manifests [{"name":"hcp-ingress-child","configMap":{"name":"hcp-ingress-child-cp","optional":true}}]`,
			warningHas: "fleet wiring",
		},
		"fleet wiring leaves an update that does not change spec.manifests alone": {
			admitter: Admitter{Target: mutate.TargetControlPlane, ChildWiring: true},
			req:      withOldObject(request(admissionv1.Update, "tenants", haproxyControlPlane), haproxyControlPlane),
			allowed:  true, warningHas: "haproxy.org/ssl-passthrough",
		},
		"fleet wiring appends on an update that changes spec.manifests": {
			admitter: Admitter{Target: mutate.TargetControlPlane, ChildWiring: true},
			req: withOldObject(request(admissionv1.Update, "tenants", strings.Replace(haproxyControlPlane, `"version"`, `"manifests":[{"name":"charts-v2"}],"version"`, 1)),
				strings.Replace(haproxyControlPlane, `"version"`, `"manifests":[{"name":"charts-v1"}],"version"`, 1)),
			allowed: true, patchHas: `add /spec/manifests/- {"name":"hcp-ingress-child"`,
		},
		"management-hosted path injects the control plane's ingress host": {
			admitter: Admitter{Target: mutate.TargetWorkload, ControlPlanes: staticLookup{"tenants/cp": {Host: "api.cp.example.com", Port: 443}}},
			req:      request(admissionv1.Create, "kube-system", ccmDaemonSet),
			ctx:      context.WithValue(context.Background(), controlPlaneKey{}, controlPlaneRef{"tenants", "cp"}),
			allowed:  true, patchHas: "/spec/template/spec/containers/0/env",
		},
		"management-hosted path naming no control plane never falls back to the policy's in-child host": {
			admitter: Admitter{Target: mutate.TargetWorkload, ControlPlanes: staticLookup{}},
			policy:   "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nccm:\n  apiServer:\n    host: api.in-child.example.com\n",
			req:      request(admissionv1.Create, "kube-system", ccmDaemonSet),
			ctx:      context.WithValue(context.Background(), controlPlaneKey{}, controlPlaneRef{"tenants", "absent"}),
			allowed:  true, noPatch: true, warningHas: "tenants/absent",
		},
		"management-hosted path naming no control plane is allowed unchanged with a warning": {
			admitter: Admitter{Target: mutate.TargetWorkload, ControlPlanes: staticLookup{}},
			req:      request(admissionv1.Create, "kube-system", ccmDaemonSet),
			ctx:      context.WithValue(context.Background(), controlPlaneKey{}, controlPlaneRef{"tenants", "absent"}),
			allowed:  true, noPatch: true, warningHas: "tenants/absent",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := tc.admitter
			switch {
			case name == "no policy loaded yet is an error the failurePolicy decides on":
				a.Policies = storeWith(t, nil)
			case tc.policy != "":
				p, err := rules.Load("policy.yaml", []byte(tc.policy))
				if err != nil {
					t.Fatal(err)
				}
				a.Policies = storeWith(t, p)
			default:
				a.Policies = storeWith(t, rules.Default())
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			resp := a.Handle(ctx, tc.req)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if tc.code != 0 && resp.Result.Code != tc.code {
				t.Errorf("code = %d, want %d", resp.Result.Code, tc.code)
			}
			paths := patchPaths(resp)
			if (tc.noPatch || tc.patchHas == "") && strings.Contains(paths, "/spec/manifests") {
				t.Errorf("unexpected spec.manifests patch:\n%s", paths)
			}
			if tc.noPatch && paths != "" {
				t.Errorf("unexpected patch:\n%s", paths)
			}
			if tc.patchHas != "" && !strings.Contains(paths, tc.patchHas) {
				t.Errorf("patch lacks %q:\n%s", tc.patchHas, paths)
			}
			if tc.warningHas != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.warningHas) {
				t.Errorf("warnings lack %q: %q", tc.warningHas, resp.Warnings)
			}
		})
	}
}

// TestWorkloadPathOverHTTP drives the management-hosted path through the
// webhook's HTTP handler, so the path parameters reach the engine.
func TestWorkloadPathOverHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(PathWorkloadControlPlane, &admission.Webhook{
		Handler: &Admitter{Target: mutate.TargetWorkload, Policies: storeWith(t, rules.Default()),
			ControlPlanes: staticLookup{"tenants/cp": {Host: "api.cp.example.com", Port: 8443}}},
		WithContextFunc: withControlPlaneFromPath,
	})
	admissionReq := request(admissionv1.Create, "kube-system", ccmDaemonSet).AdmissionRequest
	review := admissionv1.AdmissionReview{Request: &admissionReq}
	review.APIVersion, review.Kind = "admission.k8s.io/v1", "AdmissionReview"
	body, _ := json.Marshal(review)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mutate-workload/tenants/cp", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	mux.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	if out.Response == nil || !out.Response.Allowed || !strings.Contains(string(out.Response.Patch), "8443") {
		t.Fatalf("unexpected response: %s", rec.Body.String())
	}
}
