//go:build tools

// Package tools pins the program that this module builds; the build tag keeps it out of
// every build, so only `go build go.etcd.io/etcd/server/v3` compiles anything.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
