"""Any schema-valid HTTPRoute on a Gateway: lint, compile and routing never raise.

The HTTPRoute documents come from the round-trip strategies of ``test_config_roundtrip`` (every
field, hostile text included); the Gateway takes routes from every namespace on one wildcard
listener, so most of them attach.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_config_roundtrip import http_route_spec

from gatewayapi._util import GATEWAY, SERVICES
from istiolab.config import dumps, loads
from istiolab.config.gatewayapi import HTTPRoute
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Request, route
from istiolab.errors import ConfigError
from istiolab.findings import CODES

PARENT = {"name": "gw", "namespace": "infra"}


def check(spec: dict[str, Any], ns: str, compiled: list[int]) -> None:
    """Lint, compile and route one fuzzed HTTPRoute; record how many routes it compiled to."""
    # attach to the gateway, and point backends at Services of the config (or one missing), so
    # that most documents compile rather than stop at a finding
    spec = {**spec, "parentRefs": [PARENT]}
    spec.setdefault("rules", [])
    spec["rules"].append({"backendRefs": [{"name": "v1", "port": 8080}]})  # one rule at least
    for rule in spec.get("rules", []):
        refs = list(rule.get("backendRefs", []))
        refs += [
            f["requestMirror"]["backendRef"]
            for f in rule.get("filters", [])
            if "requestMirror" in f
        ]
        for b in refs:
            b.pop("namespace", None)
            b.pop("group", None)
            b.pop("kind", None)
            b["name"] = ("v1", "v2", "missing")[len(b["name"]) % 3]
            b["port"] = 8080
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fuzz", "namespace": ns},
        "spec": spec,
    }
    text = GATEWAY + SERVICES + "---\n" + dumps([HTTPRoute.model_validate(doc)])
    cs = loads(text, file="x.yaml")
    assert cs.findings == ()
    findings = validate(cs)
    assert all(f.code in CODES for f in findings)
    try:
        table = compile(cs)
    except ConfigError:
        return
    for vh in table.virtual_hosts:
        host = vh.domains[0].replace("*", "a")
        for path in ("/", "/a", "/a/b"):
            d = route(table, Request(path, "GET", host), 0)
            assert d.status is not None or d.cluster is not None
    compiled.append(len(table.routes()))


def test_any_route_lints_compiles_and_routes() -> None:
    compiled: list[int] = []

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,  # the same examples every run: the count below is stable
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(spec=http_route_spec, ns=st.sampled_from(["apps", "infra"]))
    def prop(spec: dict[str, Any], ns: str) -> None:
        check(spec, ns, compiled)

    prop()
    # not vacuous: most examples get past lint, and many compile fuzzed rules beyond the added one
    assert len(compiled) >= 40, compiled
    assert sum(1 for n in compiled if n > 1) >= 10, compiled
