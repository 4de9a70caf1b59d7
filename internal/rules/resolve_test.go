package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// classes builds an IngressClasses view; nil means none can be read.
func classes(list ...IngressClass) IngressClasses { return NewStaticClasses(list...) }

func TestResolveClass(t *testing.T) {
	userPolicy := header + `defaultIngressClass: fallback
ingressClasses:
  haproxy:
    project: our HAProxy
    annotations: {haproxy-ingress.github.io/ssl-passthrough: "true"}
  internal:
    annotations: {example.com/passthrough: "true"}
controllers:
  example.com/:
    annotations: {example.com/generic: "true"}
  example.com/special:
    annotations: {example.com/special: "true"}
classGuesses:
  fallback: cilium.io/ingress-controller
`
	tests := map[string]struct {
		policy    string // "" for the embedded default
		className string
		classes   IngressClasses
		want      Resolution // Rule and Notes are checked apart
		notes     []string   // substrings, one per note, in order
	}{
		"policy class rule wins over the IngressClass's controller": {
			policy: userPolicy, className: "haproxy",
			classes: classes(IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}),
			want:    Resolution{Class: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy", Source: FromPolicyClass, RuleName: "ingressClasses/haproxy"},
		},
		"policy class rule wins over a guess": {
			policy: userPolicy, className: "haproxy",
			want: Resolution{Class: "haproxy", Source: FromPolicyClass, RuleName: "ingressClasses/haproxy"},
		},
		"IngressClass controller equal to a prefix": {
			className: "haproxy",
			classes:   classes(IngressClass{Name: "haproxy", Controller: "haproxy-ingress.github.io/controller"}),
			want:      Resolution{Class: "haproxy", Controller: "haproxy-ingress.github.io/controller", Source: FromIngressClass, RuleName: "controllers/haproxy-ingress.github.io/controller"},
		},
		"IngressClass controller that extends a prefix": {
			className: "haproxy",
			classes:   classes(IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}),
			want:      Resolution{Class: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy", Source: FromIngressClass, RuleName: "controllers/haproxy.org/ingress-controller"},
		},
		"longest matching prefix wins": {
			policy: userPolicy, className: "edge",
			classes: classes(IngressClass{Name: "edge", Controller: "example.com/special/edge"}),
			want:    Resolution{Class: "edge", Controller: "example.com/special/edge", Source: FromIngressClass, RuleName: "controllers/example.com/special"},
		},
		"shorter prefix when the longer one does not match": {
			policy: userPolicy, className: "edge",
			classes: classes(IngressClass{Name: "edge", Controller: "example.com/other"}),
			want:    Resolution{Class: "edge", Controller: "example.com/other", Source: FromIngressClass, RuleName: "controllers/example.com/"},
		},
		"IngressClass whose controller has no rule is no rule, not a guess": {
			className: "haproxy",
			classes:   classes(IngressClass{Name: "haproxy", Controller: "example.net/haproxy-fork"}),
			want:      Resolution{Class: "haproxy", Controller: "example.net/haproxy-fork", Source: FromNone},
			notes:     []string{`IngressClass "haproxy" is served by controller "example.net/haproxy-fork", which has no SSL passthrough rule`},
		},
		"IngressClass without a controller": {
			className: "odd",
			classes:   classes(IngressClass{Name: "odd"}),
			want:      Resolution{Class: "odd", Source: FromNone},
			notes:     []string{`IngressClass "odd" has no spec.controller`},
		},
		"no IngressClass can be read: the guess, unconfirmed": {
			className: "haproxy",
			want:      Resolution{Class: "haproxy", Controller: "haproxy.org/ingress-controller", Source: FromGuess, RuleName: "controllers/haproxy.org/ingress-controller"},
			notes:     []string{`the controller of ingress class "haproxy" is a guess from its name and could not be confirmed (IngressClass objects could not be read, and names such as "haproxy" and "nginx" are used by more than one controller)`},
		},
		"no IngressClass of that name: the guess, unconfirmed": {
			className: "nginx",
			classes:   classes(IngressClass{Name: "other", Controller: "k8s.io/ingress-nginx"}),
			want:      Resolution{Class: "nginx", Controller: "k8s.io/ingress-nginx", Source: FromGuess, RuleName: "controllers/k8s.io/ingress-nginx"},
			notes:     []string{`could not be confirmed (no IngressClass "nginx" was found`},
		},
		"unknown class and nothing to read: no rule, no note": {
			className: "mystery",
			want:      Resolution{Class: "mystery", Source: FromNone},
		},
		"unknown class not in the cluster: no rule, no note": {
			className: "mystery",
			classes:   classes(),
			want:      Resolution{Class: "mystery", Source: FromNone},
		},
		"empty class: the cluster's default IngressClass": {
			classes: classes(
				IngressClass{Name: "cilium-public", Controller: "cilium.io/ingress-controller", IsDefault: true},
				IngressClass{Name: "nginx", Controller: "k8s.io/ingress-nginx"}),
			want:  Resolution{Class: "cilium-public", Controller: "cilium.io/ingress-controller", Source: FromIngressClass, RuleName: "controllers/cilium.io/ingress-controller"},
			notes: []string{`spec.ingress.className is empty, so the cluster's default IngressClass "cilium-public" was used`},
		},
		"empty class: of several defaults the lexically smallest": {
			classes: classes(
				IngressClass{Name: "zeta", Controller: "k8s.io/ingress-nginx", IsDefault: true},
				IngressClass{Name: "alpha", Controller: "cilium.io/ingress-controller", IsDefault: true}),
			want:  Resolution{Class: "alpha", Controller: "cilium.io/ingress-controller", Source: FromIngressClass, RuleName: "controllers/cilium.io/ingress-controller"},
			notes: []string{`default IngressClass "alpha" was used`},
		},
		"empty class: the cluster default may have a policy class rule": {
			policy:  userPolicy,
			classes: classes(IngressClass{Name: "internal", Controller: "example.net/x", IsDefault: true}),
			want:    Resolution{Class: "internal", Controller: "example.net/x", Source: FromPolicyClass, RuleName: "ingressClasses/internal"},
			notes:   []string{`default IngressClass "internal" was used`},
		},
		"empty class without a cluster default: the policy's defaultIngressClass, then its guess": {
			policy:  userPolicy,
			classes: classes(IngressClass{Name: "nginx", Controller: "k8s.io/ingress-nginx"}),
			want:    Resolution{Class: "fallback", Controller: "cilium.io/ingress-controller", Source: FromGuess, RuleName: "controllers/cilium.io/ingress-controller"},
			notes: []string{
				`spec.ingress.className is empty and no default IngressClass could be read, so the policy's defaultIngressClass "fallback" was used`,
				`the controller of ingress class "fallback" is a guess`,
			},
		},
		"empty class, nothing readable: the policy's defaultIngressClass": {
			policy: userPolicy,
			want:   Resolution{Class: "fallback", Controller: "cilium.io/ingress-controller", Source: FromGuess, RuleName: "controllers/cilium.io/ingress-controller"},
			notes:  []string{`defaultIngressClass "fallback" was used`, `guess`},
		},
		"empty class, policy default that is an IngressClass": {
			policy:  userPolicy,
			classes: classes(IngressClass{Name: "fallback", Controller: "k8s.io/ingress-nginx"}),
			want:    Resolution{Class: "fallback", Controller: "k8s.io/ingress-nginx", Source: FromIngressClass, RuleName: "controllers/k8s.io/ingress-nginx"},
			notes:   []string{`defaultIngressClass "fallback" was used`},
		},
		"empty class and no default anywhere: no rule": {
			classes: classes(IngressClass{Name: "nginx", Controller: "k8s.io/ingress-nginx"}),
			want:    Resolution{Source: FromNone},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := Default()
			if tc.policy != "" {
				p = mustLoad(t, tc.policy)
			}
			got := p.ResolveClass(tc.className, tc.classes)
			if got.Class != tc.want.Class || got.Controller != tc.want.Controller || got.Source != tc.want.Source || got.RuleName != tc.want.RuleName {
				t.Errorf("got class %q controller %q source %q rule %q\nwant class %q controller %q source %q rule %q",
					got.Class, got.Controller, got.Source, got.RuleName, tc.want.Class, tc.want.Controller, tc.want.Source, tc.want.RuleName)
			}
			if (got.Rule == nil) != (got.Source == FromNone) {
				t.Errorf("Rule = %v with source %q: a rule exactly when the source is not none", got.Rule, got.Source)
			}
			if len(got.Notes) != len(tc.notes) {
				t.Fatalf("notes = %q, want %d", got.Notes, len(tc.notes))
			}
			for i, want := range tc.notes {
				if !strings.Contains(got.Notes[i], want) {
					t.Errorf("note %d = %q, want it to contain %q", i, got.Notes[i], want)
				}
			}
		})
	}
}

