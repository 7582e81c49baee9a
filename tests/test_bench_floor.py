"""bench/floor.py, the floor bench (b) holds the fast engine against, models the same pipeline.

Its rate is only a floor for the engine if it simulates what the engine simulates: these tests
hold its mean latency to the fast engine's on the seed scenario, and its refusal of a scenario
of another shape (its loop is written for the seed's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.scenario import load_scenario

pytest.importorskip("numba")

from bench.floor import FloorShapeError, floor_params, floor_rate

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "sim/scenarios/seed-httpbin.yaml"


def test_the_floor_and_the_fast_engine_agree_on_the_seed_pipelines_mean_latencies() -> None:
    scenario = load_scenario(SEED).with_overrides({"run.duration_s": 300.0, "run.warmup_s": 0.0})
    result = simulate(scenario, seed=1, engine="fast")
    engine = result.totals()
    stages = result.stages().set_index("stage")["mean_ms"]
    floor = floor_rate(scenario, int(engine["requests"]))
    # The LB and ingress stages are fixed costs mixed by coin flips (the AZ hop on half the
    # requests): over ~120 000 requests their means are known to about 0.2 %, so 1 % catches a
    # cost the floor forgot or added (the smallest, kube-proxy's 0.05 ms, is 8 % of the LB's
    # 0.65 ms). The route stage and the total carry the lognormal service time (sd ~5 ms,
    # a standard error of ~0.015 ms on ~6.6 ms for each side): 2 % is over eight of those.
    for stage in ("lb", "ingress"):
        assert floor["stage_mean_ms"][stage] == pytest.approx(stages[stage], rel=0.01), stage
    assert floor["stage_mean_ms"]["route"] == pytest.approx(stages["route"], rel=0.02)
    assert floor["mean_ms"] == pytest.approx(engine["mean_ms"], rel=0.02)
    assert floor["events_per_request"] == pytest.approx(6.0, abs=1e-3)


def test_the_floor_refuses_a_scenario_it_does_not_model() -> None:
    scenario = load_scenario(SEED).with_overrides({"aws.lb": "alb"})
    with pytest.raises(FloorShapeError, match="shape"):
        floor_params(scenario)


def test_the_floor_stops_with_an_error_when_its_tables_would_overflow() -> None:
    # 5000 req/s against two pods of 8 servers (about 1 600 req/s): the queue grows without
    # bound; the loop's fixed tables must stop it with an error, never write past their end
    scenario = load_scenario(SEED).with_overrides(
        {"traffic.0.arrival.rate_rps": 5000.0, "run.duration_s": 20.0}
    )
    with pytest.raises(RuntimeError, match="in flight"):
        floor_rate(scenario, 100_000)
