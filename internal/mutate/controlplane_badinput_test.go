package mutate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Input the API server would not send, or that the CRD schema rejects after
// the mutating webhooks have run: each gives an error naming the field, or a
// documented no-op, and never a panic.
func TestControlPlaneBadInput(t *testing.T) {
	const head = `{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"a"},`
	tests := map[string]struct {
		object    string
		wantErr   string // the error must start with this; "" means no error
		notTarget bool   // the error wraps ErrNotATarget
		wantPatch bool   // a documented case that still mutates
		warning   string // a documented case that warns instead
	}{
		"spec.ingress is a string": {
			object: head + `"spec":{"ingress":"haproxy"}}`, wantErr: "spec.ingress: must be an object, got string",
		},
		"spec.ingress.annotations is a list": {
			object: head + `"spec":{"ingress":{"annotations":["haproxy.org/ssl-passthrough"]}}}`, wantErr: "spec.ingress.annotations: must be an object of strings, got array",
		},
		"an annotation value is a number": {
			object: head + `"spec":{"ingress":{"annotations":{"haproxy.org/ssl-passthrough":1}}}}`, wantErr: "spec.ingress.annotations[haproxy.org/ssl-passthrough]: must be a string, got integer",
		},
		"spec.ingress.className is a number": {
			object: head + `"spec":{"ingress":{"className":5}}}`, wantErr: "spec.ingress.className: must be a string, got integer",
		},
		"spec.ingress.port is a string": {
			object: head + `"spec":{"ingress":{"port":"443"}}}`, wantErr: "spec.ingress.port: must be a number, got string",
		},
		"spec.version is a number": {
			object: head + `"spec":{"version":1.34,"ingress":{}}}`, wantErr: "spec.version: must be a string, got number",
		},
		"spec.service is a string": {
			object: head + `"spec":{"service":"LoadBalancer","ingress":{}}}`, wantErr: "spec.service: must be an object, got string",
		},
		"spec is a list": {
			object: head + `"spec":[{"ingress":{}}]}`, wantErr: "spec: must be an object, got array",
		},
		"the template's ingress is a list": {
			object:  `{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlaneTemplate","metadata":{"name":"a"},"spec":{"template":{"spec":{"ingress":[]}}}}`,
			wantErr: "spec.template.spec.ingress: must be an object, got array",
		},
		"metadata.labels is a list": {
			object: `{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"labels":["a"]},"spec":{"ingress":{}}}`, wantErr: "metadata.labels: must be an object of strings, got array",
		},
		"a metadata annotation is a boolean": {
			object: `{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"annotations":{"a":true}},"spec":{"ingress":{}}}`, wantErr: "metadata.annotations[a]: must be a string, got boolean",
		},
		"metadata is missing": {
			object: `{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","spec":{"ingress":{"className":"haproxy"}}}`, wantErr: "metadata: missing",
		},
		"metadata is null": {
			object: `{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":null,"spec":{"ingress":{"className":"haproxy"}}}`, wantErr: "metadata: missing",
		},
		"malformed JSON": {
			object: head + `"spec":{"ingress":{"className":"haproxy",}}}`, wantErr: "the object is not valid JSON at byte 149 in spec.ingress: invalid character ','",
		},
		"malformed JSON deep in k0sConfig": {
			object: head + `"spec":{"k0sConfig":{"spec":{"api":{"port":tru}}},"ingress":{"className":"haproxy"}}}`, wantErr: "the object is not valid JSON at byte 155 in spec.k0sConfig.spec.api.port: invalid character",
		},
		"spec of the wrong type is blamed, not spec.ingress": {
			object: head + `"spec":"ingress"}`, wantErr: "spec: must be an object, got string",
		},
		"an ingress port that is not a number": {
			object: head + `"spec":{"ingress":{"port":true}}}`, wantErr: "spec.ingress.port: must be a number, got boolean",
		},
		"a number too large for any decoder": {
			object: head + `"spec":{"ingress":{"port":1e400}}}`, wantErr: "spec.ingress.port: ",
		},
		"a duplicate key is an error naming it": {
			object: head + `"spec":{"ingress":{"className":"mystery","className":"haproxy"}}}`, wantErr: `spec.ingress: duplicate key "className"`,
		},
		"a duplicate top-level key": {
			object: head + `"spec":{"ingress":{"className":"haproxy"}},"spec":{"replicas":1}}`, wantErr: `the object: duplicate key "spec"`,
		},
		"invalid UTF-8 in a value is an error naming the field": {
			object:  head + "\"spec\":{\"ingress\":{\"className\":\"hap\xffroxy\"}}}",
			wantErr: "the object is not valid JSON at byte 144 in spec.ingress.className: invalid UTF-8",
		},
		"truncated JSON": {
			object: head + `"spec":{"ingress":{"className":"hap`, wantErr: "the object is not valid JSON at byte",
		},
		"empty input": {
			object: ``, wantErr: "the object is not valid JSON at byte",
		},
		"a JSON list": {
			object: `[{"kind":"K0smotronControlPlane"}]`, wantErr: "the object: must be an object, got array",
		},
		"a JSON string": {
			object: `"K0smotronControlPlane"`, wantErr: "the object: must be an object, got string",
		},
		"null": {
			object: `null`, wantErr: `kind "" of apiVersion "": not an object the webhook mutates`, notTarget: true,
		},
		"another kind": {
			object: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"ingress":{}}}`, wantErr: `kind "Deployment" of apiVersion "apps/v1": not an object`, notTarget: true,
		},
		"an unknown version of a control plane": {
			object: `{"apiVersion":"controlplane.cluster.x-k8s.io/v1alpha1","kind":"K0smotronControlPlane","metadata":{"name":"a"},"spec":{"ingress":{}}}`, wantErr: "kind", notTarget: true,
		},
		"nesting deeper than any decoder allows": {
			object: head + `"spec":{"k0sConfig":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"ingress":{}}}`, wantErr: "the object is not valid JSON at byte 10127 in spec.k0sConfig[0][0]",
		},

		// Documented no-ops and warnings.
		"field names are case-sensitive: Spec is not spec (no-op, as for the API server)": {
			object: head + `"Spec":{"ingress":{"className":"haproxy"}}}`,
		},
		"ingress names are case-sensitive too (no-op)": {
			object: head + `"spec":{"Ingress":{"className":"haproxy"}}}`,
		},
		"a port out of range is a warning, not an error": {
			object: head + `"spec":{"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com","port":99999}}}`, wantPatch: true,
			warning: "spec.ingress.port 99999 is not a port number (an integer from 1 to 65535)",
		},
		"a negative port is a warning, not an error": {
			object: head + `"spec":{"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com","port":-1}}}`, wantPatch: true,
			warning: "spec.ingress.port -1 is not a port number",
		},
		"a fractional port is a warning, never truncated": {
			object: head + `"spec":{"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com","port":443.5}}}`, wantPatch: true,
			warning: "spec.ingress.port 443.5 is not a port number",
		},
		"a huge port number is a warning, not an error": {
			object: head + `"spec":{"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com","port":1e300}}}`, wantPatch: true,
			warning: "spec.ingress.port 1e+300 is not a port number",
		},
		"escaped keys are read as the API server reads them": {
			object: head + `"\u0073pec":{"ingress":{"class\u004eame":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com"}}}`, wantPatch: true,
		},
		"an annotations map with null values": {
			object:    head + `"spec":{"ingress":{"className":"haproxy","apiHost":"api.example.com","konnectivityHost":"k.example.com","annotations":{"haproxy.org/ssl-passthrough":null}}}}`,
			warning:   `kept haproxy.org/ssl-passthrough: ""`,
			wantPatch: false,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := Input{Object: []byte(tc.object), Operation: "CREATE", Policy: rules.Default()}
			res, err := ControlPlane(in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; result %+v", res)
				}
				if !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Errorf("error = %q, want it to start with %q", err, tc.wantErr)
				}
				if errors.Is(err, ErrNotATarget) != tc.notTarget {
					t.Errorf("errors.Is(err, ErrNotATarget) = %t, want %t", !tc.notTarget, tc.notTarget)
				}
				if len(res.Patch) > 0 || len(res.Warnings) > 0 {
					t.Errorf("an error came with a result: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if (len(res.Patch) > 0) != tc.wantPatch {
				t.Errorf("patch = %v, want a patch: %t", res.Patch, tc.wantPatch)
			}
			if tc.warning != "" {
				assertWarnings(t, res.Warnings, []string{tc.warning})
			}
			checkInvariants(t, ControlPlane, controlPlanePath, in, res)
		})
	}
}

