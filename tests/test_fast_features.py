"""Request mirroring, Zipkin traces, consistent hashing and HTTP/1.1 pools on both engines.

A mirrored try holds a request slot of the fast engine's table but is no client's request: it
loads the mirror's pods and counts in their tries, and nobody waits for its answer. A traced
request's spans come from one function (``metrics.request_spans``) on both engines; the fast
engine samples them from a stream of its own, so tracing changes no other result.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from istiolab.sim.engine import simulate
from istiolab.sim.fast import run as fast_run
from istiolab.sim.metrics import STAGES
from istiolab.sim.scenario import load_scenario, scenario_from_dict
from istiolab.sim.stages.upstream import UpstreamCluster, ring_layout, ring_lookup

ROOT = Path(__file__).resolve().parents[1]
API = "outbound|8080||api.default.svc.cluster.local"
SHADOW = "outbound|8080||shadow.default.svc.cluster.local"


def _service(name: str, **version: Any) -> dict[str, Any]:
    return {"name": name, "versions": [{"name": "v1", "replicas": 2, **version}]}


_RULES = """
- apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: public, namespace: istio-ingress}
  spec:
    gatewayClassName: istio
    listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
- apiVersion: gateway.networking.k8s.io/v1
  kind: HTTPRoute
  metadata: {name: api, namespace: default}
  spec:
    parentRefs: [{name: public, namespace: istio-ingress}]
    rules:
    - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 8080}}}]
      backendRefs: [{name: api, port: 8080}]
