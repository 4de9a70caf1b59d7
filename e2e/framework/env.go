package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure Start.
type Options struct {
	// WorkDir holds kubeconfigs, certificates, the policy file and logs; a
	// new temporary directory when empty.
	WorkDir string
	// Child also starts a second control plane, standing in for a child
	// cluster whose API server calls the webhook by URL.
	Child bool
	// Policy is the initial content of the webhook's --policy-file.
	Policy []byte
	// Logf prints progress lines; nil prints nothing.
	Logf func(format string, args ...any)
	// WebhookLog also receives the webhook's log (it always goes to
	// WorkDir/webhook/webhook.log).
	WebhookLog io.Writer
}

// Env is everything Start started.
type Env struct {
	Paths      Paths
	WorkDir    string
	Management *Cluster
	Child      *Cluster // nil unless Options.Child
	// PolicyFile is the webhook's --policy-file; rewrite it to change the
	// policy without a restart.
	PolicyFile string
	Webhook    *Webhook
	// Registered are the webhook configurations of manifests/overlays/management
	// as applied to Management (service replaced by URL).
	Registered []string

	logf func(string, ...any)
}

// WebhookError is returned by Start when the control planes are up but the
// webhook could not be started or registered. The Env is still usable for
// what does not need the webhook.
type WebhookError struct{ Err error }

func (e *WebhookError) Error() string { return "webhook: " + e.Err.Error() }
func (e *WebhookError) Unwrap() error { return e.Err }

// Start brings up, in order: the control plane(s), the CRDs (test fixtures of
// the k0smotron kinds and cert-manager's real CRDs), the webhook binary on
// 127.0.0.1 with a certificate from certs/, and the webhook configurations
// of manifests/overlays/management pointed at it. It returns once the API
// server is calling the webhook. On error, Stop what was returned.
func Start(ctx context.Context, o Options) (*Env, error) {
	paths, err := FindPaths()
	if err != nil {
		return nil, err
	}
	if err := paths.CheckControlPlane(); err != nil {
		return nil, err
	}
	e := &Env{Paths: paths, WorkDir: o.WorkDir, logf: o.Logf}
	if e.logf == nil {
		e.logf = func(string, ...any) {}
	}
	if e.WorkDir == "" {
		if e.WorkDir, err = os.MkdirTemp("", "hcp-ingress-e2e-"); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	names := "management"
	if o.Child {
		names += " + child"
	}
	e.logf("starting etcd + kube-apiserver (%s)…", names)
	var wg sync.WaitGroup
	var childErr, certManagerErr error
	var certManagerDir string
	if o.Child {
		wg.Go(func() { e.Child, childErr = StartCluster(ctx, paths, "child", e.WorkDir) })
	}
	wg.Go(func() { certManagerDir, certManagerErr = CertManagerCRDs(ctx, e.WorkDir) })
	e.Management, err = StartCluster(ctx, paths, "management", e.WorkDir)
	wg.Wait()
	if err = errors.Join(err, childErr, certManagerErr); err != nil {
		return e, err
	}
	e.logf("control plane ready in %s (kubeconfig %s)", time.Since(start).Round(100*time.Millisecond), e.Management.Kubeconfig)

	crds := filepath.Join(paths.Root, "e2e", "testdata", "crds")
	if err := e.Management.InstallCRDs(crds, certManagerDir); err != nil {
		return e, err
	}
	e.logf("CRDs installed: K0smotronControlPlane(Template), k0smotron Cluster (test fixtures), cert-manager %s", CertManagerVersion)
	// The install's namespace, as in a real cluster: webhook processes run
	// with POD_NAMESPACE=hcp-ingress-system and elect their leader there.
	if res, err := e.Management.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+InstallNamespace+"\n", "apply", "-f", "-"); err != nil || res.Err() != nil {
		return e, fmt.Errorf("creating namespace %s: %v %v", InstallNamespace, err, res.Err())
	}

	e.PolicyFile = filepath.Join(e.WorkDir, "policy", "policy.yaml")
	if err := os.MkdirAll(filepath.Dir(e.PolicyFile), 0o755); err != nil {
		return e, err
	}
	if err := os.WriteFile(e.PolicyFile, o.Policy, 0o644); err != nil {
		return e, err
	}
	e.logf("starting %s serve…", paths.Webhook)
	e.Webhook, err = StartWebhook(ctx, paths, WebhookOptions{
		Dir:        filepath.Join(e.WorkDir, "webhook"),
		Kubeconfig: e.Management.Kubeconfig,
		PolicyFile: e.PolicyFile,
		Log:        o.WebhookLog,
	})
	if err != nil {
		return e, &WebhookError{err}
	}
	e.logf("webhook ready on %s (log %s)", e.Webhook.URL, e.Webhook.LogFile)

	configs, err := RegisterOverlayWebhooks(ctx, paths, e.Management, OverlayManagement, e.Webhook)
	if err != nil {
		return e, &WebhookError{err}
	}
	for _, c := range configs {
		e.Registered = append(e.Registered, c.GetKind()+"/"+c.GetName())
	}
	if err := e.waitUntilCalled(ctx); err != nil {
		return e, &WebhookError{err}
	}
	e.logf("webhook registered from manifests/overlays/%s: %s", OverlayManagement, strings.Join(e.Registered, ", "))
	return e, nil
}

