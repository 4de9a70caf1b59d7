package webhook

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/mutate"
)

// Metrics are the webhook's own Prometheus metrics. They are registered in
// controller-runtime's registry, so /metrics serves them next to its webhook
// request latency and in-flight metrics.
type Metrics struct {
	admissions       *prometheus.CounterVec
	mutations        *prometheus.CounterVec
	warnings         *prometheus.CounterVec
	denials          *prometheus.CounterVec
	policyGeneration prometheus.Gauge
	policyLoadErrors *prometheus.CounterVec
	policyLoadOK     prometheus.Gauge
	certNotAfter     *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and offline use).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hcp_ingress_admissions_total",
			Help: "Admission requests by target and outcome (patched, unchanged, denied, error).",
		}, []string{"target", "outcome"}),
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hcp_ingress_mutations_total",
			Help: "Objects changed, by target and the rule that applied.",
		}, []string{"target", "rule"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hcp_ingress_warnings_total",
			Help: "Admission warnings returned, by target.",
		}, []string{"target"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hcp_ingress_denials_total",
			Help: "Objects rejected by policy, by target.",
		}, []string{"target"}),
		policyGeneration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hcp_ingress_policy_generation",
			Help: "Generation of the policy in force; increases with every successful load.",
		}),
		policyLoadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hcp_ingress_policy_load_errors_total",
			Help: "Policies that failed to load (the last good policy stayed in force), by source.",
		}, []string{"source"}),
		policyLoadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hcp_ingress_policy_last_load_success",
			Help: "1 when the last policy load succeeded, 0 when it failed.",
		}),
		certNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hcp_ingress_certificate_expiry_timestamp_seconds",
			Help: `Expiry (notAfter, Unix seconds) of the serving certificate in use (certificate="serving") and of the CA that signed it (certificate="ca").`,
		}, []string{"certificate"}),
	}
	if reg != nil {
		reg.MustRegister(m.admissions, m.mutations, m.warnings, m.denials,
			m.policyGeneration, m.policyLoadErrors, m.policyLoadOK, m.certNotAfter)
	}
	return m
}

// RegisteredMetrics are the metrics registered in controller-runtime's
// registry, which /metrics serves. A registry takes each metric once, so
// every Serve in a process (tests and benchmarks start several) shares them.
var RegisteredMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(ctrlmetrics.Registry) })

func (m *Metrics) admitted(target mutate.Target, outcome string, res *mutate.Result) {
	if m == nil {
		return
	}
	m.admissions.WithLabelValues(string(target), outcome).Inc()
	if res == nil {
		return
	}
	if len(res.Warnings) > 0 {
		m.warnings.WithLabelValues(string(target)).Add(float64(len(res.Warnings)))
	}
	switch outcome {
	case "patched":
		m.mutations.WithLabelValues(string(target), metricRule(target, res.Rule)).Inc()
	case "denied":
		m.denials.WithLabelValues(string(target)).Inc()
	}
}

func (m *Metrics) policyLoaded(s *PolicyState) {
	if m == nil {
		return
	}
	m.policyGeneration.Set(float64(s.Generation))
	m.policyLoadOK.Set(1)
}

func (m *Metrics) policyLoadFailed(source string) {
	if m == nil {
		return
	}
	m.policyLoadErrors.WithLabelValues(source).Inc()
	m.policyLoadOK.Set(0)
}

// CertificateExpiry records the expiry of the serving certificate in use
// (certs.CertificateServing) or of its CA (certs.CertificateCA); it is a
// certs.ExpiryObserver.
func (m *Metrics) CertificateExpiry(certificate string, notAfter time.Time) {
	if m == nil {
		return
	}
	m.certNotAfter.WithLabelValues(certificate).Set(float64(notAfter.Unix()))
}

// metricRule is the rule label of hcp_ingress_mutations_total. A control
// plane's rule is a key of the policy (ingressClasses/C, controllers/P,
// classGuesses/C), bounded by the policy; a workload's record names the
// containers that got the variables, which the request controls, so its label
// is the fixed "ccm": label values never carry strings from a request.
func metricRule(target mutate.Target, rule string) string {
	if target == mutate.TargetWorkload {
		return "ccm"
	}
	return rule
}
