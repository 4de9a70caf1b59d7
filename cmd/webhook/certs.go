package main

import (
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/hcp-ingress/hcp-ingress-webhook/certs"
)

// runCerts makes a private CA and a serving certificate without
// cert-manager: for the in-child topology, where cert-manager cannot run
// while the nodes are still uninitialized.
func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", stderr)
	hosts := fs.StringArray("host", []string{"hcp-ingress-webhook.hcp-ingress-system.svc"}, "DNS name or IP the API server dials; repeatable")
	outDir := fs.String("out-dir", "", "write tls.crt, tls.key and ca.crt into this directory (what --cert-dir reads)")
	secret := fs.String("secret", "", "print a kubernetes.io/tls Secret NAMESPACE/NAME with tls.crt, tls.key and ca.crt instead")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hcp-ingress-webhook certs [--host NAME ...] (--out-dir DIR | --secret NAMESPACE/NAME)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*outDir == "") == (*secret == "") {
		return fmt.Errorf("give exactly one of --out-dir and --secret")
	}
	if *outDir != "" {
		if _, err := certs.NewServingDir(*outDir, *hosts); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s/{tls.crt,tls.key,ca.crt} for %s; the webhook configuration's caBundle is ca.crt\n", *outDir, strings.Join(*hosts, ", "))
		return nil
	}
	namespace, name, ok := strings.Cut(*secret, "/")
	if !ok || namespace == "" || name == "" {
		return fmt.Errorf("--secret %q: want NAMESPACE/NAME", *secret)
	}
	ca, err := certs.NewCA("hcp-ingress-webhook-ca", 0)
	if err != nil {
		return err
	}
	pair, err := ca.IssueServing(*hosts, 0)
	if err != nil {
		return err
	}
	out, err := yaml.Marshal(&corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pair.CertPEM,
			corev1.TLSPrivateKeyKey: pair.KeyPEM,
			certs.CAFile:            ca.CertPEM,
		},
	})
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
