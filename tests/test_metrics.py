"""Streaming metrics: exact counts from synthetic records, HDR precision, warm-up, series, memory.

Every test feeds hand-made records whose right answer is known, so assertions are exact (counts,
means) or within HDR's documented precision (3 significant figures: a reported percentile is the
highest value of its bucket, at most 0.1 % above the true value).
"""

from __future__ import annotations

import gc
import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from istiolab.sim.metrics import FLUSH_AT, Metrics, _Layout
from istiolab.sim.results import Result

HOUR_US = 3_600_000_000


def rec(
    m: Metrics,
    t_start: float,
    latency: float,
    *,
    route: str = "r1",
    cluster: str = "c-v1",
    version: str = "v1",
    status: int = 200,
    flags: str = "",
    retries: int = 0,
    upstream_requests: int = 1,
    node: str = "n1",
    az: str = "a",
    stages: tuple[tuple[str, float], ...] = (),
) -> None:
    m.record(
        t_start=t_start,
        t_end=t_start + latency,
        route=route,
        cluster=cluster,
        version=version,
        status=status,
        flags=flags,
        retries=retries,
        upstream_requests=upstream_requests,
        ingress_node=node,
        az=az,
        stages=stages,
    )


def within_hdr(reported: float, exact: float) -> bool:
    """A 3-significant-figure HDR value is the top of a bucket at most 0.1 % (or 1 µs) wide."""
    return exact - 1e-9 <= reported <= exact * 1.001 + 1e-3


def series(result: Result, metric: str, route: str = "r1", version: str = "") -> list[float]:
    ts = result.timeseries()
    sel = ts[(ts.metric == metric) & (ts.route == route) & (ts.version == version)]
    return sel.sort_values("t_s")["value"].tolist()


# --------------------------------------------------------------------------- HDR layout


def test_vectorised_index_matches_hdrhistogram() -> None:
    layout = _Layout(1, HOUR_US, 3)
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            np.arange(0, 5000),
            rng.integers(0, HOUR_US, 20_000),
            (10 ** rng.uniform(0, math.log10(HOUR_US), 20_000)).astype(np.int64),
            [2047, 2048, 4095, 4096, HOUR_US - 1, HOUR_US],
        ]
    ).astype(np.int64)
    ours = layout.index(values)
    theirs = np.array([layout.hdr._counts_index_for(int(v)) for v in values])
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("sig", [2, 3])
def test_batched_counts_equal_record_value(sig: int) -> None:
    layout = _Layout(1, HOUR_US, sig)
    rng = np.random.default_rng(7)
    us = (10 ** rng.uniform(1, 7, 5000)).astype(np.int64)
    reference = HdrHistogram(1, HOUR_US, sig)
    for v in us.tolist():
        reference.record_value(v)
    counts = np.bincount(layout.index(us), minlength=layout.counts_len).astype(np.int64)
    ours = layout.histogram(counts)
    assert ours.equals(reference)
    for pct in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        (value,) = layout.percentiles_us(counts, (pct,))
        assert value == reference.get_value_at_percentile(pct), pct
    decoded = HdrHistogram.decode(layout.encode(counts))
    assert decoded.get_total_count() == 5000
    assert decoded.get_value_at_percentile(99) == reference.get_value_at_percentile(99)


# --------------------------------------------------------------------------- summary


