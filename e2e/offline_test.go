package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestOfflineMutateEqualsWebhook checks the promise of `mutate`: it runs the
// same engine as the webhook, so for the same objects, IngressClasses and
// policy, its output is what the webhook patches and its warnings are what
// kubectl prints. Every example control plane goes both ways.
func TestOfflineMutateEqualsWebhook(t *testing.T) {
	requireWebhook(t)
	ingressClass(t, "haproxy", "haproxy-ingress.github.io/controller", false)
	classFile := filepath.Join(t.TempDir(), "ingressclass.yaml")
	ic := object("networking.k8s.io/v1", "IngressClass", "", "haproxy")
	ic.Object["spec"] = map[string]any{"controller": "haproxy-ingress.github.io/controller"}
	writeFile(t, classFile, toYAML(t, ic))
	ns := newNamespace(t, env.Management, "e2e-offline", nil)

	examples, err := filepath.Glob(filepath.Join(env.Paths.Root, "examples", "controlplanes", "*.yaml"))
	if err != nil || len(examples) < 5 {
		t.Fatalf("examples/controlplanes: %v (%d files)", err, len(examples))
	}
	for _, example := range examples {
		if filepath.Base(example) == "default-class.yaml" {
			continue // needs a default IngressClass, which other tests would see
		}
		t.Run(filepath.Base(example), func(t *testing.T) {
			obj := readExample(t, example)
			obj.SetNamespace(ns)
			objFile := filepath.Join(t.TempDir(), filepath.Base(example))
			writeFile(t, objFile, toYAML(t, obj))

			stdout, stderr, err := webhookCLI(t, "mutate", "--policy", env.PolicyFile, "-f", objFile, "-f", classFile, "-o", "json")
			if err != nil {
				t.Fatalf("mutate: %v\n%s", err, stderr)
			}
			var list struct{ Items []map[string]any }
			if err := yaml.Unmarshal([]byte(stdout), &list); err != nil || len(list.Items) != 2 {
				t.Fatalf("mutate -o json: want a List of 2, got %v\n%s", err, stdout)
			}
			offline := &unstructured.Unstructured{Object: list.Items[0]}

			eventually(t, "the webhook's answer equals the offline one", func() string {
				online, res := dryRun(t, env.Management, obj)
				if got, want := mapString(ingressAnnotations(online)), mapString(ingressAnnotations(offline)); got != want {
					return "ingress annotations: webhook " + got + ", offline " + want
				}
				if got, want := online.GetAnnotations()[mutatedAnnotation], offline.GetAnnotations()[mutatedAnnotation]; got != want {
					return "record: webhook " + got + ", offline " + want
				}
				for _, w := range webhookWarnings(res) {
					if !strings.Contains(stderr, ": "+w+"\n") {
						return "the webhook warned, offline did not: " + w + "\noffline warnings:\n" + stderr
					}
				}
				if n, m := len(webhookWarnings(res)), strings.Count(stderr, "Warning: "); n != m {
					return "webhook warnings " + strings.Join(webhookWarnings(res), " | ") + "\noffline warnings:\n" + stderr
				}
				return ""
			})
		})
	}
}

func readExample(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
