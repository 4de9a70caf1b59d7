package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CertManagerVersion is the cert-manager release whose CRDs validate the
// Issuer and Certificate objects of manifests/. They come from the Go module
// (through the module proxy, like everything else here) and are never
// committed to this repository.
const CertManagerVersion = "v1.21.2"

// CertManagerCRDs downloads the cert-manager module and writes its CRDs,
// stripped of Helm template lines, into dir/cert-manager-crds. It returns that
// directory.
func CertManagerCRDs(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+CertManagerVersion)
	// Outside our module, so that go.mod and go.sum stay untouched.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download github.com/cert-manager/cert-manager@%s: %w\n%s%s", CertManagerVersion, err, stdout.String(), stderr.String())
	}
	var module struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &module); err != nil {
		return "", fmt.Errorf("go mod download output: %w", err)
	}
	if module.Error != "" || module.Dir == "" {
		return "", fmt.Errorf("go mod download github.com/cert-manager/cert-manager@%s: %s", CertManagerVersion, module.Error)
	}
	source := filepath.Join(module.Dir, "deploy", "crds")
	files, err := filepath.Glob(filepath.Join(source, "*.yaml"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no CRDs in %s (err %v)", source, err)
	}
	out := filepath.Join(dir, "cert-manager-crds")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		clean, err := StripHelmTemplates(data)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), clean, 0o644); err != nil {
			return "", err
		}
	}
	return out, nil
}

// StripHelmTemplates removes lines that are only Helm template actions
// ({{- if ... }}, {{- end }}), which some releases wrap around their CRDs. A
// template action inside a value cannot be removed safely and is an error.
func StripHelmTemplates(data []byte) ([]byte, error) {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "{{") && strings.HasSuffix(trimmed, "}}") {
			continue
		}
		if strings.Contains(line, "{{") {
			return nil, fmt.Errorf("line %d: a Helm template inside a value: %q", i+1, line)
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n")), nil
}
