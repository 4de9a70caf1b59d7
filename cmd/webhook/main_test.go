package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/golden"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// runCLI runs the command line in-process and returns stdout, stderr and the
// exit status.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

const examples = "../../examples/"

func TestMutateGolden(t *testing.T) {
	cases := map[string][]string{
		"haproxy-community":    {"-f", examples + "controlplanes/haproxy.yaml", "-f", examples + "ingressclasses/haproxy-community.yaml"},
		"haproxy-technologies": {"-f", examples + "controlplanes/haproxy.yaml", "-f", examples + "ingressclasses/haproxy-technologies.yaml"},
		"haproxy-guessed":      {"-f", examples + "controlplanes/haproxy.yaml"},
		"default-class":        {"-f", examples + "controlplanes/default-class.yaml", "-f", examples + "ingressclasses/default-cilium.yaml"},
		"traefik-unsupported":  {"-f", examples + "controlplanes/traefik.yaml", "-f", examples + "ingressclasses/traefik.yaml"},
		"foreign-annotation":   {"-f", examples + "controlplanes/conflicting-annotation.yaml", "-f", examples + "ingressclasses/haproxy-community.yaml"},
		"template":             {"-f", examples + "controlplanes/template.yaml"},
		"openstack-ccm":        {"-f", examples + "workloads/openstack-ccm-daemonset.yaml", "--api-server", "api.haproxy.example.com:443"},
		"ccm-from-input":       {"-f", examples + "controlplanes/haproxy.yaml", "-f", examples + "workloads/hcloud-ccm-deployment.yaml"},
		"negatives": {"-f", examples + "workloads/cluster-autoscaler.yaml", "-f", examples + "workloads/csi-controller.yaml",
			"--api-server", "api.example.com"},
		"tuned-policy": {"--policy", examples + "policy.yaml", "-f", examples + "controlplanes/nginx.yaml", "-f", examples + "workloads/openstack-ccm-daemonset.yaml"},
		"fleet-wiring": {"--child-webhook-url", "https://hcp-ingress-webhook.hcp-ingress-system.svc", "-f", examples + "controlplanes/haproxy.yaml",
			"-f", examples + "controlplanes/k0smotron-cluster.yaml", "-f", examples + "controlplanes/template.yaml", "--api-server", "api.example.com"},
	}
	for name, args := range cases {
		for _, format := range []string{"yaml", "json", "patch", "diff"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				stdout, stderr, code := runCLI(t, append([]string{"mutate", "-o", format}, args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				golden.Check(t, name+"."+format, stdout)
				golden.Check(t, name+".warnings", stderr)
			})
		}
	}
}

