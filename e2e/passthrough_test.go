package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-ingress/hcp-ingress-webhook/e2e/framework"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/routes"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The passthrough tests send TLS through a real ingress controller, Traefik
// Proxy (bin/traefik, built from source by `make traefik`), running as a
// process against the management API server: they prove that what the webhook
// writes makes a client reach the control plane's own certificate.
// `make e2e-passthrough` runs them (and `make test` through it); they need
// HCP_E2E_PASSTHROUGH=1 so that a plain `make e2e` does not run them a second time.
const passthroughEnvVar = "HCP_E2E_PASSTHROUGH"

const (
	controllerIngressNGINX = "k8s.io/ingress-nginx"
	annotationIngressNGINX = "nginx.ingress.kubernetes.io/ssl-passthrough"
	// traefikDefaultCertName is the subject of the certificate Traefik
	// generates for itself and serves when it terminates TLS without one.
	traefikDefaultCertName = "TRAEFIK DEFAULT CERT"
	// traefikTimeout bounds how long Traefik may take to build its
	// configuration from what the API server holds (its first sync included).
	traefikTimeout = time.Minute
)

func requirePassthroughRun(t *testing.T) {
	t.Helper()
	if os.Getenv(passthroughEnvVar) == "" {
		t.Skipf("run with `make e2e-passthrough` (or %s=1 once bin/traefik is built)", passthroughEnvVar)
	}
	requireWebhook(t)
	if err := env.Paths.CheckTraefik(); err != nil {
		t.Fatal(err)
	}
}

// The ingress-nginx spelling the webhook writes for an IngressClass of
// controller k8s.io/ingress-nginx is honoured by Traefik's Kubernetes Ingress
// NGINX provider: with it a client dialing the control plane's hosts through
// Traefik reaches the control plane's certificate; without it (a control plane
// the webhook did not see) Traefik answers with its own.
func TestPassthroughThroughTraefikIngressNGINX(t *testing.T) {
	requirePassthroughRun(t)
	ip, err := framework.HostIP()
	if err != nil {
		t.Fatal(err)
	}
	traefik := startTraefik(t, "kubernetesIngressNGINX")
	ingressClass(t, "nginx", controllerIngressNGINX, false)

	cases := []struct {
		name         string
		controlPlane string            // its hosts are api.<name>.example.com, ...
		labels       map[string]string // of the namespace
		passthrough  bool
	}{
		{
			name:         "admitted through the webhook: TLS passes through to the control plane's certificate",
			controlPlane: "through-webhook",
			passthrough:  true,
		},
		{
			name:         "admitted where the webhook does not run: Traefik terminates TLS with its own certificate",
			controlPlane: "without-webhook",
			labels:       map[string]string{skipLabel: "true"},
			passthrough:  false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, env.Management, "e2e-passthrough", tc.labels)
			cp := k0smotronCP(ns, tc.controlPlane, "nginx")
			if tc.passthrough {
				// The webhook sees the IngressClass through an informer.
				eventuallyDryRun(t, cp, func(u *unstructured.Unstructured) string {
					if a := ingressAnnotations(u); a[annotationIngressNGINX] != "true" {
						return "annotations are " + mapString(a)
					}
					return ""
				})
			}
			mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
			stored := get(t, env.Management, "k0smotroncontrolplanes.controlplane.cluster.x-k8s.io", ns, tc.controlPlane)
			annotations := ingressAnnotations(stored)
			if got := annotations[annotationIngressNGINX] == "true"; got != tc.passthrough {
				t.Fatalf("stored spec.ingress.annotations = %s, want the passthrough annotation: %v", mapString(annotations), tc.passthrough)
			}

			backend := exposeStandIn(t, ip, stored)
			if tc.passthrough {
				traefik.waitTCPRouters(t, backend.hosts...)
			} else {
				traefik.waitHTTPRouters(t, backend.hosts...)
			}
			for i, host := range backend.hosts {
				if tc.passthrough {
					requirePassedThrough(t, traefik, backend, host, backend.portNames[i])
				} else {
					requireTerminatedByTraefik(t, traefik, backend, host)
				}
			}
		})
	}
}

