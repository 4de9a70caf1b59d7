// Package e2e tests the webhook end to end: a real etcd and kube-apiserver
// (envtest, built from source into bin/), bin/kubectl as a user runs it, the
// real bin/hcp-ingress-webhook serving on 127.0.0.1, registered with the
// webhook configurations rendered from manifests/. No mocks.
//
// Run with `make e2e` (builds what is missing), or `go test ./e2e/...` once
// bin/ holds etcd, kube-apiserver, kubectl and hcp-ingress-webhook.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
)

// env is started once by TestMain and shared by every test: a management
// cluster with the webhook registered from manifests/overlays/management, and
// a child cluster for the CCM topologies. Tests run one after another (no
// t.Parallel): some change the shared policy file and IngressClasses.
var env *framework.Env

// webhookErr is set when the control planes are up but the webhook is not
// (bin/hcp-ingress-webhook missing or failing): tests that need it fail with
// this message, the others still run.
var webhookErr error

// basePolicy is the webhook's --policy-file between tests: the embedded
// defaults plus an API server for the in-child CCM topology.
const basePolicy = `apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
ccm:
  apiServer:
    host: api.in-child.example.com
    port: 6443
`

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("e2e [%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx := context.Background()
	var err error
	env, err = framework.Start(ctx, framework.Options{Child: true, Policy: []byte(basePolicy), Logf: logf})
	var werr *framework.WebhookError
	switch {
	case err == nil:
	case errors.As(err, &werr):
		webhookErr = werr
		logf("WEBHOOK NOT RUNNING, tests that need it will fail: %v", werr)
	default:
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if stopErr := env.Stop(); stopErr != nil {
			logf("stopping: %v", stopErr)
		}
		return 1
	}
	logf("setup took %s", time.Since(start).Round(100*time.Millisecond))

	code := m.Run()

	if code != 0 && env.Webhook != nil {
		fmt.Printf("--- webhook log (last 40 lines) ---\n%s\n", env.Webhook.LogTail(40))
	}
	if stopErr := env.Stop(); stopErr != nil {
		logf("stopping: %v", stopErr)
	}
	if code != 0 {
		logf("kept %s for inspection (kubeconfigs, certificates, policy, webhook log)", env.WorkDir)
	} else {
		_ = os.RemoveAll(env.WorkDir)
	}
	logf("done")
	return code
}
