package mutate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// testAPIServer is what the caller (the control plane of the webhook path)
// hands the engine unless a case says otherwise.
var testAPIServer = &rules.APIServer{Host: "api.example.com", Port: 443}

// workloadFixture reads testdata/workloads/<name>.yaml as JSON.
func workloadFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "workloads", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return yamlToJSON(t, string(raw))
}

func yamlToJSON(t testing.TB, y string) []byte {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	return js
}

func loadPolicy(t testing.TB, y string) *rules.Policy {
	t.Helper()
	if y == "" {
		return rules.Default()
	}
	p, err := rules.Load("test-policy.yaml", []byte("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\n"+y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A small CCM whose only signals are chosen by each case.
const customWorkload = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: custom
  namespace: kube-system
spec:
  template:
    metadata:
      labels: {}
    spec:
      containers:
        - name: manager
          image: example.com/tools/runner:v1
          command: [/my-cloud-manager, --v=2]
`

type workloadCase struct {
	fixture string // testdata/workloads/<fixture>.yaml ...
	object  string // ... or this YAML
	// merge is a JSON merge patch, in YAML, applied to the object first.
	merge            string
	namespace        string // Input.Namespace
	namespaceSkipped bool
	apiServer        *rules.APIServer // Input.APIServer; testAPIServer unless noAPIServer
	noAPIServer      bool
	policy           string // a user policy's body; the embedded defaults when empty

	// injected maps each container that must end up with the variables to
	// "HOST PORT"; every other container's env must be unchanged. Empty:
	// the patch must be empty.
	injected   map[string]string
	rule       string   // Result.Rule and the record annotation, when injected
	warnings   []string // each must be a substring of some warning
	noWarnings bool
}

func runWorkloadCase(t *testing.T, tc workloadCase) Result {
	t.Helper()
	var object []byte
	if tc.fixture != "" {
		object = workloadFixture(t, tc.fixture)
	} else {
		object = yamlToJSON(t, tc.object)
	}
	if tc.merge != "" {
		var err error
		if object, err = jsonpatchapply.MergePatch(object, yamlToJSON(t, tc.merge)); err != nil {
			t.Fatal(err)
		}
	}
	in := Input{
		Object:           object,
		Operation:        "CREATE",
		Namespace:        tc.namespace,
		NamespaceSkipped: tc.namespaceSkipped,
		Policy:           loadPolicy(t, tc.policy),
		APIServer:        tc.apiServer,
	}
	if in.APIServer == nil && !tc.noAPIServer {
		in.APIServer = testAPIServer
	}
	res, err := Workload(in)
	if err != nil {
		t.Fatalf("Workload: %v", err)
	}
	if res.Target != TargetWorkload {
		t.Errorf("Target = %q", res.Target)
	}
	out := checkInvariants(t, Workload, workloadPath, in, res)

	before, after := decodeForTest(t, object), decodeForTest(t, out)
	if len(tc.injected) == 0 {
		if len(res.Patch) != 0 {
			raw, _ := json.Marshal(res.Patch)
			t.Errorf("patched %s, want no change", raw)
		}
	} else {
		if res.Rule != tc.rule {
			t.Errorf("Rule = %q, want %q", res.Rule, tc.rule)
		}
		if got := after.Metadata.Annotations[MutatedAnnotation]; got != tc.rule {
			t.Errorf("record annotation = %q, want %q", got, tc.rule)
		}
		if after.Spec.Template.Metadata.Annotations[MutatedAnnotation] != "" {
			t.Errorf("record annotation written on the pod template: that would roll the pods out")
		}
	}
	for i, c := range after.Spec.Template.Spec.Containers {
		orig := before.Spec.Template.Spec.Containers[i]
		want, inject := tc.injected[c.Name]
		if !inject {
			if !reflect.DeepEqual(c.Env, orig.Env) {
				t.Errorf("container %q: env changed to %s", c.Name, c.Env)
			}
			continue
		}
		host, port, _ := strings.Cut(want, " ")
		checkEnv(t, c.Name, c.Env, EnvServiceHost, host)
		checkEnv(t, c.Name, c.Env, EnvServicePort, port)
		if got, want := otherEnv(c.Env), otherEnv(orig.Env); !reflect.DeepEqual(got, want) {
			t.Errorf("container %q: other env entries changed: %s, want %s", c.Name, got, want)
		}
	}
	if !reflect.DeepEqual(before.Spec.Template.Spec.InitContainers, after.Spec.Template.Spec.InitContainers) {
		t.Errorf("init containers changed")
	}

	for _, w := range tc.warnings {
		if !containsSubstring(res.Warnings, w) {
			t.Errorf("no warning contains %q; warnings:\n%s", w, strings.Join(res.Warnings, "\n"))
		}
	}
	if tc.noWarnings && len(res.Warnings) > 0 {
		t.Errorf("unexpected warnings:\n%s", strings.Join(res.Warnings, "\n"))
	}
	if len(res.Patch) > 0 && len(res.Warnings) == 0 {
		t.Errorf("a change without a warning saying what was done")
	}
	if len(res.Patch) > 0 && (res.AuditAnnotations["ccm-containers"] == "" || res.AuditAnnotations["ccm-detection"] == "") {
		t.Errorf("audit annotations = %v, want the containers and the detection", res.AuditAnnotations)
	}
	return res
}

// testWorkload is a generic view of a workload for assertions.
type testWorkload struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				InitContainers []json.RawMessage `json:"initContainers"`
				Containers     []struct {
					Name string            `json:"name"`
					Env  []json.RawMessage `json:"env"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

func decodeForTest(t *testing.T, raw []byte) testWorkload {
	t.Helper()
	var w testWorkload
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkEnv checks that every entry called name is a plain value equal to want.
func checkEnv(t *testing.T, container string, env []json.RawMessage, name, want string) {
	t.Helper()
	found := false
	for _, raw := range env {
		var e map[string]any
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if e["name"] != name {
			continue
		}
		found = true
		if e["value"] != want || e["valueFrom"] != nil {
			t.Errorf("container %q: %s", container, raw)
		}
	}
	if !found {
		t.Errorf("container %q: no %s, want %s", container, name, want)
	}
}

// otherEnv is env without the variables the webhook sets.
func otherEnv(env []json.RawMessage) []string {
	var out []string
	for _, raw := range env {
		var e struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Name != EnvServiceHost && e.Name != EnvServicePort {
			out = append(out, string(raw))
		}
	}
	return out
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestWorkloadRealWorldShapes(t *testing.T) {
	cases := map[string]workloadCase{
		"OpenStack CCM with its binary in args[0] gets both variables": {
			fixture:  "openstack-ccm-daemonset",
			injected: map[string]string{"openstack-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/openstack-cloud-controller-manager",
			warnings: []string{`hcp-ingress: set KUBERNETES_SERVICE_HOST=api.example.com and KUBERNETES_SERVICE_PORT=443 in container "openstack-cloud-controller-manager" (cloud-controller-manager detected: binary "openstack-cloud-controller-manager" in args) so the CCM reaches the API server through the ingress, not the kubernetes Service`},
		},
		"vSphere CPI is found by its image alone": {
			fixture:  "vsphere-cpi-daemonset",
			injected: map[string]string{"vsphere-cpi": "api.example.com 443"},
			rule:     "ccm/vsphere-cpi",
			warnings: []string{`image "registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere:v1.31.0"`},
		},
		"Azure cloud-node-manager keeps its downward-API env": {
			fixture:  "azure-cloud-node-manager-daemonset",
			injected: map[string]string{"cloud-node-manager": "api.example.com 443"},
			rule:     "ccm/cloud-node-manager",
			warnings: []string{`binary "cloud-node-manager" in command`},
		},
		"AWS CCM without env gets an env array": {
			fixture:  "aws-ccm-daemonset",
			injected: map[string]string{"aws-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/aws-cloud-controller-manager",
			warnings: []string{`flag "--cloud-provider=aws" in args`},
		},
		"Hetzner CCM gets the variables appended to its env": {
			fixture:  "hcloud-ccm-deployment",
			injected: map[string]string{"hcloud-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/hcloud-cloud-controller-manager",
			warnings: []string{`binary "hcloud-cloud-controller-manager" in command`},
		},
		"GCP CCM's stale 127.0.0.1 is replaced": {
			fixture:  "gcp-ccm-daemonset",
			injected: map[string]string{"cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/cloud-controller-manager",
			warnings: []string{`KUBERNETES_SERVICE_HOST=api.example.com (replacing "127.0.0.1") and KUBERNETES_SERVICE_PORT=443`},
		},
		"Talos-style valueFrom and port are replaced": {
			fixture:  "talos-ccm-deployment",
			injected: map[string]string{"talos-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/talos-cloud-controller-manager",
			warnings: []string{
				`KUBERNETES_SERVICE_HOST=api.example.com (replacing valueFrom {"fieldRef":{"fieldPath":"status.podIP"}})`,
				`KUBERNETES_SERVICE_PORT=443 (replacing "7445")`,
			},
		},
		"cluster-autoscaler with --cloud-provider=clusterapi is untouched": {
			fixture: "cluster-autoscaler-deployment", noWarnings: true,
		},
		"CSI controller is untouched": {
			fixture: "csi-controller-deployment", noWarnings: true,
		},
		"kube-controller-manager with --cloud-provider=external is untouched": {
			fixture: "kube-controller-manager-deployment", noWarnings: true,
		},
		"CCM with --kubeconfig is untouched": {
			fixture: "ccm-with-kubeconfig-deployment", noWarnings: true,
		},
		"only the CCM container of a pod with a sidecar and an init container changes": {
			fixture:  "ccm-with-sidecar-daemonset",
			injected: map[string]string{"digitalocean-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/digitalocean-cloud-controller-manager",
		},
		"plain application is untouched": {
			fixture: "plain-app-deployment", noWarnings: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { runWorkloadCase(t, tc) })
	}
}

func TestWorkloadScopeAndOptIn(t *testing.T) {
	openstack := map[string]string{"openstack-cloud-controller-manager": "api.example.com 443"}
	const openstackRule = "ccm/openstack-cloud-controller-manager"
	cases := map[string]workloadCase{
		"CCM outside kube-system is untouched": {
			fixture: "openstack-ccm-daemonset", namespace: "tenant", noWarnings: true,
		},
		"the caller's namespace wins over metadata.namespace": {
			fixture: "openstack-ccm-daemonset", merge: "metadata: {namespace: cloud}", namespace: "kube-system",
			injected: openstack, rule: openstackRule,
		},
		"metadata.namespace is used when the caller gives none": {
			fixture: "openstack-ccm-daemonset", merge: "metadata: {namespace: cloud}", noWarnings: true,
		},
		"an object without namespace is in default": {
			fixture: "openstack-ccm-daemonset", merge: "metadata: {namespace: null}",
			policy: "ccm: {namespaces: [default]}", injected: openstack, rule: openstackRule,
		},
		"namespaces star puts every namespace in scope": {
			fixture: "openstack-ccm-daemonset", namespace: "tenant",
			policy: `ccm: {namespaces: ["*"]}`, injected: openstack, rule: openstackRule,
		},
		"inject false opts out": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/inject: "false"}}`, noWarnings: true,
		},
		"skip label leaves the object alone": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {labels: {hcp-ingress.io/skip: "true"}}`, noWarnings: true,
		},
		"skipped namespace leaves the object alone": {
			fixture: "openstack-ccm-daemonset", namespaceSkipped: true, noWarnings: true,
		},
		"inject true opts in every container of an unrecognised workload": {
			fixture: "plain-app-deployment", merge: `metadata: {annotations: {hcp-ingress.io/inject: "true"}}`,
			injected: map[string]string{"web": "api.example.com 443", "log-shipper": "api.example.com 443"},
			rule:     "ccm/web,log-shipper",
			warnings: []string{`(annotation hcp-ingress.io/inject="true")`},
		},
		"inject true works outside the namespace scope": {
			fixture: "plain-app-deployment", namespace: "apps", merge: `metadata: {annotations: {hcp-ingress.io/inject: "true"}}`,
			injected: map[string]string{"web": "api.example.com 443", "log-shipper": "api.example.com 443"},
			rule:     "ccm/web,log-shipper",
		},
		"inject true with one matching container targets only that one": {
			fixture: "ccm-with-sidecar-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/inject: "true"}}`,
			injected: map[string]string{"digitalocean-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/digitalocean-cloud-controller-manager",
		},
		"inject true on a vetoed workload says why nothing happened": {
			fixture: "cluster-autoscaler-deployment", merge: `metadata: {annotations: {hcp-ingress.io/inject: "true"}}`,
			warnings: []string{`nothing injected: vetoed by label app=cluster-autoscaler`},
		},
		"inject with another value is ignored with a warning": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/inject: "yes"}}`,
			injected: openstack, rule: openstackRule,
			warnings: []string{`annotation hcp-ingress.io/inject="yes" ignored`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { runWorkloadCase(t, tc) })
	}
}

func TestWorkloadAPIServerSource(t *testing.T) {
	const rule = "ccm/openstack-cloud-controller-manager"
	at := func(hostPort string) map[string]string {
		return map[string]string{"openstack-cloud-controller-manager": hostPort}
	}
	const policyAPI = "ccm: {apiServer: {host: policy-api.example.org, port: 30443}}"
	cases := map[string]workloadCase{
		"annotations win over the caller's API server": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/api-host: ccm-api.example.net, hcp-ingress.io/api-port: "6443"}}`,
			policy: policyAPI, injected: at("ccm-api.example.net 6443"), rule: rule,
		},
		"the port annotation alone changes the port of the caller's host": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/api-port: "8443"}}`,
			injected: at("api.example.com 8443"), rule: rule,
		},
		"an annotation host without port gets 443": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/api-host: 192.0.2.7}}`,
			apiServer: &rules.APIServer{Host: "api.example.com", Port: 30443}, injected: at("192.0.2.7 443"), rule: rule,
		},
		"the caller's API server wins over the policy": {
			fixture: "openstack-ccm-daemonset", policy: policyAPI,
			apiServer: &rules.APIServer{Host: "cp.example.com", Port: 30443}, injected: at("cp.example.com 30443"), rule: rule,
		},
		"the caller's port 0 means 443": {
			fixture: "openstack-ccm-daemonset", apiServer: &rules.APIServer{Host: "cp.example.com"},
			injected: at("cp.example.com 443"), rule: rule,
		},
		"the policy's API server applies in-child": {
			fixture: "openstack-ccm-daemonset", noAPIServer: true, policy: policyAPI,
			injected: at("policy-api.example.org 30443"), rule: rule,
		},
		"no host from any source injects nothing and says why": {
			fixture: "openstack-ccm-daemonset", noAPIServer: true,
			warnings: []string{`hcp-ingress: nothing injected in container "openstack-cloud-controller-manager" (cloud-controller-manager detected: binary "openstack-cloud-controller-manager" in args): no API server host`},
		},
		"a host annotation with a port is refused with a warning": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/api-host: "api.example.com:6443"}}`,
			warnings: []string{"must not include a port"},
		},
		"a port annotation that is not a port is refused with a warning": {
			fixture: "openstack-ccm-daemonset", merge: `metadata: {annotations: {hcp-ingress.io/api-port: "https"}}`,
			warnings: []string{`annotation hcp-ingress.io/api-port="https" is not a port`},
		},
		"no host on a workload that is not a CCM says nothing": {
			fixture: "plain-app-deployment", noAPIServer: true, noWarnings: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { runWorkloadCase(t, tc) })
	}
}

func TestWorkloadConflicts(t *testing.T) {
	gcp := map[string]string{"cloud-controller-manager": "api.example.com 443"}
	cases := map[string]workloadCase{
		"Override replaces a stale host": {
			fixture: "gcp-ccm-daemonset", policy: "ccm: {onConflict: Override}",
			injected: gcp, rule: "ccm/cloud-controller-manager",
			warnings: []string{`(replacing "127.0.0.1")`},
		},
		"Keep leaves a stale host and the missing port alone": {
			fixture: "gcp-ccm-daemonset", policy: "ccm: {onConflict: Keep}",
			warnings: []string{`hcp-ingress: kept KUBERNETES_SERVICE_HOST="127.0.0.1" in container "cloud-controller-manager" (ccm.onConflict: Keep)`},
		},
		"Keep leaves a valueFrom alone": {
			fixture: "talos-ccm-deployment", policy: "ccm: {onConflict: Keep}",
			warnings: []string{`kept KUBERNETES_SERVICE_HOST=valueFrom {"fieldRef":{"fieldPath":"status.podIP"}} and KUBERNETES_SERVICE_PORT="7445"`},
		},
		"equal values set by hand are no change and no record": {
			object: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: aws, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: aws-cloud-controller-manager
          image: registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.1
          env:
            - {name: KUBERNETES_SERVICE_PORT, value: "443"}
            - {name: KUBERNETES_SERVICE_HOST, value: api.example.com}
`,
			noWarnings: true,
		},
		"half set by hand gets the other half": {
			object: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: aws, namespace: kube-system, annotations: {}}
spec:
  template:
    spec:
      containers:
        - name: aws-cloud-controller-manager
          image: registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.1
          env:
            - {name: KUBERNETES_SERVICE_HOST, value: api.example.com}
`,
			injected: map[string]string{"aws-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/aws-cloud-controller-manager",
			warnings: []string{`set KUBERNETES_SERVICE_PORT=443 in container "aws-cloud-controller-manager"`},
		},
		"every duplicate of a variable is replaced": {
			object: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: aws, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: aws-cloud-controller-manager
          image: registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.1
          env:
            - {name: KUBERNETES_SERVICE_HOST, value: 10.96.0.1}
            - {name: OTHER, value: x}
            - {name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}
            - {name: KUBERNETES_SERVICE_PORT, value: null}
`,
			injected: map[string]string{"aws-cloud-controller-manager": "api.example.com 443"},
			rule:     "ccm/aws-cloud-controller-manager",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { runWorkloadCase(t, tc) })
	}
}

