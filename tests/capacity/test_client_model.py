"""The client model and the zonal failure semantics (#20): timeouts, DNS caching, cross-zone.

The AZ-loss tests lose one zone's ingress nodes (the NLB targets) at t = 25 s with health
checks every 10 s, 3 to fail: the checks at 30, 40 and 50 s fail, so the targets are marked
unhealthy at 50 s. AWS (Elastic Load Balancing, "Cross-zone load balancing", "Target group
health": DNS failover) says what follows:

* cross-zone on: every LB node sends to the healthy targets of the other zones from then on,
  so errors end at the marking (plus the 2 s connect timeout of the last doomed connections);
* cross-zone off: the zone's LB node has no healthy target of its own; its address leaves DNS,
  and clients keep using it until their cached answer expires, so errors go on for up to the
  DNS TTL (60 s) more.

Errors are binned by completion time. The windows below come from replications: over seeds
1-4 the last error fell in the window ending at 52 s (on) and 111-112 s (off), and the error
counts came within 8 % of the expectations the tests state (tolerances 12-15 %).
"""

from __future__ import annotations

from typing import Any

import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.results import Result
from istiolab.sim.scenario import Scenario, scenario_from_dict

from ._scenarios import ZERO_NET, rules

RATE = 150.0
LOSS_AT = 25.0
MARKED_AT = 50.0  # the third failed check after LOSS_AT (checks every 10 s from t = 0)
TTL = 60.0
CONNECT_TIMEOUT = 2.0


def az_scenario(
    *,
    cross_zone: bool,
    event: dict[str, Any] | None = None,
    client: dict[str, Any] | None = None,
    duration_s: float = 130.0,
    seed: int = 1,
) -> Scenario:
    """Three zones, one ingress node each, NLB; one zone's targets die at LOSS_AT."""
    ev: dict[str, Any] = {"at_s": LOSS_AT}
    if event is not None and "kind" in event:  # another kind of event: given whole
        ev.update(event)
    else:
        ev.update({"kind": "az_loss", "az": "a", "lb_node_down": False, "pods_down": False})
        ev.update(event or {})
    return scenario_from_dict(
        {
            "name": "az",
            "run": {"duration_s": duration_s, "warmup_s": 5.0, "seed": seed},
            "traffic": [
                {
                    "name": "web",
                    "arrival": {"kind": "poisson", "rate_rps": RATE},
                    "client": {
                        "timeout_s": 5.0,
                        "connect_timeout_s": CONNECT_TIMEOUT,
                        "dns_ttl_s": TTL,
                        **(client or {}),
                    },
                }
            ],
            "aws": {"lb": "nlb", "cross_zone": cross_zone},
            "ingress": {"azs": ["a", "b", "c"], "nodes_per_az": 1},
            "services": [
                {
                    "name": "api",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas_per_az": 2,
                            "concurrency": 4,
                            "service_time": "exp(10ms)",
                        }
                    ],
                }
            ],
            "events": [ev],
        }
    )


def failures(result: Result) -> tuple[float, int, dict[str, int]]:
    """(end of the last 1 s window with a failure, failed requests, failures per flag)."""
    codes = result.codes()
    bad = codes[(codes["status"] == 0) | (codes["status"] >= 500)]
    bad = bad[bad["count"] > 0]
    last = float(bad["t_s"].max()) + 1.0 if len(bad) else 0.0
    flags = bad.groupby("flag")["count"].sum().to_dict()
    return last, int(bad["count"].sum()), {str(k): int(v) for k, v in flags.items()}


@pytest.fixture(scope="module")
def targets_lost() -> dict[bool, tuple[float, int, dict[str, int]]]:
    """The targets-lost run, cross-zone on and off (seed 1)."""
    return {cz: failures(simulate(az_scenario(cross_zone=cz), seed=1)) for cz in (True, False)}


def test_cross_zone_on_ends_errors_at_the_health_checks(
    targets_lost: dict[bool, tuple[float, int, dict[str, int]]],
) -> None:
    last, failed, flags = targets_lost[True]
    assert MARKED_AT <= last <= MARKED_AT + CONNECT_TIMEOUT + 1.0
    # Until the marking every LB node sends a third of its connections to the dead targets.
    assert failed == pytest.approx(RATE / 3 * (MARKED_AT - LOSS_AT), rel=0.12)
    assert flags["CONNECT_TIMEOUT"] >= 0.99 * failed  # black hole: the connect timeout


def test_cross_zone_off_adds_the_dns_ttl(
    targets_lost: dict[bool, tuple[float, int, dict[str, int]]],
) -> None:
    last, failed, _ = targets_lost[False]
    assert MARKED_AT + TTL - 5.0 <= last <= MARKED_AT + TTL + CONNECT_TIMEOUT + 1.0
    # Until the marking the zone's clients fail; after it, the clients whose cached answer
    # still lists the zone (on average half of them over the TTL) pick it a third of the time.
    expected = RATE / 3 * (MARKED_AT - LOSS_AT) + RATE / 3 * TTL / 2
    assert failed == pytest.approx(expected, rel=0.15)
    assert failed > 1.8 * targets_lost[True][1]