// Every built-in controller rule is found from an IngressClass that names
// the controller exactly or with a suffix.
func TestResolveEveryBuiltinController(t *testing.T) {
	p := Default()
	for prefix, rule := range p.Effective().Controllers {
		for _, controller := range []string{prefix, strings.TrimSuffix(prefix, "/") + "/some-class"} {
			t.Run(controller, func(t *testing.T) {
				got := p.ResolveClass("x", classes(IngressClass{Name: "x", Controller: controller}))
				if got.Source != FromIngressClass || got.RuleName != "controllers/"+prefix {
					t.Fatalf("resolved to %q (%s), want controllers/%s", got.RuleName, got.Source, prefix)
				}
				if got.Rule.Unsupported != rule.Unsupported || !maps.Equal(got.Rule.Annotations, rule.Annotations) {
					t.Errorf("rule = %+v, want %+v", *got.Rule, rule)
				}
				if len(got.Notes) != 0 {
					t.Errorf("notes = %q, want none for a confirmed controller", got.Notes)
				}
			})
		}
	}
}

func TestResolveEveryBuiltinGuess(t *testing.T) {
	p := Default()
	for class, controller := range p.Effective().ClassGuesses {
		t.Run(class, func(t *testing.T) {
			got := p.ResolveClass(class, nil)
			if got.Source != FromGuess || got.RuleName != "controllers/"+controller || got.Controller != controller {
				t.Errorf("resolved to %q (%s, controller %q), want a guess of %s", got.RuleName, got.Source, got.Controller, controller)
			}
			if len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "could not be confirmed") {
				t.Errorf("notes = %q, want one saying the guess could not be confirmed", got.Notes)
			}
		})
	}
}

