package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func TestReviewHandler(t *testing.T) {
	admitter := &Admitter{Target: mutate.TargetControlPlane, Policies: storeWith(t, rules.Default()), Classes: func() (rules.IngressClasses, error) { return nil, nil }}
	panics := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { panic("boom") })
	cases := map[string]struct {
		handler  admission.Handler
		method   string
		body     string
		wantCode int
		check    func(t *testing.T, resp *admissionv1.AdmissionResponse)
	}{
		"a control plane is patched and the response carries the request's uid": {
			handler: admitter, body: string(reviewBody(t, haproxyControlPlane)), wantCode: http.StatusOK,
			check: func(t *testing.T, resp *admissionv1.AdmissionResponse) {
				if resp.UID != "uid-1" || !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch ||
					!bytes.Contains(resp.Patch, []byte(`"haproxy.org/ssl-passthrough":"true"`)) {
					t.Fatalf("response = uid %q allowed %v patch %s", resp.UID, resp.Allowed, resp.Patch)
				}
			},
		},
		"a panicking handler answers 500 inside the review, the server lives on": {
			handler: panics, body: string(reviewBody(t, haproxyControlPlane)), wantCode: http.StatusOK,
			check: func(t *testing.T, resp *admissionv1.AdmissionResponse) {
				if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError || resp.UID != "uid-1" {
					t.Fatalf("response = %+v", resp)
				}
			},
		},
		"an object with a duplicate key is read again from its raw bytes, and the warning names the key's path": {
			handler: admitter, body: string(reviewBody(t, strings.Replace(haproxyControlPlane, `"className": "haproxy"`, `"className": "haproxy", "className": "nginx"`, 1))),
			wantCode: http.StatusOK,
			check: func(t *testing.T, resp *admissionv1.AdmissionResponse) {
				if !resp.Allowed || len(resp.Patch) > 0 || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `spec.ingress: duplicate key "className"`) {
					t.Fatalf("response = allowed %v patch %s warnings %q", resp.Allowed, resp.Patch, resp.Warnings)
				}
			},
		},
		"a body that is not JSON is a bad request":    {handler: admitter, body: "{", wantCode: http.StatusBadRequest},
		"a review without a request is a bad request": {handler: admitter, body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, wantCode: http.StatusBadRequest},
		"a GET is not an admission review":            {handler: admitter, method: http.MethodGet, wantCode: http.StatusMethodNotAllowed},
		"a body over the limit is refused unread":     {handler: admitter, body: `{"request":{"uid":"` + strings.Repeat("x", 2048) + `"}}`, wantCode: http.StatusRequestEntityTooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := &ReviewHandler{Handler: tc.handler, Log: logr.Discard(), MaxBytes: 1024 + int64(len(reviewBody(t, haproxyControlPlane)))}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/mutate-controlplane", strings.NewReader(tc.body)))
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.check == nil {
				return
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
				t.Fatalf("decoding %s: %v", rec.Body, err)
			}
			if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
				t.Errorf("response review is %s %s", review.APIVersion, review.Kind)
			}
			tc.check(t, review.Response)
		})
	}
}

// TestReviewHandlerCutsOffATrickledBody: a client that sends headers and then
// trickles the body must not hold its connection (and a goroutine) forever.
func TestReviewHandlerCutsOffATrickledBody(t *testing.T) {
	h := &ReviewHandler{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	}), Log: logr.Discard(), ReadTimeout: 300 * time.Millisecond}
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		// One byte every 50 ms, far longer than the deadline allows.
		for i := 0; i < 200; i++ {
			if _, err := conn.Write([]byte(" ")); err != nil {
				closed <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		closed <- nil
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400 after the read deadline", resp.StatusCode)
		}
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the trickling client held the connection for %s; the deadline is 300ms", elapsed)
	}
}

// TestReviewBodyIsNotAllocatedFromContentLengthAlone: a client that announces
// the largest body allowed and sends two bytes makes the server allocate
// about what arrived, not what was announced.
func TestReviewBodyIsNotAllocatedFromContentLengthAlone(t *testing.T) {
	// The least of five reads, so that another goroutine's allocations in
	// the same moment cannot fail the test.
	allocated := uint64(math.MaxUint64)
	for range 5 {
		r := httptest.NewRequest(http.MethodPost, PathControlPlane, strings.NewReader("{}"))
		r.ContentLength = reviewMaxBytes
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readBody(httptest.NewRecorder(), r, reviewMaxBytes)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		allocated = min(allocated, after.TotalAlloc-before.TotalAlloc)
	}
	if allocated > reviewPreallocBytes {
		t.Fatalf("reading a 2-byte body announced as %d bytes allocated %d bytes", reviewMaxBytes, allocated)
	}
}

// TestReviewBodyOfContentLength reads a body of exactly its Content-Length
// into one buffer, and a body shorter than announced is an error.
func TestReviewBodyOfContentLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, PathControlPlane, strings.NewReader(`{"request":{}}`))
	body, err := readBody(httptest.NewRecorder(), r, reviewMaxBytes)
	if err != nil || string(body) != `{"request":{}}` || cap(body) != len(body) {
		t.Fatalf("readBody = %q (cap %d), %v", body, cap(body), err)
	}
	r = httptest.NewRequest(http.MethodPost, PathControlPlane, strings.NewReader(`{}`))
	r.ContentLength = 10
	if _, err := readBody(httptest.NewRecorder(), r, reviewMaxBytes); err == nil {
		t.Fatal("a body shorter than its Content-Length was read without error")
	}
}

// recordingAdmitter records what the ReviewHandler gave the engine.
type recordingAdmitter struct {
	*Admitter
	decoded *mutate.Decoded
	raw     []byte
}

func (r *recordingAdmitter) handleDecoded(ctx context.Context, req admission.Request, obj *mutate.Decoded) admission.Response {
	r.decoded, r.raw = obj, req.Object.Raw
	return r.Admitter.handleDecoded(ctx, req, obj)
}

// TestReviewHandlerReadsTheObjectOnce: the engine gets the object as read in
// the review's own pass, not its raw bytes to read again; an object that pass
// cannot read reaches the engine as raw bytes.
func TestReviewHandlerReadsTheObjectOnce(t *testing.T) {
	for name, tc := range map[string]struct {
		object  string
		onePass bool
	}{
		"a control plane":                 {haproxyControlPlane, true},
		"a control plane with a dup. key": {strings.Replace(haproxyControlPlane, `"className": "haproxy"`, `"className": "haproxy", "className": "nginx"`, 1), false},
	} {
		t.Run(name, func(t *testing.T) {
			r := &recordingAdmitter{Admitter: &Admitter{Target: mutate.TargetControlPlane, Policies: storeWith(t, rules.Default()), Classes: func() (rules.IngressClasses, error) { return nil, nil }}}
			h := &ReviewHandler{Handler: r, Log: logr.Discard()}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathControlPlane, bytes.NewReader(reviewBody(t, tc.object))))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if (r.decoded != nil) != tc.onePass || (len(r.raw) == 0) != tc.onePass {
				t.Fatalf("decoded in the review's pass: %v, raw bytes: %d; want one pass: %v", r.decoded != nil, len(r.raw), tc.onePass)
			}
		})
	}
}
