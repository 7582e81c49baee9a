//go:build tools

// Package tools pins istioctl: `make -C peers istioctl` builds istio.io/istio's own istioctl
// from the same module version as gateway-routes (peers/istio/go.mod), so that istiolab's tests
// can run `istioctl analyze` beside `istiolab lint`.
package tools

import _ "istio.io/istio/istioctl/cmd/istioctl"
