"""What a cancelled try and an injected error cost the pod (``on_cancel``, ``errors[].cost``).

One pod of one server, 10 ms deterministic service, a per-try timeout of 5 ms and no retries:
every try is cancelled half way. With ``on_cancel: finish`` (Envoy resets the stream, the
application does not notice) the pod stays busy for the whole 10 ms of every request, so at
60 req/s it is 60 % busy; with ``stop`` it drops the work at the reset and is busy 5 ms per
request (30 %). An error model with ``cost: none`` answers at once: its 503s take no server
time and come back faster than the service time.
"""

from __future__ import annotations

from typing import Any

import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.scenario import scenario_from_dict

from ._scenarios import ZERO_NET, rules


def _scenario(version: dict[str, Any], timeout: str | None) -> dict[str, Any]:
    spec = rules({"attempts": 0})
    if timeout is not None:
        spec["inline"][1]["spec"]["http"][0]["timeout"] = timeout
    return {
        "name": "costs",
        "run": {"duration_s": 60.0, "warmup_s": 5.0},
        "traffic": [{"name": "c", "arrival": {"kind": "constant", "rate_rps": 60}}],
        "aws": ZERO_NET,
        "ingress": {"azs": ["a"], "cpu_per_request": "zero", "proxy_latency": "zero"},
        "services": [
            {
                "name": "api",
                "versions": [{"name": "v1", "replicas": 1, "service_time": "det(10ms)", **version}],
            }
        ],
        "rules": spec,
    }


def _backend_rho(result: Any) -> float:
    rho = result.totals()["rho"]
    return float(next(v for k, v in rho.items() if k.startswith("backend/")))


@pytest.mark.parametrize("engine", ["simpy", "fast"])
@pytest.mark.parametrize(("on_cancel", "busy"), [("finish", 0.60), ("stop", 0.30)])
def test_a_cancelled_try_keeps_the_pod_busy_only_with_finish(
    on_cancel: str, busy: float, engine: str
) -> None:
    sc = scenario_from_dict(_scenario({"on_cancel": on_cancel}, "5ms"))
    assert sc.simpy_only_features() == []  # both run on the fast engine too
    res = simulate(sc, seed=1, engine=engine)
    totals = res.totals()
    assert totals["success_ratio"] == 0.0  # every try times out (504 UT)
    # constant arrivals 16.7 ms apart, deterministic 10 ms: no queue, ρ exact to a request
    assert _backend_rho(res) == pytest.approx(busy, abs=0.01)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_stop_frees_the_server_at_the_reset(engine: str) -> None:
    """120 req/s on one server of 10 ms, every try cancelled 5 ms after it arrived.

    With finish every request holds the server 10 ms: offered load 1.2, the queue grows and
    the pod is busy all the time. With stop the reset frees the server, so each request holds
    it 5 ms (they come 8.3 ms apart, none waits): ρ = 120 × 5 ms = 0.6.
    """
    sc = scenario_from_dict(_scenario({"on_cancel": "stop"}, "5ms")).with_overrides(
        {"traffic.0.arrival.rate_rps": 120}
    )
    stop = _backend_rho(simulate(sc, seed=1, engine=engine))
    finish_sc = sc.with_overrides({"services.0.versions.0.on_cancel": "finish"})
    finish = _backend_rho(simulate(finish_sc, seed=1, engine=engine))
    assert finish == pytest.approx(1.0, abs=0.01)
    assert stop == pytest.approx(0.60, abs=0.01)


def test_stop_drops_a_try_cancelled_in_the_queue_alike_on_both_engines() -> None:
    """Poisson arrivals at 150 req/s: bursts queue past the 5 ms timeout with stop too.

    A try cancelled while it waited reaches the server and is dropped at once (Pod._rest, no
    service); one cancelled in service frees the server at the reset. Both engines must give
    the pod the same busy share: 8 seeds each, bounds of five standard errors of the
    difference of the means.
    """
    sc = scenario_from_dict(_scenario({"on_cancel": "stop"}, "5ms")).with_overrides(
        {"traffic.0.arrival": {"kind": "poisson", "rate_rps": 150}, "run.duration_s": 30.0}
    )
    runs = {e: [simulate(sc, seed=s, engine=e) for s in range(1, 9)] for e in ("simpy", "fast")}
    rhos = {e: [_backend_rho(r) for r in results] for e, results in runs.items()}
    means = {e: sum(v) / len(v) for e, v in rhos.items()}
    var = sum(sum((x - means[e]) ** 2 for x in v) / (len(v) - 1) / len(v) for e, v in rhos.items())
    assert abs(means["simpy"] - means["fast"]) <= 5 * var**0.5 + 1e-9, rhos
    # with finish the same load saturates the pod (150 × 10 ms = 1.5); with stop a try holds
    # the server at most 5 ms after it arrived: ρ ≤ the window's requests × 5 ms / 25 s (plus
    # the one try in service at the window's start)
    for results in runs.values():
        for r in results:
            bound = (r.totals()["requests"] + 1) * 0.005 / 25.0
            assert _backend_rho(r) <= bound, (_backend_rho(r), bound)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
@pytest.mark.parametrize(
    ("cost", "busy", "fast_503"), [("service_time", 0.60, False), ("none", 0.30, True)]
)
def test_an_injected_error_costs_service_time_only_by_default(
    cost: str, busy: float, fast_503: bool, engine: str
) -> None:
    errors = [{"probability": 0.5, "status": 503, "cost": cost}]
    sc = scenario_from_dict(_scenario({"errors": errors}, None))
    assert sc.simpy_only_features() == []  # both costs run on the fast engine too
    res = simulate(sc, seed=2, engine=engine)
    totals = res.totals()
    assert totals["success_ratio"] == pytest.approx(0.5, abs=0.03)
    assert _backend_rho(res) == pytest.approx(busy, abs=0.03)
    # the failures' latency: at once with cost none, the full 10 ms otherwise
    if fast_503:
        assert totals["success_p50_ms"] == pytest.approx(10.0, rel=0.05)
        assert totals["mean_ms"] < 7.5  # half the requests take ~0 ms
    else:
        assert totals["mean_ms"] == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_first_n_errors_without_cost_answer_the_pods_first_requests(engine: str) -> None:
    """``first_n`` with ``cost: none``: the pod's first 50 requests fail at once, then none.

    The ordinal is the request's place among the pod's (its next one, since the error answers
    before the server), on both engines.
    """
    errors = [{"first_n": 50, "status": 503, "cost": "none"}]
    sc = scenario_from_dict(_scenario({"errors": errors}, None))
    res = simulate(sc.with_overrides({"run.warmup_s": 0.0}), seed=3, engine=engine)
    codes = res.codes()
    assert int(codes.loc[codes["status"] == 503, "count"].sum()) == 50
    assert int(codes.loc[codes["status"] == 200, "count"].sum()) > 3000
    assert _backend_rho(res) == pytest.approx(0.60 * (1 - 50 / 3600), abs=0.01)
