"""Queue lengths over time (the ``queued`` column of ``utilisation``) and capacity after a loss.

The sampled queue length of an M/M/1 pod averages to Lq = λ·Wq (Little's law on the queue,
Erlang C's Wq): sampling a stationary queue at fixed times is unbiased. A lost node or pod has
capacity 0 from the loss on, so the utilisation the frame reports after an AZ loss is that of
the survivors.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.results import Result
from istiolab.sim.scenario import mmc_scenario, scenario_from_dict
from istiolab.sim.theory import mmc_wait


def test_sampled_queue_length_matches_little_on_the_queue() -> None:
    lam, mean_ms = 80.0, 10.0  # ρ = 0.8: Lq = ρ²/(1 − ρ) = 3.2
    sc = mmc_scenario(lam, mean_ms, 1, duration_s=300.0, warmup_s=20.0)
    sc = sc.model_copy(update={"run": sc.run.model_copy(update={"metrics_interval_s": 0.5})})
    res = simulate(sc, seed=7)
    ut = res.utilisation()
    pod = ut[(ut["kind"] == "pod") & (ut["t_s"] >= 20.0)]
    wq_s, _ = mmc_wait(lam, 1000.0 / mean_ms, 1)
    lq = lam * wq_s
    assert math.isclose(lq, 3.2, rel_tol=1e-9)
    # 560 samples of a queue whose standard deviation is ~4.3 and relaxation time ~1 s:
    # the standard error of the mean is ~0.3; 3 of them.
    assert abs(float(pod["queued"].mean()) - lq) < 0.9, float(pod["queued"].mean())
    # A queue is not a constant: the samples spread (a broken sampler gives all zeros).
    assert float(pod["queued"].max()) >= 5.0


def _two_zones() -> dict[str, object]:
    return {
        "name": "two-zones",
        "run": {"duration_s": 80.0, "warmup_s": 5.0, "metrics_interval_s": 0.25},
        "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 200}}],
        "aws": {"lb": "alb", "health_check": {"interval_s": 1.0, "unhealthy_threshold": 2}},
        "ingress": {"azs": ["a", "b"], "nodes_per_az": 1},
        "services": [
            {
                "name": "api",
                "endpoint_delay_s": 0.0,
                "versions": [
                    {"name": "v1", "replicas": 2, "concurrency": 4, "service_time": "exp(10ms)"}
                ],
            }
        ],
        "events": [{"at_s": 40.0, "kind": "az_loss", "az": "a"}],
    }


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_a_lost_zone_has_no_capacity_and_the_survivors_carry_the_load(engine: str) -> None:
    res = simulate(scenario_from_dict(_two_zones()), seed=3, engine=engine)
    ut = res.utilisation()
    after = ut[ut["t_s"] >= 45.0]  # health checks took the lost targets out by 42 s
    lost = after[after["az"] == "a"]
    kept = after[after["az"] == "b"]
    assert len(lost) > 0
    assert (lost["capacity"] == 0.0).all()
    assert (kept["capacity"] > 0.0).all()
    before = ut[(ut["t_s"] >= 5.0) & (ut["t_s"] < 40.0)]
    pods_before = before[(before["kind"] == "pod")]
    pods_after = after[(after["kind"] == "pod") & (after["az"] == "b")]
    # The same 200 req/s on half the pods: the survivor's busy servers double (ρ 0.25 → 0.5);
    # ~150 instantaneous samples a side, each of a binomial-like count of 4 servers.
    rho_before = pods_before["busy"].sum() / pods_before["capacity"].sum()
    rho_after = pods_after["busy"].sum() / pods_after["capacity"].sum()
    assert 1.6 < rho_after / rho_before < 2.5, (rho_before, rho_after)


def test_a_result_saved_before_the_queued_column_loads_with_nan(tmp_path: Path) -> None:
    res = simulate(mmc_scenario(50.0, 10.0, 1, duration_s=3.0, warmup_s=0.5), seed=1)
    res.save(tmp_path, fmt="csv")
    util = tmp_path / "utilisation.csv"
    frame = pd.read_csv(util)
    frame.drop(columns=["queued"]).to_csv(util, index=False)
    back = Result.load(tmp_path)
    assert back.utilisation()["queued"].isna().all()
    assert back.utilisation()["busy"].tolist() == res.utilisation()["busy"].tolist()
