package framework

import (
	"context"
	"os"
	"path/filepath"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// FleetOptions configure StartFleet.
type FleetOptions struct {
	// ChildWebhookURL is --child-webhook-url.
	ChildWebhookURL string
	// CertDir is the --cert-dir whose ca.crt the ConfigMaps carry; it is
	// copied, so that CA changes can be made to the copy (Fleet.CertDir).
	CertDir string
	// Repair adds --fleet-repair; Args are further serve flags.
	Repair bool
	Args   []string
}

// Fleet is a `hcp-ingress-webhook serve --child-webhook-url` process
// against a management cluster: the real binary, leader-elected, on free
// ports (its admission paths are not registered anywhere). Its CertDir is
// the copy of FleetOptions.CertDir.
type Fleet struct {
	*Webhook
}

// StartFleet starts the fleet process against c and waits until it is ready.
func StartFleet(ctx context.Context, paths Paths, c *Cluster, dir string, o FleetOptions) (*Fleet, error) {
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	for _, name := range []string{"tls.crt", "tls.key", certs.CAFile} {
		data, err := os.ReadFile(filepath.Join(o.CertDir, name))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--child-webhook-url", o.ChildWebhookURL, "--leader-election-namespace", "default"}, o.Args...)
	if o.Repair {
		args = append(args, "--fleet-repair")
	}
	w, err := StartWebhook(ctx, paths, WebhookOptions{Dir: dir, Kubeconfig: c.Kubeconfig, CertDir: certDir, ExtraArgs: args})
	if err != nil {
		return nil, err
	}
	return &Fleet{Webhook: w}, nil
}

// Log returns the fleet process's log so far (JSON lines).
func (f *Fleet) Log() string {
	data, err := os.ReadFile(f.LogFile)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
