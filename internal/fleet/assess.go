package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/controlplanes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/routes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Passthrough states (PRODUCT.md, `audit`).
const (
	PassthroughOK          = "ok"
	PassthroughMissing     = "missing"     // the rule's annotation is absent
	PassthroughWrong       = "wrong"       // another value, or another controller's annotation
	PassthroughUnsupported = "unsupported" // the controller cannot pass TLS through an annotation
	PassthroughNoRule      = "no-rule"     // no rule resolves for the class
)

// Wiring states.
const (
	WiringOK               = "ok"
	WiringOff              = "off"                // neither ConfigMap nor manifests entry
	WiringNoManifestsEntry = "no-manifests-entry" // ConfigMap, but spec.manifests does not mount it
	WiringConfigMapMissing = "configmap-missing"  // spec.manifests mounts a ConfigMap that does not exist
	WiringConfigMapStale   = "configmap-stale"    // URL, CA bundle or namespace scope out of date
)

// Child states (`audit --children`).
const (
	ChildOK          = "ok"
	ChildMissing     = "missing"
	ChildStale       = "stale"
	ChildUnreachable = "unreachable"

	CCMInjected  = "injected"
	CCMMissing   = "missing"
	CCMNoneFound = "none-found"
)

var (
	passthroughStates = []string{PassthroughOK, PassthroughMissing, PassthroughWrong, PassthroughUnsupported, PassthroughNoRule}
	wiringStates      = []string{WiringOK, WiringOff, WiringNoManifestsEntry, WiringConfigMapMissing, WiringConfigMapStale}
)

// Assessment is one control plane as `audit` reports it.
type Assessment struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Class       string `json:"class"`
	Controller  string `json:"controller"`
	Rule        string `json:"rule"`
	Passthrough string `json:"passthrough"`
	Wiring      string `json:"wiring"`
	// Route is the route state (routes.State) when the resolved rule names
	// a route kind and the inventory reads routes; "" otherwise.
	Route string `json:"route,omitempty"`
	// ChildWebhook and CCM are set with --children.
	ChildWebhook string `json:"childWebhook,omitempty"`
	CCM          string `json:"ccm,omitempty"`
	// Details say why a state is not ok.
	Details []string `json:"details,omitempty"`

	object    *unstructured.Unstructured
	configMap *corev1.ConfigMap
	api       *rules.APIServer
	res       rules.Resolution
	// routesKept: serve --routes keeps the route, so a missing or stale one
	// would change.
	routesKept bool
}

// Object is the control plane assessed (trimmed when read from a cache).
func (a *Assessment) Object() *unstructured.Unstructured { return a.object }

// APIServer is the control plane's ingress API host and port, nil when its
// ingress block is invalid.
func (a *Assessment) APIServer() *rules.APIServer { return a.api }

// WouldChange reports whether the webhook, the fleet controllers or a
// missing manual step would change something for this control plane.
func (a *Assessment) WouldChange() bool {
	switch {
	case a.Passthrough == PassthroughMissing || a.Passthrough == PassthroughWrong:
		return true
	case a.Wiring != WiringOK && a.Wiring != WiringOff:
		return true
	case a.ChildWebhook == ChildMissing || a.ChildWebhook == ChildStale:
		return true
	case a.CCM == CCMMissing:
		return true
	case a.routesKept && (a.Route == routes.StateMissing || a.Route == routes.StateStale):
		return true
	}
	return false
}

// Inventory is what an assessment reads: the control planes of the served
// kinds, the fleet ConfigMaps and the IngressClasses, through Reader (the
// manager's cache in serve, the API server in `audit`).
type Inventory struct {
	Reader client.Reader
	Kinds  []schema.GroupVersionKind
	Policy *rules.Policy
	// ChildWebhookURL is the URL the ConfigMaps must carry; empty: the one
	// each ConfigMap carries (audit cannot know serve's flag).
	ChildWebhookURL string
	// CABundle is the CA bundle the ConfigMaps must carry; nil: the one
	// each ConfigMap carries.
	CABundle []byte
	// RouteStates: also read each control plane's route state through
	// Reader (its Ingress and route objects). `audit` does; the gauges do
	// not, so serve needs no Ingress access for them.
	RouteStates bool
	// RoutesKept: the install runs serve --routes, so a missing or stale
	// route counts as a change (`audit --routes`).
	RoutesKept bool
}

