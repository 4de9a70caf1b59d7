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
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
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
// handler; measured with BenchmarkServer, that alone caps the server at 0.72x
// the throughput of a minimal webhook that decodes the AdmissionReview with
// encoding/json (docs/performance.md). This handler does what that minimal
// webhook does, plus what controller-runtime gives for free and we must not
// lose: a body size limit, panic recovery, and a response completed by
// admission.Response.Complete (UID, result, JSON patch). It is registered on
// controller-runtime's webhook server, which instruments every path with its
// request metrics.
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
	var review admissionv1.AdmissionReview
	// go-json-experiment (the basis of Go's encoding/json/v2) reads the
	// review in one pass; encoding/json validates the whole body and then
	// decodes it again, and on a 10 KB control plane that double scan was a
	// quarter of the server's CPU (pprof of BenchmarkServer).
	// Duplicate names inside the object are the engine's to report (it
	// decodes the object itself); checking them here too would cost a name
	// set for every nested object of the review.
	if err := jsonv2.Unmarshal(body, &review, jsontext.AllowDuplicateNames(true)); err != nil {
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
	resp := h.handle(ctx, req)
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

// handle runs the handler; a panic becomes an error response (the
// failurePolicy decides) and a log line, never a dead replica.
func (h *ReviewHandler) handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			h.Log.Error(fmt.Errorf("%v", p), "panic in admission handler", "uid", req.UID, "kind", req.Kind.Kind,
				"namespace", req.Namespace, "name", req.Name)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("hcp-ingress: internal error"))
		}
	}()
	return h.Handler.Handle(ctx, req)
}