def test_a_zero_ttl_makes_cross_zone_off_recover_at_the_health_checks() -> None:
    # The DNS cache is what keeps cross-zone off failing: without it clients leave at once.
    last, _, _ = failures(
        simulate(az_scenario(cross_zone=False, client={"dns_ttl_s": 0.0}, duration_s=90.0))
    )
    assert MARKED_AT <= last <= MARKED_AT + CONNECT_TIMEOUT + 1.0


@pytest.mark.parametrize("cross_zone", [True, False])
def test_a_zone_outage_lasts_the_dns_ttl_either_way(cross_zone: bool) -> None:
    # The LB node dies with the zone: the zone leaves DNS at once (dns_failover_delay_s 0),
    # and the clients that cached its address keep failing until the TTL runs out.
    last, failed, flags = failures(
        simulate(az_scenario(cross_zone=cross_zone, event={"lb_node_down": True}))
    )
    assert LOSS_AT + TTL - 5.0 <= last <= LOSS_AT + TTL + CONNECT_TIMEOUT + 1.0
    # A share s(t) = 1 − t/TTL of the caches still lists the dead zone t after the loss; a
    # new connection picks it a third of that. With cross-zone on, the live nodes also send
    # a third of theirs to the dead zone's targets until the health checks mark them.
    marked = MARKED_AT - LOSS_AT
    expected = TTL / 6
    if cross_zone:
        expected += marked / 3 - (marked - marked**2 / (2 * TTL)) / 9
    assert failed == pytest.approx(RATE * expected, rel=0.15)
    assert set(flags) <= {"CONNECT_TIMEOUT", "CLIENT_TIMEOUT"}


def test_reset_fails_fast_where_a_black_hole_waits() -> None:
    hole = simulate(az_scenario(cross_zone=True, duration_s=60.0))
    reset = simulate(az_scenario(cross_zone=True, event={"failure": "reset"}, duration_s=60.0))
    _, _, flags = failures(reset)
    # New connections are refused; the few requests in flight on the dead gateways are reset.
    assert set(flags) <= {"CONNECT_REFUSED", "RESET"}
    assert flags["CONNECT_REFUSED"] > 0.99 * sum(flags.values())
    # A few per cent of requests fail: with a black hole they take the 2 s connect timeout.
    assert hole.totals()["p99_ms"] >= CONNECT_TIMEOUT * 1000
    assert reset.totals()["p99_ms"] < 100


def test_client_retries_on_connect_failure_hide_most_errors() -> None:
    base = failures(simulate(az_scenario(cross_zone=False, duration_s=90.0)))[1]
    retried = simulate(
        az_scenario(cross_zone=False, client={"retries": {"attempts": 3}}, duration_s=90.0)
    )
    _, failed, _ = failures(retried)
    # Each try picks an address from the cached answer anew: all three pick the dead zone's
    # a ninth as often as one does.
    assert failed < 0.2 * base
    codes = retried.codes()
    assert codes[codes["flag"].str.contains("CLIENT_RETRY")]["count"].sum() > 0.5 * base


def _overloaded(client: dict[str, Any] | None) -> Result:
    # M/M/1 at rho = 1.3: the queue grows by 30 requests a second.
    traffic: dict[str, Any] = {"name": "c", "arrival": {"kind": "poisson", "rate_rps": 130}}
    if client is not None:
        traffic["client"] = client
    sc = scenario_from_dict(
        {
            "name": "overload",
            "run": {"duration_s": 30.0, "warmup_s": 2.0, "seed": 5},
            "traffic": [traffic],
            "aws": {
                "lb_latency": "zero",
                "kube_proxy_latency": "zero",
                "cross_node_latency": "zero",
                "cross_az_latency": "zero",
            },
            "ingress": {
                "azs": ["a"],
                "nodes_per_az": 1,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "svc",
                    "versions": [{"name": "v1", "replicas": 1, "service_time": "exp(10ms)"}],
                }
            ],
        }
    )
    return simulate(sc)


def test_the_client_timeout_makes_an_overloaded_run_fail() -> None:
    idealised = _overloaded(None).totals()
    timed = _overloaded({"timeout_s": 1.0})
    totals = timed.totals()
    # Without a timeout every completed request is a success: overload only shows as latency.
    assert idealised["success_ratio"] == 1.0
    # With one, requests that waited 1 s end as failures (status 0, CLIENT_TIMEOUT); the
    # backend still serves them, so the queue never drains and most of the run fails.
    assert totals["success_ratio"] < 0.5
    codes = timed.codes()
    gave_up = codes[codes["flag"] == "CLIENT_TIMEOUT"]
    assert set(gave_up["status"]) == {0}
    assert totals["max_ms"] <= 1000.0 + 1e-6