// A 10 MB control plane (a huge k0sConfig) is processed like any other, in
// reasonable time. The API server's own limits are lower (3 MB requests,
// 1.5 MB objects in etcd), so this is the worst the webhook can see.
func TestControlPlaneTenMegabyteObject(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"big"},"spec":{"k0sConfig":{"spec":{"extensions":{"helm":{"charts":[`)
	chart := `{"name":"chart","values":"` + strings.Repeat(`key: \"value with \\\"quotes\\\"\"\n`, 64) + `","order":1},`
	for b.Len() < 10<<20 {
		b.WriteString(chart)
	}
	b.WriteString(`{"name":"last"}]}}}},"ingress":{"className":"nginx","apiHost":"api.example.com","konnectivityHost":"k.example.com"}}}`)
	in := Input{Object: b.Bytes(), Operation: "CREATE", Policy: rules.Default()}
	start := time.Now()
	res, err := ControlPlane(in)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patch) != 2 {
		t.Errorf("patch = %v, want the annotations and the record", res.Patch)
	}
	if elapsed > 5*time.Second {
		t.Errorf("a 10 MB object took %v", elapsed)
	}
	t.Logf("%d bytes in %v", b.Len(), elapsed)
	start = time.Now()
	checkInvariants(t, ControlPlane, controlPlanePath, in, res)
	t.Logf("invariants in %v", time.Since(start))
}