// ServedKinds returns the control-plane kinds mapper knows, in lookup order.
func ServedKinds(mapper meta.RESTMapper) ([]schema.GroupVersionKind, error) {
	var out []schema.GroupVersionKind
	for _, gk := range controlplanes.Kinds {
		m, err := mapper.RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("discovering %s: %w", gk, err)
		}
		out = append(out, m.GroupVersionKind)
	}
	return out, nil
}

// Assess returns every control plane with spec.ingress (neither it nor its
// namespace skip-labelled), sorted by namespace, name and kind.
func (inv Inventory) Assess(ctx context.Context) ([]Assessment, error) {
	if inv.Policy == nil {
		return nil, errors.New("no policy loaded")
	}
	var icList networkingv1.IngressClassList
	if err := inv.Reader.List(ctx, &icList); err != nil {
		return nil, fmt.Errorf("listing IngressClasses: %w", err)
	}
	classes := classView(icList.Items)
	var cmList corev1.ConfigMapList
	if err := inv.Reader.List(ctx, &cmList, client.HasLabels{ControlPlaneLabel}); err != nil {
		return nil, fmt.Errorf("listing ConfigMaps labelled %s: %w", ControlPlaneLabel, err)
	}
	configMaps := map[string]*corev1.ConfigMap{}
	for i := range cmList.Items {
		cm := &cmList.Items[i]
		configMaps[cm.Namespace+"/"+cm.Name] = cm
	}
	skipped := map[string]bool{}
	var out []Assessment
	for _, gvk := range inv.Kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := inv.Reader.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			cp := &list.Items[i]
			nsSkipped, seen := skipped[cp.GetNamespace()]
			if !seen {
				ns := namespaceMeta(cp.GetNamespace())
				if err := inv.Reader.Get(ctx, client.ObjectKeyFromObject(ns), ns); err == nil {
					nsSkipped = ns.Labels[mutate.SkipLabel] == "true"
				}
				skipped[cp.GetNamespace()] = nsSkipped
			}
			t := decide(cp, nsSkipped)
			if !t.Wired && t.Invalid == "" {
				continue
			}
			cm := configMaps[cp.GetNamespace()+"/"+ConfigMapName(cp.GetName())]
			a := inv.assess(cp, classes, cm)
			a.object, a.configMap, a.api = cp, cm, t.API
			if inv.RouteStates {
				if err := inv.routeState(ctx, &a); err != nil {
					return nil, err
				}
			}
			if t.Invalid != "" {
				a.Details = append(a.Details, "spec.ingress: "+t.Invalid)
			}
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (inv Inventory) assess(cp *unstructured.Unstructured, classes rules.IngressClasses, cm *corev1.ConfigMap) Assessment {
	a := Assessment{Namespace: cp.GetNamespace(), Name: cp.GetName(), Kind: cp.GetKind()}
	a.Passthrough, a.Details = passthroughState(&a, cp, inv.Policy, classes)
	a.Wiring = inv.wiringState(&a, cp, cm)
	return a
}

// passthroughState resolves the rule as the webhook does and compares the
// object's annotations with it.
func passthroughState(a *Assessment, cp *unstructured.Unstructured, policy *rules.Policy, classes rules.IngressClasses) (string, []string) {
	className, _, _ := unstructured.NestedString(cp.Object, "spec", "ingress", "className")
	annotations, _, _ := unstructured.NestedStringMap(cp.Object, "spec", "ingress", "annotations")
	res := policy.ResolveClass(className, classes)
	a.Class, a.Controller, a.Rule, a.res = res.Class, res.Controller, res.RuleName, res
	switch {
	case res.Rule == nil:
		return PassthroughNoRule, []string{fmt.Sprintf("no passthrough rule for class %q", className)}
	case res.Rule.Unsupported != "":
		return PassthroughUnsupported, []string{res.Rule.Unsupported}
	}
	var details []string
	state := PassthroughOK
	for _, key := range slices.Sorted(mapKeys(res.Rule.Annotations)) {
		want := res.Rule.Annotations[key]
		got, present := annotations[key]
		switch {
		case !present:
			if state == PassthroughOK {
				state = PassthroughMissing
			}
			details = append(details, fmt.Sprintf("spec.ingress.annotations[%s]: missing, want %q", key, want))
		case got != want:
			state = PassthroughWrong
			details = append(details, fmt.Sprintf("spec.ingress.annotations[%s]: %q, want %q", key, got, want))
		}
	}
	for _, f := range policy.ForeignAnnotations(res, annotations) {
		state = PassthroughWrong
		details = append(details, fmt.Sprintf("spec.ingress.annotations[%s]: belongs to another controller", f.Key))
	}
	return state, details
}

// routeState sets a.Route from routes.State; it stays "" when the rule
// names no route kind.
func (inv Inventory) routeState(ctx context.Context, a *Assessment) error {
	st, err := routes.State(ctx, inv.Reader, a.object, a.res)
	if err != nil {
		return fmt.Errorf("route of %s %s/%s: %w", a.Kind, a.Namespace, a.Name, err)
	}
	if st.State == routes.StateNone {
		return nil
	}
	a.Route, a.routesKept = st.State, inv.RoutesKept
	if st.Detail != "" {
		a.Details = append(a.Details, "route: "+st.Detail)
	}
	return nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (inv Inventory) wiringState(a *Assessment, cp *unstructured.Unstructured, cm *corev1.ConfigMap) string {
	entry := hasManifestsEntry(cp)
	switch {
	case cm == nil && !entry:
		return WiringOff
	case cm == nil:
		return WiringConfigMapMissing
	}
	if stale := inv.staleness(cp, cm); stale != "" {
		a.Details = append(a.Details, "ConfigMap "+cm.Name+": "+stale)
		return WiringConfigMapStale
	}
	if !entry {
		a.Details = append(a.Details, "spec.manifests has no entry "+ManifestsEntry+" (added on CREATE, or when an update rewrites spec.manifests)")
		return WiringNoManifestsEntry
	}
	return WiringOK
}

// WantChildConfig is the MutatingWebhookConfiguration the child of a must
// have: with the URL of ChildWebhookURL (else of its ConfigMap) and the CA
// bundle of CABundle (else of its ConfigMap). With neither URL known, only
// its name: then only its presence can be checked.
func (inv Inventory) WantChildConfig(a *Assessment) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	base, ca := inv.ChildWebhookURL, inv.CABundle
	if a.configMap != nil {
		var current admissionregistrationv1.MutatingWebhookConfiguration
		if err := yaml.Unmarshal([]byte(a.configMap.Data[ChildConfigKey]), &current); err == nil {
			if b, ok := BaseURL(&current, a.Namespace, a.Name); ok && base == "" {
				base = b
			}
			if ca == nil && len(current.Webhooks) > 0 {
				ca = current.Webhooks[0].ClientConfig.CABundle
			}
		}
	}
	if base == "" {
		want := &admissionregistrationv1.MutatingWebhookConfiguration{}
		want.Name = ChildConfigName
		return want, nil
	}
	return ChildConfig(a.Namespace, a.Name, base, ca, CCMNamespaces(inv.Policy))
}

// staleness says why cm's content differs from what the fleet would write
// now, or "".
func (inv Inventory) staleness(cp *unstructured.Unstructured, cm *corev1.ConfigMap) string {
	content := cm.Data[ChildConfigKey]
	var current admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict([]byte(content), &current); err != nil {
		return fmt.Sprintf("key %s does not hold a MutatingWebhookConfiguration: %v", ChildConfigKey, err)
	}
	base, ok := BaseURL(&current, cp.GetNamespace(), cp.GetName())
	if inv.ChildWebhookURL != "" {
		base = inv.ChildWebhookURL
	} else if !ok {
		return "its webhook URL does not name this control plane"
	}
	ca := inv.CABundle
	if ca == nil && len(current.Webhooks) > 0 {
		ca = current.Webhooks[0].ClientConfig.CABundle
	}
	want, err := ChildConfigYAML(cp.GetNamespace(), cp.GetName(), base, ca, CCMNamespaces(inv.Policy))
	if err != nil {
		return err.Error()
	}
	if string(want) == content {
		return ""
	}
	var reasons []string
	var wantConfig admissionregistrationv1.MutatingWebhookConfiguration
	_ = yaml.Unmarshal(want, &wantConfig)
	if len(current.Webhooks) == 1 && len(wantConfig.Webhooks) == 1 {
		if string(current.Webhooks[0].ClientConfig.CABundle) != string(wantConfig.Webhooks[0].ClientConfig.CABundle) {
			reasons = append(reasons, "caBundle is not the current CA")
		}
		if ptrString(current.Webhooks[0].ClientConfig.URL) != ptrString(wantConfig.Webhooks[0].ClientConfig.URL) {
			reasons = append(reasons, "URL is not "+ptrString(wantConfig.Webhooks[0].ClientConfig.URL))
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "content differs from `child-config` output")
	}
	return strings.Join(reasons, "; ")
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// classView is rules.IngressClasses over a listed set.
type classView []networkingv1.IngressClass

func (v classView) IngressClass(name string) (rules.IngressClass, bool) {
	for i := range v {
		if v[i].Name == name {
			return rules.IngressClassOf(&v[i]), true
		}
	}
	return rules.IngressClass{}, false
}

func (v classView) DefaultIngressClass() (rules.IngressClass, bool) {
	var found *networkingv1.IngressClass
	for i := range v {
		if v[i].Annotations[rules.IsDefaultClassAnnotation] == "true" && (found == nil || v[i].Name < found.Name) {
			found = &v[i]
		}
	}
	if found == nil {
		return rules.IngressClass{}, false
	}
	return rules.IngressClassOf(found), true
}

// fleetControlPlanes is hcp_ingress_fleet_controlplanes. Its labels take only
// the enumerated states, so its cardinality is 25 whatever the fleet.
var (
	fleetControlPlanes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcp_ingress_fleet_controlplanes",
		Help: "Control planes with spec.ingress by passthrough and wiring state (as `hcp-ingress-webhook audit` reports them).",
	}, []string{"passthrough", "wiring"})
	registerGauges sync.Once
)