func TestWorkloadSignals(t *testing.T) {
	manager := map[string]string{"manager": "api.example.com 443"}
	cases := map[string]workloadCase{
		"an unknown binary is no signal": {
			object: customWorkload, noWarnings: true,
		},
		"a policy-added binary matcher is a strong signal": {
			object: customWorkload, policy: `ccm: {match: {binaries: ["^my-cloud-manager$"]}}`,
			injected: manager, rule: "ccm/manager", warnings: []string{`binary "my-cloud-manager" in command`},
		},
		"a policy-added image matcher sees the registry host": {
			object: customWorkload, policy: `ccm: {match: {images: ["example.com/tools/runner$"]}}`,
			injected: manager, rule: "ccm/manager",
		},
		"a policy-added veto wins over a built-in signal": {
			fixture: "openstack-ccm-daemonset", policy: `ccm: {veto: {names: ["^openstack-"]}}`, noWarnings: true,
		},
		"a medium name without the toleration is not enough": {
			object: customWorkload, merge: `{spec: {template: {spec: {containers: [{name: hcloud-ccm, image: example.com/tools/runner:v1}]}}}}`,
			noWarnings: true,
		},
		"a medium name with the toleration is a CCM": {
			object: customWorkload, merge: `{spec: {template: {spec: {containers: [{name: hcloud-ccm, image: example.com/tools/runner:v1}], tolerations: [{key: node.cloudprovider.kubernetes.io/uninitialized, value: "true", effect: NoSchedule}]}}}}`,
			injected: map[string]string{"hcloud-ccm": "api.example.com 443"}, rule: "ccm/hcloud-ccm",
			warnings: []string{`container name "hcloud-ccm" with a toleration of node.cloudprovider.kubernetes.io/uninitialized`},
		},
		"a medium label with a toleration of every taint is a CCM": {
			object: customWorkload, merge: `{spec: {template: {metadata: {labels: {component: cloud-controller-manager}}, spec: {tolerations: [{operator: Exists}]}}}}`,
			injected: manager, rule: "ccm/manager",
			warnings: []string{`label component=cloud-controller-manager with a toleration`},
		},
		"a medium label without the toleration is not enough": {
			object: customWorkload, merge: `{spec: {template: {metadata: {labels: {component: cloud-controller-manager}}}}}`,
			noWarnings: true,
		},
		"an Exists toleration of another key does not count": {
			object: customWorkload, merge: `{spec: {template: {metadata: {labels: {k8s-app: vsphere-cpi}}, spec: {tolerations: [{key: CriticalAddonsOnly, operator: Exists}]}}}}`,
			noWarnings: true,
		},
		"removeMatch deletes a built-in matcher": {
			object: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: kube-vip-cloud-provider, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: kube-vip-cloud-provider
          image: ghcr.io/kube-vip/kube-vip-cloud-provider:v0.0.12
          command: [/kube-vip-cloud-provider, --leader-elect-resource-name=kube-vip-cloud-controller]
`,
			policy:     `ccm: {removeMatch: {binaries: ['^kube-vip-cloud-provider$'], images: ['(?:^|/)kube-vip/kube-vip-cloud-provider$']}}`,
			noWarnings: true,
		},
		"the same workload is a CCM with the built-in matchers": {
			object: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: kube-vip-cloud-provider, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: kube-vip-cloud-provider
          image: ghcr.io/kube-vip/kube-vip-cloud-provider:v0.0.12
          command: [/kube-vip-cloud-provider, --leader-elect-resource-name=kube-vip-cloud-controller]
`,
			injected: map[string]string{"kube-vip-cloud-provider": "api.example.com 443"}, rule: "ccm/kube-vip-cloud-provider",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { runWorkloadCase(t, tc) })
	}
}

