package offline

import (
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/offline/offlinetest"
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

// jsonToYAML must write exactly what sigs.k8s.io/yaml.JSONToYAML writes.
func TestJSONToYAMLMatchesSigsYAML(t *testing.T) {
	inputs := map[string]string{
		"numbers":  `{"int":5,"neg":-3,"zero":-0,"big":12345678901234567890,"huge":123456789012345678901234,"float":1.5,"exp":1e21,"small":1E-7,"one":1.0}`,
		"strings":  `{"empty":"","yes":"yes","num":"123","null":"null","colon":"a: b","multi":"a\nb\n","unicode":"é😀","quote":"\"'","tab":"a\tb","lead":" x","hash":"# c"}`,
		"nesting":  `{"a":[1,[2,{}],{"b":null,"c":[]}],"z":true,"y":false,"10":"ten","9":"nine","a10":1,"a9":2}`,
		"escapes":  `{"k":"\u00e9\/\\"}`,
		"top list": `[1,"a",null]`,
	}
	docs, err := Read("big.yaml", bytes.NewReader(offlinetest.ThousandObjects(t, filepath.Join("..", ".."))))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs[:24] {
		inputs[d.String()] = string(d.JSON)
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want, wantErr := yaml.JSONToYAML([]byte(in))
			got, err := jsonToYAML([]byte(in))
			if wantErr != nil {
				// A JSON escape YAML lacks (\/) fails there and reads
				// here; encoding/json, which writes what is rendered,
				// never writes one.
				return
			}
			if err != nil || string(got) != string(want) {
				t.Errorf("jsonToYAML:\n%s (%v)\nsigs.k8s.io/yaml:\n%s (%v)", got, err, want, wantErr)
			}
		})
	}
}

// documentOf is a YAML document of size bytes, produced as it is read: a
// ConfigMap whose one value is a block of lines.
func documentOf(size int) io.Reader {
	const head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  x: |\n"
	return io.LimitReader(io.MultiReader(strings.NewReader(head), &repeatedLine{line: "    " + strings.Repeat("a", 75) + "\n"}), int64(size))
}

type repeatedLine struct {
	line string
	off  int
}

func (r *repeatedLine) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// Input over the limits is refused before it is read whole or converted:
// without the limits, the 50 MiB document took about 460 MB to reject.
func TestReadRefusesLargeInputEarly(t *testing.T) {
	cases := map[string]struct {
		size     int
		want     string
		maxAlloc uint64
	}{
		"a 50 MiB document on a stream": {size: 50 << 20, want: "big.yaml: larger than 32 MiB, the limit of offline input", maxAlloc: 40 << 20},
		"a 4 MiB document":              {size: 4 << 20, want: "big.yaml: document 1: 4194305 bytes is larger than the 3145728 bytes an API server accepts", maxAlloc: 64 << 20},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Read("big.yaml", documentOf(tc.size))
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
				t.Errorf("refusing it allocated %d MiB, want at most %d MiB", alloc>>20, tc.maxAlloc>>20)
			} else {
				t.Logf("refused after allocating %d MiB", alloc>>20)
			}
		})
	}
}
