"""Windowed SLO metrics (#20): the worst metrics window and the time to recover after an event.

The expected values come from the event's mechanics and a fluid queue, not from trial runs:

* A crashed pod stays in Envoy's endpoints for ``endpoint_delay_s`` and every try sent to it
  fails at once (no retries here), so windows have errors from the crash until the delay ends:
  with 1 s windows and the crash at a window boundary, recovery is exactly the delay.
* Two of r pods (2 servers of 10 ms each, 200 req/s per pod) down for 2 s at 500 req/s: the
  remaining 200 (r − 2) req/s leave a backlog of 2 (500 − 200 (r − 2)) requests, drained at
  200 r − 500 per second once they are back. r = 3: 600 requests, 6 s to drain, so the p99 is
  back under 100 ms about 8 s after the crash; r = 4: 200 requests, 0.7 s; r = 6: no backlog.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.results import SCHEMAS, Result, make_frame
from istiolab.sim.scenario import Scenario, mmc_scenario, scenario_from_dict

from ._scenarios import ZERO_NET, crash_scenario, rules


def outage(replicas: int, restart_after_s: float | None = 2.0) -> Scenario:
    event: dict[str, Any] = {"kind": "pod_crash", "at_s": 8.0, "count": 2}
    if restart_after_s is not None:
        event["restart_after_s"] = restart_after_s
    return scenario_from_dict(
        {
            "name": "outage",
            "run": {"duration_s": 24.0, "warmup_s": 2.0, "seed": 5},
            "rules": rules({"attempts": 0}),
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 500}}],
            "aws": ZERO_NET,
            "ingress": {
                "azs": ["a"],
                "nodes_per_az": 1,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "api",
                    "endpoint_delay_s": 0.0,
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": replicas,
                            "concurrency": 2,
                            "service_time": "exp(10ms)",
                            "startup_s": 0,
                        }
                    ],
                }
            ],
            "events": [event],
        }
    )


def test_windows_follow_the_time_series_after_the_warm_up() -> None:
    result = simulate(crash_scenario(5.0), seed=1)
    windows = result.windows()
    # 20 s run, 1 s warm-up, 1 s windows: windows start at 1, 2, ..., 19
    assert windows["t_s"].tolist() == [float(t) for t in range(1, 20)]
    ts = result.timeseries()
    ts = ts[(ts["t_s"] >= 1.0) & (ts["version"] == "")]
    rps = ts[ts["metric"] == "rps"].set_index("t_s")["value"]
    p99 = ts[ts["metric"] == "p99_ms"].set_index("t_s")["value"]
    assert windows.set_index("t_s")["requests"].tolist() == [round(v) for v in rps]
    assert windows.set_index("t_s")["p99_ms"].tolist() == p99.tolist()  # one route: exact
    # one of two pods is dead from 5 s for endpoint_delay_s = 5 s: about half the tries fail
    bad = windows[windows["error_rate"] > 0]
    assert bad["t_s"].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert (bad["error_rate"] > 0.3).all()
    totals = result.window_totals()
    assert totals["window_error_rate_max"] == bad["error_rate"].max()
    assert totals["window_p99_ms_max"] == windows["p99_ms"].max()
    p999 = ts[ts["metric"] == "p999_ms"].set_index("t_s")["value"]
    assert windows.set_index("t_s")["p999_ms"].tolist() == p999.tolist()
    assert totals["window_p999_ms_max"] == windows["p999_ms"].max()
    assert (windows["p999_ms"].dropna() >= windows["p99_ms"].dropna()).all()


@pytest.mark.parametrize("delay", [2.0, 5.0])
def test_time_to_recover_is_the_endpoint_delay(delay: float) -> None:
    result = simulate(crash_scenario(delay), seed=1)
    assert result.window_totals()["time_to_recover_s"] == delay


def test_time_to_recover_is_shorter_with_more_headroom() -> None:
    recover: dict[int, list[float]] = {3: [], 4: [], 6: []}
    for seed in range(3):
        for r in recover:
            w = simulate(outage(r), seed=seed).window_totals(p99_ms=100.0)
            recover[r].append(w["time_to_recover_s"])
    for seed in range(3):  # the same seeds: more pods recover sooner, run by run
        assert recover[3][seed] > recover[4][seed] > recover[6][seed]
    # the fluid model: 2 s down plus 6 s to drain 600 requests; ±2 windows for the noise
    assert min(recover[3]) >= 6.0
    assert max(recover[3]) <= 11.0
    assert max(recover[4]) <= 4.0  # 2 s down, 0.7 s to drain, and the window the crash is in
    assert recover[6] == [0.0, 0.0, 0.0]  # 4 pods carry 500 req/s: the p99 never goes over


def test_time_to_recover_never_and_without_events() -> None:
    down = simulate(outage(3, restart_after_s=None), seed=1).window_totals(p99_ms=100.0)
    assert down["time_to_recover_s"] == math.inf  # 1 pod for 500 req/s: the queue only grows
    calm = simulate(mmc_scenario(200, 10, 4, duration_s=6, warmup_s=1), seed=1)
    assert math.isnan(calm.window_totals()["time_to_recover_s"])  # nothing to recover from
    # timed from an explicit instant instead: nothing misses the objective after it
    assert calm.window_totals(after_s=3.0)["time_to_recover_s"] == 0.0


def synthetic(error: list[float], p99: list[float]) -> Result:
    """A one-route result of 1 s windows, 100 requests each, and an event at 2 s."""
    n = len(error)
    frames = {name: make_frame(name) for name in SCHEMAS}
    rows: dict[str, list[Any]] = {"t_s": [], "route": [], "version": [], "metric": [], "value": []}
    for metric, values in (("rps", [100.0] * n), ("success_ratio", [1 - e for e in error]),
                           ("p99_ms", p99)):  # fmt: skip
        for k, v in enumerate(values):
            for col, x in zip(rows, (float(k), "r", "", metric, v), strict=True):
                rows[col].append(x)
    frames["timeseries"] = make_frame("timeseries", rows)
    meta = {"run_id": "x", "seed": 1, "scenario": "s", "params": {},
            "config": {"duration_s": float(n), "warmup_s": 0.0, "interval_s": 1.0},
            "events": [{"t_s": 2.0, "kind": "az_loss", "target": "a"}]}  # fmt: skip
    return Result(frames, meta)


def test_recovery_is_the_last_miss_not_a_lull_between_two() -> None:
    # the zone's fast 502s stop at 3 s, the load moved onto the survivors queues at 4 s
    lull = synthetic([0, 0, 0.3, 0, 0, 0, 0, 0], [50, 50, 50, 50, 900, 50, 50, 50])
    assert lull.window_totals(p99_ms=100.0)["time_to_recover_s"] == 3.0  # back from 5 s
    assert lull.window_totals()["time_to_recover_s"] == 1.0  # errors alone: back from 3 s
    worse = synthetic([0, 0, 0.3, 0, 0, 0, 0, 0], [50, 50, 50, 50, 50, 50, 900, 900])
    assert worse.window_totals(p99_ms=100.0)["time_to_recover_s"] == math.inf
    calm = synthetic([0.0] * 6, [50.0] * 6)
    assert calm.window_totals(p99_ms=100.0)["time_to_recover_s"] == 0.0
    assert calm.window_totals(after_s=None)["window_error_rate_max"] == 0.0
