package webhook

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

func TestCertificateSourceRejects(t *testing.T) {
	empty := t.TempDir()
	tests := map[string]struct {
		options Options
		want    string
	}{
		"an unknown mode": {
			options: Options{CertDir: empty, Certs: CertOptions{Mode: "cert-manager"}},
			want:    `--cert-mode "cert-manager": want files or self-managed`,
		},
		"files mode without a certificate": {
			options: Options{CertDir: empty, Certs: CertOptions{Mode: CertModeFiles}},
			want:    "serving certificate in " + empty,
		},
		"self-managed without an API server": {
			options: Options{CertDir: empty, Certs: CertOptions{Mode: CertModeSelfManaged}},
			want:    "--cert-mode self-managed needs an API server",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.options.Log = logr.Discard()
			_, _, err := certificateSource(context.Background(), tc.options, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCertificateSourceFilesMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca, err := certs.NewServingDir(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	source, runnable, err := certificateSource(context.Background(), Options{CertDir: dir, Log: logr.Discard()}, nil, NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	if runnable == nil {
		t.Error("files mode has no runnable to keep the certificate current")
	}
	if err := source.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if string(source.CABundle()) != string(ca.CertPEM) {
		t.Error("CABundle is not ca.crt")
	}
}
