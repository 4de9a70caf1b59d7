package rules

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Policy is a loaded, validated, merged and compiled policy. It is immutable,
// so the server can swap it atomically and share it between requests.
//
// Everything that depends only on the policy is prepared when it loads: the
// class and controller tables, the distinct controller prefix lengths for the
// longest-prefix match, the owner of every passthrough annotation key. A
// request costs a few map lookups whatever the size of the policy.
type Policy struct {
	source    string    // the user document's source; "" for the defaults alone
	effective *Document // merged, with every default filled in

	classRules      map[string]*namedRule // ingressClasses, by class name
	controllerRules map[string]*namedRule // controllers, by prefix
	prefixLengths   []int                 // distinct lengths of controller prefixes, longest first
	guesses         map[string]*namedRule // classGuesses, resolved to their controller rule
	owners          map[string][]*namedRule
	ruleSources     map[string]string // rule name -> BuiltinSource or the user source

	onUnknownClass      UnknownAction
	onConflict          ConflictAction
	removeForeign       bool
	defaultIngressClass string
	warnings            []string

	ccm *CCM
}

// namedRule is a rule with the name it is known by in records and metrics.
type namedRule struct {
	name   string // "ingressClasses/haproxy", "controllers/haproxy.org/ingress-controller"
	prefix string // the controllers key; "" for an ingressClasses rule
	rule   *PassthroughRule
	// annotationKeys are rule.Annotations' keys, sorted once here: the
	// engine applies and reports them in this order.
	annotationKeys []string
}

func newNamedRule(name, prefix string, rule *PassthroughRule) *namedRule {
	return &namedRule{name: name, prefix: prefix, rule: rule, annotationKeys: slices.Sorted(maps.Keys(rule.Annotations))}
}

// ClassRuleName and ControllerRuleName name rules in records, metrics and
// RuleSource; GuessRuleName names a class guess for RuleSource.
func ClassRuleName(class string) string       { return "ingressClasses/" + class }
func ControllerRuleName(prefix string) string { return "controllers/" + prefix }
func GuessRuleName(class string) string       { return "classGuesses/" + class }

// compile builds a Policy from a merged document. user is the document as the
// user wrote it (nil for the embedded defaults alone); it tells which rules
// the user defined. It reports the errors that need the merged document.
func compile(merged, user *Document, source string) (*Policy, field.ErrorList) {
	var errs field.ErrorList
	p := &Policy{
		source:          source,
		classRules:      make(map[string]*namedRule, len(merged.IngressClasses)),
		controllerRules: make(map[string]*namedRule, len(merged.Controllers)),
		guesses:         make(map[string]*namedRule, len(merged.ClassGuesses)),
		owners:          make(map[string][]*namedRule),
		ruleSources:     make(map[string]string, len(merged.IngressClasses)+len(merged.Controllers)),
	}
	ruleSource := func(userKeys func(*Document) bool) string {
		if user != nil && (user.ReplaceDefaults || userKeys(user)) {
			return source
		}
		return BuiltinSource
	}

	// Rules are copied, annotation maps included: a Resolution hands them
	// out, and the embedded defaults are shared by every policy.
	for class, rule := range merged.IngressClasses {
		rule.Annotations = maps.Clone(rule.Annotations)
		nr := newNamedRule(ClassRuleName(class), "", &rule)
		p.classRules[class] = nr
		p.ruleSources[nr.name] = ruleSource(func(d *Document) bool { _, ok := d.IngressClasses[class]; return ok })
	}
	lengths := make(map[int]bool)
	for prefix, rule := range merged.Controllers {
		rule.Annotations = maps.Clone(rule.Annotations)
		nr := newNamedRule(ControllerRuleName(prefix), prefix, &rule)
		p.controllerRules[prefix] = nr
		p.ruleSources[nr.name] = ruleSource(func(d *Document) bool { _, ok := d.Controllers[prefix]; return ok })
		if prefix != "" {
			lengths[len(prefix)] = true
		}
	}
	p.prefixLengths = slices.Sorted(maps.Keys(lengths))
	slices.Reverse(p.prefixLengths)

	guessesPath := field.NewPath("classGuesses")
	for _, class := range slices.Sorted(maps.Keys(merged.ClassGuesses)) {
		prefix := merged.ClassGuesses[class]
		p.ruleSources[GuessRuleName(class)] = ruleSource(func(d *Document) bool { _, ok := d.ClassGuesses[class]; return ok })
		nr, ok := p.controllerRules[prefix]
		switch {
		case ok:
			p.guesses[class] = nr
		case prefix != "": // empty is reported by validateDocument
			errs = append(errs, field.Invalid(guessesPath.Key(class), prefix,
				"must name a key of controllers (this policy's or a built-in one)"))
		}
	}

	// The owner of each passthrough annotation key, for foreign annotation
	// detection. Controller rules come first: they name a controller.
	for _, nr := range p.sortedRules() {
		for key := range nr.rule.Annotations {
			p.owners[key] = append(p.owners[key], nr)
		}
	}

	ccm, ccmErrs := compileCCM(merged.CCM, field.NewPath("ccm"))
	errs = append(errs, ccmErrs...)
	p.ccm = ccm

	p.onUnknownClass = merged.OnUnknownClass
	if p.onUnknownClass == "" {
		p.onUnknownClass = UnknownWarn
	}
	p.onConflict = merged.OnConflict
	if p.onConflict == "" {
		p.onConflict = ConflictKeep
	}
	if merged.RemoveForeignAnnotations != nil {
		p.removeForeign = *merged.RemoveForeignAnnotations
	}
	p.defaultIngressClass = merged.DefaultIngressClass

	effective := *merged
	effective.APIVersion, effective.Kind = APIVersion, Kind
	effective.OnUnknownClass, effective.OnConflict = p.onUnknownClass, p.onConflict
	effective.RemoveForeignAnnotations = &p.removeForeign
	p.effective = &effective

	p.warnings = p.riskyWarnings(user)
	return p, errs
}

