package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidAPIHost checks a host that KUBERNETES_SERVICE_HOST may be set to: a
// DNS-1123 subdomain or an IP address, without scheme or port. It returns
// nil or the reasons it is not.
func ValidAPIHost(host string) []string {
	switch {
	case host == "":
		return []string{"must not be empty"}
	case strings.Contains(host, "://"):
		return []string{"must be a host name or IP address, without a scheme"}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if h, p, ok := strings.Cut(host, ":"); ok && !strings.Contains(p, ":") {
		if _, err := strconv.Atoi(p); err == nil && len(validation.IsDNS1123Subdomain(h)) == 0 {
			return []string{"must not include a port (set the port separately)"}
		}
	}
	return validation.IsDNS1123Subdomain(host)
}

// mergeCCM merges over onto base: scalars of over win when set, namespaces
// of over replace base's when set, match and veto lists are added to base's
// (the user's first), and removeMatch/removeVeto delete exact patterns of
// base's lists. Neither
// argument is modified. Removal patterns that are not in base are kept in
// the result's RemoveMatch/RemoveVeto, for compileCCM to report.
func mergeCCM(base, over *CCMDocument) *CCMDocument {
	if over == nil {
		return base
	}
	if base == nil {
		return over
	}
	out := &CCMDocument{
		APIServer:  base.APIServer,
		OnConflict: base.OnConflict,
		Namespaces: base.Namespaces,
	}
	if over.APIServer != nil {
		api := *over.APIServer
		out.APIServer = &api
	}
	if over.OnConflict != "" {
		out.OnConflict = over.OnConflict
	}
	if over.Namespaces != nil {
		out.Namespaces = slices.Clone(over.Namespaces)
	}
	out.Match, out.RemoveMatch = mergeMatchers(base.Match, over.Match, over.RemoveMatch)
	out.Veto, out.RemoveVeto = mergeMatchers(base.Veto, over.Veto, over.RemoveVeto)
	return out
}

// mergeMatchers returns add followed by what remains of base once remove and
// add's own patterns are taken out; and the patterns of remove that base does
// not have. The user's patterns come first and unchanged, so that an error
// found in the merged document carries the index the user wrote.
func mergeMatchers(base, add, remove *CCMMatchers) (merged, notFound *CCMMatchers) {
	merged, notFound = &CCMMatchers{}, &CCMMatchers{}
	b, a, r, m, nf := base.lists(), add.lists(), remove.lists(), merged.lists(), notFound.lists()
	for k := range b {
		baseList, addList, removeList := *b[k].list, *a[k].list, *r[k].list
		out := slices.Clone(addList)
		for _, p := range baseList {
			if !slices.Contains(removeList, p) && !slices.Contains(addList, p) {
				out = append(out, p)
			}
		}
		for _, p := range removeList {
			if !slices.Contains(baseList, p) {
				*nf[k].list = append(*nf[k].list, p)
			}
		}
		if len(out) > 0 {
			*m[k].list = out
		}
	}
	merged.FlagValues, notFound.FlagValues = mergeFlagValues(base, add, remove)
	if merged.empty() {
		merged = nil
	}
	if notFound.empty() {
		notFound = nil
	}
	return merged, notFound
}

// mergeFlagValues merges the flagValues lists as mergeMatchers merges the
// others, a matcher being known by its name: one of add replaces the one of
// base with the same name.
func mergeFlagValues(base, add, remove *CCMMatchers) (merged, notFound []FlagValueMatcher) {
	var baseList, addList, removeList []FlagValueMatcher
	if base != nil {
		baseList = base.FlagValues
	}
	if add != nil {
		addList = add.FlagValues
	}
	if remove != nil {
		removeList = remove.FlagValues
	}
	named := func(list []FlagValueMatcher, name string) bool {
		return slices.ContainsFunc(list, func(m FlagValueMatcher) bool { return m.Name == name })
	}
	merged = slices.Clone(addList)
	for _, m := range baseList {
		if !named(removeList, m.Name) && !named(addList, m.Name) {
			merged = append(merged, m)
		}
	}
	for _, m := range removeList {
		if !named(baseList, m.Name) {
			notFound = append(notFound, m)
		}
	}
	return merged, notFound
}

// namedList is one pattern list of a CCMMatchers and its field name.
type namedList struct {
	name string
	list *[]string
}

// lists returns the pattern lists of m in a fixed order, so that merging,
// compiling and reporting treat every list alike. A nil m has empty lists.
func (m *CCMMatchers) lists() [5]namedList {
	if m == nil {
		m = &CCMMatchers{}
	}
	return [5]namedList{
		{"binaries", &m.Binaries}, {"flags", &m.Flags}, {"images", &m.Images},
		{"names", &m.Names}, {"labels", &m.Labels},
	}
}

func (m *CCMMatchers) empty() bool {
	if len(m.FlagValues) > 0 {
		return false
	}
	for _, l := range m.lists() {
		if len(*l.list) > 0 {
			return false
		}
	}
	return true
}

// compileCCM validates the merged CCM document and compiles it. Every error
// is reported, each with its field path.
func compileCCM(doc *CCMDocument, path *field.Path) (*CCM, field.ErrorList) {
	if doc == nil {
		doc = &CCMDocument{}
	}
	var errs field.ErrorList
	c := &CCM{onConflict: ConflictOverride, namespaces: map[string]struct{}{}}

	if api := doc.APIServer; api != nil {
		if api.Host != "" {
			for _, msg := range ValidAPIHost(api.Host) {
				errs = append(errs, field.Invalid(path.Child("apiServer", "host"), api.Host, msg))
			}
		}
		if api.Port < 0 || api.Port > 65535 {
			errs = append(errs, field.Invalid(path.Child("apiServer", "port"), api.Port, "must be between 1 and 65535, or 0 for 443"))
		}
		c.apiServer = *api
		if c.apiServer.Port == 0 {
			c.apiServer.Port = DefaultAPIServerPort
		}
	}

	switch doc.OnConflict {
	case "":
	case ConflictOverride, ConflictKeep:
		c.onConflict = doc.OnConflict
	default:
		errs = append(errs, field.NotSupported(path.Child("onConflict"), doc.OnConflict,
			[]string{string(ConflictOverride), string(ConflictKeep)}))
	}

	namespaces := doc.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{DefaultCCMNamespace}
	}
	if len(namespaces) > MaxRules {
		errs = append(errs, field.TooMany(path.Child("namespaces"), len(namespaces), MaxRules))
		namespaces = nil
	}
	for i, ns := range namespaces {
		if ns == AllNamespaces {
			c.everyNamespace = true
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Child("namespaces").Index(i), ns,
				strings.Join(msgs, "; ")+` (or "*" for every namespace)`))
			continue
		}
		c.namespaces[ns] = struct{}{}
	}

	budget := MaxTotalInstructions
	var e field.ErrorList
	c.match, e = compileMatchers(doc.Match, path.Child("match"), &budget)
	errs = append(errs, e...)
	c.veto, e = compileMatchers(doc.Veto, path.Child("veto"), &budget)
	errs = append(errs, e...)
	errs = append(errs, notBuiltIn(doc.RemoveMatch, path.Child("removeMatch"))...)
	errs = append(errs, notBuiltIn(doc.RemoveVeto, path.Child("removeVeto"))...)

	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// compileMatchers compiles the lists of m. budget is what remains of
