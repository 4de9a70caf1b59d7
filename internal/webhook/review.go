package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
)

// Limits of one admission request. The API server sends an AdmissionReview at
// once, so a body that takes longer than reviewReadTimeout is a client that
// trickles it on purpose; reviewMaxBytes is controller-runtime's own limit (an
// AdmissionReview carries the object and the old object, each up to etcd's
// 1.5 MiB).
const (
	reviewMaxBytes    = 7 << 20
	reviewReadTimeout = 10 * time.Second
	// reviewPreallocBytes bounds what a Content-Length alone can make the
	// server allocate before the bytes arrive (see readBody).
	reviewPreallocBytes = 64 << 10
)

// ReviewHandler serves one admission path with a single decode per request.
//
// controller-runtime's admission.Webhook decodes the body through the
// runtime scheme's universal deserializer and then hands a copy to the
// handler; measured with BenchmarkServer, that alone caps the server at
// 0.75-0.80x the throughput of a minimal webhook that decodes the
// AdmissionReview with encoding/json (docs/performance.md). This handler
// does what that minimal webhook does, in one pass over the review and its
// object (see decode), plus what controller-runtime gives for free and we
// must not lose: a body size limit, panic recovery, and a response completed
// by admission.Response.Complete (UID, result, JSON patch). It is registered
// on controller-runtime's webhook server, which instruments every path with
// its request metrics.
type ReviewHandler struct {
	Handler admission.Handler
	// WithControlPlaneFromPath puts NAMESPACE/NAME of the URL path into the
	// context (the management-hosted workload path).
	WithControlPlaneFromPath bool
	Log                      logr.Logger
	// MaxBytes and ReadTimeout override reviewMaxBytes and reviewReadTimeout
	// (tests).
	MaxBytes    int64
	ReadTimeout time.Duration
}

func (h *ReviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	timeout := h.ReadTimeout
	if timeout <= 0 {
		timeout = reviewReadTimeout
	}
	limit := h.MaxBytes
	if limit <= 0 {
		limit = reviewMaxBytes
	}
	// The server's ReadHeaderTimeout bounds the headers; this bounds the body.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("admission review larger than %d bytes", limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the admission review: "+err.Error(), http.StatusBadRequest)
		return
	}
	review, decoded, err := h.decode(body)
	if err != nil {
		http.Error(w, "decoding the admission review: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(w, "the admission review has no request", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	if h.WithControlPlaneFromPath {
		ctx = withControlPlaneFromPath(ctx, r)
	}
	req := admission.Request{AdmissionRequest: *review.Request}
	resp := h.handle(ctx, req, decoded)
	if err := resp.Complete(req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, err)
		_ = resp.Complete(req)
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: &resp.AdmissionResponse}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = admissionv1.SchemeGroupVersion.String(), "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		h.Log.Error(err, "writing the admission response", "uid", req.UID)
	}
}

// readBody reads the whole body, at most limit bytes. A body whose
// Content-Length is at most reviewPreallocBytes (the API server always sends
// one; net/http ends such a body at its length) is read into one buffer of
// that size: io.ReadAll grows its buffer from 512 bytes, five copies for a
// 10 KB control plane, and that growth was 3% of the server's CPU in a
// profile of BenchmarkServer. Larger bodies grow as bytes arrive, so that a
// client announcing megabytes it never sends cannot make the server allocate
// them.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > min(limit, reviewPreallocBytes) {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// objectHandler is an admission.Handler (Admitter) that also takes its
// object as the engine's decoder read it in the review's own pass.
type objectHandler interface {
	admission.Handler
	target() mutate.Target
	handleDecoded(ctx context.Context, req admission.Request, obj *mutate.Decoded) admission.Response
}

// decodedReview is an AdmissionReview whose request.object is read by the
// engine's decoder (mutate.Decoded) in the same pass as the rest.
type decodedReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *decodedRequest `json:"request"`
}

type decodedRequest struct {
	admissionv1.AdmissionRequest `json:",inline"`
	// Object takes the place of AdmissionRequest.Object, whose Raw stays
	// empty.
	Object *mutate.Decoded `json:"object"`
}

// decode reads the review; the request is nil when the review has none.
//
// For an objectHandler, the object is read by the engine's decoder in the
// same pass (go-json-experiment, the basis of Go's encoding/json/v2), so
// that its bytes, ~10 KB for a control plane, are read once per request:
// reading the review first and the object again took one pass more over
// them, 56.3 µs against 43.6 µs and 33 KiB against 24 KiB per admission of
// the control plane (BenchmarkReviewHandler, medians of 6).
//
// If that pass fails (a duplicate or mistyped field of the object, bad
// JSON), the review is read the plain way, so that the engine reads the
// object from its raw bytes and its error names the object's own field
// path; duplicate names outside the object are allowed there, as the engine
// is the one to report those it reads.
//
// encoding/json validates the whole body and then decodes it again, and on
// a 10 KB control plane that double scan was a quarter of the server's CPU
// (pprof of BenchmarkServer): no path uses it.
func (h *ReviewHandler) decode(body []byte) (admissionv1.AdmissionReview, *mutate.Decoded, error) {
	if oh, ok := h.Handler.(objectHandler); ok {
		var review decodedReview
		if err := jsonv2.Unmarshal(body, &review, mutate.DecodeOptionsFor(oh.target())); err == nil {
			if review.Request == nil {
				return admissionv1.AdmissionReview{TypeMeta: review.TypeMeta}, nil, nil
			}
			return admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Request: &review.Request.AdmissionRequest}, review.Request.Object, nil
		}
	}
	var review admissionv1.AdmissionReview
	err := jsonv2.Unmarshal(body, &review, jsontext.AllowDuplicateNames(true))
	return review, nil, err
}

// handle runs the handler; a panic becomes an error response (the
// failurePolicy decides) and a log line, never a dead replica.
func (h *ReviewHandler) handle(ctx context.Context, req admission.Request, obj *mutate.Decoded) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			h.Log.Error(fmt.Errorf("%v", p), "panic in admission handler", "uid", req.UID, "kind", req.Kind.Kind,
				"namespace", req.Namespace, "name", req.Name)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("hcp-ingress: internal error"))
		}
	}()
	if oh, ok := h.Handler.(objectHandler); ok {
		return oh.handleDecoded(ctx, req, obj)
	}
	return h.Handler.Handle(ctx, req)
}
