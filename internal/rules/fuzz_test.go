package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzLoadPolicy feeds Load arbitrary documents. Whatever the input, Load
// must not panic, must return either a policy or a *LoadError whose every
// line names the source (and none is an internal error: every decoding
// error was placed), and a policy it returns must resolve classes and
// show its effective document, which must load again.
func FuzzLoadPolicy(f *testing.F) {
	f.Add([]byte(header))
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(header + "ingressClasses:\n  nginx:\n    annotations:\n      \"nginx.ingress.kubernetes.io/ssl passthrough\": \"true\"\n"))
	f.Add([]byte(header + "replaceDefaults: true\ncontrollers:\n  example.com/:\n    unsupported: use a TLSRoute\nclassGuesses:\n  edge: example.com/\n"))
	f.Add([]byte(`{"apiVersion":"hcp-ingress.io/v1alpha1","kind":"Policy","onConflict":"Override","onConflict":"Keep"}`))
	f.Add([]byte(header + "ccm:\n  apiServer: {host: api.example.com, port: 443}\n  namespaces: [\"*\"]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	// Errors of the strict decoder and of the limits.
	f.Add([]byte(header + "---\n" + header))
	f.Add([]byte(`{"apiVersion":"hcp-ingress.io/v1alpha1","kind":"Policy","controllers":{"a.b/c":{"annotations":{"x.y/z":true,"x.y/z":"1"},"projekt":1}}}`))
	f.Add([]byte(header + "ccm:\n  match:\n    binaries: [a, [b], 3]\n    flagValues: [{name: cloud-provider, except: [external]}, {except: [x]}]\n  apiServer: {port: 4294967296}\n"))
	f.Add([]byte(header + "ccm:\n  veto:\n    images: ['a{1,1000}b{1,1000}', '(?:abcdefghij){210}']\n"))
	f.Add([]byte(header + "ccm:\n  removeMatch:\n    flagValues: [{name: cloud-provider}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("fuzz.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error is %T, want *LoadError: %v", err, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml: ") {
					t.Fatalf("error line %q does not name the source", line)
				}
				if strings.Contains(line, "Internal error") {
					t.Fatalf("error line %q: a decoding error whose place was not found", line)
				}
			}
			return
		}
		for _, class := range []string{"", "haproxy", "nginx", "x"} {
			res := p.ResolveClass(class, NewStaticClasses(IngressClass{Name: "x", Controller: "haproxy.org/ingress-controller/x", IsDefault: true}))
			p.ForeignAnnotations(res, map[string]string{"haproxy.org/ssl-passthrough": "true"})
			p.ResolveClass(class, nil)
		}
		_ = p.Warnings()
		doc := p.Effective()
		doc.ReplaceDefaults = true
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal effective: %v", err)
		}
		if _, err := Load("effective.json", raw); err != nil {
			t.Fatalf("the effective document of a loaded policy does not load: %v\n%s", err, raw)
		}
	})
}
