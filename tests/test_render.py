"""Rendering the RouteTable as Envoy v3 configuration.

The golden file ``tests/data/envoy/golden.json`` is the rendering of ``golden.yaml``; after an
intended change, regenerate it with ``ISTIOLAB_REGEN_GOLDEN=1 pytest tests/test_render.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from istiolab.config import load
from istiolab.envoy.compile import compile
from istiolab.envoy.model import RouteTable
from istiolab.envoy.render import duration, render
from istiolab.envoy.sandbox import validate_config

DATA = Path(__file__).parent / "data" / "envoy"
CONFORMANCE = Path(__file__).parent / "conformance" / "configs"


def _endpoints(t: RouteTable) -> dict[str, list[tuple[str, int]]]:
    return {name: [("127.0.0.1", 10000 + i)] for i, name in enumerate(t.clusters)}


def _golden_table() -> RouteTable:
    return compile(load(DATA / "golden.yaml"))


def _routes(boot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhosts = hcm["typed_config"]["route_config"]["virtual_hosts"]
    return {r["name"]: r for vh in vhosts for r in vh["routes"]}


def test_same_table_renders_identical_json() -> None:
    a = json.dumps(render(_golden_table(), _endpoints(_golden_table())))
    b = json.dumps(render(_golden_table(), _endpoints(_golden_table())))
    assert a == b


def test_golden_file() -> None:
    t = _golden_table()
    text = json.dumps(render(t, _endpoints(t), listener_port=8080), indent=2) + "\n"
    golden = DATA / "golden.json"
    if os.environ.get("ISTIOLAB_REGEN_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_route_details() -> None:
    routes = _routes(render(_golden_table(), {}))
    beta = routes["beta"]["match"]["headers"]
    assert beta[1] == {
        "name": "x-internal",
        "string_match": {"exact": "true"},
        "invert_match": True,
        "treat_missing_header_as_empty": True,  # as istiod renders withoutHeaders
    }
    canary = routes["canary"]
    action = canary["route"]
    assert action["weighted_clusters"]["clusters"] == [
        {"name": "outbound|8080|v1|shop.default.svc.cluster.local", "weight": 90},
        {"name": "outbound|8080|v2|shop.default.svc.cluster.local", "weight": 10},
    ]
    assert "total_weight" not in action["weighted_clusters"]  # removed by istiod 1.18
    assert action["timeout"] == "2s"
    policy = action["retry_policy"]
    assert policy["retry_on"] == "5xx,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert policy["num_retries"] == 3
    assert policy["per_try_timeout"] == "0.5s"
    fault = canary["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"]["percentage"] == {"numerator": 125000, "denominator": "MILLION"}
    assert fault["abort"] == {
        "http_status": 503,
        "percentage": {"numerator": 1, "denominator": "MILLION"},
    }
    assert routes["old"]["redirect"] == {
        "response_code": "PERMANENT_REDIRECT",
        "path_redirect": "/new",
    }
    assert routes["deny"]["match"] == {"path": "/admin", "case_sensitive": False}
    assert routes["deny"]["direct_response"] == {
        "status": 403,
        "body": {"inline_string": "forbidden"},
    }
    api = next(r for n, r in routes.items() if n.startswith("default/api"))
    assert api["route"]["timeout"] == "0s"  # istiod disables Envoy's 15 s default


def test_filter_chain_order() -> None:
    boot = render(_golden_table(), {})
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    names = [f["name"] for f in hcm["typed_config"]["http_filters"]]
    assert names == [
        "envoy.filters.http.fault",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]
    rl = hcm["typed_config"]["http_filters"][1]["typed_config"]
    assert rl["token_bucket"] == {"max_tokens": 100, "tokens_per_fill": 100, "fill_interval": "1s"}


def test_clusters() -> None:
    boot = render(
        _golden_table(), {"outbound|8080|v1|shop.default.svc.cluster.local": [("10.0.0.1", 80)]}
    )
    clusters = {c["name"]: c for c in boot["static_resources"]["clusters"]}
    v1 = clusters["outbound|8080|v1|shop.default.svc.cluster.local"]
    assert v1["lb_policy"] == "ROUND_ROBIN"
    assert v1["circuit_breakers"]["thresholds"][0]["max_connections"] == 100
    assert v1["outlier_detection"]["consecutive_5xx"] == 5
    eps = v1["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert eps[0]["endpoint"]["address"]["socket_address"] == {
        "address": "10.0.0.1",
        "port_value": 80,
    }
    api = clusters["outbound|9000||api.default.svc.cluster.local"]
    assert api["load_assignment"]["endpoints"][0]["lb_endpoints"] == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (0.25, "0.25s"), (15, "15s"), (0.001, "0.001s")]
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _conformance_configs() -> list[Path]:
    return sorted(p for p in CONFORMANCE.glob("*.yaml") if not p.name.endswith(".cases.yaml"))


@pytest.mark.envoy
@pytest.mark.xdist_group("envoy")
@pytest.mark.parametrize(
    "path", [DATA / "golden.yaml", *_conformance_configs()], ids=lambda p: p.stem
)
def test_envoy_accepts_every_rendering(path: Path) -> None:
    profile = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# conformance:") and "profile=" in line:
            profile = line.split("profile=", 1)[1].split()[0]
    t = compile(load(path), profile)
    validate_config(render(t, _endpoints(t), access_log_path="/dev/null"))
