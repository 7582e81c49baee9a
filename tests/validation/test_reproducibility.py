"""Reproducibility and common random numbers, which every statistical test above relies on.

* The same scenario and seed give identical results (every frame, not only the summary).
* Each component draws from its own stream derived from the seed and the component's name, so
  changing one component's parameters leaves the others' draws alone: with a different backend
  service time, the arrival times and the weighted-cluster picks are the same request by
  request (compared on fully traced runs: ``trace_sample: 1``).
"""

from __future__ import annotations

import pandas as pd

from istiolab.sim.engine import simulate
from istiolab.sim.results import SCHEMAS, Result

from ._harness import assert_little, load

TRACED = {"run.trace_sample": 1.0, "run.duration_s": 3.0, "traffic.0.arrival.rate_rps": 500}


def arrivals_and_versions(result: Result) -> pd.DataFrame:
    """Per request: arrival time (client span start) and the version it was routed to."""
    tr = result.trace()
    client = tr[tr["span"] == "client"].set_index("request_id")["start_s"]
    route = tr[tr["parent"] == "client"]
    version = route.groupby("request_id")["tags"].first().map(lambda t: t.get("version", ""))
    return pd.DataFrame({"start_s": client, "version": version}).sort_index()


def test_same_seed_same_result() -> None:
    sc = load("08-weighted-clusters", TRACED)
    a, b = simulate(sc, 42), simulate(sc, 42)
    assert_little(a)
    assert_little(b)
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(a, name)(), getattr(b, name)())
    assert a.totals() == b.totals()
    c = simulate(sc, 43)
    assert not a.summary()["requests"].equals(c.summary()["requests"])


def test_progress_reports_do_not_change_the_result() -> None:
    """simulate(progress=...) runs in 100 pieces; the result is the one-piece result."""
    sc = load("08-weighted-clusters", TRACED)
    seen: list[float] = []
    a, b = simulate(sc, 42), simulate(sc, 42, progress=seen.append)
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(a, name)(), getattr(b, name)())
    assert len(seen) == 100
    assert seen == sorted(seen)
    assert seen[0] == 0.01
    assert seen[-1] == 1.0


def test_common_random_numbers_backend_change() -> None:
    """A slower backend changes latencies, not arrival times or weighted picks."""
    base = load("08-weighted-clusters", TRACED)
    slower = base.with_overrides(
        {f"services.0.versions.{v}.service_time": "exp(20ms)" for v in range(3)}
    )
    a, b = simulate(base, 7), simulate(slower, 7)
    assert_little(a)
    assert_little(b)
    assert a.totals()["mean_ms"] != b.totals()["mean_ms"]
    ra, rb = arrivals_and_versions(a), arrivals_and_versions(b)
    # Requests still in flight at the end are not traced; compare the ones both runs finished.
    common = ra.index.intersection(rb.index)
    assert len(common) > 0.99 * len(ra)
    pd.testing.assert_frame_equal(ra.loc[common], rb.loc[common])


def routing_order_versions(result: Result) -> list[str]:
    """Versions picked by the router, in the order the router made the picks."""
    tr = result.trace()
    route = tr[(tr["parent"] == "client") & (tr["tags"].map(lambda t: t.get("stage")) == "route")]
    route = route.sort_values(["start_s", "request_id"])
    return [t.get("version", "") for t in route["tags"]]


def test_common_random_numbers_ingress_change() -> None:
    """A gateway CPU cost (another component) leaves the arrival times unchanged, and the
    router's weighted picks are the same *sequence* of draws.

    Draws are per component and consumed in order, not keyed by request: with CPU queueing on
    two workers, requests can reach the router in a different order, and then the k-th pick
    goes to another request (about 1 % of them here). The picks are the same sequence in
    routing order, which is what common random numbers per component promise.
    """
    base = load("08-weighted-clusters", TRACED)
    costly = base.with_overrides({"ingress.cpu_per_request": "exp(0.2ms)"})
    a, b = simulate(base, 8), simulate(costly, 8)
    assert_little(a)
    assert_little(b)
    ra, rb = arrivals_and_versions(a), arrivals_and_versions(b)
    common = ra.index.intersection(rb.index)
    assert len(common) > 0.99 * len(ra)
    pd.testing.assert_series_equal(ra.loc[common, "start_s"], rb.loc[common, "start_s"])
    # Request counts per interval, by arrival, are identical.
    per_interval_a = (ra["start_s"] // 0.5).value_counts().sort_index()
    per_interval_b = (rb["start_s"] // 0.5).value_counts().sort_index()
    pd.testing.assert_series_equal(per_interval_a.iloc[:-1], per_interval_b.iloc[:-1])
    va, vb = routing_order_versions(a), routing_order_versions(b)
    m = min(len(va), len(vb))
    assert m > 0.99 * len(va)
    assert va[:m] == vb[:m]
