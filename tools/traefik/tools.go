//go:build tools

// Package tools pins Traefik Proxy, the real ingress controller the passthrough
// e2e test (e2e/passthrough_test.go) sends TLS through. It lives in its own
// module so that it builds on Traefik's dependency versions, not ours.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
