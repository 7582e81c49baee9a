"""The routing-field support table (``istiolab.sim.support``) and the docs generated from it.

Every field of every routing model has a status and a description (a new model field without
one fails here), no entry names a field that does not exist, and for a sample of fields marked
``honoured`` a short simulation shows that changing the field changes the outcome.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from istiolab.sim import support
from istiolab.sim.engine import simulate
from istiolab.sim.results import Result
from istiolab.sim.scenario import Scenario, render_docs, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]

# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(support.KINDS))
def test_every_field_has_a_status_and_a_description(kind: str) -> None:
    rows = support.support(kind)  # raises KeyError naming the first field without one
    assert len(rows) == len(support.field_paths(kind))
    for row in rows:
        assert row.status in support.STATUSES, row
        assert row.description.endswith("."), row
        assert row.type, row
        assert "Annotated" not in row.type, row
        assert "typing" not in row.type, row
        if row.status in ("approximated", "ignored", "compile-only"):
            assert row.note, f"{kind} {row.path}: {row.status} needs a how or a why"


def test_no_stale_entries() -> None:
    assert support.stale_entries() == []


def test_a_new_field_without_a_status_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = dict(support._TABLE["ServiceEntry"])
    del rules["spec"]
    monkeypatch.setitem(support._TABLE, "ServiceEntry", rules)
    with pytest.raises(KeyError, match=r"ServiceEntry spec\.hosts: no status"):
        support.support("ServiceEntry")


def test_a_subtree_status_and_its_overrides() -> None:
    rows = {r.path: r for r in support.support("DestinationRule")}
    assert rows["spec.trafficPolicy.tls"].status == "ignored"
    assert rows["spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests"].status == (
        "honoured"
    )
    # a subset's and a port's traffic policy follow the host's rules
    sub = "spec.subsets[].trafficPolicy.connectionPool.tcp.tcpKeepalive"
    assert rows[sub].status == "ignored"
    port = "spec.trafficPolicy.portLevelSettings[].loadBalancer.consistentHash.maglev"
    assert rows[port].status == "approximated"
    assert rows["spec.trafficPolicy.portLevelSettings[].port"].status == "honoured"
    # the note is said once, on the path that owns the rule
    vs = {r.path: r for r in support.support("VirtualService")}
    assert vs["spec.http[].delegate.name"].note == "as `spec.http[].delegate`"
    assert vs["spec.http[].timeout"].type == "duration"


def test_docs_are_generated_from_the_table() -> None:
    text = render_docs()
    assert "## Routing fields: what the simulator honours" in text
    for kind in support.KINDS:
        assert f"### {kind}\n" in text
    assert (ROOT / "docs/scenario.md").read_text() == text, (
        "regenerate: python -m istiolab.sim.scenario > docs/scenario.md"
    )


# -- honoured fields change the outcome --------------------------------------------------------

_GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "public", "namespace": "istio-system"},
    "spec": {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    },
}
_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "api"},
    "spec": {
        "hosts": ["*"],
        "gateways": ["istio-system/public"],
        "http": [
            {
                "name": "api",
                "route": [
                    {"destination": {"host": "api", "subset": "v1"}, "weight": 100},
                    {"destination": {"host": "api", "subset": "v2"}, "weight": 0},
                ],
                "retries": {"attempts": 0},
                "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 0.0}}},
            }
        ],
    },
}
_DR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "api"},
    "spec": {
        "host": "api",
        "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    },
}


def _scenario(
    rules: list[dict[str, Any]],
    *,
    rate: float = 200.0,
    versions: list[dict[str, Any]],
    services: tuple[str, ...] = ("api",),
) -> Scenario:
    return scenario_from_dict(
        {
            "name": "support-table",
            "run": {"duration_s": 4.0, "warmup_s": 0.5, "seed": 7},
            "rules": {"inline": copy.deepcopy(rules)},
            "traffic": [
                {"name": "clients", "arrival": {"kind": "poisson", "rate_rps": rate}},
            ],
            "services": [{"name": name, "versions": versions} for name in services],
        }
    )


def _v(name: str, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": replicas,
        "concurrency": 4,
        "service_time": "exp(5ms)",
    } | extra


def _errors(r: Result) -> int:
    codes = r.codes()
    return int(codes.loc[codes.status >= 500, "count"].sum())


def _hosts(r: Result) -> dict[str, int]:
    up = r.upstream()
    return {str(k): int(v) for k, v in up.groupby("host")["attempts"].sum().items()}


def _run(sc: Scenario, overrides: dict[str, Any] | None = None) -> Result:
    return simulate(sc.with_overrides(overrides) if overrides else sc, 7, engine="simpy")


def test_timeout() -> None:
    slow = [_v("v1", service_time="exp(40ms)")]
    sc = _scenario([_GATEWAY, _VS, _DR], versions=slow)
    assert _errors(_run(sc)) == 0
    r = _run(sc, {"rules.VirtualService/api.http[0].timeout": "0.02s"})
    codes = r.codes()
    assert codes.loc[(codes.status == 504) & (codes.flag == "UT"), "count"].sum() > 100


def test_retries_attempts() -> None:
    flaky = [_v("v1", errors=[{"probability": 0.3, "status": 503}])]
    sc = _scenario([_GATEWAY, _VS, _DR], versions=flaky)
    none = _errors(_run(sc))
    retried = _errors(
        _run(
            sc,
            {
                "rules.VirtualService/api.http[0].retries.attempts": 3,
                "rules.VirtualService/api.http[0].retries.retryOn": "5xx",
            },
        )
    )
    # 30 % errors: about 0.3 of requests fail without retries, 0.3^4 < 1 % with three
    assert none > 150
    assert retried < none / 10


def test_route_weight() -> None:
    sc = _scenario([_GATEWAY, _VS, _DR], versions=[_v("v1"), _v("v2")])
    assert not any(h.startswith("api-v2") for h in _hosts(_run(sc)))
    r = _run(
        sc,
        {
            "rules.VirtualService/api.http[0].route[0].weight": 50,
            "rules.VirtualService/api.http[0].route[1].weight": 50,
        },
    )
    hosts = _hosts(r)
    v2 = sum(n for h, n in hosts.items() if h.startswith("api-v2"))
    total = sum(hosts.values())
    # binomial(n≈800, 0.5): 0.5 ± 5 standard deviations (±0.09)
    assert abs(v2 / total - 0.5) < 0.09


def test_fault_abort_percentage() -> None:
    sc = _scenario([_GATEWAY, _VS, _DR], versions=[_v("v1")])
    assert _errors(_run(sc)) == 0
    r = _run(sc, {"rules.VirtualService/api.http[0].fault.abort.percentage.value": 50.0})
    share = _errors(r) / r.codes()["count"].sum()
    assert abs(share - 0.5) < 0.09


def test_load_balancer_simple() -> None:
    """Round robin spreads requests evenly over the pods; random picks vary binomially."""
    sc = _scenario([_GATEWAY, _VS, _DR], versions=[_v("v1", replicas=4)], rate=500.0)
    random = _hosts(_run(sc))
    rr = _hosts(
        _run(sc, {"rules.DestinationRule/api.trafficPolicy.loadBalancer.simple": "ROUND_ROBIN"})
    )
    assert len(random) == len(rr) == 4
    # 2000 requests over 4 pods: random spreads ±22 (one sd) per pod; round robin per worker
    # is off by at most a pick per worker and pod
    assert max(rr.values()) - min(rr.values()) <= 16
    assert max(random.values()) - min(random.values()) > max(rr.values()) - min(rr.values())


def test_connection_pool_pending_requests() -> None:
    dr = copy.deepcopy(_DR)
    dr["spec"]["trafficPolicy"]["connectionPool"] = {
        "tcp": {"maxConnections": 2},
        "http": {"http1MaxPendingRequests": 1000},
    }
    busy = [_v("v1", replicas=1, concurrency=2, service_time="exp(8ms)")]
    sc = _scenario([_GATEWAY, _VS, dr], versions=busy)
    assert _errors(_run(sc)) == 0
    r = _run(
        sc,
        {"rules.DestinationRule/api.trafficPolicy.connectionPool.http.http1MaxPendingRequests": 1},
    )
    codes = r.codes()
    assert codes.loc[(codes.status == 503) & (codes.flag == "UO"), "count"].sum() > 20


def test_outlier_detection_consecutive_5xx() -> None:
    """One version always fails; ejecting its pod after consecutive 5xx cuts the errors."""
    vs = copy.deepcopy(_VS)
    vs["spec"]["http"][0]["route"] = [{"destination": {"host": "api"}}]
    dr = copy.deepcopy(_DR)
    dr["spec"]["trafficPolicy"]["outlierDetection"] = {
        "consecutive5xxErrors": 0,
        "interval": "0.5s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }
    versions = [
        _v("v1", replicas=1),
        _v("v2", replicas=1, errors=[{"probability": 1.0, "status": 503}]),
    ]
    sc = _scenario([_GATEWAY, vs, dr], versions=versions)
    off = _errors(_run(sc))
    on = _errors(
        _run(
            sc, {"rules.DestinationRule/api.trafficPolicy.outlierDetection.consecutive5xxErrors": 3}
        )
    )
    assert off > 300  # about half of 800 requests
    assert on < off / 4


_HTTPROUTE_RULES: list[dict[str, Any]] = [
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "istio-ingress"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {
                    "name": "http",
                    "port": 80,
                    "protocol": "HTTP",
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    },
    {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "istio-ingress"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "api", "port": 8080, "weight": 1},
                        {"name": "canary", "port": 8080, "weight": 0},
                    ]
                }
            ],
        },
    },
    *(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080}]},
        }
        for name in ("api", "canary")
    ),
]


def test_httproute_backend_weight() -> None:
    sc = _scenario(_HTTPROUTE_RULES, versions=[_v("v1")], services=("api", "canary"))
    assert not any(h.startswith("canary") for h in _hosts(_run(sc)))
    r = _run(sc, {"rules.HTTPRoute/api.rules[0].backendRefs[1].weight": 3})
    hosts = _hosts(r)
    v2 = sum(n for h, n in hosts.items() if h.startswith("canary"))
    # weights 1:3, binomial(n≈800, 0.75): ±5 standard deviations (±0.08)
    assert abs(v2 / sum(hosts.values()) - 0.75) < 0.08