func TestWorkloadBadInput(t *testing.T) {
	huge := `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"x","namespace":"kube-system","annotations":{"big":"` +
		strings.Repeat("a", 10<<20) + `"}},"spec":{"template":{"spec":{"containers":[{"name":"aws-cloud-controller-manager","image":"registry.k8s.io/provider-aws/cloud-controller-manager:v1"}]}}}}`
	const ds = `"apiVersion":"apps/v1","kind":"DaemonSet",`
	cases := map[string]struct {
		object    string
		wantErr   string // "" means no error
		wantPatch bool
	}{
		"malformed JSON":            {object: `{"spec":`, wantErr: "the object is not valid JSON"},
		"empty input":               {object: ``, wantErr: "the object is not valid JSON"},
		"a JSON array":              {object: `[1,2]`, wantErr: "the object: must be an object, got array"},
		"another kind":              {object: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}`, wantErr: `kind "Pod" of apiVersion "v1": not an object the webhook mutates`},
		"no kind":                   {object: `{"metadata":{"name":"x"}}`, wantErr: `kind "" of apiVersion "": not an object the webhook mutates`},
		"containers not a list":     {object: `{` + ds + `"spec":{"template":{"spec":{"containers":{"name":"x"}}}}}`, wantErr: "spec.template.spec.containers: must be an array, got object"},
		"env a map":                 {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"x","env":{"A":"b"}}]}}}}`, wantErr: "spec.template.spec.containers[1].env: must be an array, got object"},
		"an env value a number":     {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"x","env":[{"name":"A","value":1}]}]}}}}`, wantErr: "spec.template.spec.containers[1].env[0].value: must be a string, got integer"},
		"image a number":            {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"name":"x","image":5}]}}}}`, wantErr: "spec.template.spec.containers[0].image: must be a string, got integer"},
		"command a string":          {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"command":"ccm"}]}}}}`, wantErr: "spec.template.spec.containers[0].command: must be an array, got string"},
		"an arg a boolean":          {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"args":["--v=2",true]}]}}}}`, wantErr: "spec.template.spec.containers[0].args[1]: must be a string, got boolean"},
		"annotation value a number": {object: `{` + ds + `"metadata":{"annotations":{"a.b/c":1.5}}}`, wantErr: "metadata.annotations[a.b/c]: must be a string, got number"},
		"tolerations not a list":    {object: `{` + ds + `"spec":{"template":{"spec":{"tolerations":"all"}}}}`, wantErr: "spec.template.spec.tolerations: must be an array, got string"},
		"a duplicate key":           {object: `{` + ds + `"spec":{"template":{"spec":{"containers":[{"name":"a","name":"b"}]}}}}`, wantErr: `spec.template.spec.containers[0]: duplicate key "name"`},
		"null everywhere":           {object: `{` + ds + `"metadata":null,"spec":{"template":{"metadata":null,"spec":{"containers":[null,{"name":"ccm","image":"registry.k8s.io/provider-aws/cloud-controller-manager:v1","env":null}]}}}}`, wantErr: "metadata: missing"},
		"null container entry is skipped": {
			object:    `{` + ds + `"metadata":{"name":"x"},"spec":{"template":{"spec":{"containers":[null,{"name":"ccm","image":"registry.k8s.io/provider-aws/cloud-controller-manager:v1","env":[null]}]}}}}`,
			wantPatch: true,
		},
		"upper-case keys are not Kubernetes fields": {
			object: `{` + ds + `"metadata":{"name":"x"},"Spec":{"template":{"spec":{"containers":[{"name":"ccm","image":"registry.k8s.io/provider-aws/cloud-controller-manager:v1"}]}}}}`,
		},
		"a 10 MB document": {object: huge, wantPatch: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := Input{Object: []byte(tc.object), Operation: "CREATE", Namespace: "kube-system", Policy: rules.Default(), APIServer: testAPIServer}
			res, err := Workload(in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v, want none", err)
			}
			if (len(res.Patch) > 0) != tc.wantPatch {
				t.Errorf("patch = %v, want a patch: %v", res.Patch, tc.wantPatch)
			}
			checkInvariants(t, Workload, workloadPath, in, res)
		})
	}
}