func TestForeignAnnotations(t *testing.T) {
	communityHAProxy := classes(IngressClass{Name: "haproxy", Controller: "haproxy-ingress.github.io/controller"})
	userPolicy := header + `ingressClasses:
  haproxy:
    annotations: {haproxy-ingress.github.io/ssl-passthrough: "true"}
  special:
    annotations: {example.com/special-passthrough: "true"}
`
	tests := map[string]struct {
		policy      string
		className   string
		classes     IngressClasses
		annotations map[string]string
		want        []ForeignAnnotation
	}{
		"HAProxy Technologies' annotation on the community controller": {
			className: "haproxy", classes: communityHAProxy,
			annotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
			want: []ForeignAnnotation{{Key: "haproxy.org/ssl-passthrough", RuleName: "controllers/haproxy.org/ingress-controller",
				Controller: "haproxy.org/ingress-controller", Project: "HAProxy Kubernetes Ingress Controller (HAProxy Technologies)"}},
		},
		"the resolved rule's own annotation is not foreign": {
			className: "haproxy", classes: communityHAProxy,
			annotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "false"},
		},
		"an annotation no rule sets is not foreign": {
			className: "haproxy", classes: communityHAProxy,
			annotations: map[string]string{"haproxy-ingress.github.io/timeout-tunnel": "1h", "example.com/team": "a"},
		},
		"several, sorted by key": {
			className: "cilium", classes: classes(IngressClass{Name: "cilium", Controller: "cilium.io/ingress-controller"}),
			annotations: map[string]string{
				"nginx.ingress.kubernetes.io/ssl-passthrough": "true",
				"haproxy.org/ssl-passthrough":                 "true",
				"ingress.cilium.io/tls-passthrough":           "enabled",
			},
			want: []ForeignAnnotation{
				{Key: "haproxy.org/ssl-passthrough", RuleName: "controllers/haproxy.org/ingress-controller", Controller: "haproxy.org/ingress-controller",
					Project: "HAProxy Kubernetes Ingress Controller (HAProxy Technologies)"},
				{Key: "nginx.ingress.kubernetes.io/ssl-passthrough", RuleName: "controllers/k8s.io/ingress-nginx", Controller: "k8s.io/ingress-nginx",
					Project: "ingress-nginx (retired March 2026)"},
			},
		},
		"nothing is foreign when no rule resolved": {
			className:   "mystery",
			annotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
		},
		"every passthrough annotation is foreign to an unsupported controller": {
			className: "traefik", classes: classes(IngressClass{Name: "traefik", Controller: "traefik.io/ingress-controller"}),
			annotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"},
			want: []ForeignAnnotation{{Key: "nginx.ingress.kubernetes.io/ssl-passthrough", RuleName: "controllers/k8s.io/ingress-nginx",
				Controller: "k8s.io/ingress-nginx", Project: "ingress-nginx (retired March 2026)"}},
		},
		"a class rule does not make the class's real controller foreign": {
			policy: userPolicy, className: "haproxy",
			classes:     classes(IngressClass{Name: "haproxy", Controller: "haproxy.org/ingress-controller/haproxy"}),
			annotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
		},
		"an annotation of a class rule, foreign elsewhere": {
			policy: userPolicy, className: "nginx",
			classes:     classes(IngressClass{Name: "nginx", Controller: "k8s.io/ingress-nginx"}),
			annotations: map[string]string{"example.com/special-passthrough": "true"},
			want:        []ForeignAnnotation{{Key: "example.com/special-passthrough", RuleName: "ingressClasses/special"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := Default()
			if tc.policy != "" {
				p = mustLoad(t, tc.policy)
			}
			got := p.ForeignAnnotations(p.ResolveClass(tc.className, tc.classes), tc.annotations)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPassthroughKeys(t *testing.T) {
	keys := Default().PassthroughKeys()
	want := []string{
		"haproxy-ingress.github.io/ssl-passthrough", "haproxy.org/ssl-passthrough", "ingress.cilium.io/tls-passthrough",
		"nginx.ingress.kubernetes.io/ssl-passthrough", "passthrough.ako.vmware.com/enabled",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("PassthroughKeys = %q, want %q", keys, want)
	}
}

func TestStaticClasses(t *testing.T) {
	s := NewStaticClasses(
		IngressClass{Name: "b", Controller: "k8s.io/ingress-nginx", IsDefault: true},
		IngressClass{Name: "a", Controller: "cilium.io/ingress-controller", IsDefault: true},
		IngressClass{Name: "c", Controller: "old"},
		IngressClass{Name: "c", Controller: "new"},
	)
	if ic, ok := s.IngressClass("c"); !ok || ic.Controller != "new" {
		t.Errorf("IngressClass(c) = %+v, %t; want the last one given", ic, ok)
	}
	if _, ok := s.IngressClass("missing"); ok {
		t.Error("IngressClass(missing) found something")
	}
	if ic, ok := s.DefaultIngressClass(); !ok || ic.Name != "a" {
		t.Errorf("DefaultIngressClass = %+v, %t; want a, the lexically smallest default", ic, ok)
	}
	if _, ok := NewStaticClasses(IngressClass{Name: "x"}).DefaultIngressClass(); ok {
		t.Error("DefaultIngressClass found one where none is default")
	}
	var none []IngressClass
	if _, ok := NewStaticClasses(none...).IngressClass("x"); ok {
		t.Error("an empty StaticClasses found a class")
	}
}

// The cost of resolving a class does not depend on how many rules the
// policy has: everything is a map lookup prepared at load time.
func BenchmarkResolveClass(b *testing.B) {
	for _, n := range []int{10, 10000} {
		var doc strings.Builder
		doc.WriteString(header + "controllers:\n")
		for i := range n {
			fmt.Fprintf(&doc, "  example.com/controller-%d:\n    annotations: {example.com/passthrough-%d: \"true\"}\n", i, i)
		}
		p := mustLoad(b, doc.String())
		view := classes(IngressClass{Name: "edge", Controller: fmt.Sprintf("example.com/controller-%d/edge", n/2)})
		b.Run(fmt.Sprintf("controllers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := p.ResolveClass("edge", view); res.Rule == nil {
					b.Fatal("no rule")
				}
			}
		})
	}
}
