package rules

import (
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxControllerLength is the longest IngressClass spec.controller the API
// server accepts; a longer prefix could never match.
const maxControllerLength = 250

var (
	unknownActions  = []UnknownAction{UnknownWarn, UnknownDeny, UnknownIgnore}
	conflictActions = []ConflictAction{ConflictKeep, ConflictOverride}
)

// validateDocument checks one document as written, before merging, so that
// every error points at a field the author wrote. Map keys become path
// elements as [key] ("ingressClasses[nginx].annotations"), so that a key
// with dots reads unambiguously.
// Checks that need the merged policy (a class guess naming a controllers key
// of the defaults) are made by compile.
func validateDocument(doc *Document) field.ErrorList {
	var errs field.ErrorList
	if doc.APIVersion == "" {
		errs = append(errs, field.Required(field.NewPath("apiVersion"), "must be "+APIVersion))
	} else if doc.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), doc.APIVersion, []string{APIVersion}))
	}
	if doc.Kind == "" {
		errs = append(errs, field.Required(field.NewPath("kind"), "must be "+Kind))
	} else if doc.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), doc.Kind, []string{Kind}))
	}

	for _, section := range []struct {
		name  string
		count int
	}{{"ingressClasses", len(doc.IngressClasses)}, {"controllers", len(doc.Controllers)}, {"classGuesses", len(doc.ClassGuesses)}} {
		if section.count > MaxRules {
			errs = append(errs, field.TooMany(field.NewPath(section.name), section.count, MaxRules))
		}
	}

	classesPath := field.NewPath("ingressClasses")
	for _, class := range slices.Sorted(maps.Keys(doc.IngressClasses)) {
		path := classesPath.Key(class)
		errs = append(errs, validateClassName(path, class)...)
		rule := doc.IngressClasses[class]
		errs = append(errs, validateRule(path, &rule)...)
	}

	controllersPath := field.NewPath("controllers")
	for _, prefix := range slices.Sorted(maps.Keys(doc.Controllers)) {
		path := controllersPath.Key(prefix)
		errs = append(errs, validateControllerPrefix(path, prefix)...)
		rule := doc.Controllers[prefix]
		errs = append(errs, validateRule(path, &rule)...)
	}

	guessesPath := field.NewPath("classGuesses")
	for _, class := range slices.Sorted(maps.Keys(doc.ClassGuesses)) {
		path := guessesPath.Key(class)
		errs = append(errs, validateClassName(path, class)...)
		if doc.ClassGuesses[class] == "" {
			errs = append(errs, field.Required(path, "must name a key of controllers"))
		}
	}

	if doc.DefaultIngressClass != "" {
		errs = append(errs, validateClassName(field.NewPath("defaultIngressClass"), doc.DefaultIngressClass)...)
	}
	if doc.OnUnknownClass != "" && !slices.Contains(unknownActions, doc.OnUnknownClass) {
		errs = append(errs, field.NotSupported(field.NewPath("onUnknownClass"), doc.OnUnknownClass, unknownActions))
	}
	if doc.OnConflict != "" && !slices.Contains(conflictActions, doc.OnConflict) {
		errs = append(errs, field.NotSupported(field.NewPath("onConflict"), doc.OnConflict, conflictActions))
	}
	return errs
}

// validateClassName checks an ingress class name: IngressClass names are
// DNS-1123 subdomains, so a rule for any other name could never apply.
func validateClassName(path *field.Path, name string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(path, name, "not a valid ingress class name: "+msg))
	}
	return errs
}

// validateControllerPrefix checks a controllers key. It is a prefix of
// IngressClass spec.controller ("projectcontour.io/" is one), so it need not
// be a whole domain-prefixed path, but it must be something a controller name
// can start with.
func validateControllerPrefix(path *field.Path, prefix string) field.ErrorList {
	switch {
	case prefix == "":
		return field.ErrorList{field.Invalid(path, prefix, "a controller prefix must not be empty")}
	case len(prefix) > maxControllerLength:
		return field.ErrorList{field.TooLong(path, prefix, maxControllerLength)}
	case strings.IndexFunc(prefix, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 || !utf8.ValidString(prefix):
		return field.ErrorList{field.Invalid(path, prefix, "a controller prefix must not contain spaces or control characters (IngressClass spec.controller is a domain-prefixed path such as example.com/ingress-controller)")}
	}
	return nil
}

// validateRule checks one passthrough rule.
func validateRule(path *field.Path, rule *PassthroughRule) field.ErrorList {
	errs := apivalidation.ValidateAnnotations(rule.Annotations, path.Child("annotations"))
	hasAnnotations := len(rule.Annotations) > 0
	hasUnsupported := strings.TrimSpace(rule.Unsupported) != ""
	switch {
	case hasAnnotations && hasUnsupported:
		errs = append(errs, field.Forbidden(path.Child("unsupported"),
			"a rule has either annotations (how to turn SSL passthrough on) or unsupported (what to do instead), not both"))
	case !hasAnnotations && !hasUnsupported:
		errs = append(errs, field.Required(path.Child("annotations"),
			"a rule needs annotations (how to turn SSL passthrough on) or unsupported (what to do instead)"))
	}
	if rule.Route != nil {
		switch {
		case RouteKinds[rule.Route.Kind] == "":
			errs = append(errs, field.NotSupported(path.Child("route", "kind"), rule.Route.Kind, slices.Sorted(maps.Keys(RouteKinds))))
		case !hasUnsupported:
			errs = append(errs, field.Required(path.Child("unsupported"),
				"a rule with a route also needs unsupported: the message when `serve --routes` is off"))
		}
	}
	for _, text := range []struct {
		name, value string
	}{{"project", rule.Project}, {"unsupported", rule.Unsupported}, {"warning", rule.Warning}} {
		errs = append(errs, validateMessageText(path.Child(text.name), text.value)...)
	}
	return errs
}

// validateMessageText checks text that ends up in an admission warning. The
// API server drops a warning that is not UTF-8 or holds a control character,
// so such text would silently never reach the user.
func validateMessageText(path *field.Path, text string) field.ErrorList {
	if !utf8.ValidString(text) {
		return field.ErrorList{field.Invalid(path, text, "must be valid UTF-8")}
	}
	if strings.IndexFunc(text, unicode.IsControl) >= 0 {
		return field.ErrorList{field.Invalid(path, text,
			"must not contain control characters such as line breaks: the API server drops warnings that do (use >- for long text in YAML)")}
	}
	return nil
}
