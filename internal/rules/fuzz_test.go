package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzLoadPolicy feeds Load arbitrary documents. Whatever the input, Load
// must not panic, must return either a policy or a *LoadError whose every
// line names the source, and a policy it returns must resolve classes and
// show its effective document, which must load again.
func FuzzLoadPolicy(f *testing.F) {
	f.Add([]byte(header))
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(header + "ingressClasses:\n  nginx:\n    annotations:\n      \"nginx.ingress.kubernetes.io/ssl passthrough\": \"true\"\n"))
	f.Add([]byte(header + "replaceDefaults: true\ncontrollers:\n  example.com/:\n    unsupported: use a TLSRoute\nclassGuesses:\n  edge: example.com/\n"))
	f.Add([]byte(`{"apiVersion":"hcp-ingress.io/v1alpha1","kind":"Policy","onConflict":"Override","onConflict":"Keep"}`))
	f.Add([]byte(header + "ccm:\n  apiServer: {host: api.example.com, port: 443}\n  namespaces: [\"*\"]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
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
