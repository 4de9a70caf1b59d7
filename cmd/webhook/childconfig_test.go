package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"github.com/hcp-ingress/hcp-ingress-webhook/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testCA is a CA certificate made with `hcp-ingress-webhook certs` for these
// tests (no key is kept).
const testCA = "testdata/ca.crt"

// child-config refuses what would give a child a broken or leaking webhook
// configuration, naming the flag and what is wrong.
func TestChildConfigValidatesItsInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := os.ReadFile(testCA)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	const url = "https://hcp-ingress-webhook.hcp-ingress-system.svc"
	cases := map[string]struct {
		args []string
		want string
	}{
		"a private key as the CA":             {[]string{"tenants/prod", "--url", url, "--ca-file", write("key.pem", keyPEM)}, "PEM block 1 is a EC PRIVATE KEY, not a CERTIFICATE"},
		"a certificate followed by its key":   {[]string{"tenants/prod", "--url", url, "--ca-file", write("both.pem", append(append([]byte{}, ca...), keyPEM...))}, "PEM block 2 is a EC PRIVATE KEY"},
		"a certificate that does not parse":   {[]string{"tenants/prod", "--url", url, "--ca-file", write("fake.pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))}, "certificate 1:"},
		"text after the certificates":         {[]string{"tenants/prod", "--url", url, "--ca-file", write("tail.pem", append(append([]byte{}, ca...), "garbage\n"...))}, "text that is not a PEM CERTIFICATE block after certificate 1"},
		"no PEM at all":                       {[]string{"tenants/prod", "--url", url, "--ca-file", write("empty.pem", []byte("\n"))}, "holds no PEM CERTIFICATE"},
		"NS/NAME/extra":                       {[]string{"tenants/prod/extra", "--url", url, "--ca-file", testCA}, `"tenants/prod/extra": want NAMESPACE/NAME`},
		"NAME alone":                          {[]string{"prod", "--url", url, "--ca-file", testCA}, `want NAMESPACE/NAME`},
		"an empty name":                       {[]string{"tenants/", "--url", url, "--ca-file", testCA}, `name ""`},
		"a namespace that is not a DNS label": {[]string{"Tenants/prod", "--url", url, "--ca-file", testCA}, `namespace "Tenants"`},
		"a name with a space":                 {[]string{"tenants/my prod", "--url", url, "--ca-file", testCA}, `name "my prod"`},
		"a URL with a query":                  {[]string{"tenants/prod", "--url", url + "?x=1", "--ca-file", testCA}, "--url: \"" + url + "?x=1\": must not have a query"},
		"a URL with an empty query":           {[]string{"tenants/prod", "--url", url + "?", "--ca-file", testCA}, "must not have a query"},
		"a URL with a fragment":               {[]string{"tenants/prod", "--url", url + "#x", "--ca-file", testCA}, "must not have a fragment"},
		"a plain HTTP URL":                    {[]string{"tenants/prod", "--url", "http://hcp-ingress-webhook", "--ca-file", testCA}, "must start with https://"},
		"a URL with credentials":              {[]string{"tenants/prod", "--url", "https://user:pw@hcp-ingress-webhook", "--ca-file", testCA}, "must not carry credentials"},
		"a URL without a host":                {[]string{"tenants/prod", "--url", "https:///path", "--ca-file", testCA}, "has no host"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, append([]string{"child-config"}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("output despite the error:\n%s", stdout)
			}
		})
	}
}

// --ca-file - reads the bundle from standard input, as -f - does.
func TestChildConfigReadsTheCAFromStandardInput(t *testing.T) {
	f, err := os.Open(testCA)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	withStdin(t, f)
	stdout, stderr, code := runCLI(t, "child-config", "tenants/prod", "--url", "https://hcp-ingress-webhook.hcp-ingress-system.svc:443", "--ca-file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden.Check(t, "child-config.yaml", stdout)
}
