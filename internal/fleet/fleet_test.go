package fleet

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/routes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func controlPlane(kind string, ingress map[string]any, mutate ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
	switch kind {
	case "Cluster":
		u.SetAPIVersion("k0smotron.io/v1beta2")
	default:
		u.SetAPIVersion("controlplane.cluster.x-k8s.io/v1beta2")
	}
	u.SetKind(kind)
	u.SetNamespace("tenants")
	u.SetName("prod")
	u.SetUID("uid-1")
	if ingress != nil {
		u.Object["spec"].(map[string]any)["ingress"] = ingress
	}
	for _, m := range mutate {
		m(u)
	}
	return u
}

func ingress(extra map[string]any) map[string]any {
	in := map[string]any{"apiHost": "api.prod.example.com", "konnectivityHost": "konnectivity.prod.example.com"}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

func TestDecide(t *testing.T) {
	cases := map[string]struct {
		cp               *unstructured.Unstructured
		namespaceSkipped bool
		wired            bool
		invalid          string
	}{
		"a control plane with ingress is wired":     {cp: controlPlane("K0smotronControlPlane", ingress(nil)), wired: true},
		"a k0smotron Cluster with ingress is wired": {cp: controlPlane("Cluster", ingress(nil)), wired: true},
		"no control plane is not wired":             {cp: nil},
		"no spec.ingress is not wired":              {cp: controlPlane("K0smotronControlPlane", nil)},
		"the skip label on the object unwires it": {cp: controlPlane("K0smotronControlPlane", ingress(nil), func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{"hcp-ingress.io/skip": "true"})
		})},
		"the skip label on the namespace unwires it": {cp: controlPlane("K0smotronControlPlane", ingress(nil)), namespaceSkipped: true},
		"a control plane being deleted is not wired": {cp: controlPlane("K0smotronControlPlane", ingress(nil), func(u *unstructured.Unstructured) {
			now := metav1.Now()
			u.SetDeletionTimestamp(&now)
		})},
		"an empty apiHost is invalid, not unwired": {cp: controlPlane("K0smotronControlPlane", ingress(map[string]any{"apiHost": ""})), invalid: "apiHost"},
		"a port out of range is invalid":           {cp: controlPlane("K0smotronControlPlane", ingress(map[string]any{"port": int64(70000)})), invalid: "spec.ingress.port"},
		"an ingress that is not an object is invalid": {cp: controlPlane("K0smotronControlPlane", nil, func(u *unstructured.Unstructured) {
			u.Object["spec"].(map[string]any)["ingress"] = "yes"
		}), invalid: "spec.ingress"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decide(tc.cp, tc.namespaceSkipped)
			if got.Wired != tc.wired {
				t.Errorf("wired %v, want %v", got.Wired, tc.wired)
			}
			if (got.Invalid == "") != (tc.invalid == "") || !strings.Contains(got.Invalid, tc.invalid) {
				t.Errorf("invalid %q, want one naming %q", got.Invalid, tc.invalid)
			}
		})
	}
}

