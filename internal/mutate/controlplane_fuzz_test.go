package mutate

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	sigsjson "sigs.k8s.io/json"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// fuzzPolicies are the policies FuzzControlPlane picks from: the defaults,
// one that rewrites as much as it can, and one that denies.
var fuzzPolicies = []string{
	"",
	"onConflict: Override\nremoveForeignAnnotations: true\ndefaultIngressClass: nginx\n",
	"onUnknownClass: Deny\n",
}

// FuzzControlPlane feeds the engine arbitrary objects. It must never panic;
// when it accepts an object, every invariant of an admission holds (the
// patch applies, touches only the allowed paths, and a second admission
// changes nothing) and nothing outside those paths changes. The reader must
// agree with Kubernetes' own decoder.
func FuzzControlPlane(f *testing.F) {
	f.Add(largeControlPlane(f), uint8(0))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"a"},"spec":{"ingress":{"className":"haproxy","annotations":{"haproxy.org/ssl-passthrough":"true"}}}}`), uint8(1))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta2","kind":"K0smotronControlPlaneTemplate","metadata":{"name":"a","annotations":{"hcp-ingress.io/mutated":"x"}},"spec":{"template":{"spec":{"version":"v1.33.0+k0s.0","ingress":{"className":"nginx","annotations":null,"port":70000}}}}}`), uint8(4))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"labels":{"hcp-ingress.io/skip":"true"}},"spec":{"ingress":{}}}`), uint8(2))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{},"spec":{"ingress":{"className":"traefik"}},"spec":{"ingress":{"className":"cilium","apiHost":"10.0.0.1"}}}`), uint8(5))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"name":"a"},"spec":{"ingress":{"annotations":{"a~b/c":"\u00ff","nginx.ingress.kubernetes.io/ssl-passthrough":"false"}}}}`), uint8(3))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"name":"a"},"spec":{"manifests":[{"name":"x","configMap":{"name":"y"}}],"ingress":{"className":"haproxy"}}}`), uint8(0x41))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta2","kind":"K0smotronControlPlane","metadata":{"name":"a"},"spec":{"manifests":null,"ingress":{}}}`), uint8(0xc0))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta2","kind":"K0smotronControlPlane","metadata":{"name":"a"},"spec":{"manifests":[null,{"name":"hcp-ingress-child"}],"ingress":{}}}`), uint8(0xc2))
	policies := make([]*rules.Policy, len(fuzzPolicies))
	for i, extra := range fuzzPolicies {
		policies[i] = testPolicy(f, extra)
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		policy := policies[int(mode)%len(policies)]
		var classes rules.IngressClasses
		switch mode / 8 % 3 {
		case 1:
			classes = ingressClasses(rules.IngressClass{Name: "haproxy", Controller: "haproxy-ingress.github.io/controller", IsDefault: true})
		case 2:
			classes = ingressClasses()
		}
		in := Input{Object: data, Operation: "CREATE", Policy: policy, Classes: classes, ChildWiring: mode&0x40 != 0}
		if mode&0x80 != 0 { // an update from an object without manifests
			in.Operation, in.OldObject = "UPDATE", []byte(`{"spec":{}}`)
		}
		checkDecodersAgree[controlPlaneObject](t, data)
		res, err := ControlPlane(in)
		if err != nil {
			return
		}
		out := checkInvariants(t, ControlPlane, controlPlanePath, in, res)
		if len(res.Patch) > 0 {
			assertOnlyAllowedChanges(t, data, out)
		}
	})
}

// checkDecodersAgree holds the engine's reader to a second, independent
// decoder: what it accepts is valid JSON, and reads as Kubernetes' own
// case-sensitive decoder (sigs.k8s.io/json) reads it. Its errors speak JSON,
// not Go.
func checkDecodersAgree[T any](t *testing.T, data []byte) {
	t.Helper()
	got, err := decodeObject[T](data)
	if err != nil {
		if msg := err.Error(); msg == "" || goTypeName.MatchString(msg) {
			t.Fatalf("error %q is empty or names a Go type", msg)
		}
		return
	}
	if !json.Valid(data) {
		t.Fatalf("the reader accepted invalid JSON %q", data)
	}
	want := new(T)
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, want); err != nil {
		t.Fatalf("the reader accepted what sigs.k8s.io/json rejects: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		t.Fatalf("the reader and sigs.k8s.io/json disagree:\nreader %s\nsigs   %s", a, b)
	}
}

// goTypeName matches Go type names that must not reach a user.
var goTypeName = regexp.MustCompile(`float64|int64|int32|map\[|interface|\*mutate\.|\bstruct\b|\[\]string`)

// The reader against sigs.k8s.io/json on hand-picked shapes.
func TestDecoderAgreesWithKubernetesDecoder(t *testing.T) {
	for name, object := range map[string]string{
		"large fixture":      string(largeControlPlane(t)),
		"escaped keys":       `{"\u006bind":"Cluster","spec":{"ingress":{"annotations":{"a\"b":"c\\d","\u00e9":"\ud83d\ude00"}}}}`,
		"whitespace":         " \n{ \"spec\" :\t{ \"ingress\" : { \"port\" : 443 , \"className\" : \"x\" } } , \"kind\" : \"K\" }\n",
		"nulls":              `{"metadata":null,"spec":{"ingress":{"annotations":{"a":null},"className":null,"port":null},"template":null,"service":null}}`,
		"template":           `{"spec":{"template":{"spec":{"ingress":{"className":"a"},"version":"v1"},"metadata":{}}}}`,
		"backslashes":        `{"metadata":{"name":"a\\\\","labels":{"x\\\\":"\\\\\""}},"spec":{"k0sConfig":{"s":"\\\\\\\"]}"},"ingress":{}}}`,
		"numbers and arrays": `{"spec":{"k0sConfig":[1,-2.5e10,[true,false,null],{"a":[]}],"ingress":{"port":-0.0}}}`,
		"empty objects":      `{"metadata":{},"spec":{"ingress":{"annotations":{}},"service":{}}}`,
		"manifests":          `{"spec":{"manifests":[{"name":"a","configMap":{"name":"b"}}],"ingress":{}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeControlPlane([]byte(object)); err != nil {
				t.Fatalf("the reader rejects valid JSON: %v", err)
			}
			checkDecodersAgree[controlPlaneObject](t, []byte(object))
		})
	}
}
