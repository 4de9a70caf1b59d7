package mutate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The benchmarks compare the engine with what every admission costs anyway:
// decoding the AdmissionReview the API server sends (about 10 KB for a
// control plane with a real k0sConfig) and encoding the response. The engine
// path should stay within twice that baseline, and must not grow with the
// size of the policy. Run them with
//
//	go test -run '^$' -bench . -benchmem ./internal/mutate

// admissionRequestBody is the body of an AdmissionReview request for object.
func admissionRequestBody(b *testing.B, object []byte) []byte {
	b.Helper()
	return reviewBody(b, &admissionv1.AdmissionRequest{
		UID:       types.UID("5f0e2c1d-8a47-4b6e-9d3a-7c2b1e0f4a96"),
		Kind:      metav1.GroupVersionKind{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta1", Kind: "K0smotronControlPlane"},
		Resource:  metav1.GroupVersionResource{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta1", Resource: "k0smotroncontrolplanes"},
		Name:      "tenant-blue-cp",
		Namespace: "tenants",
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: "system:serviceaccount:kcm-system:kcm-controller-manager", Groups: []string{"system:serviceaccounts", "system:authenticated"}},
		Object:    runtime.RawExtension{Raw: object},
		Options:   runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-client-side-apply"}`)},
	})
}

// reviewBody is the body the API server sends for req.
func reviewBody(b *testing.B, req *admissionv1.AdmissionRequest) []byte {
	b.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// decodeReview is the decoding every admission does.
func decodeReview(b *testing.B, body []byte) *admissionv1.AdmissionReview {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		b.Fatalf("decode review: %v", err)
	}
	return &review
}

// encodeResponse is the encoding every admission does.
func encodeResponse(b *testing.B, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) []byte {
	resp.UID = req.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// admit is one whole admission through engine: decode the review, run the
// engine on its object with the rest of in, encode the response with the
// patch, warnings and audit annotations.
func admit(b *testing.B, body []byte, engine func(Input) (Result, error), in Input) []byte {
	review := decodeReview(b, body)
	req := review.Request
	in.Object, in.Operation, in.Namespace = req.Object.Raw, string(req.Operation), req.Namespace
	res, err := engine(in)
	if err != nil {
		b.Fatal(err)
	}
	resp := &admissionv1.AdmissionResponse{Allowed: res.Denied == "", Warnings: res.Warnings, AuditAnnotations: res.AuditAnnotations}
	if res.Denied != "" {
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Message: res.Denied, Code: 403}
	}
	if len(res.Patch) > 0 {
		patch, err := json.Marshal(res.Patch)
		if err != nil {
			b.Fatal(err)
		}
		patchType := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &patchType
	}
	return encodeResponse(b, req, resp)
}

// admitControlPlane is one whole admission of a control plane.
func admitControlPlane(b *testing.B, body []byte, policy *rules.Policy, classes rules.IngressClasses) []byte {
	return admit(b, body, ControlPlane, Input{Policy: policy, Classes: classes})
}

func BenchmarkAdmissionBaseline_ControlPlane(b *testing.B) {
	body := admissionRequestBody(b, largeControlPlane(b))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer measureCPU(b)()
	for b.Loop() {
		review := decodeReview(b, body)
		encodeResponse(b, review.Request, &admissionv1.AdmissionResponse{Allowed: true})
	}
}

func BenchmarkControlPlaneAdmission(b *testing.B) {
	body := admissionRequestBody(b, largeControlPlane(b))
	classes := rules.NewStaticClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer measureCPU(b)()
	for b.Loop() {
		admitControlPlane(b, body, rules.Default(), classes)
	}
}

// BenchmarkControlPlanePolicySize admits the same object under policies with
// more and more ingressClasses rules, each with its own annotation key: the
// cost per request must stay flat, because everything that depends on the
// policy alone is prepared when it loads.
func BenchmarkControlPlanePolicySize(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			policy := policyWithClassRules(b, n)
			class := fmt.Sprintf("class-%d", n/2)
			object := strings.Replace(string(largeControlPlane(b)), `"className":"haproxy"`, `"className":"`+class+`"`, 1)
			body := admissionRequestBody(b, []byte(object))
			classes := rules.NewStaticClasses(rules.IngressClass{Name: class, Controller: "example.com/ingress-controller"})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			defer measureCPU(b)()
			for b.Loop() {
				admitControlPlane(b, body, policy, classes)
			}
		})
	}
}

// policyWithClassRules loads a policy with n ingressClasses rules.
func policyWithClassRules(tb testing.TB, n int) *rules.Policy {
	tb.Helper()
	var doc strings.Builder
	doc.WriteString("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\ningressClasses:\n")
	for i := range n {
		fmt.Fprintf(&doc, "  class-%d:\n    project: Example %d\n    annotations:\n      example.com/passthrough-%d: \"true\"\n", i, i, i)
	}
	p, err := rules.Load("generated.yaml", []byte(doc.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkControlPlaneEngine is the engine alone on the ~10 KB control
// plane, its class confirmed by an IngressClass: decode (spec.k0sConfig and
// the rest it does not read skipped in the same pass), resolve, patch,
// warnings, audit annotations.
func BenchmarkControlPlaneEngine(b *testing.B) {
	review := decodeReview(b, admissionRequestBody(b, largeControlPlane(b)))
	in := Input{
		Object:    review.Request.Object.Raw,
		Operation: "CREATE",
		Namespace: review.Request.Namespace,
		Policy:    rules.Default(),
		Classes:   rules.NewStaticClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}),
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in.Object)))
	defer measureCPU(b)()
	for b.Loop() {
		if _, err := ControlPlane(in); err != nil {
			b.Fatal(err)
		}
	}
}