func TestClusterName(t *testing.T) {
	owned := func(u *unstructured.Unstructured) {
		u.SetOwnerReferences([]metav1.OwnerReference{
			{APIVersion: "infrastructure.cluster.x-k8s.io/v1beta1", Kind: "Cluster", Name: "not-this"},
			{APIVersion: "cluster.x-k8s.io/v1beta1", Kind: "Cluster", Name: "from-owner"},
		})
	}
	labelled := func(u *unstructured.Unstructured) {
		u.SetLabels(map[string]string{"cluster.x-k8s.io/cluster-name": "from-label"})
	}
	cases := map[string]struct {
		cp     *unstructured.Unstructured
		want   string
		reason string
	}{
		"a k0smotron Cluster is its own cluster":                        {cp: controlPlane("Cluster", nil, owned), want: "prod"},
		"a control plane's owning Cluster API Cluster":                  {cp: controlPlane("K0smotronControlPlane", nil, owned, labelled), want: "from-owner"},
		"the cluster-name label when there is no owner":                 {cp: controlPlane("K0smotronControlPlane", nil, labelled), want: "from-label"},
		"a control plane with neither has no kubeconfig Secret to read": {cp: controlPlane("K0smotronControlPlane", nil), reason: "NoCluster"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ClusterName(tc.cp)
			var ce *ChildError
			switch {
			case tc.reason != "" && (!errors.As(err, &ce) || ce.Reason != tc.reason):
				t.Errorf("error %v, want reason %s", err, tc.reason)
			case tc.reason == "" && (err != nil || got != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestChildConfigURLRoundTrip(t *testing.T) {
	out, err := ChildConfigYAML("tenants", "prod", "https://hook.example.com/", []byte("CA"), []string{"kube-system"})
	if err != nil {
		t.Fatal(err)
	}
	var config admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.Unmarshal(out, &config); err != nil {
		t.Fatal(err)
	}
	if config.Name != ChildConfigName || ChildConfigName != "hcp-ingress-child" {
		t.Errorf("name %q", config.Name)
	}
	base, ok := BaseURL(&config, "tenants", "prod")
	if !ok || base != "https://hook.example.com" {
		t.Errorf("BaseURL = %q, %v", base, ok)
	}
	if _, ok := BaseURL(&config, "tenants", "other"); ok {
		t.Errorf("BaseURL accepted a configuration of another control plane")
	}
}

func TestAssess(t *testing.T) {
	policy := rules.Default()
	classes := classView{
		{ObjectMeta: metav1.ObjectMeta{Name: "haproxy"}, Spec: networkingv1.IngressClassSpec{Controller: "haproxy.org/ingress-controller/haproxy"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "traefik"}, Spec: networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "mystery"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/unknown"}},
	}
	const url = "https://hook.example.com"
	ca := []byte("CA-1")
	withEntry := func(u *unstructured.Unstructured) {
		u.Object["spec"].(map[string]any)["manifests"] = []any{map[string]any{"name": ManifestsEntry}}
	}
	configMap := func(cp *unstructured.Unstructured, url string, ca []byte) *corev1.ConfigMap {
		content, err := ChildConfigYAML(cp.GetNamespace(), cp.GetName(), url, ca, CCMNamespaces(policy))
		if err != nil {
			t.Fatal(err)
		}
		return DesiredConfigMap(cp, content)
	}
	passing := ingress(map[string]any{"className": "haproxy", "annotations": map[string]any{"haproxy.org/ssl-passthrough": "true"}})
	cases := map[string]struct {
		cp          *unstructured.Unstructured
		cmURL       string
		cmCA        []byte
		noConfigMap bool
		passthrough string
		wiring      string
		change      bool
	}{
		"annotated and wired": {cp: controlPlane("K0smotronControlPlane", passing, withEntry), passthrough: PassthroughOK, wiring: WiringOK},
		"the rule's annotation absent": {cp: controlPlane("K0smotronControlPlane", ingress(map[string]any{"className": "haproxy"}), withEntry),
			passthrough: PassthroughMissing, wiring: WiringOK, change: true},
		"the rule's annotation with another value": {cp: controlPlane("K0smotronControlPlane",
			ingress(map[string]any{"className": "haproxy", "annotations": map[string]any{"haproxy.org/ssl-passthrough": "false"}}), withEntry),
			passthrough: PassthroughWrong, wiring: WiringOK, change: true},
		"another controller's annotation": {cp: controlPlane("K0smotronControlPlane",
			ingress(map[string]any{"className": "haproxy", "annotations": map[string]any{"haproxy.org/ssl-passthrough": "true", "nginx.ingress.kubernetes.io/ssl-passthrough": "true"}}), withEntry),
			passthrough: PassthroughWrong, wiring: WiringOK, change: true},
		"a controller that cannot pass through": {cp: controlPlane("K0smotronControlPlane", ingress(map[string]any{"className": "traefik"}), withEntry),
			passthrough: PassthroughUnsupported, wiring: WiringOK},
		"a controller without a rule": {cp: controlPlane("K0smotronControlPlane", ingress(map[string]any{"className": "mystery"}), withEntry),
			passthrough: PassthroughNoRule, wiring: WiringOK},
		"neither ConfigMap nor entry: wiring off": {cp: controlPlane("K0smotronControlPlane", passing), noConfigMap: true,
			passthrough: PassthroughOK, wiring: WiringOff},
		"the entry without its ConfigMap": {cp: controlPlane("K0smotronControlPlane", passing, withEntry), noConfigMap: true,
			passthrough: PassthroughOK, wiring: WiringConfigMapMissing, change: true},
		"the ConfigMap without the entry": {cp: controlPlane("K0smotronControlPlane", passing),
			passthrough: PassthroughOK, wiring: WiringNoManifestsEntry, change: true},
		"a ConfigMap with an old CA": {cp: controlPlane("K0smotronControlPlane", passing, withEntry), cmCA: []byte("CA-0"),
			passthrough: PassthroughOK, wiring: WiringConfigMapStale, change: true},
		"a ConfigMap with another URL": {cp: controlPlane("K0smotronControlPlane", passing, withEntry), cmURL: "https://old.example.com",
			passthrough: PassthroughOK, wiring: WiringConfigMapStale, change: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var cm *corev1.ConfigMap
			if !tc.noConfigMap {
				u, c := url, ca
				if tc.cmURL != "" {
					u = tc.cmURL
				}
				if tc.cmCA != nil {
					c = tc.cmCA
				}
				cm = configMap(tc.cp, u, c)
			}
			inv := Inventory{Policy: policy, ChildWebhookURL: url, CABundle: ca}
			a := inv.assess(tc.cp, classes, cm)
			if a.Passthrough != tc.passthrough || a.Wiring != tc.wiring || a.WouldChange() != tc.change {
				t.Errorf("passthrough %s, wiring %s, would change %v; want %s, %s, %v (details %v)",
					a.Passthrough, a.Wiring, a.WouldChange(), tc.passthrough, tc.wiring, tc.change, a.Details)
			}
		})
	}
}

func TestAuditWithoutServeFlagsComparesWithTheConfigMapItself(t *testing.T) {
	cp := controlPlane("K0smotronControlPlane", ingress(nil))
	content, err := ChildConfigYAML("tenants", "prod", "https://hook.example.com", []byte("CA"), CCMNamespaces(rules.Default()))
	if err != nil {
		t.Fatal(err)
	}
	a := Inventory{Policy: rules.Default()}.assess(cp, nil, DesiredConfigMap(cp, content))
	if a.Wiring != WiringNoManifestsEntry {
		t.Errorf("wiring %s (%v), want %s: URL and CA are taken from the ConfigMap", a.Wiring, a.Details, WiringNoManifestsEntry)
	}
	bad := DesiredConfigMap(cp, []byte("not: [a webhook configuration"))
	if a := (Inventory{Policy: rules.Default()}).assess(cp, nil, bad); a.Wiring != WiringConfigMapStale {
		t.Errorf("a ConfigMap holding garbage is %s, want %s", a.Wiring, WiringConfigMapStale)
	}
}

func TestGaugeCardinalityIsBoundedByTheStates(t *testing.T) {
	var all []Assessment
	for i := range 1000 {
		all = append(all, Assessment{Name: strings.Repeat("x", i%50), Passthrough: passthroughStates[i%5], Wiring: wiringStates[(i/5)%5]})
	}
	SetGauges(all)
	if n := testutil.CollectAndCount(fleetControlPlanes); n != len(passthroughStates)*len(wiringStates) {
		t.Errorf("%d series, want %d", n, len(passthroughStates)*len(wiringStates))
	}
	if got := testutil.ToFloat64(fleetControlPlanes.WithLabelValues(PassthroughOK, WiringOK)); got != 40 {
		t.Errorf("ok/ok = %v, want 40", got)
	}
}

func TestUpToDateIgnoresOthersLabelsAndAnnotations(t *testing.T) {
	cp := controlPlane("K0smotronControlPlane", ingress(nil))
	want := DesiredConfigMap(cp, []byte("content"))
	existing := want.DeepCopy()
	existing.Labels["team"] = "a"
	existing.Annotations = map[string]string{"note": "b"}
	if !upToDate(existing, want) {
		t.Errorf("extra labels or annotations made the ConfigMap out of date")
	}
	existing.OwnerReferences[0].Kind = "Cluster"
	if upToDate(existing, want) {
		t.Errorf("another owner is up to date")
	}
}

func TestARouteCountsAsAChangeOnlyWhenRoutesAreKept(t *testing.T) {
	for _, tc := range []struct {
		route string
		kept  bool
		want  bool
	}{
		{route: routes.StateMissing, kept: true, want: true},
		{route: routes.StateStale, kept: true, want: true},
		{route: routes.StateMissing, kept: false, want: false},
		{route: routes.StateStale, kept: false, want: false},
		{route: routes.StateOK, kept: true, want: false},
		{route: routes.StateNoIngress, kept: true, want: false},
		{route: routes.StateNotServed, kept: true, want: false},
		{route: "", kept: true, want: false},
	} {
		a := Assessment{Passthrough: PassthroughUnsupported, Wiring: WiringOff, Route: tc.route, routesKept: tc.kept}
		if got := a.WouldChange(); got != tc.want {
			t.Errorf("route %q, kept %v: WouldChange %v, want %v", tc.route, tc.kept, got, tc.want)
		}
	}
}
