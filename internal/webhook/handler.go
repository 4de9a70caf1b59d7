package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// ClassSource returns the current view of IngressClasses: nil, nil when there
// is no cluster to read them from (classes are then guessed, with a warning);
// an error while the view is syncing (nothing may be guessed then).
type ClassSource func() (rules.IngressClasses, error)

// ControlPlaneLookup finds the ingress API server of the control plane
// NAMESPACE/NAME in the management cluster (management-hosted topology).
type ControlPlaneLookup interface {
	IngressAPIServer(ctx context.Context, namespace, name string) (api *rules.APIServer, found string, err error)
}

// Admitter is the admission.Handler of one target. It does the fast exits,
// runs the engine with the policy in force, and turns the result into an
// admission response with warnings and audit annotations.
type Admitter struct {
	Target   mutate.Target
	Policies *PolicyStore
	Classes  ClassSource
	// ControlPlanes is set on the management-hosted workload path only.
	ControlPlanes ControlPlaneLookup
	// OwnNamespace is never mutated, so the webhook cannot lock itself out.
	OwnNamespace string
	// ChildWiring turns on fleet wiring (serve --child-webhook-url): the
	// control plane engine appends the child's webhook configuration to
	// spec.manifests (mutate.Input.ChildWiring).
	ChildWiring bool
	// Routes is set with serve --routes: a rule that names a route kind is
	// handled by the routes controller, not unsupported.
	Routes  bool
	Metrics *Metrics
}

var _ admission.Handler = (*Admitter)(nil)

type controlPlaneKey struct{}

// controlPlaneRef is NAMESPACE/NAME taken from /mutate-workload/NS/NAME.
type controlPlaneRef struct{ namespace, name string }

// withControlPlaneFromPath puts the control plane named in the URL path into
// the request context; admission.Request itself carries no URL.
func withControlPlaneFromPath(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, controlPlaneKey{}, controlPlaneRef{r.PathValue("namespace"), r.PathValue("name")})
}

// Handle implements admission.Handler.
func (a *Admitter) Handle(ctx context.Context, req admission.Request) admission.Response {
	return a.handleDecoded(ctx, req, nil)
}

func (a *Admitter) target() mutate.Target { return a.Target }

// handleDecoded admits req; obj, when not nil, is req's object as the
// engine's decoder read it in the review's own pass (ReviewHandler), which
// the engine then does not read again.
func (a *Admitter) handleDecoded(ctx context.Context, req admission.Request, obj *mutate.Decoded) admission.Response {
	// Fast exits first: nothing below is worth doing for these.
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	if a.OwnNamespace != "" && req.Namespace == a.OwnNamespace {
		return admission.Allowed("")
	}
	state := a.Policies.Current()
	if state == nil { // not ready; failurePolicy decides
		return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("hcp-ingress: no policy loaded yet"))
	}
	in := mutate.Input{
		Object:    req.Object.Raw,
		Decoded:   obj,
		Operation: string(req.Operation),
		Namespace: req.Namespace,
		Policy:    state.Policy,
		// Fleet wiring appends to spec.manifests on UPDATE only when the
		// update itself changes it, which takes the old object.
		ChildWiring: a.ChildWiring,
		OldObject:   req.OldObject.Raw,
		Routes:      a.Routes,
	}
	if a.Classes != nil && a.Target == mutate.TargetControlPlane {
		classes, err := a.Classes()
		if err != nil {
			// Not ready: failurePolicy decides, and the client retries.
			a.Metrics.admitted(a.Target, "error", nil)
			return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("hcp-ingress: %w; retry shortly", err))
		}
		in.Classes = classes
	}
	if ref, ok := ctx.Value(controlPlaneKey{}).(controlPlaneRef); ok {
		// Looked up only once the engine has found a CCM target.
		in.ManagementHosted = true
		in.LookupAPIServer = func() (*rules.APIServer, string) { return a.apiServerFromControlPlane(ctx, ref) }
	}

	var res mutate.Result
	var err error
	if a.Target == mutate.TargetControlPlane {
		res, err = mutate.ControlPlane(in)
	} else {
		res, err = mutate.Workload(in)
	}
	if err != nil {
		// The API server validates the object's schema itself; an object the
		// engine cannot read is let through unchanged, with the reason.
		a.Metrics.admitted(a.Target, "error", nil)
		return admission.Allowed("").WithWarnings(fmt.Sprintf("hcp-ingress: object left unchanged: %v", err))
	}
	if res.Denied != "" {
		a.Metrics.admitted(a.Target, "denied", &res)
		resp := admission.Denied(res.Denied).WithWarnings(res.Warnings...)
		resp.AuditAnnotations = res.AuditAnnotations
		return resp
	}
	outcome := "unchanged"
	if len(res.Patch) > 0 {
		outcome = "patched"
	}
	a.Metrics.admitted(a.Target, outcome, &res)
	audit := res.AuditAnnotations
	if len(res.Patch) > 0 {
		if audit == nil {
			audit = map[string]string{}
		}
		audit["policy-generation"] = strconv.FormatInt(state.Generation, 10)
	}
	return admission.Response{
		Patches: res.Patch,
		AdmissionResponse: admissionv1.AdmissionResponse{
			Allowed:          true,
			Warnings:         res.Warnings,
			AuditAnnotations: audit,
		},
	}
}

// apiServerFromControlPlane reads host and port from the control plane named
// in the path. A path naming no control plane with ingress is allowed
// unchanged, with a warning that says why.
func (a *Admitter) apiServerFromControlPlane(ctx context.Context, ref controlPlaneRef) (*rules.APIServer, string) {
	if a.ControlPlanes == nil {
		return nil, fmt.Sprintf("hcp-ingress: control plane %s/%s cannot be read: the webhook has no access to the management cluster; nothing injected", ref.namespace, ref.name)
	}
	api, kind, err := a.ControlPlanes.IngressAPIServer(ctx, ref.namespace, ref.name)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("hcp-ingress: control plane %s/%s: %v; nothing injected", ref.namespace, ref.name, err)
	case kind == "":
		return nil, fmt.Sprintf("hcp-ingress: no K0smotronControlPlane or k0smotron Cluster %s/%s in the management cluster; nothing injected", ref.namespace, ref.name)
	case api == nil:
		return nil, fmt.Sprintf("hcp-ingress: %s %s/%s has no spec.ingress.apiHost; nothing injected", kind, ref.namespace, ref.name)
	}
	return api, ""
}