func TestMutateReadsStandardInput(t *testing.T) {
	f, err := os.Open(examples + "controlplanes/haproxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	withStdin(t, f)
	stdout, stderr, code := runCLI(t, "mutate", "-f", "-", "-o", "patch")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `"file": "-"`) || !strings.Contains(stdout, `"haproxy.org/ssl-passthrough": "true"`) {
		t.Errorf("unexpected output:\n%s", stdout)
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputExitsOneWithWhere(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	cases := map[string]struct {
		args []string
		want []string // substrings of stderr
	}{
		"malformed YAML names file and document": {
			args: []string{"mutate", "-f", write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\n---\nkey: [unclosed\n")},
			want: []string{"bad.yaml: document 2"},
		},
		"ingress that is a string names the field": {
			args: []string{"mutate", "-f", write("cp.yaml", "apiVersion: controlplane.cluster.x-k8s.io/v1beta1\nkind: K0smotronControlPlane\nmetadata: {name: x}\nspec:\n  ingress: nope\n")},
			want: []string{"cp.yaml: document 1 (K0smotronControlPlane x)", "spec.ingress"},
		},
		"document without kind": {
			args: []string{"mutate", "-f", write("nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n")},
			want: []string{"nokind.yaml: document 1", "apiVersion and kind are required"},
		},
		"missing file": {
			args: []string{"mutate", "-f", filepath.Join(dir, "absent.yaml")},
			want: []string{"absent.yaml"},
		},
		"unknown output format": {
			args: []string{"mutate", "-f", examples + "controlplanes/haproxy.yaml", "-o", "xml"},
			want: []string{"-o xml"},
		},
		"bad --api-server port": {
			args: []string{"mutate", "-f", examples + "controlplanes/haproxy.yaml", "--api-server", "api.example.com:99999"},
			want: []string{"--api-server"},
		},
		"invalid policy lists every error with its field path": {
			args: []string{"policy", "validate", "-f", write("policy.yaml", "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonUnknownClass: Sometimes\nonConflict: Maybe\ningressClasses:\n  nginx:\n    annotations:\n      \"nginx.ingress.kubernetes.io/ssl passthrough\": \"true\"\n")},
			want: []string{"policy.yaml: onUnknownClass", "policy.yaml: onConflict", "policy.yaml: ingressClasses[nginx].annotations"},
		},
		"unknown policy field": {
			args: []string{"policy", "validate", "-f", write("unknown.yaml", "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonUnknownClas: Warn\n")},
			want: []string{"unknown.yaml", "onUnknownClas"},
		},
		"a denial names the document and the way out": {
			args: []string{"mutate", "--policy", write("deny.yaml", "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonUnknownClass: Deny\n"),
				"-f", examples + "controlplanes/traefik.yaml", "-f", examples + "ingressclasses/traefik.yaml"},
			want: []string{"controlplanes/traefik.yaml: document 1 (K0smotronControlPlane default/traefik): denied", "IngressRouteTCP"},
		},
		"unknown command": {
			args: []string{"frobnicate"},
			want: []string{`unknown command "frobnicate"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestPolicyValidateReadsStandardInput(t *testing.T) {
	example, err := os.ReadFile(examples + "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		input    string
		wantCode int
		want     string // in stdout for 0, in stderr otherwise
	}{
		"a valid policy":      {input: string(example), want: "stdin: valid"},
		"an invalid policy":   {input: "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonConflict: Maybe\n", wantCode: 1, want: "stdin: onConflict: Unsupported value"},
		"two documents":       {input: string(example) + "---\n" + string(example), wantCode: 1, want: "stdin: document 2: a policy file holds exactly one YAML document"},
		"over the size limit": {input: strings.Repeat("#", rules.MaxPolicyBytes+1), wantCode: 1, want: "stdin: the policy document is larger than the limit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			withStdin(t, strings.NewReader(tc.input))
			stdout, stderr, code := runCLI(t, "policy", "validate", "-f", "-")
			out := stdout
			if tc.wantCode != 0 {
				out = stderr
			}
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (want %d), want %q in\nstdout: %s\nstderr: %s", code, tc.wantCode, tc.want, stdout, stderr)
			}
		})
	}
}

func TestPolicyValidateAcceptsTheExample(t *testing.T) {
	stdout, stderr, code := runCLI(t, "policy", "validate", "-f", examples+"policy.yaml")
	if code != 0 || !strings.Contains(stdout, "valid") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func TestPolicyShowNamesSources(t *testing.T) {
	stdout, stderr, code := runCLI(t, "policy", "show", "--policy", examples+"policy.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"source: built-in", "source: " + examples + "policy.yaml", "haproxy-ingress.github.io/controller", "ingress.example.com/edge"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("policy show output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestChildConfig(t *testing.T) {
	stdout, stderr, code := runCLI(t, "child-config", "tenants/prod", "--url", "https://hcp-ingress-webhook.hcp-ingress-system.svc:443", "--ca-file", testCA)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden.Check(t, "child-config.yaml", stdout)
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "hcp-ingress-webhook ") {
		t.Fatalf("exit %d: %q", code, stdout)
	}
}

func TestCerts(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLI(t, "certs", "--host", "127.0.0.1", "--out-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	stdout, stderr, code := runCLI(t, "certs", "--secret", "hcp-ingress-system/hcp-ingress-webhook-tls")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"kind: Secret", "type: kubernetes.io/tls", "tls.crt:", "tls.key:", "ca.crt:", "namespace: hcp-ingress-system"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("Secret lacks %q:\n%s", want, stdout)
		}
	}
	if _, _, code := runCLI(t, "certs"); code != 1 {
		t.Errorf("certs without --out-dir or --secret: exit %d, want 1", code)
	}
}
