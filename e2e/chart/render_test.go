package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The values of every documented mode, as a user writes them.
const (
	certManagerValues = "certificates:\n  mode: cert-manager\n"
	childValues       = `topology: child
policy:
  ccm:
    apiServer:
      host: api.child.example.com
      port: 6443
`
	userPolicyValues = `policy:
  onUnknownClass: Deny
  onConflict: Override
  ingressClasses:
    edge:
      annotations:
        haproxy-ingress.github.io/ssl-passthrough: "true"
  controllers:
    ingress.example.com/edge:
      project: Example Edge
      annotations:
        edge.example.com/tls-mode: passthrough
  ccm:
    namespaces: [kube-system, cloud]
    match:
      images: ["example.com/my-ccm$"]
      flagValues:
        - name: cloud-provider
          except: [external, ""]
`
	fleetValues = "fleet:\n  repair: true\n"
)

func TestChartLint(t *testing.T) {
	cases := map[string]string{
		"default values":                "",
		"cert-manager certificates":     certManagerValues,
		"child topology":                childValues,
		"a user policy":                 userPolicyValues,
		"fleet wiring and repair":       fleetValues,
		"metrics over plain HTTP":       "metrics:\n  secure: false\nserviceMonitor:\n  enabled: true\n",
		"no metrics, no PDB, 1 replica": "replicaCount: 1\nmetrics:\n  enabled: false\npodDisruptionBudget:\n  enabled: false\n",
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			if values != "" {
				args = append(args, "--values", "-")
			}
			res := helm(t, values, args...)
			if err := res.err(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(res.stdout, "[WARNING]") || strings.Contains(res.stdout, "[ERROR]") {
				t.Errorf("helm lint reported:\n%s", res.stdout)
			}
		})
	}
}

