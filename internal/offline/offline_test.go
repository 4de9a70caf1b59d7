package offline

import (
	"strings"
	"testing"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

func kinds(docs []Document) string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Kind+"/"+d.Name)
	}
	return strings.Join(out, ",")
}

func TestRead(t *testing.T) {
	cases := map[string]struct {
		input   string
		want    string // kinds/names in order
		wantErr string
	}{
		"multi-document YAML, comment-only and empty documents skipped": {
			input: "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
			want:  "ConfigMap/a,Secret/b",
		},
		"a JSON stream of several objects": {
			input: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}` + "\n" + `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`,
			want:  "ConfigMap/a,ConfigMap/b",
		},
		"a List is expanded into its items": {
			input: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: DaemonSet\n  metadata: {name: ccm}\n- apiVersion: networking.k8s.io/v1\n  kind: IngressClass\n  metadata: {name: haproxy}\n",
			want:  "DaemonSet/ccm,IngressClass/haproxy",
		},
		"an item of a List without kind names its position": {
			input:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  metadata: {name: ccm}\n",
			wantErr: "in.yaml: document 1 item 1",
		},
		"an item that is not an object": {
			input:   "apiVersion: v1\nkind: List\nitems: [3]\n",
			wantErr: "in.yaml: document 1 item 1: the object: must be an object, got integer",
		},
		"nothing at all": {
			input:   "# nothing\n",
			wantErr: "in.yaml: no objects found",
		},
		"a scalar document": {
			input:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\njust text\n",
			wantErr: "in.yaml: document 2",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			docs, err := Read("in.yaml", strings.NewReader(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(docs); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

const (
	cpA = "apiVersion: controlplane.cluster.x-k8s.io/v1beta2\nkind: K0smotronControlPlane\nmetadata: {name: a, namespace: t}\nspec:\n  ingress: {className: haproxy, apiHost: api.a.example.com, konnectivityHost: k.a.example.com, port: 8443}\n"
	cpB = "apiVersion: controlplane.cluster.x-k8s.io/v1beta2\nkind: K0smotronControlPlane\nmetadata: {name: b, namespace: t}\nspec:\n  ingress: {className: haproxy, apiHost: api.b.example.com, konnectivityHost: k.b.example.com}\n"
	ccm = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ccm, namespace: kube-system}\nspec:\n  template:\n    spec:\n      containers:\n      - name: ccm\n        image: registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.34.0\n"
)

func TestRunAPIServerSources(t *testing.T) {
	withPolicyHost, err := rules.Load("policy.yaml", []byte("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nccm:\n  apiServer: {host: api.policy.example.com, port: 6443}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		input     string
		policy    *rules.Policy
		apiServer *rules.APIServer
		wantHost  string
		wantErr   string
	}{
		"the one control plane with ingress in the input": {
			input: cpA + "---\n" + ccm, policy: rules.Default(), wantHost: "api.a.example.com",
		},
		"--api-server wins over the input": {
			input: cpA + "---\n" + ccm, policy: rules.Default(), apiServer: &rules.APIServer{Host: "api.flag.example.com", Port: 443}, wantHost: "api.flag.example.com",
		},
		"the policy's ccm.apiServer wins over the input": {
			input: cpA + "---\n" + ccm, policy: withPolicyHost, wantHost: "api.policy.example.com",
		},
		"two control planes with different hosts is ambiguous": {
			input: cpA + "---\n" + cpB + "---\n" + ccm, policy: rules.Default(), wantErr: "pass --api-server",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			docs, err := Read("in.yaml", strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			outcomes, err := Run(docs, Options{Policy: tc.policy, APIServer: tc.apiServer})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := outcomes[len(outcomes)-1]
			if !strings.Contains(string(last.Mutated), `"value":"`+tc.wantHost+`"`) {
				t.Errorf("the CCM did not get %s:\n%s", tc.wantHost, last.Mutated)
			}
		})
	}
}

func TestReadRefusesDocumentsLargerThanAnAPIServerAccepts(t *testing.T) {
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  x: \"" + strings.Repeat("a", 4<<20) + "\"\n"
	_, err := Read("big.yaml", strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "big.yaml: document 1") || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v", err)
	}
}
