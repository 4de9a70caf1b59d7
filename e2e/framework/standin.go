package framework

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// HostIP returns this machine's first IPv4 address that is up, not loopback
// and not link-local: an EndpointSlice may not point at 127.0.0.0/8, so a
// local backend behind a Service must listen here.
func HostIP() (net.IP, error) {
	interfaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, iface := range interfaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipNet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip := ipNet.IP.To4()
			if ip == nil || !ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast() {
				continue
			}
			return ip, nil
		}
	}
	return nil, errors.New("no up, non-loopback IPv4 address on this machine: an EndpointSlice cannot point at a local server")
}

// StandInCAName is the common name of the stand-in control plane's CA: a
// client that sees a certificate issued by it has reached the backend, not
// the ingress controller.
const StandInCAName = "hcp-ingress e2e stand-in control-plane CA"

// ControlPlaneStandIn stands in for a hosted control plane's API server and
// konnectivity server: one TLS listener per port name, on this machine's own
// address, with a certificate from its own CA for the control plane's hosts.
// Each answers GET / with "<port name> <SNI>".
type ControlPlaneStandIn struct {
	IP net.IP
	// Ports maps a port name ("api", "konnectivity") to its listening port.
	Ports map[string]int
	// CA signed the serving certificate; CAPool trusts only it.
	CA     *x509.Certificate
	CAPool *x509.CertPool

	servers []*http.Server
}

// StartControlPlaneStandIn listens on ip with one TLS listener per name in
// portNames, serving a certificate for hosts.
func StartControlPlaneStandIn(ip net.IP, hosts []string, portNames ...string) (*ControlPlaneStandIn, error) {
	ca, err := certs.NewCA(StandInCAName, time.Hour)
	if err != nil {
		return nil, err
	}
	pair, err := ca.IssueServing(hosts, time.Hour)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		return nil, err
	}
	s := &ControlPlaneStandIn{IP: ip, Ports: map[string]int{}, CA: ca.Cert, CAPool: x509.NewCertPool()}
	s.CAPool.AddCert(ca.Cert)
	for _, name := range portNames {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("stand-in %s listener on %s: %w", name, ip, err)
		}
		s.Ports[name] = l.Addr().(*net.TCPAddr).Port
		server := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = fmt.Fprintf(w, "%s %s", name, r.TLS.ServerName)
			}),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 5 * time.Second,
		}
		s.servers = append(s.servers, server)
		go func() { _ = server.ServeTLS(l, "", "") }()
	}
	return s, nil
}

// Stop closes every listener.
func (s *ControlPlaneStandIn) Stop() {
	for _, server := range s.servers {
		_ = server.Close()
	}
}
