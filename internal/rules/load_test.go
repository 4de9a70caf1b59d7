package rules

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// header starts every policy document of these tests.
const header = "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\n"

func mustLoad(tb testing.TB, doc string) *Policy {
	tb.Helper()
	p, err := Load("policy.yaml", []byte(doc))
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return p
}

// loadErrorLines loads a broken document and returns the lines of its error.
func loadErrorLines(tb testing.TB, doc string) []string {
	tb.Helper()
	p, err := Load("policy.yaml", []byte(doc))
	if err == nil {
		tb.Fatalf("Load succeeded (rules %q), want an error", p.RuleNames())
	}
	var le *LoadError
	if !errors.As(err, &le) {
		tb.Fatalf("error is %T, want *LoadError: %v", err, err)
	}
	if le.Source != "policy.yaml" {
		tb.Errorf("Source = %q, want policy.yaml", le.Source)
	}
	lines := strings.Split(err.Error(), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "policy.yaml: ") {
			tb.Errorf("error line %q does not start with the source", l)
		}
	}
	return lines
}

func TestLoadReportsProblemsWithFieldPaths(t *testing.T) {
	tests := map[string]struct {
		doc  string
		want []string // each must be a prefix of one error line
	}{
		"annotation key that is not a qualified name": {
			doc: header + "ingressClasses:\n  nginx:\n    annotations:\n      \"nginx.ingress.kubernetes.io/ssl passthrough\": \"true\"\n",
			want: []string{`policy.yaml: ingressClasses[nginx].annotations: Invalid value: "nginx.ingress.kubernetes.io/ssl passthrough": ` +
				"name part must consist of alphanumeric characters"},
		},
		"annotation key with an invalid prefix": {
			doc:  header + "controllers:\n  example.com/x:\n    annotations:\n      Example_Com/passthrough: \"true\"\n",
			want: []string{`policy.yaml: controllers[example.com/x].annotations: Invalid value: "Example_Com/passthrough": prefix part`},
		},
		"wrong apiVersion": {
			doc:  "apiVersion: hcp-ingress.io/v1\nkind: Policy\n",
			want: []string{`policy.yaml: apiVersion: Unsupported value: "hcp-ingress.io/v1": supported values: "hcp-ingress.io/v1alpha1"`},
		},
		"wrong kind": {
			doc:  "apiVersion: hcp-ingress.io/v1alpha1\nkind: policy\n",
			want: []string{`policy.yaml: kind: Unsupported value: "policy": supported values: "Policy"`},
		},
		"missing apiVersion and kind": {
			doc: "onConflict: Keep\n",
			want: []string{
				"policy.yaml: apiVersion: Required value: must be hcp-ingress.io/v1alpha1",
				"policy.yaml: kind: Required value: must be Policy",
			},
		},
		"onUnknownClass not one of the values": {
			doc:  header + "onUnknownClass: Reject\n",
			want: []string{`policy.yaml: onUnknownClass: Unsupported value: "Reject": supported values: "Warn", "Deny", "Ignore"`},
		},
		"enum values are case-sensitive": {
			doc:  header + "onConflict: keep\n",
			want: []string{`policy.yaml: onConflict: Unsupported value: "keep": supported values: "Keep", "Override"`},
		},
		"unknown top-level field, with the field probably meant": {
			doc:  header + "onUnknownClas: Warn\n",
			want: []string{`policy.yaml: onUnknownClas: Forbidden: unknown field (the policy is read strictly); did you mean "onUnknownClass"?`},
		},
		"field names are case-sensitive": {
			doc:  header + "OnConflict: Keep\n",
			want: []string{`policy.yaml: OnConflict: Forbidden: unknown field (the policy is read strictly); did you mean "onConflict"?`},
		},
		"unknown field in a rule": {
			doc:  header + "ingressClasses:\n  nginx:\n    annotation:\n      a: b\n",
			want: []string{`policy.yaml: ingressClasses[nginx].annotation: Forbidden: unknown field (the policy is read strictly); did you mean "annotations"?`},
		},
		"unknown field under ccm": {
			doc:  header + "ccm:\n  apiServers: {}\n",
			want: []string{`policy.yaml: ccm.apiServers: Forbidden: unknown field`},
		},
		"rule with annotations and unsupported": {
			doc:  header + "controllers:\n  example.com/x:\n    annotations: {a: b}\n    unsupported: use something else\n",
			want: []string{"policy.yaml: controllers[example.com/x].unsupported: Forbidden: a rule has either annotations"},
		},
		"route of a kind no controller implements": {
			doc:  header + "controllers:\n  example.com/x:\n    unsupported: use a route\n    route: {kind: contour-httpproxy}\n",
			want: []string{`policy.yaml: controllers[example.com/x].route.kind: Unsupported value: "contour-httpproxy": supported values: "traefik-ingressroutetcp"`},
		},
		"route without the unsupported text for when routes are off": {
			doc:  header + "controllers:\n  example.com/x:\n    annotations: {a: b}\n    route: {kind: traefik-ingressroutetcp}\n",
			want: []string{"policy.yaml: controllers[example.com/x].unsupported: Required value: a rule with a route also needs unsupported"},
		},
		"route without a kind": {
			doc:  header + "controllers:\n  example.com/x:\n    unsupported: use a route\n    route: {}\n",
			want: []string{`policy.yaml: controllers[example.com/x].route.kind: Unsupported value: ""`},
		},
		"rule with neither annotations nor unsupported": {
			doc:  header + "ingressClasses:\n  mine:\n    project: Mine\n",
			want: []string{"policy.yaml: ingressClasses[mine].annotations: Required value: a rule needs annotations"},
		},
		"rule with empty annotations": {
			doc:  header + "ingressClasses:\n  mine:\n    annotations: {}\n",
			want: []string{"policy.yaml: ingressClasses[mine].annotations: Required value"},
		},
		"class name that is not a DNS subdomain": {
			doc:  header + "ingressClasses:\n  Nginx_Public:\n    annotations: {a: b}\n",
			want: []string{`policy.yaml: ingressClasses[Nginx_Public]: Invalid value: "Nginx_Public": not a valid ingress class name: a lowercase RFC 1123 subdomain`},
		},
		"class guess naming no controller": {
			doc:  header + "classGuesses:\n  mine: example.com/nothing\n",
			want: []string{`policy.yaml: classGuesses[mine]: Invalid value: "example.com/nothing": must name a key of controllers`},
		},
		"empty class guess": {
			doc:  header + "classGuesses:\n  mine: \"\"\n",
			want: []string{"policy.yaml: classGuesses[mine]: Required value: must name a key of controllers"},
		},
		"class guess for an invalid class name": {
			doc:  header + "classGuesses:\n  My.Class: k8s.io/ingress-nginx\n",
			want: []string{`policy.yaml: classGuesses[My.Class]: Invalid value: "My.Class"`},
		},
		"defaultIngressClass not a class name": {
			doc:  header + "defaultIngressClass: Public Nginx\n",
			want: []string{`policy.yaml: defaultIngressClass: Invalid value: "Public Nginx": not a valid ingress class name`},
		},
		"controller prefix with a space": {
			doc:  header + "controllers:\n  \"example.com/my controller\":\n    annotations: {a: b}\n",
			want: []string{`policy.yaml: controllers[example.com/my controller]: Invalid value: "example.com/my controller": a controller prefix must not contain spaces`},
		},
		"controller prefix longer than a controller can be": {
			doc:  header + "controllers:\n  example.com/" + strings.Repeat("x", 250) + ":\n    annotations: {a: b}\n",
			want: []string{"policy.yaml: controllers[example.com/xxx"},
		},
		"empty controller prefix": {
			doc:  header + "controllers:\n  \"\":\n    annotations: {a: b}\n",
			want: []string{"policy.yaml: controllers[]: Invalid value: \"\": a controller prefix must not be empty"},
		},
		"unquoted boolean annotation value": {
			doc:  header + "ingressClasses:\n  mine:\n    annotations:\n      example.com/ssl-passthrough: true\n",
			want: []string{`policy.yaml: ingressClasses[mine].annotations[example.com/ssl-passthrough]: Invalid value: must be a string (quote values such as "true" or "443"), not the boolean true`},
		},
		"annotations as a list": {
			doc:  header + "ingressClasses:\n  mine:\n    annotations: [a, b]\n",
			want: []string{"policy.yaml: ingressClasses[mine].annotations: Invalid value: must be a mapping, not a list"},
		},
		"ingressClasses as a list": {
			doc:  header + "ingressClasses:\n  - mine\n",
			want: []string{"policy.yaml: ingressClasses: Invalid value: must be a mapping, not a list"},
		},
		"removeForeignAnnotations not a boolean": {
			doc:  header + "removeForeignAnnotations: \"yes\"\n",
			want: []string{`policy.yaml: removeForeignAnnotations: Invalid value: must be true or false, not the string "yes"`},
		},
		"ccm port not an integer": {
			doc:  header + "ccm:\n  apiServer:\n    host: api.example.com\n    port: 443.5\n",
			want: []string{"policy.yaml: ccm.apiServer.port: Invalid value: must be an integer, not the number 443.5"},
		},
		"ccm port beyond int32": {
			doc:  header + "ccm:\n  apiServer:\n    host: api.example.com\n    port: 4294967296\n",
			want: []string{"policy.yaml: ccm.apiServer.port: Invalid value: 4294967296: must be an integer from -2147483648 to 2147483647"},
		},
		"warning text with a line break": {
			doc:  header + "controllers:\n  example.com/x:\n    annotations: {a: b}\n    warning: |\n      first line\n      second line\n",
			want: []string{"policy.yaml: controllers[example.com/x].warning: Invalid value: \"first line\\nsecond line\\n\": must not contain control characters"},
		},
		"duplicate key in YAML": {
			doc:  header + "ingressClasses:\n  mine:\n    annotations: {a: b}\n  mine:\n    annotations: {a: c}\n",
			want: []string{`policy.yaml: line 7: key "mine" already set in map (duplicate key)`},
		},
		"duplicate key in JSON": {
			doc:  `{"apiVersion": "hcp-ingress.io/v1alpha1", "kind": "Policy", "onConflict": "Keep", "onConflict": "Override"}`,
			want: []string{"policy.yaml: onConflict: Duplicate value"},
		},
		"YAML syntax error": {
			doc:  header + "ingressClasses: [unclosed\n",
			want: []string{"policy.yaml: not valid YAML or JSON: line 3: did not find expected ',' or ']'"},
		},
		"JSON syntax error": {
			doc:  `{"apiVersion": "hcp-ingress.io/v1alpha1",}`,
			want: []string{"policy.yaml: not valid YAML or JSON: invalid character '}'"},
		},
		"a list instead of a document": {
			doc:  "- apiVersion: hcp-ingress.io/v1alpha1\n",
			want: []string{"policy.yaml: the policy document must be a mapping of fields (apiVersion, kind, ...), not a list"},
		},
		"a string instead of a document": {
			doc:  "just some text\n",
			want: []string{"policy.yaml: the policy document must be a mapping of fields (apiVersion, kind, ...), not the string \"just some text\""},
		},
		"a second YAML document": {
			doc:  header + "---\n" + header + "onConflict: Override\n",
			want: []string{`policy.yaml: document 2: a policy file holds exactly one YAML document, but a "---" line starts another here`},
		},
		"an invalid second YAML document is not ignored": {
			doc:  header + "# comment\n---\n# comment only\n---\nnot: [valid\n",
			want: []string{"policy.yaml: document 2: a policy file holds exactly one YAML document"},
		},
		"duplicate annotation key in JSON, under a key with dots": {
			doc:  `{"apiVersion": "hcp-ingress.io/v1alpha1", "kind": "Policy", "controllers": {"a.example.com/x": {"annotations": {"x.example.com/y": "1", "x.example.com/y": "2"}}}}`,
			want: []string{"policy.yaml: controllers[a.example.com/x].annotations[x.example.com/y]: Duplicate value"},
		},
		"unknown field in JSON, under a key with dots": {
			doc:  `{"apiVersion": "hcp-ingress.io/v1alpha1", "kind": "Policy", "controllers": {"a.example.com/x.y": {"unsuported": "no"}}}`,
			want: []string{`policy.yaml: controllers[a.example.com/x.y].unsuported: Forbidden: unknown field (the policy is read strictly); did you mean "unsupported"?`},
		},
		"a list item of the wrong type": {
			doc:  header + "ccm:\n  veto:\n    names: [a, [b]]\n",
			want: []string{"policy.yaml: ccm.veto.names[1]: Invalid value: must be a string (quote values such as \"true\" or \"443\"), not a list"},
		},
		"a flagValues matcher without a name": {
			doc:  header + "ccm:\n  match:\n    flagValues:\n      - except: [x]\n",
			want: []string{"policy.yaml: ccm.match.flagValues[0].name: Required value"},
		},
		"a flagValues name with dashes": {
			doc:  header + "ccm:\n  veto:\n    flagValues:\n      - name: --kubeconfig\n",
			want: []string{`policy.yaml: ccm.veto.flagValues[0].name: Invalid value: "--kubeconfig": a flag name without dashes`},
		},
		"removing a flagValues matcher that is not built in": {
			doc:  header + "ccm:\n  removeMatch:\n    flagValues:\n      - name: cloud-config\n",
			want: []string{`policy.yaml: ccm.removeMatch.flagValues: Invalid value: "cloud-config": not the name of a built-in flagValues matcher`},
		},
		"a type error does not also report the field as missing": {
			doc:  "apiVersion: hcp-ingress.io/v1alpha1\nkind: 5\n",
			want: []string{"policy.yaml: kind: Invalid value: must be a string"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lines := loadErrorLines(t, tc.doc)
			for _, want := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
					t.Errorf("no error line starts with\n  %s\ngot:\n  %s", want, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("got %d error lines, want %d:\n  %s", len(lines), len(tc.want), strings.Join(lines, "\n  "))
			}
		})
	}
}

func TestLoadRejectsEmptyDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"nothing":           "",
		"only whitespace":   "  \n\t\n  ",
		"only a comment":    "# policy.yaml\n# nothing yet\n",
		"only a separator":  "---\n",
		"null":              "null\n",
		"empty JSON object": "{}",
	} {
		t.Run(name, func(t *testing.T) {
			lines := loadErrorLines(t, doc)
			joined := strings.Join(lines, "\n")
			if name == "empty JSON object" {
				// A mapping, just an empty one: what is missing is named.
				if !strings.Contains(joined, "apiVersion: Required value") {
					t.Errorf("error = %q, want apiVersion required", joined)
				}
				return
			}
			if want := "policy.yaml: the policy document is empty"; !strings.HasPrefix(joined, want) {
				t.Errorf("error = %q, want it to start with %q", joined, want)
			}
		})
	}
}

// A broken policy lists every problem at once, each with its field path, so
// that one round of fixing is enough: every field that does not decode, or,
// when all decode, every value that does not validate. (Validating a
// document whose fields did not decode would report the same fields again
// as missing.)
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	tests := map[string]struct {
		doc       string
		wantPaths []string
	}{
		"fields that do not decode": {
			doc: `apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
removeForeignAnnotations: sometimes
onConflict: [Keep]
ingressClasses:
  both.example:
    annotations: {a.example.com/x: true}
    unsupported: no
    projekt: x
controllers:
  example.com/x.y:
    annotations: {a.example.com/y: "true"}
    warnings: x
ccm:
  namespaces: [kube-system, 5]
  match:
    binaries: [a, {b: c}]
typo: 1
`,
			wantPaths: []string{
				"removeForeignAnnotations:", "onConflict:",
				"ingressClasses[both.example].annotations[a.example.com/x]:", "ingressClasses[both.example].unsupported:",
				"ingressClasses[both.example].projekt: Forbidden: unknown field (the policy is read strictly); did you mean \"project\"?",
				"controllers[example.com/x.y].warnings: Forbidden: unknown field (the policy is read strictly); did you mean \"warning\"?",
				"ccm.namespaces[1]: Invalid value: must be a string", "ccm.match.binaries[1]: Invalid value: must be a string", "typo:",
			},
		},
		"values that do not validate": {
			doc: `apiVersion: hcp-ingress.io/v2
kind: Policy
onUnknownClass: deny
onConflict: Replace
defaultIngressClass: Not_A_Class
ingressClasses:
  Bad_Class:
    annotations:
      "bad key": "true"
  empty: {}
  both:
    annotations: {a.example.com/x: "true"}
    unsupported: "no"
controllers:
  "with space/x":
    annotations: {a.example.com/y: "true"}
classGuesses:
  mine: example.com/missing
  other: ""
ccm:
  namespaces: [Bad_NS]
`,
			wantPaths: []string{
				"apiVersion:", "onUnknownClass:", "onConflict:", "defaultIngressClass:",
				"ingressClasses[Bad_Class]:", "ingressClasses[Bad_Class].annotations:", "ingressClasses[empty].annotations:",
				"ingressClasses[both].unsupported:", "controllers[with space/x]:", "classGuesses[mine]:", "classGuesses[other]:",
				"ccm.namespaces[0]:",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lines := loadErrorLines(t, tc.doc)
			for _, path := range tc.wantPaths {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "policy.yaml: "+path) }) {
					t.Errorf("no error for %s; got:\n  %s", path, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tc.wantPaths) {
				t.Errorf("got %d errors, want %d:\n  %s", len(lines), len(tc.wantPaths), strings.Join(lines, "\n  "))
			}
		})
	}
}