// Every object the chart renders, in each documented mode, passes the real
// API server's validation (cert-manager's CRDs, Pod Security admission) with
// no warning.
func TestChartRendersObjectsTheAPIServerAccepts(t *testing.T) {
	cases := map[string]struct {
		values    string
		podLevel  string // Pod Security level the namespace enforces
		wantKinds []string
		noKinds   []string
		wantArgs  []string
		noArgs    []string
	}{
		"default values: management topology, self-managed certificates": {
			podLevel:  "restricted",
			wantKinds: []string{"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Role", "ClusterRole"},
			noKinds:   []string{"Issuer", "Certificate", "ServiceMonitor"},
			wantArgs: []string{"--cert-dir=/etc/hcp-ingress-webhook/tls", "--cert-mode=self-managed", "--cert-secret=chart-default/hcp-ingress-webhook-certs",
				"--cert-dns-names=hcp-ingress-webhook.chart-default.svc,hcp-ingress-webhook.chart-default.svc.cluster.local",
				"--policy-configmap=chart-default/hcp-ingress-webhook-policy", "--child-webhook-url=https://hcp-ingress-webhook.chart-default.svc"},
			// The binary's defaults: the webhook configurations are named
			// hcp-ingress-webhook, lifetimes one and ten years.
			noArgs: []string{"--webhook-config-name", "--cert-lifetime", "--ca-lifetime", "--fleet-repair", "--routes", "--metrics-secure=false"},
		},
		"self-managed certificate lifetimes": {
			values:   "certificates:\n  selfManaged:\n    certLifetime: 2h\n    caLifetime: 12h\n",
			podLevel: "restricted",
			wantArgs: []string{"--cert-lifetime=2h", "--ca-lifetime=12h"},
		},
		"cert-manager certificates": {
			values:    certManagerValues,
			podLevel:  "restricted",
			wantKinds: []string{"Issuer", "Certificate", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"},
			wantArgs:  []string{"--cert-dir=/etc/hcp-ingress-webhook/tls"},
			noArgs:    []string{"--cert-mode=self-managed"},
		},
		"child topology": {
			values:    childValues,
			podLevel:  "privileged",
			wantKinds: []string{"Deployment", "MutatingWebhookConfiguration", "ConfigMap"},
			noKinds:   []string{"ValidatingWebhookConfiguration", "Issuer", "Certificate"},
			wantArgs:  []string{"--port=10270", "--policy-file=/etc/hcp-ingress-webhook/policy/policy.yaml", "--cert-mode=self-managed"},
			noArgs:    []string{"--policy-configmap", "--child-webhook-url", "--fleet-repair", "--routes"},
		},
		"a user policy": {
			values:    userPolicyValues,
			podLevel:  "restricted",
			wantKinds: []string{"ConfigMap"},
		},
		"fleet wiring and repair": {
			values:   fleetValues,
			podLevel: "restricted",
			wantArgs: []string{"--child-webhook-url=https://hcp-ingress-webhook.chart-fleet.svc", "--fleet-repair"},
		},
		"no fleet wiring": {
			values:   "fleet:\n  enabled: false\n",
			podLevel: "restricted",
			noArgs:   []string{"--child-webhook-url", "--fleet-repair"},
		},
		"passthrough routes": {
			values:   "routes:\n  enabled: true\n",
			podLevel: "restricted",
			wantArgs: []string{"--routes"},
		},
		"metrics over plain HTTP, one replica, maxUnavailable": {
			values:   "replicaCount: 1\nmetrics:\n  secure: false\npodDisruptionBudget:\n  maxUnavailable: 1\n",
			podLevel: "restricted",
			wantArgs: []string{"--metrics-secure=false"},
		},
	}
	namespaces := map[string]string{
		"default values: management topology, self-managed certificates": "chart-default",
		"cert-manager certificates":                                      "chart-cert-manager",
		"child topology":                                                 "chart-child",
		"a user policy":                                                  "chart-policy",
		"fleet wiring and repair":                                        "chart-fleet",
		"no fleet wiring":                                                "chart-no-fleet",
		"self-managed certificate lifetimes":                             "chart-lifetimes",
		"passthrough routes":                                             "chart-routes",
		"metrics over plain HTTP, one replica, maxUnavailable":           "chart-plain-metrics",
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := namespaces[name]
			ensureNamespace(t, ns, map[string]string{
				"pod-security.kubernetes.io/enforce":         tc.podLevel,
				"pod-security.kubernetes.io/enforce-version": "latest",
				// Admission warnings also come from these: warn and audit at
				// restricted everywhere, so that only the child's host
				// networking may be excused below.
				"pod-security.kubernetes.io/warn": tc.podLevel,
			})
			objects := render(t, ns, tc.values)
			got := kinds(objects)
			for _, k := range tc.wantKinds {
				if got[k] == 0 {
					t.Errorf("no %s rendered; got %v", k, got)
				}
			}
			for _, k := range tc.noKinds {
				if got[k] != 0 {
					t.Errorf("%d %s rendered, want none", got[k], k)
				}
			}
			args := containerArgs(t, find(objects, "Deployment", releaseName))
			seen := map[string]bool{}
			for _, a := range args {
				flag, _, _ := strings.Cut(a, "=")
				if seen[flag] {
					t.Errorf("%s given twice:\n  %s", flag, strings.Join(args, "\n  "))
				}
				seen[flag] = true
			}
			for _, a := range tc.wantArgs {
				if !slices.Contains(args, a) {
					t.Errorf("args lack %q:\n  %s", a, strings.Join(args, "\n  "))
				}
			}
			for _, a := range tc.noArgs {
				for _, have := range args {
					if strings.HasPrefix(have, a) {
						t.Errorf("args have %q, want none:\n  %s", have, strings.Join(args, "\n  "))
					}
				}
			}
			for _, o := range objects {
				if o.GetNamespace() != "" && o.GetNamespace() != ns {
					t.Errorf("%s %s is in namespace %q, want the release namespace %q", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
				}
			}
			res := mustKubectl(t, toYAML(t, objects...), "apply", "--dry-run=server", "-f", "-")
			if w := res.Warnings(); len(w) != 0 {
				t.Errorf("warnings:\n  %s", strings.Join(w, "\n  "))
			}
			if n := strings.Count(res.Stdout, "(server dry run)"); n != len(objects) {
				t.Errorf("%d of %d objects went through the API server:\n%s", n, len(objects), res.Stdout)
			}
		})
	}

	// The child topology needs host networking, and nothing else outside
	// restricted: in a restricted namespace, the only violations are host
	// namespaces and host ports.
	t.Run("child topology: the pod is restricted except for host networking", func(t *testing.T) {
		ns := "chart-child-restricted"
		ensureNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		deployment := find(render(t, ns, childValues), "Deployment", releaseName)
		res := mustKubectl(t, toYAML(t, deployment), "apply", "--dry-run=server", "-f", "-")
		if len(res.Warnings()) == 0 {
			t.Fatal("no Pod Security warning for a host-network pod in a restricted namespace: is PodSecurity admission on?")
		}
		for _, w := range res.Warnings() {
			for _, violation := range podSecurityViolations(w) {
				if violation != "host namespaces" && violation != "hostPort" {
					t.Errorf("restricted violation other than host networking: %q in %q", violation, w)
				}
			}
		}
	})
}

