package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// KubectlResult is what one bin/kubectl run printed and how it exited.
type KubectlResult struct {
	Args     []string
	Stdout   string
	Stderr   string // admission warnings land here, as "Warning: ..." lines
	ExitCode int
}

// Warnings returns the "Warning: " lines kubectl printed on stderr (the
// admission warnings of webhooks and the API server), without the prefix.
func (r KubectlResult) Warnings() []string {
	var warnings []string
	for _, line := range strings.Split(r.Stderr, "\n") {
		if w, ok := strings.CutPrefix(line, "Warning: "); ok {
			warnings = append(warnings, w)
		}
	}
	return warnings
}

// Err is nil when kubectl exited 0, else an error with the command and output.
func (r KubectlResult) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return fmt.Errorf("kubectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.ExitCode, r.Stdout, r.Stderr)
}

func (r KubectlResult) String() string {
	return fmt.Sprintf("$ kubectl %s\n(exit %d)\n%s%s", strings.Join(r.Args, " "), r.ExitCode, r.Stdout, r.Stderr)
}

// runKubectl runs bin/kubectl with stdin (may be empty). Only failing to start
// kubectl is an error; a non-zero exit is in the result.
func runKubectl(ctx context.Context, kubectl, kubeconfig, cacheDir string, stdin string, args ...string) (KubectlResult, error) {
	full := append([]string{}, args...)
	if kubeconfig != "" {
		// A per-cluster discovery cache: ports are reused across runs, and a
		// stale cache from another run would hide freshly installed CRDs.
		full = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)
	}
	cmd := exec.CommandContext(ctx, kubectl, full...)
	cmd.Env = kubectlEnv()
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := KubectlResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	default:
		return res, fmt.Errorf("running %s: %w", kubectl, err)
	}
	return res, nil
}

// kubectlEnv keeps the user's KUBECONFIG and kubectl settings away from the
// test clusters.
func kubectlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "KUBECTL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
