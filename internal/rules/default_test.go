package rules

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestDefaultPolicyLoadsOnce(t *testing.T) {
	p := Default()
	if p == nil {
		t.Fatal("Default() returned nil")
	}
	if Default() != p {
		t.Error("Default() loaded the embedded policy again; it must be loaded once and shared")
	}
	if w := p.Warnings(); len(w) != 0 {
		t.Errorf("the embedded default policy has risky settings: %q", w)
	}
	if p.Source() != "" {
		t.Errorf("Source() = %q, want empty for the embedded default", p.Source())
	}
	// The embedded document is also a valid user policy (merging it over
	// itself changes nothing).
	again, err := Load("default-policy.yaml", DefaultPolicyYAML())
	if err != nil {
		t.Fatalf("the embedded policy does not load as a user policy: %v", err)
	}
	if got, want := again.RuleNames(), p.RuleNames(); !slices.Equal(got, want) {
		t.Errorf("rules of the embedded policy loaded as a user policy = %q, want %q", got, want)
	}
}

func TestDefaultPolicySettings(t *testing.T) {
	p := Default()
	doc := p.Effective()
	if doc.OnUnknownClass != UnknownWarn || p.OnUnknownClass() != UnknownWarn {
		t.Errorf("onUnknownClass = %q, want Warn", doc.OnUnknownClass)
	}
	if doc.OnConflict != ConflictKeep || p.OnConflict() != ConflictKeep {
		t.Errorf("onConflict = %q, want Keep", doc.OnConflict)
	}
	if doc.RemoveForeignAnnotations == nil || *doc.RemoveForeignAnnotations || p.RemoveForeignAnnotations() {
		t.Errorf("removeForeignAnnotations = %v, want false", doc.RemoveForeignAnnotations)
	}
	if doc.DefaultIngressClass != "" || p.DefaultIngressClass() != "" {
		t.Errorf("defaultIngressClass = %q, want empty", doc.DefaultIngressClass)
	}
	// Class names are ambiguous: the defaults must never bind a class name to
	// a rule (that would win over the cluster's IngressClass); they guess.
	if len(doc.IngressClasses) != 0 {
		t.Errorf("the defaults define ingressClasses %q; they must only define classGuesses", slices.Sorted(maps.Keys(doc.IngressClasses)))
	}
	if doc.ReplaceDefaults {
		t.Error("the defaults set replaceDefaults")
	}
}

// The table of PRODUCT.md "Built-in rules": controllers that pass TLS
// through for a plain Ingress, with the exact annotation values.
func TestDefaultPassthroughRules(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		project     string
		warning     []string
	}{
		"haproxy.org/ingress-controller": {
			annotations: map[string]string{"haproxy.org/ssl-passthrough": "true"},
			project:     "HAProxy Technologies",
		},
		"haproxy-ingress.github.io/controller": {
			annotations: map[string]string{"haproxy-ingress.github.io/ssl-passthrough": "true"},
			project:     "HAProxy Ingress (community)",
		},
		"k8s.io/ingress-nginx": {
			annotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "true"},
			project:     "ingress-nginx",
			warning:     []string{"--enable-ssl-passthrough", "retired", "March 2026"},
		},
		"cilium.io/ingress-controller": {
			annotations: map[string]string{"ingress.cilium.io/tls-passthrough": "enabled"},
			project:     "Cilium",
		},
		"ako.vmware.com/avi-lb": {
			annotations: map[string]string{"passthrough.ako.vmware.com/enabled": "true"},
			project:     "AKO",
		},
	}
	controllers := Default().Effective().Controllers
	for prefix, tc := range tests {
		t.Run(prefix, func(t *testing.T) {
			rule, ok := controllers[prefix]
			if !ok {
				t.Fatalf("no built-in rule for controller %q", prefix)
			}
			if !maps.Equal(rule.Annotations, tc.annotations) {
				t.Errorf("annotations = %v, want %v", rule.Annotations, tc.annotations)
			}
			if rule.Unsupported != "" {
				t.Errorf("unsupported = %q, want empty", rule.Unsupported)
			}
			if !strings.Contains(rule.Project, tc.project) {
				t.Errorf("project = %q, want it to name %q", rule.Project, tc.project)
			}
			for _, w := range tc.warning {
				if !strings.Contains(rule.Warning, w) {
					t.Errorf("warning = %q, want it to mention %q", rule.Warning, w)
				}
			}
			if len(tc.warning) == 0 && rule.Warning != "" {
				t.Errorf("unexpected warning %q", rule.Warning)
			}
		})
	}
}