// podSecurityViolations splits `would violate PodSecurity "restricted:latest":
// host namespaces (hostNetwork=true), hostPort (...)` into its check names.
func podSecurityViolations(warning string) []string {
	_, list, found := strings.Cut(warning, `": `)
	if !found {
		return []string{warning}
	}
	var out []string
	depth := 0
	var b strings.Builder
	for _, r := range list {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	for _, v := range strings.Split(b.String(), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Values that would give a broken install fail `helm template` with a message
// naming the value, and nothing is rendered.
func TestChartRejectsBadValues(t *testing.T) {
	cases := map[string]struct {
		values string
		want   []string // all in helm's error output
	}{
		"an unknown top-level key": {
			values: "replicas: 3\n",
			want:   []string{"additional properties 'replicas' not allowed"},
		},
		"an unknown nested key": {
			values: "image:\n  tags: v1\n",
			want:   []string{"/image", "additional properties 'tags' not allowed"},
		},
		"a word where a number is wanted": {
			values: "replicaCount: two\n",
			want:   []string{"/replicaCount", "got string, want integer"},
		},
		"a certificate mode that does not exist": {
			values: "certificates:\n  mode: vault\n",
			want:   []string{"/certificates/mode", "self-managed", "cert-manager"},
		},
		"a failure policy that does not exist": {
			values: "webhooks:\n  controlPlane:\n    failurePolicy: Retry\n    timeoutSeconds: 5\n",
			want:   []string{"/webhooks/controlPlane/failurePolicy", "Fail", "Ignore"},
		},
		"a webhook timeout over the API server's maximum": {
			values: "webhooks:\n  workload:\n    failurePolicy: Ignore\n    timeoutSeconds: 31\n",
			want:   []string{"/webhooks/workload/timeoutSeconds", "maximum"},
		},
		"a lifetime that is not a duration": {
			values: "certificates:\n  selfManaged:\n    certLifetime: one year\n    caLifetime: 87600h\n",
			want:   []string{"/certificates/selfManaged/certLifetime"},
		},
		"an unknown topology": {
			values: "topology: edge\n",
			want:   []string{"/topology", "management", "child"},
		},
		"a misspelt policy field": {
			values: "policy:\n  onUnknownClas: Deny\n",
			want:   []string{"/policy", "additional properties 'onUnknownClas' not allowed"},
		},
		"a policy field of the wrong type": {
			values: "policy:\n  ccm:\n    namespaces: kube-system\n",
			want:   []string{"/policy/ccm/namespaces", "want array"},
		},
		"a policy action that does not exist": {
			values: "policy:\n  onUnknownClass: Block\n",
			want:   []string{"/policy/onUnknownClass", "Warn", "Deny", "Ignore"},
		},
		"a policy annotation value that is not a string": {
			values: "policy:\n  ingressClasses:\n    haproxy:\n      annotations:\n        haproxy.org/ssl-passthrough: true\n",
			want:   []string{"/policy/ingressClasses/haproxy/annotations/haproxy.org~1ssl-passthrough", "want string"},
		},
		"the child topology without the API server it needs": {
			values: "topology: child\n",
			want:   []string{"topology: child needs policy.ccm.apiServer.host"},
		},
		"the child topology with cert-manager": {
			values: childValues + certManagerValues,
			want:   []string{"topology: child needs certificates.mode: self-managed"},
		},
		"fleet repair without fleet wiring": {
			values: "fleet:\n  enabled: false\n  repair: true\n",
			want:   []string{"fleet.repair needs fleet.enabled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res := helmTemplate(t, "chart-bad", tc.values)
			if res.exitCode == 0 {
				t.Fatalf("helm template accepted:\n%s", tc.values)
			}
			if strings.TrimSpace(res.stdout) != "" {
				t.Errorf("helm template rendered something:\n%s", res.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, res.stderr)
				}
			}
		})
	}
}

// The policy the chart renders is the one the webhook loads: valid user
// policies pass `hcp-ingress-webhook policy validate`, and one whose content
// is wrong in a way no schema can see (a regular expression, an annotation
// key) is rejected by it with the field path.
func TestChartRendersThePolicyTheWebhookLoads(t *testing.T) {
	if _, err := os.Stat(paths.Webhook); err != nil {
		t.Fatalf("%v: run `make build`", err)
	}
	cases := map[string]struct {
		values string
		want   []string // empty: valid
	}{
		"default values":  {values: ""},
		"a user policy":   {values: userPolicyValues},
		"child topology":  {values: childValues},
		"apiVersion kept": {values: "policy:\n  apiVersion: hcp-ingress.io/v1alpha1\n  kind: Policy\n  replaceDefaults: false\n"},
		"a regular expression that does not compile": {
			values: "policy:\n  ccm:\n    match:\n      binaries: [\"^(unclosed\"]\n",
			want:   []string{"ccm.match.binaries[0]"},
		},
		"an annotation key that is not a Kubernetes key": {
			values: "policy:\n  ingressClasses:\n    nginx:\n      annotations:\n        \"nginx.ingress.kubernetes.io/ssl passthrough\": \"true\"\n",
			want:   []string{"ingressClasses", "nginx", "annotations", "ssl passthrough"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			policy := policyOf(t, render(t, "chart-policy", tc.values))
			// A file, not stdin: the error then names it like the ConfigMap key.
			file := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(file, []byte(policy), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), paths.Webhook, "policy", "validate", "-f", file)
			out, err := cmd.CombinedOutput()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("policy validate rejected the rendered policy: %v\n%s\npolicy.yaml:\n%s", err, out, policy)
				}
				return
			}
			if err == nil {
				t.Fatalf("policy validate accepted:\n%s", policy)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("policy validate output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// values.schema.json describes the policy document field by field, so that
// a misspelt policy key fails at `helm install`. This keeps it from drifting
// from the Go types the webhook loads: every JSON field of rules.Document is
// in the schema and the schema has nothing else.
func TestChartValuesSchemaHasEveryPolicyField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(paths.Root, chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	policy := schema["properties"].(map[string]any)["policy"].(map[string]any)
	compareSchema(t, "policy", policy, reflect.TypeFor[rules.Document]())
}

func compareSchema(t *testing.T, path string, schema map[string]any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		if schema["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is %v, want false", path, schema["additionalProperties"])
		}
		props, _ := schema["properties"].(map[string]any)
		var goFields, schemaFields []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			goFields = append(goFields, name)
			sub, ok := props[name].(map[string]any)
			if !ok {
				continue
			}
			compareSchema(t, path+"."+name, sub, f.Type)
		}
		for name := range props {
			schemaFields = append(schemaFields, name)
		}
		sort.Strings(goFields)
		sort.Strings(schemaFields)
		if !slices.Equal(goFields, schemaFields) {
			t.Errorf("%s: the policy has fields %v, values.schema.json has %v", path, goFields, schemaFields)
		}
	case reflect.Map:
		sub, ok := schema["additionalProperties"].(map[string]any)
		if !ok {
			t.Errorf("%s: a map, but the schema's additionalProperties is %v", path, schema["additionalProperties"])
			return
		}
		compareSchema(t, path+".*", sub, typ.Elem())
	case reflect.Slice:
		if schema["type"] != "array" {
			t.Errorf("%s: a list, the schema says %v", path, schema["type"])
		}
		if items, ok := schema["items"].(map[string]any); ok {
			compareSchema(t, path+"[]", items, typ.Elem())
		} else {
			t.Errorf("%s: a list without items in the schema", path)
		}
	case reflect.String:
		if schema["type"] != "string" {
			t.Errorf("%s: a string, the schema says %v", path, schema["type"])
		}
	case reflect.Bool:
		if schema["type"] != "boolean" {
			t.Errorf("%s: a boolean, the schema says %v", path, schema["type"])
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if schema["type"] != "integer" {
			t.Errorf("%s: an integer, the schema says %v", path, schema["type"])
		}
	}
}