func TestLoadAcceptsSeparatorsAroundTheDocument(t *testing.T) {
	for name, doc := range map[string]string{
		"leading separator":             "---\n" + header,
		"trailing separator":            header + "---\n",
		"comment-only documents around": "# policy\n---\n" + header + "---\n# end\n",
	} {
		t.Run(name, func(t *testing.T) { mustLoad(t, doc) })
	}
}

func TestLoadErrorWithDecodingProblem(t *testing.T) {
	_, err := Load("cm/policy.yaml", nil)
	var le *LoadError
	if !errors.As(err, &le) || le.Err == nil || len(le.Errs) != 0 {
		t.Fatalf("err = %#v, want a *LoadError with Err set", err)
	}
	if !errors.Is(err, le.Err) {
		t.Error("LoadError does not unwrap to its decoding error")
	}
	if empty := (&LoadError{Source: "x"}).Error(); empty != "x: the policy did not load" {
		t.Errorf("Error() of an empty LoadError = %q", empty)
	}
}

func TestLoadAcceptsJSON(t *testing.T) {
	p := mustLoad(t, "{\n\t\"apiVersion\": \"hcp-ingress.io/v1alpha1\",\n\t\"kind\": \"Policy\",\n\t\"onConflict\": \"Override\",\n"+
		"\t\"ingressClasses\": {\"mine\": {\"annotations\": {\"example.com/ssl-passthrough\": \"true\"}}}\n}")
	if p.OnConflict() != ConflictOverride {
		t.Errorf("onConflict = %q, want Override", p.OnConflict())
	}
	if p.RuleSource("ingressClasses/mine") != "policy.yaml" {
		t.Error("the JSON policy's rule is missing")
	}
}

