"""``istiolab explain`` shows the Gateway API routes' would-be ``status.parents[]`` for a host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from istiolab.cli.app import main

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-ingress}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
    allowedRoutes: {namespaces: {from: NAMESPACES}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: shop}
spec:
  parentRefs: [{name: public, namespace: istio-ingress}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs: [{name: api, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  ports: [{name: http, port: 8080}]
  selector: {app: api}
"""


def _explain(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    args = ["explain", str(path), "--host", "shop.example.com", "--path", "/x", *extra]
    assert main(args) == 0
    return capsys.readouterr().out


def test_an_unattached_route_explains_the_404(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # from: Same (the default) keeps the shop namespace's route off the Gateway
    text = GATEWAY.replace("    allowedRoutes: {namespaces: {from: NAMESPACES}}\n", "")
    out = _explain(tmp_path, text, capsys, "--suppress", "IL603")
    assert "404 NR" in out
    assert "HTTPRoute/shop/shop -> istio-ingress/public" in out
    assert "Accepted=False (NotAllowedByListeners)" in out


def test_an_attached_route_shows_accepted_and_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GATEWAY.replace("from: NAMESPACES", "from: All")
    data = json.loads(_explain(tmp_path, text, capsys, "-f", "json"))
    assert data["route"] is not None
    (status,) = data["route_status"]
    assert status["route"] == "HTTPRoute/shop/shop"
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("Accepted", "True"),
        ("ResolvedRefs", "True"),
    ]


def test_a_route_for_another_host_is_not_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GATEWAY.replace("from: NAMESPACES", "from: All").replace(
        "[shop.example.com]", "[admin.example.com]"
    )
    out = _explain(tmp_path, text, capsys)
    assert "status (would-be" not in out