// Controllers that cannot pass TLS through with Ingress annotations: each
// message must name what to use instead.
func TestDefaultUnsupportedRules(t *testing.T) {
	tests := map[string][]string{
		"nginx.org/ingress-controller":    {"TransportServer", "TLS_PASSTHROUGH"},
		"traefik.io/ingress-controller":   {"IngressRouteTCP", "tls.passthrough: true"},
		"projectcontour.io/":              {"HTTPProxy", "tls.passthrough: true", "tcpproxy"},
		"ingress-controllers.konghq.com/": {"Gateway API TLSRoute"},
		"openshift.io/ingress-to-route":   {"passthrough", "Route", "path /"},
		"istio.io/ingress-controller":     {"Gateway", "PASSTHROUGH", "TLSRoute"},
		"getambassador.io/":               {"TCPMapping"},
		"azure/application-gateway":       {"Service of type LoadBalancer"},
		"ingress.k8s.aws/alb":             {"Network Load Balancer"},
		"pomerium.io/":                    {"Service of type LoadBalancer"},
		"apisix.apache.org/":              {"TLSRoute", "Passthrough"},
		"higress.io/":                     {"TLSRoute", "Passthrough"},
	}
	controllers := Default().Effective().Controllers
	for prefix, names := range tests {
		t.Run(prefix, func(t *testing.T) {
			rule, ok := controllers[prefix]
			if !ok {
				t.Fatalf("no built-in rule for controller %q", prefix)
			}
			if rule.Unsupported == "" || len(rule.Annotations) != 0 {
				t.Fatalf("rule = %+v, want unsupported without annotations", rule)
			}
			for _, name := range names {
				if !strings.Contains(rule.Unsupported, name) {
					t.Errorf("unsupported = %q, want it to name %q", rule.Unsupported, name)
				}
			}
			if rule.Project == "" {
				t.Error("project is empty")
			}
		})
	}
	unsupported := 0
	for prefix, rule := range controllers {
		if rule.Unsupported != "" {
			unsupported++
			if _, tested := tests[prefix]; !tested {
				t.Errorf("unsupported built-in rule %q has no test", prefix)
			}
		}
	}
	if unsupported < 12 {
		t.Errorf("%d unsupported built-in rules, want at least 12", unsupported)
	}
}

func TestDefaultRulesAllNameTheirProject(t *testing.T) {
	for prefix, rule := range Default().Effective().Controllers {
		if strings.TrimSpace(rule.Project) == "" {
			t.Errorf("controllers.%s has no project", prefix)
		}
	}
}

func TestDefaultClassGuesses(t *testing.T) {
	want := map[string]string{
		"haproxy":         "haproxy.org/ingress-controller",
		"haproxy-ingress": "haproxy-ingress.github.io/controller",
		"nginx":           "k8s.io/ingress-nginx",
		"cilium":          "cilium.io/ingress-controller",
		"traefik":         "traefik.io/ingress-controller",
	}
	if got := Default().Effective().ClassGuesses; !maps.Equal(got, want) {
		t.Errorf("classGuesses = %v, want %v", got, want)
	}
}

// Admission warnings longer than 256 characters may be cut by the API server
// once a response carries more than 4 KB of them; the built-in texts leave
// room for the class and controller names around them.
func TestDefaultMessagesAreShortEnoughForWarnings(t *testing.T) {
	for prefix, rule := range Default().Effective().Controllers {
		for name, text := range map[string]string{"unsupported": rule.Unsupported, "warning": rule.Warning} {
			if len(text) > 230 {
				t.Errorf("controllers.%s.%s is %d characters long, want at most 230: %q", prefix, name, len(text), text)
			}
		}
	}
}
