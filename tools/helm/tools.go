//go:build tools

// Package tools pins the helm CLI that lints, renders and installs
// charts/hcp-ingress-webhook in `make chart-test` and the e2e suite. It lives
// in its own module so that it builds on upstream's dependency versions (a
// newer client-go than the webhook's), not ours.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
