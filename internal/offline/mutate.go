package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Options are the inputs of an offline run besides the documents.
type Options struct {
	Policy *rules.Policy
	// APIServer, from --api-server, is where workloads' CCMs are pointed.
	APIServer *rules.APIServer
	// ChildWiring, from --child-webhook-url, turns on fleet wiring as
	// `serve --child-webhook-url` does: every document is a CREATE, so
	// control planes with ingress get the spec.manifests entry.
	ChildWiring bool
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
	outcomes := make([]Outcome, len(docs))
	err = forEach(len(docs), func(i int) error {
		doc := docs[i]
		outcome := Outcome{Document: doc, Mutated: doc.JSON}
		namespace := doc.Namespace
		if namespace == "" {
			namespace = "default"
		}
		// The reader has the kind already: no second pass to dispatch.
		engine := mutate.Workload
		switch target, ok := mutate.TargetOf(doc.APIVersion, doc.Kind); {
		case !ok:
			outcomes[i] = outcome
			return nil
		case target == mutate.TargetControlPlane:
			engine = mutate.ControlPlane
		}
		result, err := engine(mutate.Input{
			Object:      doc.JSON,
			Operation:   "CREATE",
			Namespace:   namespace,
			Policy:      opts.Policy,
			Classes:     classes,
			APIServer:   apiServer,
			ChildWiring: opts.ChildWiring,
		})
		switch {
		case errors.Is(err, mutate.ErrNotATarget):
			outcomes[i] = outcome
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", doc, err)
		case result.Denied != "":
			return &DeniedError{Document: doc, Reason: result.Denied}
		}
		outcome.Target, outcome.Result = result.Target, result
		if outcome.Mutated, err = applyPatch(doc.JSON, result); err != nil {
			return fmt.Errorf("%s: applying the engine's patch: %w", doc, err)
		}
		outcomes[i] = outcome
		return nil
	})
	if err != nil {
		return nil, err
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
		if doc.APIVersion != "networking.k8s.io/v1" || doc.Kind != "IngressClass" {
			continue
		}
		var ic networkingv1.IngressClass
		if err := json.Unmarshal(doc.JSON, &ic); err != nil {
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
		if target, _ := mutate.TargetOf(doc.APIVersion, doc.Kind); target != mutate.TargetControlPlane {
			continue
		}
		api, ok, err := mutate.ControlPlaneAPIServer(doc.JSON)
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

// forEach runs fn for 0..n-1 on every core and returns the error of the
// lowest index that failed, so that the first bad document of the input is
// the one reported, whatever the scheduling. Documents are independent, and
// converting, admitting and rendering them is all CPU.
func forEach(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
