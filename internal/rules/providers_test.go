package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/golden"
)

// providerWorkload is what detection reads of a Deployment or DaemonSet.
type providerWorkload struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Containers []struct {
					Name    string   `json:"name"`
					Image   string   `json:"image"`
					Command []string `json:"command"`
					Args    []string `json:"args"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// providerSignals is the content of a <provider>.expected.yaml: what the
// embedded default policy sees in the workload of <provider>.yaml.
type providerSignals struct {
	PodVeto    string             `json:"podVeto,omitempty"`
	PodMedium  string             `json:"podMedium,omitempty"`
	Containers []containerSignals `json:"containers"`
}

type containerSignals struct {
	Name   string `json:"name"`
	Veto   string `json:"veto,omitempty"`
	Strong string `json:"strong,omitempty"`
	Medium string `json:"medium,omitempty"`
}

const expectedHeader = "# What the embedded default policy sees in the workload of the .yaml file of the\n" +
	"# same name (see README.md here). Regenerate: go test ./internal/rules -run TestProviderFixtures -update\n"

// TestProviderFixtures checks the default policy against the workload of
// every cloud provider in testdata/providers: adding a provider is adding
// <provider>.yaml and its <provider>.expected.yaml.
func TestProviderFixtures(t *testing.T) {
	workloads, err := filepath.Glob(filepath.Join("testdata", "providers", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := defaultCCM(t)
	seen := map[string]bool{}
	for _, path := range workloads {
		if strings.HasSuffix(path, ".expected.yaml") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		expectedPath := strings.TrimSuffix(path, ".yaml") + ".expected.yaml"
		seen[expectedPath] = true
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var w providerWorkload
			if err := yaml.Unmarshal(raw, &w); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			tmpl := w.Spec.Template
			got := providerSignals{PodVeto: c.PodVeto(tmpl.Metadata.Labels), PodMedium: c.PodMedium(tmpl.Metadata.Labels)}
			for _, ctr := range tmpl.Spec.Containers {
				s := c.Container(CCMContainer{Name: ctr.Name, Image: ctr.Image, Command: ctr.Command, Args: ctr.Args})
				got.Containers = append(got.Containers, containerSignals{Name: ctr.Name, Veto: s.Veto, Strong: s.Strong, Medium: s.Medium})
			}
			out, err := yaml.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			text := expectedHeader + string(out)
			golden.File(t, expectedPath, text)
		})
	}
	expected, _ := filepath.Glob(filepath.Join("testdata", "providers", "*.expected.yaml"))
	for _, path := range expected {
		if !seen[path] {
			t.Errorf("%s has no workload %s beside it", path, strings.TrimSuffix(path, ".expected.yaml")+".yaml")
		}
	}
}