def test_counts_success_retries_and_flags_are_exact() -> None:
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
    for i in range(6):
        rec(m, 1.0 + i * 0.1, 0.010)
    rec(m, 2.0, 0.020, status=503, flags="UF,URX", retries=2, upstream_requests=3)
    rec(m, 2.5, 0.030, status=503, flags="UO", upstream_requests=1)
    rec(
        m,
        3.0,
        0.001,
        route="r2",
        cluster="",
        version="",
        status=404,
        flags="NR",
        upstream_requests=0,
    )
    res = m.result(seed=1, scenario_name="t", params={})
    s = res.summary().set_index(["route", "cluster", "version"])
    r1 = s.xs(("r1", "c-v1", "v1"))
    assert r1.requests == 8
    assert r1.rps == pytest.approx(0.8)
    assert r1.success_ratio == pytest.approx(6 / 8)
    assert r1.retries == 2
    assert r1.upstream_requests == 6 + 3 + 1
    assert r1["flags"] == {"UF": 1, "URX": 1, "UO": 1}
    assert r1.mean_ms == pytest.approx((6 * 10 + 20 + 30) / 8)
    assert r1.max_ms == pytest.approx(30.0)
    r2 = s.xs(("r2", "", ""))
    assert (r2.requests, r2.success_ratio, r2.upstream_requests) == (1, 1.0, 0)  # 4xx = success
    assert r2["flags"] == {"NR": 1}
    totals = res.totals()
    assert totals["requests"] == 9
    assert totals["retries"] == 2
    assert totals["upstream_requests"] == 10
    assert totals["success_ratio"] == pytest.approx(7 / 9)
    assert totals["flags"] == {"NR": 1, "UF": 1, "UO": 1, "URX": 1}
    codes = res.codes().groupby(["status", "flag"])["count"].sum().to_dict()
    assert codes == {(200, ""): 6, (404, "NR"): 1, (503, "UF,URX"): 1, (503, "UO"): 1}


def test_percentiles_within_hdr_precision() -> None:
    m = Metrics(duration_s=100.0, warmup_s=0.0, interval_s=10.0)
    latencies = [(i + 1) * 1e-3 for i in range(1000)]  # 1 ms … 1000 ms
    for i, lat in enumerate(latencies):
        rec(m, i * 0.05, lat)
    row = m.result(seed=1, scenario_name="t", params={}).summary().iloc[0]
    exact = np.array(latencies) * 1e3
    # HDR percentile = value of the ceil(p·N)-th smallest sample (rounded to its bucket top).
    assert within_hdr(row.p50_ms, exact[499])
    assert within_hdr(row.p90_ms, exact[899])
    assert within_hdr(row.p99_ms, exact[989])
    assert row.mean_ms == pytest.approx(exact.mean())
    assert row.max_ms == pytest.approx(1000.0)


def test_warmup_is_excluded_from_summaries_but_kept_in_the_series() -> None:
    m = Metrics(duration_s=10.0, warmup_s=2.0, interval_s=1.0)
    for i in range(10):
        rec(m, i * 0.1, 0.500, stages=(("router", 0.1),))  # start in warm-up, long latency
    for i in range(20):
        rec(m, 2.0 + i * 0.1, 0.005, stages=(("router", 0.001),))
    m.record_upstream(t=1.0, cluster="c-v1", host="p1", status=200, flags="")
    m.record_upstream(t=2.5, cluster="c-v1", host="p1", status=200, flags="")
    res = m.result(seed=None, scenario_name="t", params={})
    row = res.summary().iloc[0]
    assert row.requests == 20
    assert row.rps == pytest.approx(20 / 8)
    assert row.max_ms == pytest.approx(5.0)
    assert res.stages().iloc[0].requests == 20
    assert res.histograms().set_index("stage").loc["total", "count"] == 20
    assert res.upstream()["attempts"].sum() == 1
    assert res.ingress().iloc[0].requests == 20
    assert sum(v * 1.0 for v in series(res, "rps")) == 30  # 1-s intervals: rps = count
    assert res.meta["counters"]["records"] == 30


# --------------------------------------------------------------------------- time series


