package offline

import (
	"encoding/json"
	"errors"
	"fmt"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Options are the inputs of an offline run besides the documents.
type Options struct {
	Policy *rules.Policy
	// APIServer, from --api-server, is where workloads' CCMs are pointed.
	APIServer *rules.APIServer
}

// Outcome is the engine's answer for one document. Target is empty for a
// document the webhook does not mutate; such documents pass through.
type Outcome struct {
	Document Document
	Target   mutate.Target
	Result   mutate.Result
	// Mutated is the document's JSON with the patch applied.
	Mutated []byte
}

// DeniedError is returned when the policy rejects a document.
type DeniedError struct {
	Document Document
	Reason   string
}

func (e *DeniedError) Error() string { return fmt.Sprintf("%s: denied: %s", e.Document, e.Reason) }

// Run runs the engine on every document. IngressClass objects in the input
// take part in rule resolution. Workloads get the API server from
// opts.APIServer, else the policy's ccm.apiServer, else the one control
// plane with ingress in the input. The first bad document or denial stops the
// run with an error naming it; no partial output is produced by the caller.
func Run(docs []Document, opts Options) ([]Outcome, error) {
	classes, err := ingressClasses(docs)
	if err != nil {
		return nil, err
	}
	apiServer := opts.APIServer
	if apiServer == nil && opts.Policy.CCM().APIServer() == nil {
		if apiServer, err = onlyControlPlaneAPIServer(docs); err != nil {
			return nil, err
		}
	}
	outcomes := make([]Outcome, 0, len(docs))
	for _, doc := range docs {
		outcome := Outcome{Document: doc, Mutated: doc.JSON}
		namespace := doc.Object.GetNamespace()
		if namespace == "" {
			namespace = "default"
		}
		result, err := mutate.Object(mutate.Input{
			Object:    doc.JSON,
			Operation: "CREATE",
			Namespace: namespace,
			Policy:    opts.Policy,
			Classes:   classes,
			APIServer: apiServer,
		})
		switch {
		case errors.Is(err, mutate.ErrNotATarget):
			outcomes = append(outcomes, outcome)
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: %w", doc, err)
		case result.Denied != "":
			return nil, &DeniedError{Document: doc, Reason: result.Denied}
		}
		outcome.Target, outcome.Result = result.Target, result
		if outcome.Mutated, err = applyPatch(doc.JSON, result); err != nil {
			return nil, fmt.Errorf("%s: applying the engine's patch: %w", doc, err)
		}
		outcomes = append(outcomes, outcome)
	}
	return outcomes, nil
}

func applyPatch(object []byte, result mutate.Result) ([]byte, error) {
	if len(result.Patch) == 0 {
		return object, nil
	}
	raw, err := json.Marshal(result.Patch)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatchapply.DecodePatch(raw)
	if err != nil {
		return nil, err
	}
	return patch.Apply(object)
}

// ingressClasses collects the networking.k8s.io/v1 IngressClass objects of the
// input. Without any, resolution falls back to class-name guesses, as the
// webhook does when it cannot read IngressClasses.
func ingressClasses(docs []Document) (rules.IngressClasses, error) {
	var classes []rules.IngressClass
	for _, doc := range docs {
		if doc.Object.GetAPIVersion() != "networking.k8s.io/v1" || doc.Object.GetKind() != "IngressClass" {
			continue
		}
		var ic networkingv1.IngressClass
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(doc.Object.Object, &ic); err != nil {
			return nil, fmt.Errorf("%s: %w", doc, err)
		}
		classes = append(classes, rules.IngressClassOf(&ic))
	}
	if classes == nil {
		return nil, nil
	}
	return rules.NewStaticClasses(classes...), nil
}

// onlyControlPlaneAPIServer returns the ingress API server of the one control
// plane with ingress in the input, nil when there is none, and an error when
// there are several (which one the CCM belongs to would be a guess).
func onlyControlPlaneAPIServer(docs []Document) (*rules.APIServer, error) {
	var found *rules.APIServer
	var from Document
	for _, doc := range docs {
		if target, _ := mutate.TargetOf(doc.Object.GetAPIVersion(), doc.Object.GetKind()); target != mutate.TargetControlPlane {
			continue
		}
		api, ok, err := mutate.IngressAPIServer(doc.Object.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", doc, err)
		}
		if !ok {
			continue
		}
		if found != nil && *found != *api {
			return nil, fmt.Errorf("%s and %s both have spec.ingress: pass --api-server to say which API server the workloads' CCM must use", from, doc)
		}
		found, from = api, doc
	}
	return found, nil
}