func TestLoadMergesOverDefaults(t *testing.T) {
	tests := map[string]struct {
		doc   string
		check func(t *testing.T, p *Policy, doc *Document)
	}{
		"a class rule is added and every built-in stays": {
			doc: header + "ingressClasses:\n  public:\n    annotations: {example.com/passthrough: \"on\"}\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				if got := doc.IngressClasses["public"].Annotations["example.com/passthrough"]; got != "on" {
					t.Errorf("ingressClasses.public annotation = %q, want on", got)
				}
				if !maps.Equal(doc.Controllers["haproxy.org/ingress-controller"].Annotations, map[string]string{"haproxy.org/ssl-passthrough": "true"}) {
					t.Error("the built-in HAProxy Technologies rule is gone")
				}
				if len(doc.ClassGuesses) != 5 {
					t.Errorf("classGuesses = %v, want the 5 built-in ones", doc.ClassGuesses)
				}
			},
		},
		"a user rule replaces a built-in rule whole": {
			doc: header + "controllers:\n  k8s.io/ingress-nginx:\n    annotations: {nginx.ingress.kubernetes.io/ssl-passthrough: \"True\"}\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				got := doc.Controllers["k8s.io/ingress-nginx"]
				want := PassthroughRule{Annotations: map[string]string{"nginx.ingress.kubernetes.io/ssl-passthrough": "True"}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("rule = %+v, want exactly the user's %+v (no project or warning merged in)", got, want)
				}
				if src := p.RuleSource("controllers/k8s.io/ingress-nginx"); src != "policy.yaml" {
					t.Errorf("RuleSource = %q, want policy.yaml", src)
				}
			},
		},
		"scalars the user sets win, the others keep their default": {
			doc: header + "onConflict: Override\nremoveForeignAnnotations: true\ndefaultIngressClass: public\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				if p.OnConflict() != ConflictOverride || !p.RemoveForeignAnnotations() || p.DefaultIngressClass() != "public" {
					t.Errorf("onConflict %q, removeForeignAnnotations %t, defaultIngressClass %q", p.OnConflict(), p.RemoveForeignAnnotations(), p.DefaultIngressClass())
				}
				if p.OnUnknownClass() != UnknownWarn {
					t.Errorf("onUnknownClass = %q, want the default Warn", p.OnUnknownClass())
				}
			},
		},
		"a user guess may point at a built-in controller": {
			doc: header + "classGuesses:\n  haproxy: haproxy-ingress.github.io/controller\n  public: k8s.io/ingress-nginx\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				if doc.ClassGuesses["haproxy"] != "haproxy-ingress.github.io/controller" || doc.ClassGuesses["public"] != "k8s.io/ingress-nginx" {
					t.Errorf("classGuesses = %v", doc.ClassGuesses)
				}
				if doc.ClassGuesses["nginx"] != "k8s.io/ingress-nginx" {
					t.Error("the built-in nginx guess is gone")
				}
				if p.RuleSource("classGuesses/haproxy") != "policy.yaml" || p.RuleSource("classGuesses/nginx") != BuiltinSource {
					t.Errorf("guess sources: haproxy %q, nginx %q", p.RuleSource("classGuesses/haproxy"), p.RuleSource("classGuesses/nginx"))
				}
			},
		},
		"a user guess may point at the user's own controller": {
			doc: header + "controllers:\n  example.com/edge:\n    annotations: {example.com/passthrough: \"true\"}\nclassGuesses:\n  edge: example.com/edge\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				if res := p.ResolveClass("edge", nil); res.RuleName != "controllers/example.com/edge" {
					t.Errorf("edge resolves to %q", res.RuleName)
				}
			},
		},
		"replaceDefaults drops every built-in rule and guess": {
			doc: header + "replaceDefaults: true\ncontrollers:\n  example.com/edge:\n    annotations: {example.com/passthrough: \"true\"}\n",
			check: func(t *testing.T, p *Policy, doc *Document) {
				if got := slices.Collect(maps.Keys(doc.Controllers)); !slices.Equal(got, []string{"example.com/edge"}) {
					t.Errorf("controllers = %q, want only the user's", got)
				}
				if len(doc.ClassGuesses) != 0 {
					t.Errorf("classGuesses = %v, want none", doc.ClassGuesses)
				}
				if p.OnUnknownClass() != UnknownWarn || p.OnConflict() != ConflictKeep || p.RemoveForeignAnnotations() {
					t.Error("replaceDefaults must still leave the documented defaults for unset scalars")
				}
				if src := p.RuleSource("controllers/example.com/edge"); src != "policy.yaml" {
					t.Errorf("RuleSource = %q", src)
				}
				if res := p.ResolveClass("haproxy", nil); res.Source != FromNone {
					t.Errorf("haproxy resolves to %q, want no rule without the built-in guesses", res.RuleName)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := mustLoad(t, tc.doc)
			tc.check(t, p, p.Effective())
		})
	}
}

