package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// defaultImage is $(REGISTRY)/hcp-ingress-webhook with mk/image.mk's default
// REGISTRY; manifests/base/kustomization.yaml names it in images:.
const defaultImage = "ghcr.io/hcp-ingress/hcp-ingress-webhook"

// The image the manifests install, and the way docs/image.md tells users to
// point an install at their own build.
func TestManifestsImage(t *testing.T) {
	t.Run("both overlays run the published image at a version tag", func(t *testing.T) {
		for _, overlay := range []string{framework.OverlayManagement, framework.OverlayWorkload} {
			image := webhookImage(t, render(t, overlay))
			if tag, ok := strings.CutPrefix(image, defaultImage+":"); !ok || tag == "" {
				t.Errorf("overlays/%s: image %q, want %s:<version>", overlay, image, defaultImage)
			}
		}
	})

	t.Run("an overlay's images entry for the published name points the install at another registry", func(t *testing.T) {
		dir := t.TempDir()
		base, err := filepath.Rel(dir, filepath.Join(env.Paths.Root, "manifests", "overlays", framework.OverlayManagement))
		if err != nil {
			t.Fatal(err)
		}
		kustomization := "resources:\n  - " + base + "\n" +
			"images:\n  - name: " + defaultImage + "\n" +
			"    newName: registry.example.com/team/hcp-ingress-webhook\n    newTag: v9.9.9\n"
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), env.Paths.Kubectl, "kustomize", dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		objects, err := framework.DecodeObjects(out)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := webhookImage(t, objects), "registry.example.com/team/hcp-ingress-webhook:v9.9.9"; got != want {
			t.Errorf("image %q, want %q", got, want)
		}
	})
}

func webhookImage(t *testing.T, objects []*unstructured.Unstructured) string {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(only(t, objects, "Deployment").Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) != 1 {
		t.Fatalf("want one container in the Deployment, got %d (%v)", len(containers), err)
	}
	image, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
	return image
}
