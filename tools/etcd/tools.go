//go:build tools

// Package tools pins etcd, the storage the local kube-apiserver runs on. Its own
// module, so that it builds on etcd's dependency versions.
package tools

import _ "go.etcd.io/etcd/server/v3"