// Every fixture, whatever the case tables do with it, keeps the invariants
// under every policy knob.
func TestWorkloadFixturesInvariants(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "workloads"))
	if err != nil {
		t.Fatal(err)
	}
	policies := map[string]string{
		"defaults": "",
		"keep":     "ccm: {onConflict: Keep}",
		"all":      `ccm: {namespaces: ["*"], apiServer: {host: api.example.org}}`,
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		for pname, policy := range policies {
			t.Run(name+"/"+pname, func(t *testing.T) {
				in := Input{Object: workloadFixture(t, name), Operation: "CREATE", Policy: loadPolicy(t, policy), APIServer: testAPIServer}
				res, err := Workload(in)
				if err != nil {
					t.Fatal(err)
				}
				checkInvariants(t, Workload, workloadPath, in, res)
			})
		}
	}
}

// FuzzWorkload feeds the engine arbitrary objects under several policies.
// Whatever the input, the engine returns an error or a result that keeps the
// invariants: allowed paths only, a patch that applies, idempotence.
func FuzzWorkload(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "workloads"))
	if err != nil {
		f.Fatal(err)
	}
	for i, e := range entries {
		f.Add(workloadFixture(f, strings.TrimSuffix(e.Name(), ".yaml")), uint8(i))
	}
	for i, s := range []string{
		``, `null`, `[]`, `{"spec":`, `{"metadata":null}`,
		`{"metadata":{"name":"x","namespace":"kube-system"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"registry.k8s.io/provider-aws/cloud-controller-manager:v1","env":{}}]}}}}`,
		`{"metadata":{"name":"x","annotations":{"hcp-ingress.io/inject":"true"}},"spec":{"template":{"spec":{"containers":[null,{"env":[null,{"name":"KUBERNETES_SERVICE_HOST","valueFrom":{}}]}]}}}}`,
	} {
		f.Add([]byte(s), uint8(i))
	}
	policies := []*rules.Policy{
		rules.Default(),
		loadPolicy(f, "ccm: {onConflict: Keep}"),
		loadPolicy(f, `ccm: {namespaces: ["*"], apiServer: {host: api.example.org, port: 6443}}`),
	}
	f.Fuzz(func(t *testing.T, object []byte, knobs uint8) {
		// The engine reads only apps/v1 Deployments and DaemonSets: give
		// most inputs a kind, so that the fuzzer explores past the check.
		if knobs&0x40 == 0 && len(object) > 1 && object[0] == '{' && !bytes.Contains(object, []byte(`"kind"`)) {
			object = append([]byte(`{"apiVersion":"apps/v1","kind":"DaemonSet",`), object[1:]...)
		}
		in := Input{Object: object, Operation: "CREATE", Policy: policies[int(knobs)%len(policies)]}
		if knobs&0x10 == 0 {
			in.APIServer = testAPIServer
		}
		if knobs&0x20 != 0 {
			in.Namespace = "kube-system"
		}
		res, err := Workload(in)
		if err != nil {
			if len(res.Patch) > 0 {
				t.Errorf("error %v with a patch", err)
			}
			return
		}
		checkInvariants(t, Workload, workloadPath, in, res)
	})
}

