// Package rules is the policy of hcp-ingress-webhook: the policy document, the
// embedded defaults, strict loading with field-path errors, merging, and the
// resolver that turns an ingress class into a passthrough rule. It is pure Go and
// knows nothing about HTTP or admission.
package rules

// APIVersion and Kind identify a policy document.
const (
	APIVersion = "hcp-ingress.io/v1alpha1"
	Kind       = "Policy"
)

// Document is the policy as written in policy.yaml (a ConfigMap key or the file
// given to --policy-file). Loading is strict: unknown fields are errors.
type Document struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// ReplaceDefaults drops the embedded defaults instead of merging over them.
	ReplaceDefaults bool `json:"replaceDefaults,omitempty"`

	// IngressClasses are rules keyed by ingress class name; they win over
	// everything else (resolution step 1).
	IngressClasses map[string]PassthroughRule `json:"ingressClasses,omitempty"`
	// Controllers are rules keyed by a prefix of IngressClass spec.controller;
	// the longest matching prefix wins (resolution step 2).
	Controllers map[string]PassthroughRule `json:"controllers,omitempty"`
	// ClassGuesses map a class name to a key of Controllers. They are used only
	// when no IngressClass of that name can be read (resolution step 3), and
	// always with a warning: "haproxy" and "nginx" each name several controllers.
	ClassGuesses map[string]string `json:"classGuesses,omitempty"`

	DefaultIngressClass      string         `json:"defaultIngressClass,omitempty"`
	OnUnknownClass           UnknownAction  `json:"onUnknownClass,omitempty"`
	OnConflict               ConflictAction `json:"onConflict,omitempty"`
	RemoveForeignAnnotations *bool          `json:"removeForeignAnnotations,omitempty"`
	CCM                      *CCMDocument   `json:"ccm,omitempty"`
}

// PassthroughRule says how a controller turns on SSL passthrough for a plain
// Ingress, or, for a controller that cannot, what to do instead.
type PassthroughRule struct {
	// Project is the human name of the controller, used in messages.
	Project string `json:"project,omitempty"`
	// Annotations are added to spec.ingress.annotations. Values are exact
	// strings: some controllers enable the feature only for the literal shown.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Unsupported, when set, means the controller cannot pass TLS through with
	// Ingress annotations; the text says what to use instead.
	Unsupported string `json:"unsupported,omitempty"`
	// Warning is added to every admission the rule applies to (for example the
	// controller flag that must also be set).
	Warning string `json:"warning,omitempty"`
	// Route, on a rule that is Unsupported, names the passthrough route the
	// webhook keeps for the controller's Ingresses when `serve --routes` is on
	// (PRODUCT.md "Routes"); Unsupported stays the message without --routes.
	Route *RouteRule `json:"route,omitempty"`
}

// RouteRule names a kind of passthrough route.
type RouteRule struct {
	// Kind is a key of RouteKinds.
	Kind string `json:"kind"`
}

// RouteKinds are the route kinds a rule may name, each with what it is for
// admission warnings; internal/routes implements each (a test there keeps the
// two tables equal).
var RouteKinds = map[string]string{
	"traefik-ingressroutetcp": "a traefik.io/v1alpha1 IngressRouteTCP with tls.passthrough: true",
}

// UnknownAction is what happens when no rule resolves for a class.
type UnknownAction string

const (
	UnknownWarn   UnknownAction = "Warn"
	UnknownDeny   UnknownAction = "Deny"
	UnknownIgnore UnknownAction = "Ignore"
)

// ConflictAction is what happens when a value the webhook would set is already
// present with another value.
type ConflictAction string

const (
	ConflictKeep     ConflictAction = "Keep"
	ConflictOverride ConflictAction = "Override"
)

// CCMDocument configures the cloud-controller-manager env injection.
type CCMDocument struct {
	// APIServer is where the CCM must reach the API server in the in-child
	// topology. An empty host means no in-child injection.
	APIServer *APIServer `json:"apiServer,omitempty"`
	// OnConflict defaults to Override: a stale KUBERNETES_SERVICE_HOST (GCP's
	// 127.0.0.1, Talos' pod IP) is exactly what keeps the deadlock alive.
	OnConflict ConflictAction `json:"onConflict,omitempty"`
	// Namespaces in scope; "*" means every namespace. Default kube-system.
	Namespaces []string `json:"namespaces,omitempty"`
	// Match adds matchers to the built-in ones; Veto adds vetoes.
	Match *CCMMatchers `json:"match,omitempty"`
	Veto  *CCMMatchers `json:"veto,omitempty"`
	// RemoveMatch and RemoveVeto remove built-in patterns (exact pattern text).
	RemoveMatch *CCMMatchers `json:"removeMatch,omitempty"`
	RemoveVeto  *CCMMatchers `json:"removeVeto,omitempty"`
}

// APIServer is a host and port the CCM is pointed at.
type APIServer struct {
	Host string `json:"host"`
	Port int32  `json:"port,omitempty"`
}

// CCMMatchers are regular expressions, and flag matchers by name and value.
// Binaries (base names of the words of command and args), Flags (flags of
// command and args, written --name=value), FlagValues and Images (without tag
// and digest) are strong signals; Names (container names) and Labels (pod
// label values of component, k8s-app, app, app.kubernetes.io/name) are medium
// signals, which need the node.cloudprovider.kubernetes.io/uninitialized
// toleration as well.
type CCMMatchers struct {
	Binaries   []string           `json:"binaries,omitempty"`
	Flags      []string           `json:"flags,omitempty"`
	FlagValues []FlagValueMatcher `json:"flagValues,omitempty"`
	Images     []string           `json:"images,omitempty"`
	Names      []string           `json:"names,omitempty"`
	Labels     []string           `json:"labels,omitempty"`
}

// FlagValueMatcher matches a flag of command and args by name, in any of the
// forms --name=value, --name value, -name=value and -name value, when it has
// a value that is not empty and not one of Except. It says what a regular
// expression cannot (RE2 has no negative lookahead): "--cloud-provider with
// any value but external". In removeMatch and removeVeto only Name counts.
type FlagValueMatcher struct {
	// Name is the flag name without dashes, for example cloud-provider.
	Name string `json:"name"`
	// Except lists values that do not match, compared exactly.
	Except []string `json:"except,omitempty"`
}
