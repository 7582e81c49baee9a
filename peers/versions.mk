# Versions of everything the peers are built from; all of it comes from the Go module proxy
# and lands in Go's module cache. The Go modules themselves are pinned in each go.mod;
# this file pins what the Makefile needs besides them.

# The release that peers/apiserver/go.mod requires; stamped into the binary so that
# GET /version reports it (a module build otherwise says v0.0.0-master).
KUBE_VERSION := v1.37.2
KUBE_MAJOR := 1
KUBE_MINOR := 37

# Istio's CRDs: kubernetes/customresourcedefinitions.gen.yaml of istio.io/api.
ISTIO_API_VERSION := v1.32.0

# Gateway API standard channel: config/crd/standard/*.yaml of sigs.k8s.io/gateway-api.
# v1.6.x is the series Istio's own go.mod uses; v1.7.0 needs Go >= 1.27 to be unpacked.
GATEWAY_API_VERSION := v1.6.3
