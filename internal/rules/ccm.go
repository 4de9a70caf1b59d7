package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultCCMNamespace is the namespace scope when ccm.namespaces is empty:
// every cloud-controller-manager we know of is installed there.
const DefaultCCMNamespace = "kube-system"

// AllNamespaces in ccm.namespaces puts every namespace in scope.
const AllNamespaces = "*"

// DefaultAPIServerPort is the port injected when none is configured: the
// ingress serves the API server on the HTTPS port.
const DefaultAPIServerPort = 443

// ccmLabelKeys are the pod template labels whose values are tested against
// the labels matchers, in the order they are reported.
var ccmLabelKeys = []string{"component", "k8s-app", "app", "app.kubernetes.io/name"}

// CCM is the compiled cloud-controller-manager detection and injection policy.
// Everything here is prepared when the policy loads; a request only matches.
// A nil *CCM detects nothing and has no API server.
type CCM struct {
	apiServer  APIServer // empty Host: no in-child injection
	onConflict ConflictAction
	// everyNamespace is set by "*" in ccm.namespaces.
	everyNamespace bool
	namespaces     map[string]struct{}
	match, veto    ccmPatterns
}

// ccmPatterns are the compiled lists of a CCMMatchers.
type ccmPatterns struct {
	binaries, images, names, labels, flags patterns
}

// patterns is a list of regular expressions; a string matches when any does.
type patterns []pattern

func (p patterns) match(s string) bool {
	for i := range p {
		if p[i].match(s) {
			return true
		}
	}
	return false
}

// pattern is a compiled regular expression with a cheap necessary condition:
// every match contains one of literals, so a string that contains none of
// them is rejected without running the regexp. Unanchored patterns such as
// "(?:^|/)cloud-pv-vsphere/cloud-provider-vsphere$" cost microseconds per
// string in Go's regexp; strings.Contains costs nanoseconds.
type pattern struct {
	re       *regexp.Regexp
	literals []string // nil: no prefilter
}

func (p *pattern) match(s string) bool {
	if p.literals != nil && !slices.ContainsFunc(p.literals, func(l string) bool { return strings.Contains(s, l) }) {
		return false
	}
	return p.re.MatchString(s)
}

// compilePattern compiles expr and derives its prefilter.
func compilePattern(expr string) (pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return pattern{}, err
	}
	p := pattern{re: re}
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil {
		p.literals = requiredLiterals(tree.Simplify())
	}
	return p, nil
}

// requiredLiterals returns strings one of which occurs in every match of re,
// or nil when it cannot tell.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			lits := requiredLiterals(sub)
			if lits == nil {
				return nil
			}
			out = append(out, lits...)
		}
		return out
	case syntax.OpConcat:
		// Every child's requirement holds; adjacent literals make a longer
		// one. Keep the most selective: the longest shortest literal.
		var best []string
		var runText strings.Builder
		flush := func() {
			if runText.Len() > 0 {
				best = moreSelective(best, []string{runText.String()})
				runText.Reset()
			}
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				runText.WriteString(string(sub.Rune))
				continue
			}
			flush()
			best = moreSelective(best, requiredLiterals(sub))
		}
		flush()
		return best
	}
	return nil
}

func moreSelective(a, b []string) []string {
	shortest := func(l []string) int {
		n := -1
		for _, s := range l {
			if n < 0 || len(s) < n {
				n = len(s)
			}
		}
		return n
	}
	if b == nil || (a != nil && shortest(a) >= shortest(b)) {
		return a
	}
	return b
}

// CCMContainer is what CCM detection reads of one container of a pod
// template.
type CCMContainer struct {
	Name    string
	Image   string
	Command []string
	Args    []string
}

// ContainerSignals is what the policy sees in one container. Each field is a
// human-readable reason (`binary "openstack-cloud-controller-manager" in
// args`), empty when there is none.
type ContainerSignals struct {
	// Veto says why the container is never a CCM, whatever else it shows.
	// When set, Strong and Medium are empty.
	Veto string
	// Strong is a binary, flag or image of a CCM: enough on its own.
	Strong string
	// Medium is a container name that looks like a CCM: it needs the
	// node.cloudprovider.kubernetes.io/uninitialized toleration as well.
	// Only looked for when there is no strong signal.
	Medium string
}

