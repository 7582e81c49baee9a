//go:build tools

// Package tools pins the programs that this module builds; the build tag keeps it out of
// every build, so only `go build k8s.io/kubernetes/cmd/kube-apiserver` compiles anything.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
