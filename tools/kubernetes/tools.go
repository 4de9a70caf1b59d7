//go:build tools

// Package tools pins the Kubernetes control-plane binaries the e2e suite and
// `make demo` build from source: kube-apiserver and kubectl. It lives in its own
// module so that it builds on upstream's dependency versions, not ours.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