// APIServer returns the policy's ccm.apiServer with the port defaulted, or
// nil when it has no host (no in-child injection).
func (c *CCM) APIServer() *APIServer {
	if c == nil || c.apiServer.Host == "" {
		return nil
	}
	api := c.apiServer
	return &api
}

// OnConflict says what to do with a KUBERNETES_SERVICE_HOST or _PORT that is
// already set to another value: Override (the default) or Keep.
func (c *CCM) OnConflict() ConflictAction {
	if c == nil || c.onConflict == "" {
		return ConflictOverride
	}
	return c.onConflict
}

// InScope reports whether workloads of namespace are examined at all.
func (c *CCM) InScope(namespace string) bool {
	if c == nil {
		return false
	}
	if c.everyNamespace {
		return true
	}
	_, ok := c.namespaces[namespace]
	return ok
}

// Namespaces returns the namespace scope, for messages.
func (c *CCM) Namespaces() []string {
	if c == nil {
		return nil
	}
	if c.everyNamespace {
		return []string{AllNamespaces}
	}
	out := make([]string, 0, len(c.namespaces))
	for ns := range c.namespaces {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// PodVeto says why no container of a pod template with these labels is a
// CCM (a label component, k8s-app, app or app.kubernetes.io/name that a veto
// matches), or "".
func (c *CCM) PodVeto(labels map[string]string) string {
	return c.matchLabels(c.veto.labels, labels)
}

// PodMedium returns the label that looks like a CCM, or "". It is a medium
// signal: it needs the node.cloudprovider.kubernetes.io/uninitialized
// toleration as well.
func (c *CCM) PodMedium(labels map[string]string) string {
	return c.matchLabels(c.match.labels, labels)
}

func (c *CCM) matchLabels(p patterns, labels map[string]string) string {
	if c == nil || len(p) == 0 {
		return ""
	}
	for _, key := range ccmLabelKeys {
		if v, ok := labels[key]; ok && p.match(v) {
			return fmt.Sprintf("label %s=%s", key, v)
		}
	}
	return ""
}

// Container returns the signals of one container.
//
// Every token of command and args is examined, because where the binary sits
// varies: OpenStack's manifest puts it in args[0], others in command, and
// some start it from a shell script (tokens with spaces are split into
// words). A token starting with "-" is a flag, matched as --name=value (the
// two-token form "--name value" is joined); any other token is matched by its
// base name.
func (c *CCM) Container(ctr CCMContainer) ContainerSignals {
	if c == nil {
		return ContainerSignals{}
	}
	if c.veto.names.match(ctr.Name) {
		return ContainerSignals{Veto: fmt.Sprintf("container name %q", ctr.Name)}
	}
	image, imagePath := imageName(ctr.Image)
	if ctr.Image != "" && matchImage(c.veto.images, image, imagePath) {
		return ContainerSignals{Veto: fmt.Sprintf("image %q", ctr.Image)}
	}

	var s ContainerSignals
	var buf [48]cmdToken
	for _, tok := range commandTokens(buf[:0], ctr.Command, ctr.Args) {
		if tok.flag {
			if c.veto.flags.match(tok.text) {
				return ContainerSignals{Veto: fmt.Sprintf("flag %q in %s", tok.text, tok.field)}
			}
			if s.Strong == "" && c.match.flags.match(tok.text) {
				s.Strong = fmt.Sprintf("flag %q in %s", tok.text, tok.field)
			}
			continue
		}
		if c.veto.binaries.match(tok.text) {
			return ContainerSignals{Veto: fmt.Sprintf("binary %q in %s", tok.text, tok.field)}
		}
		if s.Strong == "" && c.match.binaries.match(tok.text) {
			s.Strong = fmt.Sprintf("binary %q in %s", tok.text, tok.field)
		}
	}
	if s.Strong == "" && ctr.Image != "" && matchImage(c.match.images, image, imagePath) {
		s.Strong = fmt.Sprintf("image %q", ctr.Image)
	}
	if s.Strong == "" && c.match.names.match(ctr.Name) {
		s.Medium = fmt.Sprintf("container name %q", ctr.Name)
	}
	return s
}

// cmdToken is one word of a container's command line, ready for matching.
type cmdToken struct {
	text  string // flag as --name[=value], or the base name of anything else
	field string // "command" or "args"
	flag  bool
}

// commandTokens appends the tokens of command followed by args (the
// container runtime concatenates them) to buf.
func commandTokens(buf []cmdToken, command, args []string) []cmdToken {
	var words [2][]string // command and args, split into words
	words[0], words[1] = command, args
	for i := range words {
		if slices.ContainsFunc(words[i], hasSpace) {
			var split []string
			for _, w := range words[i] {
				split = append(split, shellWords(w)...)
			}
			words[i] = split
		}
	}
	fields := [2]string{"command", "args"}
	afterDashDash := false
	for i := range words {
		for j, w := range words[i] {
			if w == "" {
				continue
			}
			if w == "--" {
				afterDashDash = true
				continue
			}
			if afterDashDash || w[0] != '-' || w == "-" {
				buf = append(buf, cmdToken{text: baseName(w), field: fields[i]})
				continue
			}
			buf = append(buf, cmdToken{text: normalizeFlag(w, nextWord(words, i, j)), field: fields[i], flag: true})
		}
	}
	return buf
}

// nextWord is the word after words[i][j], crossing from command to args.
func nextWord(words [2][]string, i, j int) string {
	if j+1 < len(words[i]) {
		return words[i][j+1]
	}
	if i == 0 && len(words[1]) > 0 {
		return words[1][0]
	}
	return ""
}

func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\n") }

// shellWords splits a shell script into rough words: enough to find the
// binary and flags of `sh -c "exec /bin/x-cloud-controller-manager --v=2"`.
func shellWords(s string) []string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.Trim(w, `"';&|()`)
	}
	return words
}