def test_auto_engine_falls_back_for_the_client_model() -> None:
    result = simulate(az_scenario(cross_zone=True, duration_s=30.0), engine="auto")
    notes = [f.message for f in result.findings]
    assert any("the client model" in n for n in notes), notes


def test_the_nlb_resets_connections_to_a_target_it_marks_unhealthy() -> None:
    # Keep-alive connections that stay open; a client timeout longer than the health checks:
    # the requests on connections to a dead target wait, unanswered, until the NLB marks the
    # target unhealthy and resets its connections.
    sc = az_scenario(cross_zone=True, client={"timeout_s": 60.0}, duration_s=70.0).with_overrides(
        {"traffic.0.connections": {"mode": "keepalive", "pool_size": 30}}
    )
    result = simulate(sc)
    codes = result.codes()
    bad = codes[(codes["status"] == 0) & (codes["count"] > 0)]
    reset = bad[bad["flag"] == "RESET"]
    assert reset["count"].sum() > 10
    # Answered at the marking (the 1 s window from MARKED_AT), not at the client's timeout.
    assert set(reset["t_s"]) == {MARKED_AT}
    assert "CLIENT_TIMEOUT" not in set(bad["flag"])


def test_the_dns_failover_delay_comes_before_the_ttl() -> None:
    delay = 20.0
    sc = az_scenario(cross_zone=False, event={"lb_node_down": True}).with_overrides(
        {"aws.dns_failover_delay_s": delay}
    )
    last, _, _ = failures(simulate(sc))
    assert LOSS_AT + delay + TTL - 5.0 <= last <= LOSS_AT + delay + TTL + CONNECT_TIMEOUT + 1.0


def test_client_retries_on_5xx_follow_the_closed_form() -> None:
    # A version failing half its requests with 503, Envoy's retries off, the client retrying
    # 5xx up to 3 tries: a request fails only when all 3 tries do, 1/8; tries per request
    # 1 + 1/2 + 1/4.
    sc = scenario_from_dict(
        {
            "name": "client-5xx",
            "run": {"duration_s": 25.0, "warmup_s": 2.0, "seed": 11},
            "rules": rules({"attempts": 0}),
            "traffic": [
                {
                    "name": "c",
                    "arrival": {"kind": "poisson", "rate_rps": 200},
                    "client": {
                        "retries": {"attempts": 3, "retry_on": ["5xx"], "backoff_base_s": 0.01}
                    },
                }
            ],
            "aws": ZERO_NET,
            "ingress": {"azs": ["a"], "cpu_per_request": "zero", "proxy_latency": "zero"},
            "services": [
                {
                    "name": "api",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 2,
                            "concurrency": 50,
                            "service_time": "exp(5ms)",
                            "errors": [{"probability": 0.5, "status": 503}],
                        }
                    ],
                }
            ],
        }
    )
    totals = simulate(sc).totals()
    n = totals["requests"]
    # 5 standard errors of a binomial share; the tries per request likewise.
    assert totals["success_ratio"] == pytest.approx(7 / 8, abs=5 * (7 / 64 / n) ** 0.5)
    tries_sd = 0.6875**0.5  # tries are 1, 2, 3 with chances 1/2, 1/4, 1/4
    assert totals["upstream_requests"] / n == pytest.approx(1.75, abs=5 * tries_sd / n**0.5)


def test_a_node_loss_with_reset_is_refused_until_the_health_checks() -> None:
    sc = az_scenario(
        cross_zone=True,
        event={"kind": "node_loss", "node": "ingress-a-0", "failure": "reset"},
        duration_s=70.0,
    )
    last, failed, flags = failures(simulate(sc))
    assert set(flags) <= {"CONNECT_REFUSED", "RESET"}
    assert flags["CONNECT_REFUSED"] > 0.99 * failed
    assert MARKED_AT <= last <= MARKED_AT + 1.0  # refused at once: no connect timeout to wait


@pytest.mark.parametrize("reconnect", [False, True])
def test_reconnect_on_5xx_moves_a_keepalive_connection(reconnect: bool) -> None:
    # One keep-alive connection for all clients, half the answers 503. Kept, it pins every
    # request to one ingress node; replaced after each 5xx, it is re-hashed over the three.
    sc = az_scenario(cross_zone=True, duration_s=30.0, event={"at_s": 29.0}).with_overrides(
        {
            "traffic.0.connections": {"mode": "keepalive", "pool_size": 1},
            "traffic.0.client.reconnect_on_5xx": reconnect,
            "services.0.versions.0.errors": [{"probability": 0.5, "status": 503}],
            "rules": rules({"attempts": 0}),
        }
    )
    ingress = simulate(sc).ingress()
    shares = ingress.groupby("ingress_node")["requests"].sum()
    shares = shares / shares.sum()
    if reconnect:
        assert len(shares) == 3
        assert shares.max() < 0.45  # a third each, give or take
    else:
        assert shares.max() == 1.0
