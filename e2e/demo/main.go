// Command demo is `make demo` and `make dev`: it starts a local control plane
// (etcd + kube-apiserver from bin/) and the webhook registered through
// manifests/overlays/management, then shows what the webhook does to every
// object in examples/, applied with `kubectl apply --dry-run=server`: a diff
// of the object before and after the webhook, and its warnings. Nothing is
// stored but the IngressClasses and the one control plane the CCM examples
// need.
//
//	go run ./e2e/demo          # show, then stop everything
//	go run ./e2e/demo --keep   # show, then keep running until Ctrl-C
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// demoPolicy is an empty user policy: the embedded defaults decide.
const demoPolicy = `# Edit me while "make dev" runs: the webhook reloads this file.
# "bin/hcp-ingress-webhook policy show --policy <this file>" prints the result.
apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
`

func main() {
	keep := flag.Bool("keep", false, "keep the control plane and the webhook running until Ctrl-C (make dev)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *keep))
}

func run(ctx context.Context, keep bool) int {
	env, err := framework.Start(ctx, framework.Options{Child: true, Policy: []byte(demoPolicy), Logf: progress})
	defer func() {
		progress("stopping the webhook and the control planes…")
		if err := env.Stop(); err != nil && !keep {
			fmt.Fprintf(os.Stderr, "stopping: %v\n", err)
		}
		if env != nil {
			_ = os.RemoveAll(env.WorkDir)
		}
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		return 1
	}

	d := &demo{env: env, root: env.Paths.Root}
	if err := d.show(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		return 1
	}
	if !keep {
		return 0
	}
	d.printTryThis()
	<-ctx.Done()
	fmt.Println()
	return 0
}

func progress(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func (d *demo) example(parts ...string) string {
	return filepath.Join(append([]string{d.root, "examples"}, parts...)...)
}

func (d *demo) printTryThis() {
	e := d.env
	fmt.Printf(`
The control planes and the webhook keep running. Ctrl-C stops everything.

  export KUBECONFIG=%s      # management cluster, webhook registered
  CHILD=%s                  # the child cluster (management-hosted CCM path)

Try:
  bin/kubectl apply --dry-run=server -o yaml -f examples/controlplanes/nginx.yaml
  bin/kubectl diff -f examples/controlplanes/conflicting-annotation.yaml
  bin/kubectl apply -f examples/controlplanes/cilium.yaml && bin/kubectl get k0smotroncontrolplanes cilium -o yaml
  bin/kubectl get ingressclasses
  bin/kubectl --kubeconfig "$CHILD" apply --dry-run=server -o yaml -f examples/workloads/hcloud-ccm-deployment.yaml
  bin/kubectl label namespace default hcp-ingress.io/skip=true     # and the webhook leaves default alone

The policy file (reloaded when it changes): %s
The webhook's log:                         %s
Webhook:                                   %s (probes %s, metrics %s/metrics)
`, e.Management.Kubeconfig, e.Child.Kubeconfig, e.PolicyFile, e.Webhook.LogFile, e.Webhook.URL, e.Webhook.ProbeURL, e.Webhook.MetricsURL)
}
