package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// PolicyValidator is /validate-policy: it rejects a policy ConfigMap whose
// policy would not load, with every error and its field path, so that
// `kubectl apply` (dry-run included) shows the problem before anything
// changes. Valid but risky settings come back as warnings. Which ConfigMap is
// the policy is the webhook configuration's business (namespace selector and
// a matchCondition on the name).
type PolicyValidator struct{}

var errNoObject = errors.New("no object in the request")

var _ admission.Handler = (*PolicyValidator)(nil)

// Handle implements admission.Handler.
func (v *PolicyValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation == admissionv1.Delete {
		return admission.Allowed("").WithWarnings(
			"hcp-ingress: deleting the policy ConfigMap returns the webhook to its embedded default policy")
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, errNoObject)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(req.Object.Raw, &cm); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding ConfigMap: %w", err))
	}
	p, err := LoadPolicyConfigMap(&cm)
	if err != nil {
		return admission.Denied(fmt.Sprintf("hcp-ingress policy rejected:\n%v", err))
	}
	return admission.Allowed("").WithWarnings(p.Warnings()...)
}
