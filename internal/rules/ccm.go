package rules

import (
	"fmt"
	"slices"
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
	flagValues                             flagValueMatchers
}

// flagValueMatchers are compiled FlagValueMatchers, by flag name.
type flagValueMatchers map[string]map[string]struct{} // name -> excepted values

// match reports whether f has a value that a matcher of its name does not
// except. A flag without a value, or with an empty one, never matches.
func (m flagValueMatchers) match(f cmdFlag) bool {
	except, ok := m[f.name]
	if !ok || f.value == "" {
		return false
	}
	_, excepted := except[f.value]
	return !excepted
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
		if tok.isFlag {
			if c.veto.flags.match(tok.text) || c.veto.flagValues.match(tok.flag) {
				return ContainerSignals{Veto: fmt.Sprintf("flag %q in %s", tok.text, tok.field)}
			}
			if s.Strong == "" && (c.match.flagValues.match(tok.flag) || c.match.flags.match(tok.text)) {
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
