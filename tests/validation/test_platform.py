"""Truths 14–16 of ``external-truths.md``: AWS load balancing and the Kubernetes HPA.

Per-node request counts come from ``Result.ingress()`` (one row per ingress node that served
requests after the warm-up; a node that served none has no row, so its count is 0).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from istiolab.sim.results import Result
from istiolab.sim.theory import cross_zone_shares, hpa_desired

from ._harness import check, load, mean_ci, run, wilson

# every theory case runs on both engines, with the same tolerances (conftest.py)
pytestmark = pytest.mark.usefixtures("engine")

NODES_14 = [f"ingress-a-{i}" for i in range(2)] + [f"ingress-b-{i}" for i in range(8)]


def node_counts(result: Result, nodes: list[str]) -> list[int]:
    """Requests (after warm-up) per ingress node, in the order of *nodes* (0 if absent)."""
    ing = result.ingress()
    by_node = dict(zip(ing["ingress_node"], ing["requests"], strict=True))
    assert set(by_node) <= set(nodes)
    return [int(by_node.get(n, 0)) for n in nodes]


# -- 14 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "overrides", "cross_zone", "seed"),
    [
        ("nlb-default-off", {}, False, 14001),  # NLB: cross-zone off by default
        ("alb-default-on", {"aws.lb": "alb"}, True, 14002),  # ALB: on by default
        ("nlb-cross-zone-on", {"aws.cross_zone": True}, True, 14003),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_cross_zone(label: str, overrides: dict[str, Any], cross_zone: bool, seed: int) -> None:
    """2 nodes in AZ a, 8 in b, clients 50/50: off → 25 % / 6.25 % per node; on → 10 %."""
    r = run(load("14-aws-cross-zone", overrides), seed)
    counts = node_counts(r, NODES_14)
    n = sum(counts)
    shares = cross_zone_shares([2, 8], cross_zone)
    assert shares == ([0.1] * 10 if cross_zone else [0.25] * 2 + [0.0625] * 8)
    if overrides.get("aws.lb") == "alb":
        # ALB round robin over all 10 targets: not binomial but exact, to within one request.
        assert max(counts) - min(counts) <= 1
    for node, k, share in zip(NODES_14, counts, shares, strict=True):
        # Each request (one connection each) lands on a node by independent draws (client AZ,
        # then a target): binomial counts, Wilson interval (n ≈ 20 000). Power: with
        # cross-zone wrongly on/off the shares move by 15 or 3.75 points, intervals are ±1.
        check(
            f"14 cross-zone {label} {node}",
            f"test_cross_zone[{label}]",
            share,
            wilson(k, n),
        )


# -- 15 -----------------------------------------------------------------------------------

NODES_15 = [f"ingress-a-{i}" for i in range(4)]


def _share_dispersion(overrides: dict[str, Any], seeds: range) -> list[float]:
    """Per seed: D = mean over the 4 nodes of (share − 1/4)²."""
    sc = load("15-nlb-flow-hash", overrides)
    out = []
    for seed in seeds:
        counts = node_counts(run(sc, seed), NODES_15)
        n = sum(counts)
        out.append(sum((k / n - 0.25) ** 2 for k in counts) / 4)
    return out


def test_nlb_flow_hash_lumpiness() -> None:
    """The NLB balances connections: with K keep-alive connections the per-node share is
    C_i/K (plus request noise), C ~ Multinomial(K, 1/4).

    Law of total variance for one node's share X/N, X | C ~ Binomial(N, C/K):
    Var = Var(C/K) + E[(C/K)(1 − C/K)]/N = p(1 − p)/K + p(1 − p)(1 − 1/K)/N, p = 1/4,
    and E[share] = p exactly, so D = mean over nodes of (share − p)² is unbiased for Var.
    D is independent across seeds: t interval of its mean over 40 seeds.
    """
    p = 0.25
    for pool, base in ((8, 15000), (32, 15100)):
        d = _share_dispersion({"traffic.0.connections.pool_size": pool}, range(base, base + 40))
        n = 2000  # ≈ requests per run (1000/s for 2 s); the request term is < 1 % of the total
        theory = p * (1 - p) / pool + p * (1 - p) * (1 - 1 / pool) / n
        check(
            f"15 NLB flow hash variance K={pool}",
            "test_nlb_flow_hash_lumpiness",
            theory,
            mean_ci(d),
        )
    # One connection per request: the spread is only the request noise p(1 − p)/N, two orders
    # of magnitude below the keep-alive case (K = 8: 0.0235).
    d = _share_dispersion({"traffic.0.connections": {"mode": "per_request"}}, range(15200, 15220))
    ci = mean_ci(d)
    check(
        "15 per-request connections variance",
        "test_nlb_flow_hash_lumpiness",
        p * (1 - p) / 2000,
        ci,
    )
    assert ci.hi < 0.1 * p * (1 - p) / 8


# -- 16 -----------------------------------------------------------------------------------


def test_hpa_scales_50_to_60() -> None:
    """50 pods at exactly 90 % with target 75 %: ⌈50 × 0.9/0.75⌉ = 60, at the 2nd sync (30 s)."""
    assert hpa_desired(50, 0.9, 0.75) == 60
    # One gateway worker: round robin is per Envoy worker, and only a single round robin
    # spreads the replayed arrivals exactly evenly (the truth here is the HPA, not the LB).
    r = run(load("16-hpa", {"ingress.concurrency": 1}), 16001)
    # t = 15: the first period averages the ramp-up, 76 % (inside the 10 % tolerance);
    # t = 30: 90 % → 60; t = 45: 180 busy of 240 = 75 % = target → no change.
    assert r.scaling == [(30.0, "api", "v1", 50, 60)]
    u = r.utilisation()
    pods = u[(u["kind"] == "pod") & (u["t_s"] >= 16) & (u["t_s"] < 30)]
    busy = pods.groupby("t_s")["busy"].sum()
    assert (busy == 180).all()  # exactly 90 % of 200 servers at every sample


def test_hpa_tolerance() -> None:
    """80 % with target 75 %: ratio 1.067 is inside the 10 % tolerance → no change."""
    assert hpa_desired(50, 0.8, 0.75) == 50
    r = run(load("16-hpa", {"services.0.versions.0.service_time": "det(5000ms)"}), 16002)
    assert r.scaling == []
    u = r.utilisation()
    pods = u[(u["kind"] == "pod") & (u["t_s"] >= 6)]
    assert math.isclose(pods.groupby("t_s")["busy"].sum().mean(), 160.0)