// sortedRules returns every rule, controllers first, each group by name.
func (p *Policy) sortedRules() []*namedRule {
	out := make([]*namedRule, 0, len(p.controllerRules)+len(p.classRules))
	for _, prefix := range slices.Sorted(maps.Keys(p.controllerRules)) {
		out = append(out, p.controllerRules[prefix])
	}
	for _, class := range slices.Sorted(maps.Keys(p.classRules)) {
		out = append(out, p.classRules[class])
	}
	return out
}

// riskyWarnings lists settings that are valid but likely to surprise.
func (p *Policy) riskyWarnings(user *Document) []string {
	var w []string
	if user != nil && user.ReplaceDefaults {
		w = append(w, "replaceDefaults: true drops every built-in rule, class guess and CCM matcher: only what this policy defines applies")
	}
	switch p.onUnknownClass {
	case UnknownDeny:
		w = append(w, "onUnknownClass: Deny rejects every control plane whose ingress class has no rule or names a controller that cannot pass TLS through, including classes added to the cluster later")
	case UnknownIgnore:
		w = append(w, "onUnknownClass: Ignore admits control planes whose ingress class has no rule without a word, although their Ingress most likely terminates TLS and cannot reach the API server")
	}
	if p.removeForeign && p.onConflict == ConflictOverride {
		w = append(w, "removeForeignAnnotations: true with onConflict: Override rewrites spec.ingress.annotations as the rules say, replacing and removing passthrough annotations users wrote")
	}
	if ccm := p.effective.CCM; ccm != nil {
		if ccm.OnConflict == ConflictKeep {
			w = append(w, "ccm.onConflict: Keep leaves a KUBERNETES_SERVICE_HOST that a CCM container already sets (GCP's 127.0.0.1, Talos' pod IP) in place, which keeps the CCM deadlock the injection is there to break")
		}
		if slices.Contains(ccm.Namespaces, "*") {
			w = append(w, `ccm.namespaces: "*" injects the API server address into CCM-looking workloads of every namespace, not only kube-system`)
		}
	}
	return w
}

// Source returns the source name given to Load, or "" for the embedded
// default policy.
func (p *Policy) Source() string { return p.source }

// Effective returns the merged policy, every default filled in, for
// `policy show`. It is a copy: changing it does not change p.
func (p *Policy) Effective() *Document {
	raw, err := json.Marshal(p.effective)
	if err != nil {
		panic("policy: marshal effective document: " + err.Error()) // plain data: cannot happen
	}
	out := &Document{}
	if err := json.Unmarshal(raw, out); err != nil {
		panic("policy: copy effective document: " + err.Error())
	}
	return out
}

// RuleSource says where the rule of that name (as in Resolution.RuleName, or
// "classGuesses/<class>" for a guess) comes from: BuiltinSource, or the
// source name of the user policy that defined it. It is "" for a name that is
// not a rule of p.
func (p *Policy) RuleSource(ruleName string) string { return p.ruleSources[ruleName] }

// RuleNames returns the names of every rule, controllers first, each group
// sorted.
func (p *Policy) RuleNames() []string {
	rules := p.sortedRules()
	names := make([]string, len(rules))
	for i, nr := range rules {
		names[i] = nr.name
	}
	return names
}

// Warnings lists valid but risky settings, for `policy validate`, the
// validating webhook and the log when a policy loads.
func (p *Policy) Warnings() []string { return slices.Clone(p.warnings) }

// OnUnknownClass says what happens when no rule resolves for a class.
func (p *Policy) OnUnknownClass() UnknownAction { return p.onUnknownClass }

// OnConflict says what happens when an annotation a rule sets is already
// present with another value.
func (p *Policy) OnConflict() ConflictAction { return p.onConflict }

// RemoveForeignAnnotations says whether passthrough annotations of another
// controller than the resolved one are removed (they are reported either way).
func (p *Policy) RemoveForeignAnnotations() bool { return p.removeForeign }

// DefaultIngressClass is the class used when spec.ingress.className is empty
// and the cluster has no default IngressClass.
func (p *Policy) DefaultIngressClass() string { return p.defaultIngressClass }

// CCM returns the compiled CCM policy.
func (p *Policy) CCM() *CCM { return p.ccm }

// SuggestedRule is the policy snippet that gives class a rule, for messages
// that tell the user how to add one. With the controller known, the snippet
// keys the rule by controller, so that it covers every class of it.
func SuggestedRule(class, controller string) string {
	var b strings.Builder
	if controller != "" {
		b.WriteString("controllers:\n  ")
		b.WriteString(yamlKey(controller))
	} else {
		b.WriteString("ingressClasses:\n  ")
		b.WriteString(yamlKey(class))
	}
	b.WriteString(":\n    annotations:\n      <annotation that turns on SSL passthrough>: \"true\"\n")
	b.WriteString("    # or, for a controller that cannot pass TLS through with annotations:\n")
	b.WriteString("    # unsupported: \"<what to use instead>\"\n")
	return b.String()
}

// yamlKey writes s as a YAML mapping key: plain when that reads back as the
// same string, double-quoted otherwise.
func yamlKey(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("-._/", r)
	}) < 0
	if plain {
		switch strings.ToLower(s) {
		case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
			plain = false
		}
		if s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '.' {
			plain = false
		}
	}
	if plain {
		return s
	}
	q, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
	return string(q)
}