def test_per_interval_series() -> None:
    m = Metrics(duration_s=4.0, warmup_s=0.0, interval_s=1.0)
    # interval 0: 4 requests, 1 of them 503 with 1 retry; all v1, latency 10 ms
    for i in range(3):
        rec(m, 0.1 * i, 0.010)
    rec(m, 0.5, 0.010, status=503, retries=1)
    # interval 1: 2 × v1 at 100 ms (ending in interval 1), 2 × v2 at 1 ms
    rec(m, 1.0, 0.100)
    rec(m, 1.2, 0.100)
    rec(m, 1.3, 0.001, cluster="c-v2", version="v2")
    rec(m, 1.4, 0.001, cluster="c-v2", version="v2")
    # interval 2: empty. interval 3: one 429
    rec(m, 3.0, 0.002, status=429, flags="RL")
    res = m.result(seed=3, scenario_name="t", params={})
    assert series(res, "rps") == [4.0, 4.0, 0.0, 1.0]
    sr = series(res, "success_ratio")
    assert sr[0] == 0.75
    assert sr[1] == 1.0
    assert math.isnan(sr[2])
    assert sr[3] == 1.0
    assert series(res, "retries_per_s") == [1.0, 0.0, 0.0, 0.0]
    p99 = series(res, "p99_ms")
    assert within_hdr(p99[0], 10.0)
    assert within_hdr(p99[1], 100.0)
    assert math.isnan(p99[2])
    p50 = series(res, "p50_ms")
    assert within_hdr(p50[1], 1.0)  # 2 of 4 at 1 ms: ceil(0.5·4) = 2nd smallest
    v1 = series(res, "share", version="v1")
    v2 = series(res, "share", version="v2")
    assert v1[:2] == [1.0, 0.5]
    assert v2[:2] == [0.0, 0.5]
    assert math.isnan(v1[2])
    codes = res.codes()
    got = {(r.t_s, r.status, r.flag): r["count"] for _, r in codes.iterrows()}
    assert got == {(0.0, 200, ""): 3, (0.0, 503, ""): 1, (1.0, 200, ""): 4, (3.0, 429, "RL"): 1}
    assert set(res.timeseries().metric) == {
        "rps",
        "success_ratio",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p999_ms",
        "share",
        "retries_per_s",
        "in_flight",
    }


def test_series_bin_by_completion_and_clamp_to_the_last_interval() -> None:
    m = Metrics(duration_s=3.0, warmup_s=0.0, interval_s=1.0)
    rec(m, 0.5, 1.0)  # completes at 1.5 → interval 1
    rec(m, 2.9, 0.5)  # completes after the end → last interval
    res = m.result(seed=0, scenario_name="t", params={})
    assert series(res, "rps") == [0.0, 1.0, 1.0]
    # time in system is split over intervals and cut at duration_s
    assert series(res, "in_flight") == pytest.approx([0.5, 0.5, 0.1])


def test_partial_last_interval_and_interval_count() -> None:
    m = Metrics(duration_s=2.5, warmup_s=0.0, interval_s=1.0)
    rec(m, 2.1, 0.1)
    res = m.result(seed=0, scenario_name="t", params={})
    assert res.meta["config"]["intervals"] == 3
    assert series(res, "rps") == pytest.approx([0.0, 0.0, 2.0])  # 1 request in a 0.5 s interval


def test_littles_law_holds_exactly_for_contained_requests() -> None:
    m = Metrics(duration_s=20.0, warmup_s=5.0, interval_s=0.5)
    rng = np.random.default_rng(5)
    starts = np.sort(rng.uniform(5.0, 18.0, 2000))
    lats = rng.exponential(0.3, 2000).clip(max=1.9)  # all end before 20 s
    for route, (t, lat) in zip(["a", "b"] * 1000, zip(starts, lats, strict=True), strict=True):
        rec(m, float(t), float(lat), route=route)
    little = m.result(seed=0, scenario_name="t", params={}).little().set_index("route")
    assert list(little.index) == ["a", "b", "*"]
    assert little.loc["*", "requests"] == 2000
    assert little.loc["*", "window_s"] == 15.0
    assert little.loc["*", "w_s"] == pytest.approx(lats.mean())
    for route in ("a", "b", "*"):
        assert little.loc[route, "l"] == pytest.approx(little.loc[route, "lambda_w"], rel=1e-9)
    ell = little["l"].astype(float)
    assert ell["*"] == pytest.approx(ell["a"] + ell["b"])


def test_out_of_order_records_beyond_the_grace_window_are_counted_as_late() -> None:
    m = Metrics(duration_s=100.0, warmup_s=0.0, interval_s=1.0)
    rec(m, 1.0, 0.01)
    rec(m, 50.0, 0.01)
    m._flush()  # reduces the live intervals < 48 to percentiles
    rec(m, 1.0, 0.01)  # interval 1 is already reduced: late
    rec(m, 2.0, 0.01)  # interval 2 never had a value: it can still be filled
    res = m.result(seed=0, scenario_name="t", params={})
    assert res.meta["counters"]["interval_latency_late"] == 1
    assert series(res, "rps")[1:3] == [2.0, 1.0]  # still counted
    assert not math.isnan(series(res, "p99_ms")[2])
    assert res.summary().iloc[0].requests == 4