// traefikRun is a Traefik process for one test.
type traefikRun struct {
	*framework.Traefik
}

// startTraefik installs Traefik's CRDs and its documented RBAC from its Go
// module, gives each provider a token of the ServiceAccount that RBAC binds,
// and starts bin/traefik with those providers; it is stopped when the test
// ends.
func startTraefik(t *testing.T, providers ...string) traefikRun {
	t.Helper()
	ctx := t.Context()
	moduleDir, err := framework.TraefikModuleDir(ctx, env.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Management.InstallCRDs(filepath.Join(moduleDir, framework.TraefikCRDFile)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(env.WorkDir, "traefik-"+strings.ReplaceAll(t.Name(), "/", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The ServiceAccount each RBAC file binds (in namespace default).
	serviceAccounts := map[string]struct{ rbac, name string }{
		"kubernetesIngressNGINX": {framework.TraefikIngressNGINXRBACFile, "traefik-ingress-nginx-controller"},
		"kubernetesCRD":          {framework.TraefikCRDRBACFile, "traefik-ingress-controller"},
	}
	var opts []framework.TraefikProvider
	for _, p := range providers {
		sa, ok := serviceAccounts[p]
		if !ok {
			t.Fatalf("no RBAC known for Traefik provider %q", p)
		}
		mustKubectl(t, env.Management, "", "apply", "-f", filepath.Join(moduleDir, sa.rbac))
		kubectl(t, env.Management, "", "create", "serviceaccount", sa.name, "-n", "default")
		token := mustKubectl(t, env.Management, "", "create", "token", sa.name, "-n", "default", "--duration", "1h")
		tokenFile := filepath.Join(dir, p+".token")
		if err := os.WriteFile(tokenFile, []byte(strings.TrimSpace(token.Stdout)), 0o600); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, framework.TraefikProvider{Name: p, TokenFile: tokenFile})
	}
	tr, err := framework.StartTraefik(ctx, env.Paths, framework.TraefikOptions{Dir: dir, Cluster: env.Management, Providers: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traefik %s: websecure %s, API %s, log %s", framework.TraefikVersion, tr.Websecure, tr.APIURL, tr.LogFile)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("traefik log (last 40 lines):\n%s", tr.LogTail(40))
		}
		if err := tr.Stop(); err != nil {
			t.Logf("stopping traefik: %v", err)
		}
	})
	return traefikRun{tr}
}

// waitTCPRouters waits until Traefik has an enabled passthrough TCP router
// for each host.
func (tr traefikRun) waitTCPRouters(t *testing.T, hosts ...string) {
	t.Helper()
	tr.waitRouters(t, "passthrough TCP routers", func(raw framework.RawData, host string) bool {
		for _, r := range raw.TCPRouters {
			sni := strings.Contains(r.Rule, "HostSNI(`"+host+"`)") || strings.Contains(r.Rule, `HostSNI("`+host+`")`)
			if sni && r.Status == "enabled" && r.TLS != nil && r.TLS.Passthrough {
				return true
			}
		}
		return false
	}, hosts)
}

// waitHTTPRouters waits until Traefik has an enabled HTTP router for each
// host and no TCP router for any.
func (tr traefikRun) waitHTTPRouters(t *testing.T, hosts ...string) {
	t.Helper()
	tr.waitRouters(t, "HTTP routers and no TCP router", func(raw framework.RawData, host string) bool {
		for _, r := range raw.TCPRouters {
			if strings.Contains(r.Rule, host) {
				return false
			}
		}
		for _, r := range raw.Routers {
			if r.Status == "enabled" && strings.Contains(r.Rule, host) {
				return true
			}
		}
		return false
	}, hosts)
}

// waitNoTCPRouters waits until Traefik has no TCP router for any host.
func (tr traefikRun) waitNoTCPRouters(t *testing.T, hosts ...string) {
	t.Helper()
	tr.waitRouters(t, "TCP routers removed", func(raw framework.RawData, host string) bool {
		for _, r := range raw.TCPRouters {
			if strings.Contains(r.Rule, host) {
				return false
			}
		}
		return true
	}, hosts)
}

func (tr traefikRun) waitRouters(t *testing.T, what string, has func(framework.RawData, string) bool, hosts []string) {
	t.Helper()
	deadline := time.Now().Add(traefikTimeout)
	for {
		if tr.Exited() {
			t.Fatalf("traefik exited; log:\n%s", tr.LogTail(40))
		}
		raw, err := tr.RawData(t.Context())
		var missing []string
		for _, h := range hosts {
			if err != nil || !has(raw, h) {
				missing = append(missing, h)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("traefik: %s not true for %v after %v (rawdata error: %v); routers %+v, tcpRouters %+v\nlog:\n%s",
				what, missing, traefikTimeout, err, raw.Routers, raw.TCPRouters, tr.LogTail(40))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// standInBackend is a stand-in control plane behind the Service k0smotron
// would make.
type standInBackend struct {
	*framework.ControlPlaneStandIn
	hosts     []string // apiHost, konnectivityHost
	portNames []string // the stand-in listener each host reaches
}

// exposeStandIn starts a stand-in control plane for cp on ip, and creates
// what k0smotron and Kubernetes would: the Service kmc-<name> (no selector:
// the EndpointSlice is ours), an EndpointSlice pointing at the stand-in, and
// the Ingress k0smotron creates from the control plane.
func exposeStandIn(t *testing.T, ip net.IP, cp *unstructured.Unstructured) standInBackend {
	t.Helper()
	apiHost, _, _ := unstructured.NestedString(cp.Object, "spec", "ingress", "apiHost")
	konnectivityHost, _, _ := unstructured.NestedString(cp.Object, "spec", "ingress", "konnectivityHost")
	apiPort, _, _ := unstructured.NestedInt64(cp.Object, "spec", "service", "apiPort")
	konnectivityPort, _, _ := unstructured.NestedInt64(cp.Object, "spec", "service", "konnectivityPort")
	standIn, err := framework.StartControlPlaneStandIn(ip, []string{apiHost, konnectivityHost}, "api", "konnectivity")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standIn.Stop)

	ingress, err := framework.K0smotronIngress(cp)
	if err != nil {
		t.Fatal(err)
	}
	name, ns := ingress.GetName(), cp.GetNamespace()
	service := object("v1", "Service", ns, name)
	service.Object["spec"] = map[string]any{
		"type": "ClusterIP",
		"ports": []any{
			map[string]any{"name": "api", "port": apiPort, "protocol": "TCP"},
			map[string]any{"name": "konnectivity", "port": konnectivityPort, "protocol": "TCP"},
		},
	}
	slice := object("discovery.k8s.io/v1", "EndpointSlice", ns, name+"-standin")
	slice.SetLabels(map[string]string{"kubernetes.io/service-name": name})
	slice.Object["addressType"] = "IPv4"
	slice.Object["endpoints"] = []any{map[string]any{
		"addresses":  []any{ip.String()},
		"conditions": map[string]any{"ready": true, "serving": true},
	}}
	slice.Object["ports"] = []any{
		map[string]any{"name": "api", "port": int64(standIn.Ports["api"]), "protocol": "TCP"},
		map[string]any{"name": "konnectivity", "port": int64(standIn.Ports["konnectivity"]), "protocol": "TCP"},
	}
	mustKubectl(t, env.Management, toYAML(t, service, slice, ingress), "apply", "-f", "-")
	return standInBackend{ControlPlaneStandIn: standIn, hosts: []string{apiHost, konnectivityHost}, portNames: []string{"api", "konnectivity"}}
}

// observed is what a client saw dialing Traefik's websecure entry point.
type observed struct {
	leaf     *x509.Certificate
	verified error // verification against the stand-in CA for the SNI name
	status   int
	body     string
}

func (o observed) String() string {
	return fmt.Sprintf("subject %q, issuer %q", o.leaf.Subject.String(), o.leaf.Issuer.String())
}

// dialThroughTraefik completes a TLS handshake with SNI host through
// Traefik's websecure entry point, verifies the certificate it got against
// the stand-in's CA (recording, not failing, on mismatch), and sends GET /.
func dialThroughTraefik(ctx context.Context, addr, host string, roots *x509.CertPool) (observed, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		// Accept any certificate: which one arrives is what is tested, and
		// it is verified below against the stand-in CA.
		InsecureSkipVerify: true, //nolint:gosec // verified explicitly after the handshake
	}}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return observed{}, fmt.Errorf("TLS handshake with %s, SNI %s: %w", addr, host, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	state := conn.(*tls.Conn).ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return observed{}, fmt.Errorf("%s, SNI %s: no certificate", addr, host)
	}
	o := observed{leaf: state.PeerCertificates[0]}
	intermediates := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, o.verified = o.leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: intermediates})

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		return o, err
	}
	if err := req.Write(conn); err != nil {
		return o, fmt.Errorf("GET / through %s, SNI %s: %w", addr, host, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return o, fmt.Errorf("GET / through %s, SNI %s: %w", addr, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	o.status, o.body = resp.StatusCode, string(body)
	return o, nil
}

// requirePassedThrough asserts that TLS with SNI host through Traefik ends
// at the stand-in: its certificate, verified against its CA for host, and a
// request answered by the listener behind the Ingress rule of that host.
func requirePassedThrough(t *testing.T, tr traefikRun, backend standInBackend, host, portName string) {
	t.Helper()
	var o observed
	var err error
	deadline := time.Now().Add(traefikTimeout)
	for {
		o, err = dialThroughTraefik(t.Context(), tr.Websecure, host, backend.CAPool)
		if err == nil && o.verified == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SNI %s through traefik %s did not reach the control plane within %v: err %v; certificate %v, verification: %v",
				host, tr.Websecure, traefikTimeout, err, o, o.verified)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("SNI %s through traefik: %s", host, o)
	if o.leaf.Issuer.CommonName != framework.StandInCAName {
		t.Errorf("SNI %s: issuer %q, want the stand-in CA %q", host, o.leaf.Issuer.CommonName, framework.StandInCAName)
	}
	if want := portName + " " + host; o.status != http.StatusOK || o.body != want {
		t.Errorf("SNI %s: GET / answered %d %q, want 200 %q (the stand-in's %s listener)", host, o.status, o.body, want, portName)
	}
}

// requireTerminatedByTraefik asserts that TLS with SNI host is terminated by
// Traefik with its default certificate, which the stand-in's CA does not
// verify.
func requireTerminatedByTraefik(t *testing.T, tr traefikRun, backend standInBackend, host string) {
	t.Helper()
	o, err := dialThroughTraefik(t.Context(), tr.Websecure, host, backend.CAPool)
	if o.leaf == nil {
		t.Fatalf("SNI %s through traefik %s: %v", host, tr.Websecure, err)
	}
	t.Logf("SNI %s through traefik: %s (request: %v, status %d)", host, o, err, o.status)
	if o.verified == nil {
		t.Errorf("SNI %s: the stand-in CA verifies the certificate Traefik served (%s): TLS passed through without the annotation", host, o)
	}
	if o.leaf.Subject.CommonName != traefikDefaultCertName {
		t.Errorf("SNI %s: subject %q, want Traefik's own %q", host, o.leaf.Subject.CommonName, traefikDefaultCertName)
	}
}

// With routes (PRODUCT.md "Routes"), a control plane whose ingress class is
// served by Traefik's own Ingress controller gets an IngressRouteTCP kept
// for the Ingress k0smotron makes, and Traefik's Kubernetes CRD provider
// passes TLS through on it: a client reaches the control plane's
// certificate. The route follows the Ingress, and goes when the Ingress goes;
// then Traefik terminates TLS itself.
//
// The routes controller is the real binary started with `serve --routes`.
func TestPassthroughRouteThroughTraefikCRD(t *testing.T) {
	requirePassthroughRun(t)
	ip, err := framework.HostIP()
	if err != nil {
		t.Fatal(err)
	}
	traefik := startTraefik(t, "kubernetesCRD")
	ingressClass(t, "traefik", controllerTraefik, false)

	ns := newNamespace(t, env.Management, "e2e-routes", nil)
	cp := k0smotronCP(ns, "routed", "traefik")
	res := mustKubectl(t, env.Management, toYAML(t, cp), "apply", "-f", "-")
	requireWarning(t, res, `cannot turn on SSL passthrough .*Traefik needs an IngressRouteTCP`)
	stored := get(t, env.Management, "k0smotroncontrolplanes.controlplane.cluster.x-k8s.io", ns, "routed")
	backend := exposeStandIn(t, ip, stored)
	ingressName := "kmc-routed"

	client := startRoutesController(t)

	t.Run("the route is kept: an IngressRouteTCP owned by the control plane, and TLS passes through", func(t *testing.T) {
		route := waitRoute(t, ns, ingressName, func(*unstructured.Unstructured) string { return "" })
		owners := route.GetOwnerReferences()
		if len(owners) != 1 || owners[0].UID != stored.GetUID() || owners[0].Kind != "K0smotronControlPlane" {
			t.Errorf("ownerReferences %+v, want the control plane (uid %s)", owners, stored.GetUID())
		}
		if pass, _, _ := unstructured.NestedBool(route.Object, "spec", "tls", "passthrough"); !pass {
			t.Errorf("spec.tls.passthrough is not true:\n%s", yamlOf(route))
		}
		requireRouteState(t, client, stored, routes.StateOK)
		requireAuditRoute(t, ns, "routed", routes.StateOK)
		traefik.waitTCPRouters(t, backend.hosts...)
		for i, host := range backend.hosts {
			requirePassedThrough(t, traefik, backend, host, backend.portNames[i])
		}
	})

	t.Run("the route follows the Ingress: konnectivityHost moved to the api port", func(t *testing.T) {
		ingress := get(t, env.Management, "ingress", ns, ingressName)
		rules, _, _ := unstructured.NestedSlice(ingress.Object, "spec", "rules")
		apiPort, _, _ := unstructured.NestedInt64(stored.Object, "spec", "service", "apiPort")
		konnectivityRule := rules[1].(map[string]any)
		paths, _, _ := unstructured.NestedSlice(konnectivityRule, "http", "paths")
		if err := unstructured.SetNestedField(paths[0].(map[string]any), apiPort, "backend", "service", "port", "number"); err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedSlice(konnectivityRule, paths, "http", "paths")
		_ = unstructured.SetNestedSlice(ingress.Object, rules, "spec", "rules")
		mustKubectl(t, env.Management, toYAML(t, ingress), "apply", "-f", "-")
		waitRoute(t, ns, ingressName, func(u *unstructured.Unstructured) string {
			routeList, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
			if len(routeList) != 2 {
				return fmt.Sprintf("%d routes", len(routeList))
			}
			services, _, _ := unstructured.NestedSlice(routeList[1].(map[string]any), "services")
			if len(services) != 1 || services[0].(map[string]any)["port"] != apiPort {
				return fmt.Sprintf("konnectivity route services %v", services)
			}
			return ""
		})
		requireRouteState(t, client, stored, routes.StateOK)
		// Traefik follows: the konnectivity host now reaches the api listener.
		deadline := time.Now().Add(traefikTimeout)
		host := backend.hosts[1]
		for {
			o, err := dialThroughTraefik(t.Context(), traefik.Websecure, host, backend.CAPool)
			if err == nil && o.verified == nil && o.body == "api "+host {
				t.Logf("SNI %s through traefik after the change: %s, answered %q", host, o, o.body)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SNI %s did not move to the api listener within %v: %v, %q", host, traefikTimeout, err, o.body)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	t.Run("the route goes when the Ingress goes", func(t *testing.T) {
		mustKubectl(t, env.Management, "", "delete", "ingress", ingressName, "-n", ns)
		eventually(t, "the IngressRouteTCP is removed", func() string {
			res := kubectl(t, env.Management, "", "get", "ingressroutetcps.traefik.io", ingressName, "-n", ns, "--ignore-not-found", "-o", "name")
			if out := strings.TrimSpace(res.Stdout); out != "" || res.ExitCode != 0 {
				return "still there: " + out + res.Stderr
			}
			return ""
		})
		requireRouteState(t, client, stored, routes.StateNoIngress)
		// Without the route, Traefik terminates TLS itself: the route, not
		// anything else in the cluster, made the passthrough.
		traefik.waitNoTCPRouters(t, backend.hosts...)
		for _, host := range backend.hosts {
			requireTerminatedByTraefik(t, traefik, backend, host)
		}
	})
}

// startRoutesController starts the real binary with `serve --routes`
// against the management API server (the embedded default policy plus the
// suite's ccm settings), next to the suite's webhook; it stops when the test
// ends. It returns an uncached client.
func startRoutesController(t *testing.T) ctrlclient.Client {
	t.Helper()
	startWebhook(t, "serve --routes", framework.WebhookOptions{
		Kubeconfig: env.Management.Kubeconfig,
		PolicyFile: env.PolicyFile,
		ExtraArgs:  []string{"--routes"},
	})
	c, err := ctrlclient.New(env.Management.Config, ctrlclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitRoute waits for the IngressRouteTCP namespace/name to exist and pass
// check, and returns it.
func waitRoute(t *testing.T, namespace, name string, check func(*unstructured.Unstructured) string) *unstructured.Unstructured {
	t.Helper()
	var route *unstructured.Unstructured
	eventually(t, "IngressRouteTCP "+namespace+"/"+name, func() string {
		res := kubectl(t, env.Management, "", "get", "ingressroutetcps.traefik.io", name, "-n", namespace, "-o", "json")
		if res.ExitCode != 0 {
			return res.Stderr
		}
		route = decode(t, res)
		return check(route)
	})
	return route
}

// requireRouteState checks routes.State, what audit reports, against the
// API server.
func requireRouteState(t *testing.T, c ctrlclient.Reader, cp *unstructured.Unstructured, want string) {
	t.Helper()
	classes := rules.NewStaticClasses(rules.IngressClass{Name: "traefik", Controller: controllerTraefik})
	res := rules.Default().ResolveClass("traefik", classes)
	st, err := routes.State(t.Context(), c, cp, res)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != want {
		t.Errorf("routes.State = %q (%s), want %q", st.State, st.Detail, want)
	}
}

// requireAuditRoute checks the route column of `audit --routes -o json` for
// control plane namespace/name: what an operator reads.
func requireAuditRoute(t *testing.T, namespace, name, want string) {
	t.Helper()
	stdout, stderr, err := webhookCLI(t, "audit", "--kubeconfig", env.Management.Kubeconfig, "-n", namespace, "-o", "json", "--routes")
	if code := exitCode(err); code != 0 && code != 3 {
		t.Fatalf("audit --routes: exit %d\n%s%s", code, stdout, stderr)
	}
	var out struct {
		ControlPlanes []struct {
			Name    string   `json:"name"`
			Route   string   `json:"route"`
			Details []string `json:"details"`
		} `json:"controlPlanes"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, stdout)
	}
	for _, cp := range out.ControlPlanes {
		if cp.Name == name {
			if cp.Route != want {
				t.Errorf("audit: route of %s/%s = %q, want %q (details %q)", namespace, name, cp.Route, want, cp.Details)
			}
			return
		}
	}
	t.Errorf("audit lists no control plane %s/%s:\n%s", namespace, name, stdout)
}
