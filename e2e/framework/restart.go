package framework

import (
	"fmt"
	"os"
	"path/filepath"
)

// StopAPIServer stops this cluster's kube-apiserver; etcd keeps running.
// StartAPIServer starts it again on the same etcd, address and port with the
// same serving certificate and client CA, so every kubeconfig written so far
// (bin/kubectl's, the webhook's --kubeconfig) keeps working: what a client
// sees of a control-plane restart or upgrade.
//
// envtest gives each kube-apiserver a temporary certificate directory that
// it deletes on Stop, and a restart would then mint a new serving CA that no
// kubeconfig trusts. So the directory is copied into the work directory first
// and the restarted process is pointed at the copy.
func (c *Cluster) StopAPIServer() error {
	s := c.env.ControlPlane.APIServer
	if s == nil {
		return fmt.Errorf("%s: no kube-apiserver to stop", c.Name)
	}
	keep := filepath.Join(filepath.Dir(c.cacheDir), c.Name+".kube-apiserver")
	if s.CertDir != keep {
		if err := os.CopyFS(keep, os.DirFS(s.CertDir)); err != nil {
			return fmt.Errorf("%s: keeping the kube-apiserver certificates: %w", c.Name, err)
		}
	}
	err := s.Stop()
	// Stop forgets a temporary directory; the copy is not temporary and
	// stays (the work directory is removed with everything else).
	s.CertDir = keep
	if err != nil {
		return fmt.Errorf("%s: stopping kube-apiserver: %w", c.Name, err)
	}
	return nil
}

// StartAPIServer starts the kube-apiserver that StopAPIServer stopped and
// returns once its /healthz answers.
func (c *Cluster) StartAPIServer() error {
	if err := c.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("%s: starting kube-apiserver again: %w", c.Name, err)
	}
	return nil
}