def test_a_low_rate_batch_spanning_many_intervals_stays_small() -> None:
    """One flush covering 20 000 intervals must not hold a dense histogram for each."""
    n = 20_000
    m = Metrics(duration_s=float(n), warmup_s=0.0, interval_s=1.0)
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for k in range(n):
            rec(m, k + 0.5, 0.001 * (1 + k % 7))
        m._flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (peak - base) / 1e6 < 30  # dense per-interval arrays would need 20 000 × 188 kB
    p99 = series(m.result(seed=0, scenario_name="t", params={}), "p99_ms")
    assert len(p99) == n
    for k in (0, 6, 12_345, n - 1):  # the last ones were live, the others reduced from values
        assert within_hdr(p99[k], 1.0 + k % 7)


def test_sorted_and_dense_percentiles_agree() -> None:
    layout = _Layout(1, HOUR_US, 3)
    rng = np.random.default_rng(3)
    for size in (1, 2, 3, 10, 101, 5000):
        index = np.sort(layout.index((10 ** rng.uniform(0, 6, size)).astype(np.int64)))
        counts = np.bincount(index, minlength=layout.counts_len).astype(np.int64)
        pcts = (0.0, 1.0, 50.0, 90.0, 99.0, 100.0)
        assert layout.percentiles_of_sorted(index, pcts) == layout.percentiles_us(counts, pcts)


# --------------------------------------------------------------------------- other collectors


def test_stages_upstream_utilisation_ingress() -> None:
    m = Metrics(duration_s=2.0, warmup_s=0.0, interval_s=1.0)
    for i in range(10):
        rec(
            m,
            i * 0.1,
            0.006,
            node="n1" if i < 7 else "n2",
            az="a" if i < 7 else "b",
            stages=(("lb", 0.001), ("router", 0.002), ("backend", 0.003)),
        )
    for host, n in (("p1", 3), ("p2", 1)):
        for _ in range(n):
            m.record_upstream(t=0.5, cluster="c-v1", host=host, status=503, flags="UF")
    m.record_upstream(t=0.5, cluster="c-v1", host="p2", status=200, flags="")
    m.record_utilisation(t=0.2, kind="pod", name="p1", az="a", busy=1.0, capacity=4.0)
    m.record_utilisation(t=0.7, kind="pod", name="p1", az="a", busy=3.0, capacity=4.0)
    m.record_utilisation(t=1.2, kind="pod", name="p1", az="a", busy=0.0, capacity=4.0)
    res = m.result(seed=0, scenario_name="t", params={})
    st = res.stages().set_index("stage")
    assert sorted(st.index) == ["backend", "lb", "router"]
    assert (st["requests"] == 10).all()
    assert st.loc["router", "mean_ms"] == pytest.approx(2.0)
    assert within_hdr(float(st["p99_ms"]["backend"]), 3.0)
    up = res.upstream()
    assert {(r.host, r.status, r.flag): r.attempts for _, r in up.iterrows()} == {
        ("p1", 503, "UF"): 3,
        ("p2", 200, ""): 1,
        ("p2", 503, "UF"): 1,
    }
    ut = res.utilisation()
    assert ut["t_s"].tolist() == [0.0, 1.0]
    assert ut["utilisation"].tolist() == [0.5, 0.0]
    assert ut["busy"].tolist() == [2.0, 0.0]
    ing = res.ingress().set_index("ingress_node")
    assert ing.loc["n1", "requests"] == 7
    assert ing.loc["n2", "az"] == "b"
    assert ing.loc["n1", "share"] == pytest.approx(0.7)
    assert ing.loc["n2", "rps"] == pytest.approx(1.5)


def test_latency_beyond_the_range_is_clamped_and_counted() -> None:
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0, latency_range_s=(1e-6, 1.0))
    rec(m, 0.0, 5.0)
    res = m.result(seed=0, scenario_name="t", params={})
    assert res.meta["counters"]["latency_clamped"] == 1
    assert res.summary().iloc[0].max_ms == pytest.approx(5000.0)  # exact max is kept
    assert res.summary().iloc[0].p99_ms <= 1000.0 * 1.001


