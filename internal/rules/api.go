package rules

// This file fixes the API other packages build on. The implementation lives in
// the other files of this package.

// IngressClass is what resolution needs of a networking.k8s.io/v1 IngressClass.
type IngressClass struct {
	Name       string
	Controller string // spec.controller
	IsDefault  bool   // annotation ingressclass.kubernetes.io/is-default-class: "true"
}

// IngressClasses is a read-only view of the cluster's IngressClass objects: an
// informer cache in the server, the objects found in the input offline. A nil
// IngressClasses means none can be read.
type IngressClasses interface {
	// IngressClass returns the IngressClass of that name, if it exists.
	IngressClass(name string) (IngressClass, bool)
	// DefaultIngressClass returns the cluster's default IngressClass, if any.
	// With several defaults, the one with the lexically smallest name wins, so
	// that the answer is deterministic.
	DefaultIngressClass() (IngressClass, bool)
}

// ResolutionSource says which step of PRODUCT.md's resolution produced a rule.
type ResolutionSource string

const (
	FromPolicyClass  ResolutionSource = "ingressClass" // step 1: ingressClasses[C]
	FromIngressClass ResolutionSource = "controller"   // step 2: IngressClass C's spec.controller
	FromGuess        ResolutionSource = "guess"        // step 3: class-name guess
	FromNone         ResolutionSource = "none"         // step 5: no rule
)

// Resolution is the outcome of resolving an ingress class name.
type Resolution struct {
	// Class is the class the rule was resolved for (after the default-class
	// step when className was empty); empty if there was none at all.
	Class string
	// Controller is the IngressClass spec.controller, when one was read, or the
	// controller key a guess points at.
	Controller string
	Source     ResolutionSource
	// RuleName names the rule for records and metrics, for example
	// "ingressClasses/haproxy" or "controllers/haproxy.org/ingress-controller".
	RuleName string
	// Rule is nil when Source is FromNone.
	Rule *PassthroughRule
	// AnnotationKeys are Rule's annotation keys, sorted when the policy
	// loaded.
	AnnotationKeys []string
	// Notes are warnings produced by resolution itself: a guessed controller,
	// a default class used, an IngressClass whose controller has no rule.
	Notes []string
}
