package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// WebhookOptions configure one `hcp-ingress-webhook serve` process.
type WebhookOptions struct {
	// Dir receives the serving certificate (Dir/certs) and the log
	// (Dir/webhook.log).
	Dir string
	// Kubeconfig is the cluster the webhook reads IngressClasses, control
	// planes and (with PolicyConfigMap) its policy from; empty for none.
	Kubeconfig string
	// PolicyFile and PolicyConfigMap (NAMESPACE/NAME) are --policy-file and
	// --policy-configmap; at most one.
	PolicyFile      string
	PolicyConfigMap string
	// Log, if set, also receives the webhook's log lines.
	Log io.Writer
	// NoReadyWait returns as soon as the process runs, for tests of a
	// webhook that must not become ready (an invalid policy at start).
	NoReadyWait bool
	// MetricsSecure leaves /metrics on its secure default (HTTPS with
	// TokenReview authentication and SubjectAccessReview authorization);
	// otherwise the test webhook serves plain HTTP metrics that Metric reads.
	MetricsSecure bool
	// ExtraArgs are appended to the serve command line.
	ExtraArgs []string
	// SelfManaged makes no certificate: the webhook makes its own (give
	// --cert-mode self-managed and its flags in ExtraArgs). URL then names
	// localhost, since a self-managed certificate carries DNS names only,
	// and CABundle is the ca.crt the webhook wrote into its --cert-dir
	// once ready.
	SelfManaged bool
	// CertDir, when set, is an existing --cert-dir (tls.crt, tls.key,
	// ca.crt) to serve with, instead of a fresh certificate in Dir/certs.
	CertDir string
}

// Webhook is a running `hcp-ingress-webhook serve` on 127.0.0.1.
type Webhook struct {
	// URL is https://127.0.0.1:<port>; the webhook paths go after it.
	URL string
	// CABundle is the PEM CA that signed the serving certificate (for IP SAN
	// 127.0.0.1): the caBundle of webhook configurations, --ca-file of
	// child-config.
	CABundle []byte
	// CAFile holds CABundle.
	CAFile string
	// CertDir is --cert-dir.
	CertDir string
	// ProbeURL is http://127.0.0.1:<port> of /healthz and /readyz.
	ProbeURL string
	// MetricsURL is http://127.0.0.1:<port> of /metrics (https with
	// WebhookOptions.MetricsSecure).
	MetricsURL string
	// process holds LogFile and stops the webhook.
	process

	serverName string // the name TLS clients verify: 127.0.0.1, or localhost (SelfManaged)

	// ca lets RotateServingCertificate write a new pair signed by the CA
	// the webhook configurations trust (nil when SelfManaged).
	ca *certs.CA
}

// InstallNamespace is the namespace of the install (manifests/, the chart).
const InstallNamespace = "hcp-ingress-system"

// StartWebhook starts bin/hcp-ingress-webhook serve with a fresh serving
// certificate on free ports and waits until /readyz answers 200.
func StartWebhook(ctx context.Context, paths Paths, o WebhookOptions) (*Webhook, error) {
	if err := paths.CheckWebhook(); err != nil {
		return nil, err
	}
	certDir := filepath.Join(o.Dir, "certs")
	host := "127.0.0.1"
	var caBundle []byte
	var ca *certs.CA
	switch {
	case o.SelfManaged:
		host = "localhost"
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
	case o.CertDir != "":
		certDir = o.CertDir
		var err error
		if caBundle, err = os.ReadFile(filepath.Join(certDir, certs.CAFile)); err != nil {
			return nil, err
		}
	default:
		var err error
		ca, err = certs.NewServingDir(certDir, []string{"127.0.0.1", "localhost"})
		if err != nil {
			return nil, fmt.Errorf("serving certificate: %w", err)
		}
		caBundle = ca.CertPEM
	}
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		URL:        "https://" + host + ":" + strconv.Itoa(ports[0]),
		CABundle:   caBundle,
		CAFile:     filepath.Join(certDir, certs.CAFile),
		ProbeURL:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		MetricsURL: "http://127.0.0.1:" + strconv.Itoa(ports[2]),
		process:    newProcess(filepath.Join(o.Dir, "webhook.log")),
		CertDir:    certDir,
		serverName: host,
		ca:         ca,
	}
	args := []string{"serve",
		"--bind-address", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]),
		"--cert-dir", certDir,
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(ports[2]),
	}
	if o.MetricsSecure {
		w.MetricsURL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	} else {
		args = append(args, "--metrics-secure=false")
	}
	if o.Kubeconfig != "" {
		args = append(args, "--kubeconfig", o.Kubeconfig)
	}
	if o.PolicyFile != "" {
		args = append(args, "--policy-file", o.PolicyFile)
	}
	if o.PolicyConfigMap != "" {
		args = append(args, "--policy-configmap", o.PolicyConfigMap)
	}
	args = append(args, o.ExtraArgs...)
	if err := w.start(paths.Webhook, args, append(kubectlEnv(), "POD_NAMESPACE="+InstallNamespace), o.Log); err != nil {
		return nil, err
	}
	if o.NoReadyWait {
		return w, nil
	}
	// /readyz, then the HTTPS port with the certificate we made.
	if err := w.waitOK(ctx, "webhook", w.ProbeURL+"/readyz", time.Minute, w.checkTLS); err != nil {
		_ = w.Stop()
		return nil, fmt.Errorf("%w\n%s log (last lines):\n%s", err, paths.Webhook, w.LogTail(30))
	}
	return w, nil
}

// checkTLS dials the webhook port the way the API server will: verifying the
// serving certificate against CABundle for 127.0.0.1.
func (w *Webhook) checkTLS() error {
	if w.CABundle == nil { // self-managed: what it wrote
		bundle, err := os.ReadFile(w.CAFile)
		if err != nil {
			return fmt.Errorf("no CA bundle yet: %w", err)
		}
		pool, err := certPool(bundle)
		if err != nil {
			return err
		}
		if err := w.dialTLS(pool); err != nil {
			return err
		}
		w.CABundle = bundle
		return nil
	}
	pool, err := certPool(w.CABundle)
	if err != nil {
		return err
	}
	return w.dialTLS(pool)
}

func (w *Webhook) dialTLS(roots *x509.CertPool) error {
	host := strings.TrimPrefix(w.URL, "https://")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", host, &tls.Config{RootCAs: roots, ServerName: w.serverName})
	if err != nil {
		return fmt.Errorf("TLS to %s: %w", host, err)
	}
	return conn.Close()
}

// FreePorts asks the kernel for n distinct free ports on 127.0.0.1. They are
// released before the program that binds them starts; nothing else here
// races for them.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ProcStatus reads a size field of /proc/<pid>/status (VmRSS:, VmHWM:,
// RssAnon:, RssFile:, ...), in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
