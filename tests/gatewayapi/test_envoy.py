"""Gateway API route tables on a real Envoy: the rendering loads, and verify agrees.

``verify`` runs unchanged on a compiled HTTPRoute config: the same case generation and
agreement report as for VirtualServices.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.config import load
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Request, route
from istiolab.envoy.render import render
from istiolab.envoy.sandbox import EnvoySandbox, validate_config
from istiolab.envoy.verify.generate import generate_cases
from istiolab.envoy.verify.harness import RANDOM_HEADER, backend_specs, sandbox_render
from istiolab.envoy.verify.runner import verify

DATA = Path(__file__).parent.parent / "data" / "gatewayapi"

pytestmark = [pytest.mark.envoy, pytest.mark.xdist_group("envoy")]


@pytest.mark.parametrize("name", ["shop", "rewrites"])
def test_envoy_accepts_the_rendering(name: str) -> None:
    table = compile(load(DATA / f"{name}.yaml"))
    endpoints = {c: [("127.0.0.1", 9)] for c in table.clusters}
    validate_config(render(table, endpoints, access_log_path="/dev/null"))


def test_verify_agrees_on_an_httproute_config() -> None:
    table = compile(load(DATA / "shop.yaml"))
    notes: list[str] = []
    cases = generate_cases(table, notes=notes)
    # one case per route (the redirect too), both split boundaries, and a no-route case
    assert len(cases) >= len(table.routes()) + 2
    report = verify(table, cases, requests=200)
    assert report.ok, report.failures()
    assert report.agree == len(report.results)


def test_rewrites_and_unresolved_backends_on_envoy() -> None:
    """What the model says and a real Envoy does: path rewrites, headers, 500 for a bad share."""
    table = compile(load(DATA / "rewrites.yaml"))
    with EnvoySandbox(sandbox_render(table), backend_specs(table)) as sb:
        strip = sb.send("/strip/a/b")
        assert strip.status == 200
        assert strip.body is not None
        assert strip.body["path"] == "/a/b"
        assert sb.send("/strip").body["path"] == "/"  # type: ignore[index]
        assert sb.send("/stripped").status == 404  # whole path segments only
        full = sb.send("/full/x?q=1", headers={"x-debug": "1"})
        assert full.body is not None
        assert full.body["path"].split("?")[0] == "/index.html"
        assert full.body["headers"]["host"] == "internal.example.com"
        assert full.body["headers"]["x-env"] == "prod"
        assert "x-debug" not in full.body["headers"]
        for rv in (0, 1):
            reply = sb.send("/half", headers={RANDOM_HEADER: str(rv)})
            d = route(table, Request("/half"), rv)
            expected = d.status if d.status is not None else 200
            assert reply.status == expected, (rv, reply)
        assert {route(table, Request("/half"), rv).status for rv in (0, 1)} == {None, 500}
        assert sb.send("/none").status == 500
        assert route(table, Request("/none")).status == 500
