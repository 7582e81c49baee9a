"""IL205 (defined twice): one kind, namespace and name, counted per API, not per kind string."""

from __future__ import annotations

from istiolab.config import loads
from istiolab.config.validate import validate

ISTIO_GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"""
GATEWAY_API_GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
"""


def _codes(text: str) -> list[str]:
    return [f.code for f in validate(loads(text, file="dup.yaml"))]


def test_an_istio_gateway_and_a_gateway_api_gateway_of_one_name_are_two_objects() -> None:
    assert "IL205" not in _codes(ISTIO_GATEWAY + "---\n" + GATEWAY_API_GATEWAY)


def test_the_same_gateway_twice_is_a_duplicate_in_either_api() -> None:
    assert "IL205" in _codes(ISTIO_GATEWAY + "---\n" + ISTIO_GATEWAY)
    assert "IL205" in _codes(GATEWAY_API_GATEWAY + "---\n" + GATEWAY_API_GATEWAY)


def test_an_istio_gateway_in_two_api_versions_is_still_one_object() -> None:
    v1beta1 = ISTIO_GATEWAY.replace("networking.istio.io/v1", "networking.istio.io/v1beta1")
    assert "IL205" in _codes(ISTIO_GATEWAY + "---\n" + v1beta1)
