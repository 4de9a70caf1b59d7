// Package framework starts what the e2e suite and `make demo` run against: a
// real etcd and kube-apiserver (envtest, binaries built from source into bin/),
// the real webhook binary serving on 127.0.0.1, and the webhook
// configurations rendered from manifests/ with bin/kubectl kustomize. The e2e
// TestMain and e2e/demo both call Start; there is no second copy of this
// logic.
package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const modulePath = "github.com/hcp-ingress/hcp-ingress-webhook"

// Paths are the repository files the framework uses.
type Paths struct {
	Root    string // repository root (go.mod)
	Bin     string // bin/: etcd, kube-apiserver, kubectl, hcp-ingress-webhook
	Kubectl string
	Webhook string
}

// FindPaths locates the repository root from the working directory upwards:
// `go test ./e2e/...` runs in e2e/, `go run ./e2e/demo` in the root.
func FindPaths() (Paths, error) {
	dir, err := os.Getwd()
	if err != nil {
		return Paths{}, err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+modulePath+"\n")) {
			bin := filepath.Join(dir, "bin")
			return Paths{
				Root:    dir,
				Bin:     bin,
				Kubectl: filepath.Join(bin, "kubectl"),
				Webhook: filepath.Join(bin, "hcp-ingress-webhook"),
			}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Paths{}, fmt.Errorf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// CheckControlPlane reports, in one message, every control-plane binary that
// is missing from bin/.
func (p Paths) CheckControlPlane() error {
	var missing []string
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(p.Bin, name)); err != nil {
			missing = append(missing, filepath.Join(p.Bin, name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v: run `make control-plane` (builds etcd, kube-apiserver and kubectl from source, first time takes minutes)", missing)
	}
	return nil
}

// CheckWebhook reports a missing webhook binary.
func (p Paths) CheckWebhook() error {
	if _, err := os.Stat(p.Webhook); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("missing %s: run `make build`", p.Webhook)
		}
		return err
	}
	return nil
}
