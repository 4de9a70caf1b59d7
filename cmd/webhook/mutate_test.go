package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withStdin makes r the standard input of the commands for one test.
func withStdin(t *testing.T, r io.Reader) {
	t.Helper()
	old := stdin
	stdin = r
	t.Cleanup(func() { stdin = old })
}

// "-" reads standard input wherever a file is read.
func TestDashReadsStandardInputEverywhere(t *testing.T) {
	policy, err := os.ReadFile(examples + "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args  []string
		input string
		want  string
	}{
		"policy validate -f -":   {args: []string{"policy", "validate", "-f", "-"}, input: string(policy), want: "stdin: valid"},
		"policy show --policy -": {args: []string{"policy", "show", "--policy", "-"}, input: string(policy), want: "source: stdin"},
		"mutate -f -": {
			args: []string{"mutate", "-f", "-", "-o", "patch"}, input: "apiVersion: k0smotron.io/v1beta1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  ingress: {className: haproxy}\n",
			want: `"file": "-"`,
		},
		"mutate --policy -": {
			args: []string{"mutate", "--policy", "-", "-f", examples + "controlplanes/nginx.yaml", "-o", "patch"}, input: string(policy),
			want: `"rule":`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			withStdin(t, strings.NewReader(tc.input))
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != 0 || !strings.Contains(stdout, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// Offline input the command refuses, with the file, the document and the
// field.
func TestMutateRefusesHostileInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil { // sparse: 50 MiB that cost no disk
		t.Fatal(err)
	}
	f.Close()
	cases := map[string]struct {
		args []string
		want string
	}{
		"a 50 MiB file is refused before it is read": {
			args: []string{"mutate", "-f", big}, want: "big.yaml: 52428800 bytes is larger than 32 MiB, the limit of offline input",
		},
		"a duplicate key in YAML names file, document and path": {
			args: []string{"mutate", "-f", write("dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ccm}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n        image: y\n")},
			want: `dup.yaml: document 2: spec.template.spec.containers[0]: duplicate key "image" (line 10 of the document)`,
		},
		"a duplicate key in JSON names file, document and path": {
			args: []string{"mutate", "-f", write("dup.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`+"\n"+`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","name":"c"}}`)},
			want: `dup.json: document 2: metadata: duplicate key "name"`,
		},
		"a duplicate policy key names the file": {
			args: []string{"mutate", "--policy", write("policy.yaml", "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonConflict: Keep\nonConflict: Override\n"), "-f", examples + "controlplanes/haproxy.yaml"},
			want: "policy.yaml",
		},
		"standard input twice": {
			args: []string{"mutate", "-f", "-", "--policy", "-"}, want: "standard input (-) can be read only once",
		},
		"a child webhook URL with a query": {
			args: []string{"mutate", "-f", examples + "controlplanes/haproxy.yaml", "--child-webhook-url", "https://webhook.example.com/?a=b"}, want: "--child-webhook-url",
		},
		"spec.ingress.port that is not an integer is not truncated": {
			args: []string{"mutate", "-f", write("port.yaml", "apiVersion: k0smotron.io/v1beta1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  ingress: {apiHost: api.example.com, port: 443.5}\n---\n"+ccmDaemonSetYAML)},
			want: "port.yaml: document 1 (Cluster a): spec.ingress.port: 443.5 is not a port number",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, stderr, tc.want)
			}
		})
	}
}

const ccmDaemonSetYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ccm, namespace: kube-system}
spec:
  template:
    spec:
      containers:
      - name: ccm
        image: registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.34.0
`

// spec.ingress: null is no ingress, with or without --api-server.
func TestMutateIngressNullIsNoIngress(t *testing.T) {
	input := filepath.Join(t.TempDir(), "null.yaml")
	if err := os.WriteFile(input, []byte("apiVersion: k0smotron.io/v1beta1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  ingress: null\n---\n"+ccmDaemonSetYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--api-server", "api.example.com:443"}} {
		stdout, stderr, code := runCLI(t, append([]string{"mutate", "-f", input, "-o", "patch"}, extra...)...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", extra, code, stderr)
		}
		if strings.Contains(stdout, `"/spec/ingress`) {
			t.Errorf("%v: a null spec.ingress was mutated:\n%s", extra, stdout)
		}
	}
}