// gauges recomputes hcp_ingress_fleet_controlplanes from the cache every
// CheckInterval, on every replica.
type gauges struct {
	client  client.Client
	watcher *controlplanes.Watcher
	o       Options
}

func (g *gauges) NeedLeaderElection() bool { return false }

func (g *gauges) Start(ctx context.Context) error {
	registerGauges.Do(func() { ctrlmetrics.Registry.MustRegister(fleetControlPlanes) })
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if g.watcher.Synced() != nil || g.o.Policy() == nil {
			return
		}
		inv := Inventory{Reader: g.client, Kinds: g.watcher.Served(), Policy: g.o.Policy(), ChildWebhookURL: g.o.ChildWebhookURL}
		if g.o.ChildWebhookURL != "" {
			inv.CABundle = g.o.CABundle()
		}
		all, err := inv.Assess(ctx)
		if err != nil {
			g.o.Log.Error(err, "computing the fleet gauges")
			return
		}
		SetGauges(all)
	}, g.o.CheckInterval)
	return nil
}

// SetGauges sets hcp_ingress_fleet_controlplanes from assessments; every
// state pair is exported, zeros included.
func SetGauges(all []Assessment) {
	counts := map[[2]string]int{}
	for _, a := range all {
		counts[[2]string{a.Passthrough, a.Wiring}]++
	}
	for _, p := range passthroughStates {
		for _, w := range wiringStates {
			fleetControlPlanes.WithLabelValues(p, w).Set(float64(counts[[2]string{p, w}]))
		}
	}
}