func TestLoadReplaceDefaultsGuessNeedsItsOwnController(t *testing.T) {
	lines := loadErrorLines(t, header+"replaceDefaults: true\nclassGuesses:\n  haproxy: haproxy.org/ingress-controller\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `policy.yaml: classGuesses[haproxy]: Invalid value: "haproxy.org/ingress-controller"`) {
		t.Errorf("error = %q", lines)
	}
}

func TestMergeDocumentsScalars(t *testing.T) {
	yes, no := true, false
	base := &Document{DefaultIngressClass: "base", OnUnknownClass: UnknownDeny, OnConflict: ConflictOverride, RemoveForeignAnnotations: &yes,
		IngressClasses: map[string]PassthroughRule{"a": {Unsupported: "x"}}}
	got := mergeDocuments(base, &Document{RemoveForeignAnnotations: &no})
	if got.DefaultIngressClass != "base" || got.OnUnknownClass != UnknownDeny || got.OnConflict != ConflictOverride {
		t.Errorf("unset scalars of the user's document changed the base: %+v", got)
	}
	if *got.RemoveForeignAnnotations {
		t.Error("removeForeignAnnotations: false did not override a base true")
	}
	got.IngressClasses["b"] = PassthroughRule{}
	if _, leaked := base.IngressClasses["b"]; leaked {
		t.Error("merging shares maps with the base document")
	}
}

