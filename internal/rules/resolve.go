package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ResolveClass finds the passthrough rule for spec.ingress.className, as
// PRODUCT.md's "Passthrough rule resolution" lays out:
//
//  1. a rule for the class in the policy (ingressClasses) wins;
//  2. otherwise, if IngressClass className exists, the rule for the longest
//     prefix of its spec.controller; a controller without a rule resolves to
//     no rule, never to a guess, because the cluster said who serves it;
//  3. otherwise (no IngressClass of that name can be read) the class-name
//     guess, with a note that it could not be confirmed;
//  4. an empty className is first replaced by the cluster's default
//     IngressClass, else by the policy's defaultIngressClass;
//  5. else no rule (Source FromNone).
//
// classes may be nil when no IngressClass can be read. The returned Rule is
// shared with the policy and must not be modified.
func (p *Policy) ResolveClass(className string, classes IngressClasses) Resolution {
	if className != "" {
		return p.resolveNamed(className, classes, nil)
	}
	if classes != nil {
		if ic, ok := classes.DefaultIngressClass(); ok && ic.Name != "" {
			return p.resolveNamed(ic.Name, classes, []string{fmt.Sprintf(
				"spec.ingress.className is empty, so the cluster's default IngressClass %q was used", ic.Name)})
		}
	}
	if p.defaultIngressClass != "" {
		return p.resolveNamed(p.defaultIngressClass, classes, []string{fmt.Sprintf(
			"spec.ingress.className is empty and no default IngressClass could be read, so the policy's defaultIngressClass %q was used",
			p.defaultIngressClass)})
	}
	return Resolution{Source: FromNone}
}

// resolveNamed runs steps 1-3 and 5 for a class name; notes come first in the
// result.
func (p *Policy) resolveNamed(class string, classes IngressClasses, notes []string) Resolution {
	res := Resolution{Class: class, Source: FromNone, Notes: notes}
	var ic IngressClass
	found := false
	if classes != nil {
		ic, found = classes.IngressClass(class)
	}
	if found {
		// Known even when step 1 decides: it names the controller in
		// messages and keeps its own annotations from looking foreign.
		res.Controller = ic.Controller
	}

	if nr, ok := p.classRules[class]; ok {
		res.use(FromPolicyClass, nr)
		return res
	}
	if found {
		if nr := p.controllerRule(ic.Controller); nr != nil {
			res.use(FromIngressClass, nr)
			return res
		}
		if ic.Controller == "" {
			res.Notes = append(res.Notes, fmt.Sprintf("IngressClass %q has no spec.controller, so no SSL passthrough rule applies to it", class))
		} else {
			res.Notes = append(res.Notes, fmt.Sprintf(
				"IngressClass %q is served by controller %q, which has no SSL passthrough rule in the policy", class, ic.Controller))
		}
		return res
	}
	if nr, ok := p.guesses[class]; ok {
		res.use(FromGuess, nr)
		res.Controller = nr.prefix
		why := fmt.Sprintf("no IngressClass %q was found", class)
		if classes == nil {
			why = "IngressClass objects could not be read"
		}
		res.Notes = append(res.Notes, fmt.Sprintf(
			"the controller of ingress class %q is a guess from its name and could not be confirmed (%s, and names such as \"haproxy\" and \"nginx\" are used by more than one controller): add ingressClasses.%s to the policy to be sure",
			class, why, class))
		return res
	}
	return res
}

// controllerRule returns the rule with the longest prefix of controller, or
// nil. It looks up each distinct prefix length once: the cost depends on how
// many different lengths the prefixes have, not on how many rules there are.
func (p *Policy) controllerRule(controller string) *namedRule {
	for _, n := range p.prefixLengths {
		if n > len(controller) {
			continue
		}
		if nr, ok := p.controllerRules[controller[:n]]; ok {
			return nr
		}
	}
	return nil
}

// ForeignAnnotation is a passthrough annotation found on an object that
// belongs to another rule than the one resolved for it: the classic mistake
// of copying haproxy.org/ssl-passthrough from documentation into a cluster
// that runs the community HAProxy Ingress.
type ForeignAnnotation struct {
	Key string
	// RuleName, Controller (the controllers key; "" for an ingressClasses
	// rule) and Project describe the rule the annotation belongs to.
	RuleName   string
	Controller string
	Project    string
}

// ForeignAnnotations returns, sorted by key, the annotations of an object
// that are passthrough annotations of a rule other than the resolved one. An
// annotation counts as the resolved controller's own when its key is in the
// resolved rule, or when it belongs to the controllers rule that matches the
// resolved controller (a user's ingressClasses rule for a class does not make
// that class's real controller foreign). With no rule resolved nothing is
// foreign: there is nothing to compare with.
func (p *Policy) ForeignAnnotations(res Resolution, annotations map[string]string) []ForeignAnnotation {
	if res.Rule == nil || len(annotations) == 0 {
		return nil
	}
	var own *namedRule
	if res.Controller != "" {
		own = p.controllerRule(res.Controller)
	}
	var out []ForeignAnnotation
	for key := range annotations {
		owners, ok := p.owners[key]
		if !ok {
			continue
		}
		if _, inRule := res.Rule.Annotations[key]; inRule {
			continue
		}
		if slices.ContainsFunc(owners, func(nr *namedRule) bool { return nr.name == res.RuleName || nr == own }) {
			continue
		}
		first := owners[0]
		out = append(out, ForeignAnnotation{Key: key, RuleName: first.name, Controller: first.prefix, Project: first.rule.Project})
	}
	slices.SortFunc(out, func(a, b ForeignAnnotation) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// PassthroughKeys returns every annotation key some rule sets, sorted.
func (p *Policy) PassthroughKeys() []string { return slices.Sorted(maps.Keys(p.owners)) }

// use makes nr, found by source, the resolved rule.
func (r *Resolution) use(source ResolutionSource, nr *namedRule) {
	r.Source, r.RuleName, r.Rule, r.AnnotationKeys = source, nr.name, nr.rule, nr.annotationKeys
}