// MaxTotalInstructions; once it is spent, the remaining patterns are not
// compiled.
func compileMatchers(m *CCMMatchers, path *field.Path, budget *int) (ccmPatterns, field.ErrorList) {
	var out ccmPatterns
	var errs field.ErrorList
	compiled := [5]*patterns{&out.binaries, &out.flags, &out.images, &out.names, &out.labels}
	for k, l := range m.lists() {
		listPath := path.Child(l.name)
		if len(*l.list) > MaxPatternsPerList {
			errs = append(errs, field.TooMany(listPath, len(*l.list), MaxPatternsPerList))
			continue
		}
		for i, p := range *l.list {
			if p == "" {
				errs = append(errs, field.Invalid(listPath.Index(i), p, "an empty pattern matches everything"))
				continue
			}
			if *budget < 0 {
				break // reported once, where it was spent
			}
			compiledPattern, instructions, err := compilePattern(p)
			if err != nil {
				errs = append(errs, field.Invalid(listPath.Index(i), p, err.Error()))
				continue
			}
			if *budget -= instructions; *budget < 0 {
				errs = append(errs, field.Invalid(listPath.Index(i), p, fmt.Sprintf(
					"the CCM patterns of the policy (the built-in ones included) compile to more than %d instructions together: "+
						"this one reaches the limit", MaxTotalInstructions)))
				continue
			}
			*compiled[k] = append(*compiled[k], compiledPattern)
		}
	}
	if m != nil {
		out.flagValues, errs = compileFlagValues(m.FlagValues, path.Child("flagValues"), errs)
	}
	return out, errs
}

// compileFlagValues checks flagValues matchers and indexes them by name.
func compileFlagValues(list []FlagValueMatcher, path *field.Path, errs field.ErrorList) (flagValueMatchers, field.ErrorList) {
	if len(list) > MaxPatternsPerList {
		return nil, append(errs, field.TooMany(path, len(list), MaxPatternsPerList))
	}
	out := make(flagValueMatchers, len(list))
	for i, m := range list {
		namePath := path.Index(i).Child("name")
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(namePath, "the flag name, without dashes: cloud-provider"))
			continue
		case strings.HasPrefix(m.Name, "-") || strings.ContainsAny(m.Name, "= \t\n"):
			errs = append(errs, field.Invalid(namePath, m.Name, "a flag name without dashes, spaces or \"=\": cloud-provider"))
			continue
		case len(m.Name) > MaxPatternLength:
			errs = append(errs, field.TooLong(namePath, m.Name, MaxPatternLength))
			continue
		}
		if _, dup := out[m.Name]; dup {
			errs = append(errs, field.Duplicate(namePath, m.Name))
			continue
		}
		if len(m.Except) > MaxPatternsPerList {
			errs = append(errs, field.TooMany(path.Index(i).Child("except"), len(m.Except), MaxPatternsPerList))
			continue
		}
		except := make(map[string]struct{}, len(m.Except))
		for _, v := range m.Except {
			except[v] = struct{}{}
		}
		out[m.Name] = except
	}
	return out, errs
}

// notBuiltIn reports removal patterns that mergeCCM did not find among the
// built-in ones (or that were given with replaceDefaults, where there are
// none to remove from).
func notBuiltIn(m *CCMMatchers, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range m.lists() {
		for _, p := range *l.list {
			errs = append(errs, field.Invalid(path.Child(l.name), p,
				"not a built-in pattern: removal takes the exact text of a pattern of the embedded default policy"))
		}
	}
	if m != nil {
		for _, fv := range m.FlagValues {
			errs = append(errs, field.Invalid(path.Child("flagValues"), fv.Name,
				"not the name of a built-in flagValues matcher"))
		}
	}
	return errs
}
