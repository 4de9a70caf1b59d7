package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TraefikVersion is the Traefik Proxy release that bin/traefik is built
// from (tools/traefik pins it) and whose CRDs and RBAC the passthrough test
// installs from the Go module. Nothing of Traefik is committed here.
const TraefikVersion = "v3.6.12"

const traefikModule = "github.com/traefik/traefik/v3"

// TraefikModuleDir downloads Traefik's module (through the module proxy,
// like the binary) and returns its directory in the module cache.
func TraefikModuleDir(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", traefikModule+"@"+TraefikVersion)
	// Outside our module, so that go.mod and go.sum stay untouched.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w\n%s%s", traefikModule, TraefikVersion, err, stdout.String(), stderr.String())
	}
	var module struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &module); err != nil {
		return "", fmt.Errorf("go mod download output: %w", err)
	}
	if module.Error != "" || module.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", traefikModule, TraefikVersion, module.Error)
	}
	return module.Dir, nil
}

// Files of Traefik's module the test installs: its CRDs (IngressRouteTCP and
// the rest of traefik.io/v1alpha1) and the RBAC its documentation gives each
// Kubernetes provider.
const (
	TraefikCRDFile              = "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"
	TraefikCRDRBACFile          = "docs/content/reference/dynamic-configuration/kubernetes-crd-rbac.yml"
	TraefikIngressNGINXRBACFile = "docs/content/reference/dynamic-configuration/kubernetes-ingress-nginx-rbac.yml"
)

// CheckTraefik reports a missing bin/traefik.
func (p Paths) CheckTraefik() error {
	if _, err := os.Stat(p.Traefik()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("missing %s: run `make traefik` (builds Traefik %s from source, first time takes several minutes)", p.Traefik(), TraefikVersion)
		}
		return err
	}
	return nil
}

// Traefik is bin/traefik.
func (p Paths) Traefik() string { return filepath.Join(p.Bin, "traefik") }

// TraefikProvider is one Kubernetes provider of Traefik, run from outside the
// cluster with a bearer token.
type TraefikProvider struct {
	// Name is the provider's static-configuration name:
	// "kubernetesIngressNGINX" or "kubernetesCRD".
	Name string
	// TokenFile holds the bearer token (a ServiceAccount token).
	TokenFile string
}

// TraefikOptions configure one Traefik process.
type TraefikOptions struct {
	// Dir receives the log (Dir/traefik.log) and the API server's CA.
	Dir string
	// Cluster is the API server the providers watch.
	Cluster   *Cluster
	Providers []TraefikProvider
}

// Traefik is a running bin/traefik with entry point websecure on 127.0.0.1.
type Traefik struct {
	// Websecure is 127.0.0.1:<port>, the TLS entry point clients dial.
	Websecure string
	// APIURL is http://127.0.0.1:<port> of Traefik's API (/api/rawdata),
	// which shows the dynamic configuration it has built.
	APIURL string
	// process holds LogFile and stops Traefik.
	process
}

// StartTraefik runs bin/traefik against o.Cluster and waits until its API
// answers. Every HTTP router on websecure gets TLS (terminated by Traefik
// with its default certificate), as ingress-nginx serves every Ingress on 443:
// only a passthrough route lets the backend's own certificate through.
func StartTraefik(ctx context.Context, paths Paths, o TraefikOptions) (*Traefik, error) {
	if err := paths.CheckTraefik(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	caFile := filepath.Join(o.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, o.Cluster.Config.CAData, 0o644); err != nil {
		return nil, err
	}
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	t := &Traefik{
		Websecure: "127.0.0.1:" + strconv.Itoa(ports[0]),
		APIURL:    "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		process:   newProcess(filepath.Join(o.Dir, "traefik.log")),
	}
	args := []string{
		"--global.checkNewVersion=false",
		"--global.sendAnonymousUsage=false",
		"--log.level=DEBUG",
		"--entryPoints.websecure.address=" + t.Websecure,
		"--entryPoints.websecure.http.tls=true",
		"--entryPoints.traefik.address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--api.insecure=true",
		"--ping=true",
	}
	for _, p := range o.Providers {
		prefix := "--providers." + strings.ToLower(p.Name)
		args = append(args,
			prefix+"=true",
			prefix+".endpoint="+o.Cluster.Config.Host,
			prefix+".token="+p.TokenFile,
			prefix+".certAuthFilePath="+caFile,
			// Seconds of throttling slow the test down and prove nothing.
			prefix+".throttleDuration=0s",
		)
	}
	// No KUBECONFIG: the providers must use the endpoint and token given.
	if err := t.start(paths.Traefik(), args, kubectlEnv(), nil); err != nil {
		return nil, err
	}
	if err := t.waitOK(ctx, "traefik", t.APIURL+"/ping", time.Minute, nil); err != nil {
		_ = t.Stop()
		return nil, fmt.Errorf("%w\n%s log (last lines):\n%s", err, paths.Traefik(), t.LogTail(30))
	}
	return t, nil
}

// RawData is the part of Traefik's /api/rawdata the tests read: the routers
// it has built, keyed by name (for example "ns-kmc-x-api-x-example-com@kubernetesingressnginx").
type RawData struct {
	Routers    map[string]RawRouter `json:"routers"`
	TCPRouters map[string]RawRouter `json:"tcpRouters"`
}

// RawRouter is one router of /api/rawdata.
type RawRouter struct {
	Rule    string `json:"rule"`
	Service string `json:"service"`
	Status  string `json:"status"`
	TLS     *struct {
		Passthrough bool `json:"passthrough"`
	} `json:"tls"`
}

// RawData reads /api/rawdata.
func (t *Traefik) RawData(ctx context.Context) (RawData, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.APIURL+"/api/rawdata", nil)
	if err != nil {
		return RawData{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return RawData{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return RawData{}, fmt.Errorf("traefik /api/rawdata: %s", resp.Status)
	}
	var raw RawData
	// The configuration of a test run is a few KB; the limit only guards
	// against a runaway response.
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&raw); err != nil {
		return RawData{}, fmt.Errorf("traefik /api/rawdata: %w", err)
	}
	return raw, nil
}
