package certs

import (
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Lifetimes of the self-managed mode's certificates (the defaults of
// --cert-lifetime and --ca-lifetime).
const (
	DefaultCertLifetime = 8760 * time.Hour  // one year
	DefaultCALifetime   = 87600 * time.Hour // ten years
	// MinCertLifetime keeps the rotation check (a twentieth of the
	// lifetime, at least a second) well inside the renewal window.
	MinCertLifetime = 15 * time.Second
)

// Schedule is when the self-managed mode renews and rotates, derived from
// the two lifetimes alone so that short test lifetimes scale every step.
//
//	serving certificate  renewed once 2/3 of CertLifetime have passed
//	                     (cert-controller's lookahead is CertLifetime/3)
//	next CA              made and added to every caBundle once 2/3 of
//	                     CALifetime have passed (CALifetime/3 left)
//	CA rotation          the next CA starts signing once 5/6 have passed
//	                     (CALifetime/6 left); the old one stays in every
//	                     caBundle until it expires
//
// So each CA is trusted CALifetime/6 before it signs anything, and CALifetime/6
// after it stops. The promotion must come before cert-controller's own check
// finds the CA too close to expiry (it regenerates a CA that is not valid
// CertLifetime/3 from now, with no overlap): CALifetime/6 > CertLifetime/3
// plus a check interval, which CALifetime >= 3*CertLifetime guarantees.
type Schedule struct {
	CertLifetime time.Duration
	CALifetime   time.Duration
}

// Validate says what is wrong with the lifetimes, in flag names.
func (s Schedule) Validate() error {
	if s.CertLifetime < MinCertLifetime {
		return fmt.Errorf("--cert-lifetime %v: must be at least %v", s.CertLifetime, MinCertLifetime)
	}
	if s.CALifetime < 3*s.CertLifetime {
		return fmt.Errorf("--ca-lifetime %v: must be at least 3 × --cert-lifetime (%v), so that each CA outlives the serving certificates it signs with room for an overlap", s.CALifetime, 3*s.CertLifetime)
	}
	return nil
}

// RenewBefore is cert-controller's LookaheadInterval: a serving certificate
// that will not be valid RenewBefore from now is replaced.
func (s Schedule) RenewBefore() time.Duration { return s.CertLifetime / 3 }

// CheckInterval is how often the leader checks both certificates:
// a twentieth of the shorter lifetime, between a second and ten minutes.
// cert-controller's default (12 hours) is longer than a test lifetime.
func (s Schedule) CheckInterval() time.Duration {
	return min(max(min(s.CertLifetime, s.CALifetime)/20, time.Second), 10*time.Minute)
}

// PrepareNextCA: with left of the current CA's validity remaining, a next CA
// is made and published in the caBundles.
func (s Schedule) PrepareNextCA(left time.Duration) bool { return left <= s.CALifetime/3 }

// PromoteNextCA: the next CA replaces the current one.
func (s Schedule) PromoteNextCA(left time.Duration) bool { return left <= s.CALifetime/6 }

// ValidateDNSNames checks --cert-dns-names. cert-controller writes every
// name as a DNS SAN, and a client that dials an IP address checks IP SANs
// only, so an IP address here could never verify.
func ValidateDNSNames(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("--cert-dns-names: at least one DNS name, the one the API server dials (for example hcp-ingress-webhook.hcp-ingress-system.svc)")
	}
	for _, name := range names {
		if net.ParseIP(name) != nil {
			return fmt.Errorf("--cert-dns-names %s: an IP address; self-managed serving certificates carry DNS names only (register the webhook by a DNS name, or use --cert-mode files)", name)
		}
		check := validation.IsDNS1123Subdomain
		if strings.HasPrefix(name, "*.") {
			check = validation.IsWildcardDNS1123Subdomain
		}
		if errs := check(name); len(errs) > 0 {
			return fmt.Errorf("--cert-dns-names %q: %s", name, strings.Join(errs, "; "))
		}
	}
	return nil
}