# --------------------------------------------------------------------------- tracing


def test_trace_sampling() -> None:
    assert not Metrics(duration_s=1, warmup_s=0, interval_s=1).should_trace()
    assert Metrics(duration_s=1, warmup_s=0, interval_s=1, trace_sample=1.0).should_trace()
    systematic = Metrics(duration_s=1, warmup_s=0, interval_s=1, trace_sample=0.25)
    assert [systematic.should_trace() for _ in range(8)] == [False, False, False, True] * 2
    rng = Metrics(
        duration_s=1, warmup_s=0, interval_s=1, trace_sample=0.1, rng=np.random.default_rng(0)
    )
    # Binomial(10 000, 0.1): sd 30; 3.29 sd is a two-sided 99.9 % band (the seed is fixed).
    assert abs(sum(rng.should_trace() for _ in range(10_000)) - 1000) <= 3.29 * 30


def test_trace_limit_drops_and_counts() -> None:
    m = Metrics(duration_s=1, warmup_s=0, interval_s=1, trace_sample=1.0, trace_limit=3)
    for i in range(5):
        m.trace_span(trace_id=i, span="client", parent=None, start=0.0, end=0.1, tags={})
    res = m.result(seed=0, scenario_name="t", params={})
    assert len(res.trace()) == 3
    assert res.meta["counters"]["spans_dropped"] == 2


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duration_s": 0.0}, "duration_s must be > 0, got 0.0"),
        ({"warmup_s": 10.0}, r"warmup_s must be in \[0, duration_s=10.0\), got 10.0"),
        ({"interval_s": 0.0}, "interval_s must be in"),
        ({"trace_sample": 1.5}, "trace_sample must be in"),
        ({"trace_limit": -1}, "trace_limit must be >= 0"),
        ({"latency_range_s": (1.0, 1.5)}, "latency_range_s must span"),
        ({"significant_figures": 6}, "significant_figures must be in 1..5, got 6"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"duration_s": 10.0, "warmup_s": 0.0, "interval_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        Metrics(**args)  # type: ignore[arg-type]


def test_negative_latency_and_span_are_rejected() -> None:
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
    with pytest.raises(ValueError, match=r"t_end \(1.0\) is before t_start \(2.0\) for route 'r1'"):
        rec(m, 2.0, -1.0)
    with pytest.raises(ValueError, match="ends"):
        m.trace_span(trace_id=1, span="x", parent=None, start=2.0, end=1.0, tags={})


# --------------------------------------------------------------------------- cost and memory


def _feed(m: Metrics, first: int, last: int, total: int, duration: float) -> None:
    stages = (
        ("lb", 1e-4),
        ("ingress", 2e-4),
        ("router", 2e-5),
        ("upstream", 1e-3),
        ("backend", 4e-3),
    )
    record = m.record
    for i in range(first, last):
        t = i * duration / total
        record(
            t_start=t,
            t_end=t + 0.005 + (i % 97) * 1e-5,
            route=("r1", "r2")[i & 1],
            cluster=("c-v1", "c-v2")[i % 3 == 0],
            version=("v1", "v2")[i % 3 == 0],
            status=503 if i % 101 == 0 else 200,
            flags="UF,URX" if i % 101 == 0 else "",
            retries=2 if i % 101 == 0 else 0,
            upstream_requests=3 if i % 101 == 0 else 1,
            ingress_node=("n1", "n2", "n3")[i % 3],
            az=("a", "b", "c")[i % 3],
            stages=stages,
        )


@pytest.mark.slow
def test_memory_does_not_grow_with_requests() -> None:
    """Memory after 1e6 records equals memory after 1e5, and so does the peak (tracing off)."""
    total, duration = 1_000_000, 600.0
    gc.collect()
    tracemalloc.start()
    try:
        # 1e5 records cover the first 60 s, past the warm-up, so every key already exists then
        m = Metrics(duration_s=duration, warmup_s=30.0, interval_s=1.0)
        _feed(m, 0, total // 10, total, duration)
        gc.collect()
        current_1e5, peak_1e5 = tracemalloc.get_traced_memory()
        _feed(m, total // 10, total, total, duration)
        gc.collect()
        current_1e6, peak_1e6 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown_mb = (current_1e6 - current_1e5) / 1e6
    peak_grown_mb = (peak_1e6 - peak_1e5) / 1e6
    print(
        f"\nMetrics memory after 1e5 records: {current_1e5 / 1e6:.2f} MB (peak "
        f"{peak_1e5 / 1e6:.2f} MB); after 1e6: {current_1e6 / 1e6:.2f} MB (peak "
        f"{peak_1e6 / 1e6:.2f} MB): +{grown_mb:.3f} MB current, +{peak_grown_mb:.3f} MB peak"
    )
    assert grown_mb < 1.0
    assert peak_grown_mb < 2.0
    res = m.result(seed=0, scenario_name="mem", params={})
    assert res.meta["counters"]["records"] == total
    assert res.totals()["requests"] == total - total // 20  # first 30 s of 600 s are warm-up


def test_record_row_and_record_give_the_same_result() -> None:
    """The engine's positional fast path and the keyword API are the same measurement."""
    names = ("lb", "route")

    def fill(m: Metrics, positional: bool) -> Result:
        for i in range(3 * 7001):  # several batches, some rows in the warm-up
            t = i * 0.002
            row = (
                t,
                t + 0.004 + (i % 13) * 1e-4,
                ("r1", "r2")[i & 1],
                "c-v1",
                ("v1", "v2")[i % 3 == 0],
                (200, 503, 404)[i % 3],
                ("", "UF,URX", "NR")[i % 3],
                i % 3 == 1,
                (1, 3, 0)[i % 3],
                ("n1", "n2")[i % 2],
                ("a", "b")[i % 2],
                names if i % 5 else ("lb",),  # two stage layouts in one batch
                (1e-4, 2e-3) if i % 5 else (3e-4,),
            )
            if positional:
                m.record_row(row)
            else:
                m.record(
                    t_start=row[0],
                    t_end=row[1],
                    route=row[2],
                    cluster=row[3],
                    version=row[4],
                    status=row[5],
                    flags=row[6],
                    retries=int(row[7]),
                    upstream_requests=row[8],
                    ingress_node=row[9],
                    az=row[10],
                    stages=tuple(zip(row[11], row[12], strict=True)),
                )
        return m.result(seed=0, scenario_name="t", params={})

    def new() -> Metrics:
        return Metrics(duration_s=45.0, warmup_s=3.0, interval_s=1.0)

    a, b = fill(new(), True), fill(new(), False)
    for name in ("summary", "stages", "timeseries", "codes", "ingress", "little", "histograms"):
        pd.testing.assert_frame_equal(getattr(a, name)(), getattr(b, name)())
    stages = a.stages().set_index(["route", "version", "stage"])["requests"]
    summary = a.summary().set_index(["route", "version"])["requests"]
    for (route, version), requests in zip(summary.index, summary, strict=True):
        assert stages[(route, version, "lb")] == requests  # every warm request has an lb stage
        assert stages[(route, version, "route")] < requests  # one in five has no route stage
    # 21 003 rows, a third of each status; the first 1 500 (t < 3 s) are warm-up
    assert a.totals()["flags"] == {"NR": 6501, "UF": 6501, "URX": 6501}
    assert a.totals()["requests"] == 21003 - 1500


def test_record_row_rejects_a_negative_latency_when_the_batch_is_processed() -> None:
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
    m.record_row((2.0, 1.0, "r", "c", "v1", 200, "", 0, 1, "n", "a", (), ()))
    with pytest.raises(ValueError, match=r"t_end \(1.0\) is before t_start \(2.0\)"):
        m.result(seed=0, scenario_name="t", params={})


def test_upstream_attempts_are_flushed_in_batches_even_without_requests() -> None:
    """Attempts recorded through the keyword API do not pile up until the next request batch."""
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
    n = FLUSH_AT + 5
    for i in range(n):
        m.record_upstream(t=1.0, cluster="c", host=f"p{i % 2}", status=200, flags="")
    assert len(m._attempts) == 5  # one batch processed, the rest buffered
    up = m.result(seed=0, scenario_name="t", params={}).upstream()
    assert up["attempts"].sum() == n
    assert up.set_index("host")["attempts"].to_dict() == {"p0": (n + 1) // 2, "p1": n // 2}