// registrationProbe is a control plane with ingress, applied with
// --dry-run=server until the API server sends it to the webhook.
const registrationProbe = `apiVersion: controlplane.cluster.x-k8s.io/v1beta2
kind: K0smotronControlPlane
metadata:
  name: registration-probe
  namespace: default
spec:
  ingress:
    apiHost: api.probe.example.com
    konnectivityHost: konnectivity.probe.example.com
`

// waitUntilCalled returns once the API server calls /mutate-controlplane: it
// loads new webhook configurations asynchronously. It counts requests in the
// webhook's metrics, so it does not depend on what the webhook answers.
func (e *Env) waitUntilCalled(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		before, err := e.Webhook.RequestCount("/mutate-controlplane")
		if err != nil {
			return err
		}
		if _, err := e.Management.Kubectl(ctx, registrationProbe, "apply", "--dry-run=server", "-f", "-"); err != nil {
			return err
		}
		after, err := e.Webhook.RequestCount("/mutate-controlplane")
		if err != nil {
			return err
		}
		if after > before {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server did not call %s/mutate-controlplane within 30s of registration", e.Webhook.URL)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop stops the webhook, then the control planes. It returns the first
// error but always stops everything.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	var errs []error
	if e.Webhook != nil {
		errs = append(errs, e.Webhook.Stop())
	}
	var wg sync.WaitGroup
	var childErr error
	if e.Child != nil {
		wg.Go(func() { childErr = e.Child.Stop() })
	}
	errs = append(errs, e.Management.Stop())
	wg.Wait()
	errs = append(errs, childErr)
	return errors.Join(errs...)
}

// RequestCount sums controller-runtime's webhook request counter for one path
// (all response codes).
func (w *Webhook) RequestCount(path string) (float64, error) {
	return w.Metric("controller_runtime_webhook_requests_total", `webhook="`+path+`"`)
}

// Metric sums the samples of a metric on the webhook's /metrics whose label
// set contains labels (for example `target="controlplane"`; empty for all).
func (w *Webhook) Metric(name, labels string) (float64, error) {
	resp, err := http.Get(w.MetricsURL + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("reading webhook metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading webhook metrics: %s", resp.Status)
	}
	var total float64
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value, or name value; label values may hold spaces.
		var metric, labelSet, value string
		if end := strings.LastIndex(line, "}"); end > 0 && strings.Contains(line[:end], "{") {
			open := strings.Index(line, "{")
			metric, labelSet, value = line[:open], line[open+1:end], line[end+1:]
		} else {
			metric, value, _ = strings.Cut(line, " ")
		}
		fields := strings.Fields(value)
		if metric != name || !strings.Contains(labelSet, labels) || len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += v
	}
	return total, scanner.Err()
}