// normalizeFlag writes a flag as --name or --name=value, whether it was
// given with one dash or two, and joins the two-token form "--name value"
// when the next word is not a flag itself.
func normalizeFlag(w, next string) string {
	if !strings.HasPrefix(w, "--") {
		w = "-" + w
	}
	if strings.IndexByte(w, '=') >= 0 || next == "" || next[0] == '-' {
		return w
	}
	return w + "=" + next
}

// baseName is the last element of a path, "/" or "\" separated, without a
// Windows ".exe" suffix; "./x" is "x".
func baseName(w string) string {
	if i := strings.LastIndexAny(w, `/\`); i >= 0 {
		w = w[i+1:]
	}
	if len(w) > 4 && strings.EqualFold(w[len(w)-4:], ".exe") {
		w = w[:len(w)-4]
	}
	return w
}

// imageName returns an image reference without tag and digest (name), and
// name without its registry host (path). The first component is a registry
// host when it contains "." or ":" or is "localhost", as for docker.
func imageName(image string) (name, path string) {
	name = image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	path = name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if host := name[:i]; strings.ContainsAny(host, ".:") || host == "localhost" {
			path = name[i+1:]
		}
	}
	return name, path
}

// matchImage matches image patterns against the name with its registry host
// (so that a policy can say "example.com/my-ccm$") and without it (so that
// "^nutanix-cloud-native/..." works whatever the mirror).
func matchImage(p patterns, name, path string) bool {
	return p.match(name) || (path != name && p.match(path))
}

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
	if merged.empty() {
		merged = nil
	}
	if notFound.empty() {
		notFound = nil
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

	var e field.ErrorList
	c.match, e = compileMatchers(doc.Match, path.Child("match"))
	errs = append(errs, e...)
	c.veto, e = compileMatchers(doc.Veto, path.Child("veto"))
	errs = append(errs, e...)
	errs = append(errs, notBuiltIn(doc.RemoveMatch, path.Child("removeMatch"))...)
	errs = append(errs, notBuiltIn(doc.RemoveVeto, path.Child("removeVeto"))...)

	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func compileMatchers(m *CCMMatchers, path *field.Path) (ccmPatterns, field.ErrorList) {
	var out ccmPatterns
	var errs field.ErrorList
	compiled := [5]*patterns{&out.binaries, &out.flags, &out.images, &out.names, &out.labels}
	for k, l := range m.lists() {
		for i, p := range *l.list {
			if p == "" {
				errs = append(errs, field.Invalid(path.Child(l.name).Index(i), p, "an empty pattern matches everything"))
				continue
			}
			compiledPattern, err := compilePattern(p)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child(l.name).Index(i), p, err.Error()))
				continue
			}
			*compiled[k] = append(*compiled[k], compiledPattern)
		}
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
	return errs
}
