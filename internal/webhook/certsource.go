package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// Values of --cert-mode.
const (
	CertModeFiles       = "files"
	CertModeSelfManaged = "self-managed"
)

// CertOptions are the certificate flags of `serve`.
type CertOptions struct {
	// Mode is CertModeFiles (tls.crt/tls.key of Options.CertDir) or
	// CertModeSelfManaged.
	Mode string
	// Secret (NAMESPACE/NAME), DNSNames, WebhookConfigName and the lifetimes
	// are for the self-managed mode.
	Secret            string
	DNSNames          []string
	WebhookConfigName string
	Schedule          certs.Schedule
	// PodName and PodUID (with Options.Namespace) name the Pod that files
	// mode's expiry warnings are recorded on.
	PodName string
	PodUID  types.UID
}

// certificateSource makes the serving certificate's Source. Files mode
// returns a runnable that keeps it current; the self-managed mode adds its
// runnables to mgr, which it needs (nil without an API server).
func certificateSource(ctx context.Context, o Options, mgr manager.Manager, metrics *Metrics) (certs.Source, manager.Runnable, error) {
	c := o.Certs
	log := o.Log.WithName("certificate")
	switch c.Mode {
	case CertModeFiles, "":
		var recorder record.EventRecorder
		if mgr != nil {
			recorder = mgr.GetEventRecorderFor("hcp-ingress-webhook")
		}
		files, err := certs.NewFiles(certs.FilesOptions{
			Dir:         o.CertDir,
			WarnBefore:  certs.DefaultExpiryWarning,
			Recorder:    recorder,
			EventTarget: certs.EventTarget(o.Namespace, c.PodName, c.PodUID, c.WebhookConfigName),
			Observe:     metrics.CertificateExpiry,
			Log:         log,
		})
		if err != nil {
			return nil, nil, err // fatal: nothing to serve with
		}
		return files, files, nil
	case CertModeSelfManaged:
		if mgr == nil {
			return nil, nil, errors.New("--cert-mode self-managed needs an API server (--kubeconfig or in-cluster config): the certificate lives in a Secret")
		}
		namespace, name, ok := strings.Cut(c.Secret, "/")
		if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
			return nil, nil, fmt.Errorf("--cert-secret %q: want NAMESPACE/NAME", c.Secret)
		}
		source, err := certs.NewSelfManaged(ctx, mgr, certs.SelfManagedOptions{
			Secret:            types.NamespacedName{Namespace: namespace, Name: name},
			DNSNames:          c.DNSNames,
			WebhookConfigName: c.WebhookConfigName,
			Schedule:          c.Schedule,
			CertDir:           o.CertDir,
			Observe:           metrics.CertificateExpiry,
			Log:               log,
		})
		if err != nil {
			return nil, nil, err
		}
		return source, nil, nil
	default:
		return nil, nil, fmt.Errorf("--cert-mode %q: want %s or %s", c.Mode, CertModeFiles, CertModeSelfManaged)
	}
}