func TestUserPolicyDoesNotChangeTheDefaults(t *testing.T) {
	before := Default().Effective()
	mustLoad(t, header+"onConflict: Override\ncontrollers:\n  k8s.io/ingress-nginx:\n    unsupported: not here\n")
	if after := Default().Effective(); !reflect.DeepEqual(before, after) {
		t.Error("loading a user policy changed the embedded default policy")
	}
}

func TestEffectiveIsACopy(t *testing.T) {
	p := Default()
	doc := p.Effective()
	doc.Controllers["k8s.io/ingress-nginx"].Annotations["x"] = "y"
	doc.ClassGuesses["nginx"] = "changed"
	doc.OnConflict = ConflictOverride
	again := p.Effective()
	if _, changed := again.Controllers["k8s.io/ingress-nginx"].Annotations["x"]; changed || again.ClassGuesses["nginx"] != "k8s.io/ingress-nginx" || again.OnConflict != ConflictKeep {
		t.Error("changing the document Effective returned changed the policy")
	}
}

// The effective document is a complete policy: loaded with replaceDefaults,
// it gives the same policy back.
func TestEffectiveLoadsBackToTheSamePolicy(t *testing.T) {
	p := mustLoad(t, header+"onUnknownClass: Deny\ningressClasses:\n  public:\n    annotations: {example.com/passthrough: \"true\"}\n")
	doc := p.Effective()
	doc.ReplaceDefaults = true
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load("effective.json", raw)
	if err != nil {
		t.Fatalf("the effective document does not load: %v", err)
	}
	want, got := p.Effective(), again.Effective()
	want.ReplaceDefaults, want.CCM, got.ReplaceDefaults, got.CCM = true, nil, true, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reloaded effective policy differs:\n got %+v\nwant %+v", got, want)
	}
}