- {apiVersion: v1, kind: Service, metadata: {name: api, namespace: default},
   spec: {selector: {app: api}, ports: [{name: http, port: 8080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: shadow, namespace: default},
   spec: {selector: {app: shadow}, ports: [{name: http, port: 8080}]}}
"""


def _mirrored(percent: int | None, shadow_time: str) -> dict[str, Any]:
    """200 req/s to api (5 ms) through an HTTPRoute that mirrors them to shadow."""
    rules = yaml.safe_load(_RULES)
    if percent is not None:
        (rule,) = rules[1]["spec"]["rules"]
        rule["filters"][0]["requestMirror"]["percent"] = percent
    return {
        "name": "mirror",
        "run": {"duration_s": 6.0, "warmup_s": 1.0, "seed": 3},
        "rules": {"inline": rules},
        "traffic": [{"name": "clients", "arrival": {"kind": "poisson", "rate_rps": 200}}],
        "services": [
            _service("api", concurrency=8, service_time="exp(5ms)"),
            _service("shadow", concurrency=1000, service_time=shadow_time),
        ],
    }


@pytest.mark.parametrize("engine", ["simpy", "fast", "auto"])
def test_a_mirror_loads_its_pods_and_nobody_waits_for_it(engine: str) -> None:
    """Every request copied to a shadow that takes 1 s: the clients see 5 ms and no error.

    The copies keep about 200 tries in flight at the end of the run; the requests in flight
    (``unfinished``) are the clients' own, about 200/s × 5 ms.
    """
    result = simulate(scenario_from_dict(_mirrored(None, "exp(1000ms)")), 1, engine=engine)
    assert result.meta["assumptions"]["engine"] == ("simpy" if engine == "simpy" else "fast")
    codes = result.codes()
    assert set(codes["status"]) == {200}
    assert set(codes["flag"]) <= {"", "-"}
    totals = result.totals()
    assert totals["p99_ms"] < 60.0  # exp(5 ms) plus hops: the 1 s copies are not waited for
    assert totals["unfinished"] < 20, totals["unfinished"]
    assert totals["rejected"] == 0
    # the copies' busy time: 200/s × 1 s on 2 × 1000 servers, less the ramp of the first
    # second (measured from the warm-up, 1 s); a copy that were not started would leave 0
    assert 0.07 < totals["rho"]["backend/shadow/v1"] < 0.12
    summary = result.summary()
    assert set(summary["cluster"]) == {API}  # the clients' requests: none ends at the shadow


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_a_mirror_percentage_copies_that_share(engine: str) -> None:
    result = simulate(scenario_from_dict(_mirrored(30, "exp(5ms)")), 2, engine=engine)
    up = result.upstream().groupby("cluster")["attempts"].sum()
    n = float(up[API])
    share = float(up[SHADOW]) / n
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n), share  # 4 binomial sd


# -- traces ----------------------------------------------------------------------------------


def _traced(sample: float, duration_s: float = 4.0) -> Any:
    return load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml").with_overrides(
        {"run.duration_s": duration_s, "run.trace_sample": sample}
    )


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_traces_have_one_root_and_a_span_per_stage(engine: str) -> None:
    sample = 0.05
    result = simulate(_traced(sample), 4, engine=engine)
    spans = result.trace()
    counters = result.meta["counters"]
    assert counters["spans"] == len(spans)
    assert counters["spans_dropped"] == 0
    records = counters["records"]
    traced = spans["request_id"].nunique()
    # Bernoulli(0.05) per finished request: 4 standard deviations either way
    sd = math.sqrt(records * sample * (1 - sample))
    assert abs(traced - records * sample) < 4 * sd, (traced, records)
    assert len(spans) == traced * (1 + len(STAGES))
    for _, one in spans.groupby("request_id"):
        root = one[one["parent"] == ""]
        assert root["span"].tolist() == ["client"]
        children = one[one["parent"] == "client"].sort_values("start_s")
        stages = [tags["stage"] for tags in children["tags"]]
        assert stages == list(STAGES)
        names = children["span"].tolist()
        assert names[0] == "aws-nlb"
        assert names[1].startswith("ingress-")
        assert names[2] == "outbound|8000||httpbin.default.svc.cluster.local"
        # back to back from the request's start to its end
        start, end = float(root["start_s"].iloc[0]), float(root["end_s"].iloc[0])
        assert children["start_s"].iloc[0] == pytest.approx(start, abs=1e-12)
        assert children["end_s"].iloc[-1] == pytest.approx(end, abs=1e-9)
        tags = root["tags"].iloc[0]
        assert tags["http.path"] in {"/status/200", "/headers"}
        assert tags["http.status_code"] == "200"
        assert tags["route"] == "default"
    zipkin = pd.DataFrame(result.to_zipkin())
    assert zipkin["traceId"].nunique() == traced
    assert zipkin["parentId"].isna().sum() == traced


def test_fast_tracing_changes_no_other_result_and_repeats() -> None:
    plain = simulate(_traced(0.0), 5, engine="fast")
    traced = simulate(_traced(0.5), 5, engine="fast")
    again = simulate(_traced(0.5), 5, engine="fast")
    for name in ("summary", "timeseries", "codes", "upstream", "stages"):
        pd.testing.assert_frame_equal(getattr(plain, name)(), getattr(traced, name)())
    assert len(plain.trace()) == 0
    assert len(traced.trace()) > 0
    pd.testing.assert_frame_equal(traced.trace(), again.trace())


def test_fast_trace_limit_counts_the_spans_it_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_run, "TRACE_LIMIT", 40)  # 10 requests of 4 spans
    result = simulate(_traced(1.0, duration_s=3.0), 1, engine="fast")
    counters = result.meta["counters"]
    assert counters["spans"] == len(result.trace()) == 40
    assert counters["spans"] + counters["spans_dropped"] == 4 * counters["records"]


def test_drills_scenario_runs_fast() -> None:
    """The Gateway API drills (a mirror among them) no longer fall back to SimPy."""
    sc = load_scenario(ROOT / "sim/scenarios/gateway-api/drills.yaml")
    result = simulate(sc, 1, engine="auto")
    assert result.meta["assumptions"]["engine"] == "fast"
    assert not any(f.path == "engine" for f in result.findings)


# -- consistent hashing --------------------------------------------------------------------

RING = ROOT / "sim/scenarios/conform/09-consistent-hash-header.yaml"


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_ring_hash_sends_each_user_to_the_pod_envoys_ring_names(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 users hashed on x-user over 3 pods at fixed addresses: each pod's share of the tries
    is the share of users Envoy's ring (``ring_layout``, ``ring_lookup``) gives it.

    The addresses are pinned to the pod names on both engines (each draws random ones), so the
    ring, and so every user's pod, is known ahead.
    """
    sc = load_scenario(RING)
    pods = [f"api-v1-{i}" for i in range(3)]
    hashes, owners = ring_layout([f"{p}:8080" for p in pods], 1024)
    users = [pods[owners[ring_lookup(hashes, f"u{u}")]] for u in range(40)]
    expected = {p: users.count(p) / 40 for p in pods}
    assert min(expected.values()) < 0.3 or max(expected.values()) > 0.37  # not an even split
    if engine == "simpy":
        monkeypatch.setattr(UpstreamCluster, "_address", lambda self, pod: f"{pod.name}:8080")
    else:
        monkeypatch.setattr(fast_run._State, "_address", lambda self, c, p: f"{pods[p]}:8080")
    result = simulate(sc, 2, engine=engine)
    up = result.upstream().groupby("host")["attempts"].sum()
    assert sorted(up.index) == pods
    n = float(up.sum())
    for pod, share in expected.items():
        # each request is one of 40 users at random: 4 binomial standard deviations
        assert abs(up[pod] / n - share) < 4 * math.sqrt(share * (1 - share) / n), (pod, up / n)


# -- HTTP/1.1 pools ----------------------------------------------------------------------------

_POOLED = """
name: pool-timeouts
run: {duration_s: 10, warmup_s: 0.5}
ingress: {azs: [a], nodes_per_az: 1, concurrency: 2}
aws: {lb_latency: zero, kube_proxy_latency: zero, cross_node_latency: zero, cross_az_latency: zero}
rules:
  inline:
  - apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: public, namespace: istio-system}
    spec:
      selector: {istio: ingressgateway}
      servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: api}
    spec:
      hosts: ["*"]
      gateways: [istio-system/public]
      http:
      - {name: quick, match: [{uri: {prefix: /quick}}], route: [{destination: {host: api}}],
         timeout: 0.01s, retries: {attempts: 0}}
      - {name: slow, route: [{destination: {host: api}}], retries: {attempts: 0}}
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: api}
    spec:
      host: api
      trafficPolicy:
        connectionPool: {tcp: {maxConnections: 2}, http: {http1MaxPendingRequests: 50}}
traffic:
- name: clients
  arrival: {kind: poisson, rate_rps: 60}
  connections: {mode: keepalive, pool_size: 16}
  requests: [{path: /quick, weight: 1}, {path: /slow, weight: 1}]
services:
- name: api
  versions: [{name: v1, replicas: 1, concurrency: 8, service_time: exp(25ms)}]
"""


def _pending_timeouts(engine: str, seed: int) -> float:
    """The share of /quick requests whose 10 ms route timeout fired while they were pending."""
    summary = simulate(scenario_from_dict(yaml.safe_load(_POOLED)), seed, engine=engine).summary()
    quick = summary[summary["route"] == "quick"]
    never_sent = quick[quick["version"] == "-"]
    assert int(never_sent["upstream_requests"].sum()) == 0
    timed_out = sum(int(flags.get("UT", 0)) for flags in never_sent["flags"])
    return timed_out / float(quick["requests"].sum())


def test_a_pending_request_times_out_in_its_pool_on_both_engines() -> None:
    """Two connections held by /slow requests (no timeout): /quick ones wait in the pool, and
    their route timeout answers 504 UT there, before any try (ConnPoolImplBase's pending
    stream is cancelled). Both engines agree within 4 standard errors over 8 seeds each."""
    shares = {e: [_pending_timeouts(e, s) for s in range(1, 9)] for e in ("simpy", "fast")}
    means = {e: sum(v) / len(v) for e, v in shares.items()}
    assert min(means.values()) > 0.05, means
    var = sum(
        sum((x - means[e]) ** 2 for x in v) / (len(v) - 1) / len(v) for e, v in shares.items()
    )
    assert abs(means["fast"] - means["simpy"]) < 4 * math.sqrt(var), shares


def test_more_pools_than_the_table_holds_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from istiolab.sim.engine import fast_unsupported
    from istiolab.sim.fast import lower

    sc = load_scenario(ROOT / "sim/scenarios/conform/03-http1-pool.yaml")
    assert fast_unsupported(sc) is None
    monkeypatch.setattr(lower, "MAX_POOLS", 1)  # 1 cluster x 2 workers x 1 pod = 2 pools
    reason = fast_unsupported(sc)
    assert reason is not None
    assert "HTTP/1.1 connection pools for 2 cluster/worker/pod combinations" in reason
