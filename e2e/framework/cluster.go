package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Cluster is one local control plane: etcd and kube-apiserver from bin/,
// started by envtest, and a kubeconfig file for bin/kubectl.
type Cluster struct {
	Name string
	// Kubeconfig is a file with cluster-admin credentials (group
	// system:masters) for bin/kubectl and the webhook's --kubeconfig.
	Kubeconfig string
	Config     *rest.Config

	env      *envtest.Environment
	paths    Paths
	cacheDir string
}

// StartCluster starts etcd and kube-apiserver and writes the kubeconfig into
// dir/<name>.kubeconfig.
func StartCluster(ctx context.Context, paths Paths, name, dir string) (*Cluster, error) {
	if err := paths.CheckControlPlane(); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: paths.Bin,
		// Two cores shared with other builds: leave room.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting %s control plane (etcd + kube-apiserver from %s): %w", name, paths.Bin, err)
	}
	c := &Cluster{Name: name, env: env, paths: paths, Config: cfg, cacheDir: filepath.Join(dir, name+".kubectl-cache")}
	user, err := env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("adding a kubeconfig user to %s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops kube-apiserver and etcd.
func (c *Cluster) Stop() error {
	if c == nil || c.env == nil {
		return nil
	}
	return c.env.Stop()
}

// Kubectl runs bin/kubectl against this cluster. stdin may be empty.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (KubectlResult, error) {
	return runKubectl(ctx, c.paths.Kubectl, c.Kubeconfig, c.cacheDir, stdin, args...)
}

// InstallCRDs installs the CRDs in the files or directories and waits until
// the API server serves them.
func (c *Cluster) InstallCRDs(paths ...string) error {
	_, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{
		Paths:              paths,
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	})
	if err != nil {
		return fmt.Errorf("installing CRDs %v into %s: %w", paths, c.Name, err)
	}
	return nil
}