func TestRuleSource(t *testing.T) {
	p := mustLoad(t, header+"ingressClasses:\n  public:\n    annotations: {example.com/passthrough: \"true\"}\n")
	for name, want := range map[string]string{
		"ingressClasses/public":                      "policy.yaml",
		"controllers/haproxy.org/ingress-controller": BuiltinSource,
		"classGuesses/nginx":                         BuiltinSource,
		"controllers/example.com/unknown":            "",
		"":                                           "",
	} {
		if got := p.RuleSource(name); got != want {
			t.Errorf("RuleSource(%q) = %q, want %q", name, got, want)
		}
	}
	if got := Default().RuleSource("controllers/k8s.io/ingress-nginx"); got != BuiltinSource {
		t.Errorf("RuleSource of a default rule in Default() = %q", got)
	}
}

func TestWarningsNameRiskySettings(t *testing.T) {
	tests := map[string]struct {
		doc  string
		want []string
	}{
		"defaults":         {doc: header},
		"deny":             {doc: header + "onUnknownClass: Deny\n", want: []string{"onUnknownClass: Deny rejects"}},
		"ignore":           {doc: header + "onUnknownClass: Ignore\n", want: []string{"onUnknownClass: Ignore admits"}},
		"replace defaults": {doc: header + "replaceDefaults: true\ningressClasses:\n  a:\n    annotations: {x: z}\n", want: []string{"replaceDefaults: true drops"}},
		"remove foreign with override": {
			doc:  header + "removeForeignAnnotations: true\nonConflict: Override\n",
			want: []string{"removeForeignAnnotations: true with onConflict: Override"},
		},
		"remove foreign alone is not risky": {doc: header + "removeForeignAnnotations: true\n"},
		"override alone is not risky":       {doc: header + "onConflict: Override\n"},
		"keeping a stale CCM address": {
			doc:  header + "ccm:\n  onConflict: Keep\n",
			want: []string{"ccm.onConflict: Keep leaves"},
		},
		"CCM injection in every namespace": {
			doc:  header + "ccm:\n  namespaces: [\"*\"]\n",
			want: []string{`ccm.namespaces: "*"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := mustLoad(t, tc.doc).Warnings()
			for _, want := range tc.want {
				if !slices.ContainsFunc(got, func(w string) bool { return strings.HasPrefix(w, want) }) {
					t.Errorf("no warning starts with %q; got %q", want, got)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d warnings, want %d: %q", len(got), len(tc.want), got)
			}
		})
	}
}

func TestSuggestedRuleLoads(t *testing.T) {
	tests := map[string]struct {
		class, controller string
		wantRule          string
		wantPrefix        string
	}{
		"class only":       {class: "public", wantRule: "ingressClasses/public", wantPrefix: "ingressClasses:\n  public:\n"},
		"known controller": {class: "public", controller: "example.com/edge", wantRule: "controllers/example.com/edge", wantPrefix: "controllers:\n  example.com/edge:\n"},
		"class that YAML would read as a boolean": {class: "on", wantRule: "ingressClasses/on", wantPrefix: "ingressClasses:\n  \"on\":\n"},
		"class that YAML would read as a number":  {class: "123", wantRule: "ingressClasses/123", wantPrefix: "ingressClasses:\n  \"123\":\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snippet := SuggestedRule(tc.class, tc.controller)
			if !strings.HasPrefix(snippet, tc.wantPrefix) {
				t.Errorf("snippet =\n%s\nwant it to start with\n%s", snippet, tc.wantPrefix)
			}
			filled := strings.Replace(snippet, "<annotation that turns on SSL passthrough>", "example.com/ssl-passthrough", 1)
			p := mustLoad(t, header+filled)
			if p.RuleSource(tc.wantRule) != "policy.yaml" {
				t.Errorf("the filled-in snippet does not define %s:\n%s", tc.wantRule, filled)
			}
			// Unfilled, it must not load by accident.
			if _, err := Load("policy.yaml", []byte(header+snippet)); err == nil {
				t.Error("the snippet with its placeholder loads; the placeholder must be an invalid key")
			}
		})
	}
}
