"""Load-balancer state per Envoy worker (#16): round robin keeps one index per worker thread.

Theory. W workers each run round robin over n hosts from a random offset, and requests reach
the workers at random. Over a window, worker w sends N_w requests: every host gets ⌊N_w/n⌋ of
them, and r_w = N_w mod n hosts (a run of consecutive hosts from a uniform offset) get one more.
For one worker, the sample variance of the per-host counts is r(n − r)/(n(n − 1)); with r
uniform on {0, …, n−1} its mean is (n + 1)/(6n). The W workers' offsets are independent, so
the cross terms vanish in expectation and E[s²] = W (n + 1)/(6n): 0.889 for W = 4, n = 3,
against 0.222 for one shared round robin (W = 1). Envoy: ``EdfLoadBalancerBase`` seeds each
worker's index at random (source/extensions/load_balancing_policies/common/load_balancer_impl.cc).
"""

from __future__ import annotations

import math
import statistics

import pytest

from istiolab.analysis.planner import t_quantile
from istiolab.sim.engine import simulate
from istiolab.sim.scenario import Scenario, scenario_from_dict

from ._scenarios import ZERO_NET, rules

N_PODS = 3


def scenario(workers: int) -> Scenario:
    return scenario_from_dict(
        {
            "name": "rr-workers",
            "run": {"duration_s": 2.0, "warmup_s": 0.5, "seed": 1},
            "rules": rules(None, lb="ROUND_ROBIN"),
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 300}}],
            "aws": ZERO_NET,
            "ingress": {
                "azs": ["a"],
                "nodes_per_az": 1,
                "concurrency": workers,
                "cores_per_node": workers,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "api",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": N_PODS,
                            "concurrency": 1000,
                            "service_time": "zero",
                        }
                    ],
                }
            ],
        }
    )


def per_host_variance(workers: int, seeds: int, engine: str) -> tuple[float, float]:
    """Mean over seeds of the per-host sample variance, and its 99.9 % t half-width."""
    values = []
    for seed in range(seeds):
        result = simulate(scenario(workers), seed=seed, engine=engine)
        counts = result.upstream().groupby("host")["attempts"]
        per_host = counts.sum().tolist()
        assert len(per_host) == N_PODS
        values.append(statistics.variance(per_host))
    half = t_quantile(0.9995, seeds - 1) * statistics.stdev(values) / math.sqrt(seeds)
    return statistics.fmean(values), half


def expected(workers: int) -> float:
    return workers * (N_PODS + 1) / (6 * N_PODS)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_round_robin_is_per_worker(engine: str) -> None:
    mean, half = per_host_variance(4, 48, engine)
    assert abs(mean - expected(4)) <= half
    # the interval excludes the shared-state answer (what the simulator gave before)
    assert mean - half > expected(1)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_one_worker_is_one_round_robin(engine: str) -> None:
    mean, half = per_host_variance(1, 24, engine)
    assert abs(mean - expected(1)) <= half
    assert mean + half < expected(4)
