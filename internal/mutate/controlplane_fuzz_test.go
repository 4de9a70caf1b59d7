package mutate

import (
	"encoding/json"
	"reflect"
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
// changes nothing) and nothing outside those paths changes. The member scan
// that reads the object must agree with a full decode.
func FuzzControlPlane(f *testing.F) {
	f.Add(largeControlPlane(f), uint8(0))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta1","kind":"K0smotronControlPlane","metadata":{"name":"a"},"spec":{"ingress":{"className":"haproxy","annotations":{"haproxy.org/ssl-passthrough":"true"}}}}`), uint8(1))
	f.Add([]byte(`{"apiVersion":"controlplane.cluster.x-k8s.io/v1beta2","kind":"K0smotronControlPlaneTemplate","metadata":{"name":"a","annotations":{"hcp-ingress.io/mutated":"x"}},"spec":{"template":{"spec":{"version":"v1.33.0+k0s.0","ingress":{"className":"nginx","annotations":null,"port":70000}}}}}`), uint8(4))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"labels":{"hcp-ingress.io/skip":"true"}},"spec":{"ingress":{}}}`), uint8(2))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta2","kind":"Cluster","metadata":{},"spec":{"ingress":{"className":"traefik"}},"spec":{"ingress":{"className":"cilium","apiHost":"10.0.0.1"}}}`), uint8(5))
	f.Add([]byte(`{"apiVersion":"k0smotron.io/v1beta1","kind":"Cluster","metadata":{"name":"a"},"spec":{"ingress":{"annotations":{"a~b/c":"\u00ff","nginx.ingress.kubernetes.io/ssl-passthrough":"false"}}}}`), uint8(3))
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
		in := Input{Object: data, Operation: "CREATE", Policy: policy, Classes: classes}
		res, err := ControlPlane(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		out := checkInvariants(t, ControlPlane, controlPlanePath, in, res)
		if len(res.Patch) > 0 {
			assertOnlyAllowedChanges(t, data, out)
		}
		checkMemberScan(t, data)
	})
}

// checkMemberScan compares what the member scan reads of valid JSON without
// duplicate keys (where encoding/json merges and the API server takes the
// last) with a full decode.
func checkMemberScan(t *testing.T, data []byte) {
	var generic any
	if strictErrs, err := sigsjson.UnmarshalStrict(data, &generic, sigsjson.DisallowDuplicateFields); err != nil || len(strictErrs) > 0 {
		return
	}
	scanned := &controlPlaneObject{}
	if err := readObjectDocument(data, scanned.member); err != nil {
		return // the full decode decides; ControlPlane falls back to it
	}
	full := &controlPlaneObject{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, full); err != nil {
		t.Fatalf("the member scan read an object the full decode rejects: %v", err)
	}
	if !reflect.DeepEqual(scanned, full) {
		a, _ := json.Marshal(scanned)
		b, _ := json.Marshal(full)
		t.Fatalf("member scan and full decode disagree:\nscan %s\nfull %s", a, b)
	}
}

// The member scan against a full decode on hand-picked shapes.
func TestMemberScanAgreesWithFullDecode(t *testing.T) {
	for name, object := range map[string]string{
		"large fixture":      string(largeControlPlane(t)),
		"escaped keys":       `{"\u006bind":"Cluster","spec":{"ingress":{"annotations":{"a\"b":"c\\d","\u00e9":"\ud83d\ude00"}}}}`,
		"whitespace":         " \n{ \"spec\" :\t{ \"ingress\" : { \"port\" : 443 , \"className\" : \"x\" } } , \"kind\" : \"K\" }\n",
		"nulls":              `{"metadata":null,"spec":{"ingress":{"annotations":{"a":null},"className":null,"port":null},"template":null,"service":null}}`,
		"template":           `{"spec":{"template":{"spec":{"ingress":{"className":"a"},"version":"v1"},"metadata":{}}}}`,
		"backslashes":        `{"metadata":{"name":"a\\\\","labels":{"x\\\\":"\\\\\""}},"spec":{"k0sConfig":{"s":"\\\\\\\"]}"},"ingress":{}}}`,
		"numbers and arrays": `{"spec":{"k0sConfig":[1,-2.5e10,[true,false,null],{"a":[]}],"ingress":{"port":-0.0}}}`,
		"empty objects":      `{"metadata":{},"spec":{"ingress":{"annotations":{}},"service":{}}}`,
		"invalid UTF-8":      "{\"spec\":{\"ingress\":{\"className\":\"a\xffb\",\"annotations\":{\"k\xfe\":\"v\"}}}}",
	} {
		t.Run(name, func(t *testing.T) {
			checkMemberScan(t, []byte(object))
			scanned := &controlPlaneObject{}
			if err := readObjectDocument([]byte(object), scanned.member); err != nil {
				t.Errorf("the member scan gave up on valid JSON: %v", err)
			}
		})
	}
}

// Where the scan and encoding/json differ on purpose: duplicate keys.
func TestMemberScanTakesTheLastDuplicate(t *testing.T) {
	obj, err := decodeControlPlane([]byte(`{"spec":{"version":"a","ingress":{"className":"x"}},"spec":{"version":"b"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if obj.Spec.Version != "b" || obj.Spec.Ingress != nil {
		t.Errorf("spec = %+v, want only the last spec (as the API server and JSON patch see it)", obj.Spec)
	}
}