// The reader must read what Kubernetes' own decoder reads.
func TestDecodeWorkloadMatchesKubernetesDecoder(t *testing.T) {
	inputs := map[string][]byte{
		"nulls":          []byte(`{"metadata":{"name":"x","labels":null,"annotations":{"a":null}},"spec":{"template":{"metadata":null,"spec":{"tolerations":null,"containers":[null,{"name":"c","env":null,"command":null}]}}}}`),
		"empty lists":    []byte(`{"metadata":{},"spec":{"template":{"spec":{"tolerations":[],"containers":[{"env":[],"args":[]}]}}}}`),
		"escapes":        []byte(`{"metadata":{"name":"\u0078","annotations":{"hcp-ingress.io\/inject":"tru\u0065"}},"spec":{"template":{"spec":{"containers":[{"name":"a\"b","image":"\u00e9"}]}}}}`),
		"null elements":  []byte(`{"spec":{"template":{"spec":{"tolerations":[null,{"key":null,"operator":"Exists","effect":"NoSchedule"}],"containers":[{"args":[null,"a\\nb"],"command":[],"env":[null,{"name":"A","value":null,"valueFrom":null},{"name":"B","valueFrom":{ "fieldRef" : {"fieldPath":"status.podIP"} }}]}]}}}}`),
		"spec null":      []byte(`{"metadata":null,"spec":null}`),
		"template null":  []byte(`{"spec":{"template":null}}`),
		"no containers":  []byte(`{"spec":{"template":{"spec":{}}}}`),
		"unknown fields": []byte(`{"kind":"DaemonSet","status":{"x":[1,2,{"y":"}"}]},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"volumes":[{"name":"v"}],"containers":[{"name":"c","resources":{"limits":{"cpu":"1"}}}]}}}}`),
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "workloads"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		inputs[name] = workloadFixture(t, name)
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeWorkload(data); err != nil {
				t.Fatalf("the reader rejects valid JSON: %v", err)
			}
			checkDecodersAgree[workloadObject](t, data)
		})
	}
}
