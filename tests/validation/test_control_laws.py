"""Truths 8–13 of ``external-truths.md``: Envoy / Istio control laws.

Scenarios: ``sim/scenarios/validation/08-*.yaml`` … ``13-*.yaml``. Where requests are
independent Bernoulli trials (a weighted pick, a fault draw, a try failing, an exponential
service time exceeding the timeout) the interval is the Wilson score interval of the count;
where the law is deterministic (token bucket, outlier ejection timeline) the assertion is exact
or a bound derived from the law itself. Arrivals stop one second before the end of the run
(``schedule`` to rate 0), so no request is still in flight when the run ends and the counts
are not biased against slow (delayed, retried, timed-out) requests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from istiolab.sim.engine import build_table
from istiolab.sim.results import Result
from istiolab.sim.scenario import load_scenario
from istiolab.sim.theory import (
    retry_amplification,
    retry_success,
    timeout_fraction,
    token_bucket_max_accepted,
)

from ._harness import Interval, check, known_variance_ci, load, record, run, wilson

# every theory case runs on both engines, with the same tolerances (conftest.py)
pytestmark = pytest.mark.usefixtures("engine")

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance" / "configs"

STOP = {"at_s": 20.0, "rate_rps": 0.0}
"""Second schedule step: no arrivals after 20 s (runs last 21 s)."""


def stopping(rate: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Overrides: Poisson at *rate* from 0 to 20 s, nothing after (runs last 21 s)."""
    return {
        "traffic.0.arrival": {"kind": "schedule", "steps": [{"at_s": 0.0, "rate_rps": rate}, STOP]},
        "run.duration_s": 21.0,
        **(overrides or {}),
    }


def version_counts(result: Result) -> dict[str, int]:
    """Requests (after warm-up) per backend version."""
    s = result.summary()
    return {str(k): int(v) for k, v in s.groupby("version")["requests"].sum().items()}


def code_totals(result: Result) -> pd.Series:
    """Requests of the whole run per (status, flags string)."""
    return result.codes().groupby(["status", "flag"])["count"].sum()


# -- 8 ------------------------------------------------------------------------------------


def test_weighted_clusters_90_10() -> None:
    """90/10: each version's count is binomial(n, weight/Σweights)."""
    r = run(load("08-weighted-clusters", stopping(1000)), 8001)
    counts = version_counts(r)
    n = sum(counts.values())
    assert set(counts) == {"v1", "v2"}
    for version, weight in (("v1", 90), ("v2", 10)):
        # One independent draw per request: Wilson interval of the count (n ≈ 19 000).
        # Power: half-width ≈ 0.7 points, so a 91/9 or 89/11 split would be caught.
        check(
            f"8 weighted 90/10 {version}",
            "test_weighted_clusters_90_10",
            weight / 100,
            wilson(counts[version], n),
        )


def test_weighted_clusters_3way_any_sum() -> None:
    """Weights 1:2:4 (Σ = 7, accepted by Istio ≥ 1.15): shares 1/7, 2/7, 4/7."""
    r = run(load("08-weighted-3way", stopping(1000)), 8002)
    counts = version_counts(r)
    n = sum(counts.values())
    for version, weight in (("v1", 1), ("v2", 2), ("v3", 4)):
        check(
            f"8 weighted 1:2:4 {version}",
            "test_weighted_clusters_3way_any_sum",
            weight / 7,
            wilson(counts[version], n),
        )


# -- 9 ------------------------------------------------------------------------------------


def test_fault_injection() -> None:
    """Abort 10 % (503 FI), delay exactly 50 ms for 30 % (DI), drawn independently."""
    r = run(load("09-fault-injection", stopping(1000)), 9001)
    totals = r.totals()
    n = totals["requests"]
    di, fi = totals["flags"].get("DI", 0), totals["flags"].get("FI", 0)
    check("9 abort probability", "test_fault_injection", 0.10, wilson(fi, n))
    check("9 delay probability", "test_fault_injection", 0.30, wilson(di, n))
    # Independence: over the whole run (codes), the joint share is p_d·p_a = 3 %, and the
    # abort share is 10 % both among delayed and among undelayed requests.
    codes = code_totals(r)
    total = int(codes.sum())
    both = int(codes.get((503, "DI,FI"), 0))
    delayed = both + int(codes.get((200, "DI"), 0))
    aborted_only = int(codes.get((503, "FI"), 0))
    assert delayed + aborted_only + int(codes.get((200, ""), 0)) == total
    check("9 delay and abort joint", "test_fault_injection", 0.03, wilson(both, total))
    check("9 abort | delayed", "test_fault_injection", 0.10, wilson(both, delayed))
    check(
        "9 abort | not delayed", "test_fault_injection", 0.10, wilson(aborted_only, total - delayed)
    )
    # Exactly fixedDelay: every other cost is zero, so undelayed requests take 0 and delayed
    # ones at most max_ms. max_ms = 50 and Σ latency = 50 ms × (delayed requests) together
    # force every delayed request to take exactly 50 ms (no tolerance beyond float rounding).
    assert math.isclose(totals["max_ms"], 50.0, abs_tol=1e-6)
    assert math.isclose(totals["mean_ms"] * n, 50.0 * di, abs_tol=1e-6 * n)
    # Aborted requests never reach the backend (and are not retried).
    assert totals["upstream_requests"] == n - fi
    assert totals["retries"] == 0


def test_fault_percentage_resolution() -> None:
    """Percentages have a resolution of 0.0001 % (one per million)."""
    base = "rules.inline.1.spec.http.0.fault"
    sc = load(
        "09-fault-injection",
        {
            f"{base}.abort.percentage.value": 0.0001,
            f"{base}.delay.percentage.value": 99.9999,
        },
    )
    table, _ = build_table(sc)
    fault = table.virtual_hosts[0].routes[0].fault
    assert fault is not None
    assert fault.abort_per_million == 1
    assert fault.delay_per_million == 999_999


# -- 10 -----------------------------------------------------------------------------------


def _tries_variance(p: float, n: int) -> float:
    """Variance of the number of tries K: P(K = k) = p^(k−1)(1 − p) for k ≤ n, P(K = n+1) = p^n."""
    probs = [p ** (k - 1) * (1 - p) for k in range(1, n + 1)] + [p**n]
    mean = sum(k * q for k, q in enumerate(probs, start=1))
    return sum((k - mean) ** 2 * q for k, q in enumerate(probs, start=1))


def test_retries_success_and_amplification() -> None:
    """p = 0.3, n = 3 retries on 5xx: P(success) = 1 − p⁴, tries/request = (1 − p⁴)/(1 − p)."""
    p, n_retries = 0.3, 3
    r = run(load("10-retries", stopping(1000)), 10001)
    totals = r.totals()
    n = totals["requests"]
    ok = round(totals["success_ratio"] * n)
    check(
        "10 retry success",
        "test_retries_success_and_amplification",
        retry_success(p, n_retries),
        wilson(ok, n),
    )
    # The p⁴ that fail every try carry URX (retry limit reached).
    check(
        "10 retries exhausted (URX)",
        "test_retries_success_and_amplification",
        p ** (n_retries + 1),
        wilson(totals["flags"].get("URX", 0), n),
    )
    # Tries per request are iid (failures are independent of everything else): a normal
    # interval with the variance of K under the hypothesis (CLT, n ≈ 19 000 requests).
    amp = totals["upstream_requests"] / n
    ci = known_variance_ci(amp, _tries_variance(p, n_retries), n)
    check(
        "10 retry amplification",
        "test_retries_success_and_amplification",
        retry_amplification(p, n_retries),
        ci,
    )
    # Power: with no retries it would be 1, with unlimited ones 1/(1 − p) = 1.4286; the
    # half-width (≈ 0.016) separates the first clearly; the success and URX checks pin n.
    assert ci.hi < 1 / (1 - p) + 0.02
    assert totals["retries"] == totals["upstream_requests"] - n


def _backoff_bounds(retries: int, base: float = 25.0, cap: float = 250.0) -> list[float]:
    """Upper bounds (ms) of the back-off before each retry, profile 1.24 (Envoy source):
    retry k waits U[0, min(2^(k−1)·base, cap))."""
    return [min(2 ** (k - 1) * base, cap) for k in range(1, retries + 1)]


def test_retry_backoff_bounds() -> None:
    """Always-failing backend, 6 retries, zero service time: latency = Σ of 6 back-offs."""
    r = run(load("10-retry-backoff", stopping(200)), 10002)
    totals = r.totals()
    n = totals["requests"]
    bounds = _backoff_bounds(6)
    assert bounds == [25.0, 50.0, 100.0, 200.0, 250.0, 250.0]
    assert totals["flags"] == {"URX": n}
    assert totals["upstream_requests"] == 7 * n
    # Each back-off is uniform on [0, b_k): the sum has mean Σb_k/2 = 437.5 ms and variance
    # Σb_k²/12; the requests are iid, so a normal interval with that variance (CLT, n ≈ 3 800).
    ci = known_variance_ci(totals["mean_ms"], sum(b * b for b in bounds) / 12, n)
    check("10 back-off mean (source formula)", "test_retry_backoff_bounds", sum(bounds) / 2, ci)
    # Bounded as the profile says: below Σb_k = 875 ms (the cap of 250 ms applies from the
    # 5th retry on). The docs' formula [0, (2^k − 1)·25 ms) would give a mean of 512.5 ms.
    assert totals["max_ms"] < sum(bounds)
    docs = [min((2**k - 1) * 25.0, 250.0) for k in range(1, 7)]
    assert sum(docs) / 2 not in ci


def test_retry_per_try_timeout() -> None:
    """perTryTimeout bounds each try: service 30 ms, per-try 10 ms, 2 retries on 5xx: every
    request takes 3 × 10 ms plus two back-offs U[0, 25) and U[0, 50) ms, then 504 UT."""
    vs = "rules.inline.1.spec.http.0.retries"
    sc = load(
        "10-retry-backoff",
        stopping(
            200,
            {
                f"{vs}.attempts": 2,
                f"{vs}.perTryTimeout": "10ms",
                "services.0.versions.0.service_time": "det(30ms)",
                "services.0.versions.0.errors": [],
            },
        ),
    )
    r = run(sc, 10003)
    totals = r.totals()
    n = totals["requests"]
    assert set(totals["flags"]) == {"UT", "URX"}
    assert totals["flags"]["UT"] == n
    bounds = _backoff_bounds(2)
    ci = known_variance_ci(totals["mean_ms"], sum(b * b for b in bounds) / 12, n)
    check("10 per-try timeout", "test_retry_per_try_timeout", 30 + sum(bounds) / 2, ci)
    assert totals["max_ms"] < 30 + sum(bounds)


def test_retry_excludes_previous_hosts() -> None:
    """Retries re-pick a host excluding the ones already tried (Istio sets the previous_hosts
    predicate with host_selection_retry_max_attempts 5).

    Two pods, one always failing, RANDOM, one retry on 5xx. The first try hits the bad pod
    with probability 1/2; the retry's host selection then draws up to 1 + 5 times to avoid
    it, and lands on it again only if all 6 draws do: P(fail) = 1/2 · (1/2)⁶ = 1/128. Without
    the predicate it would be 1/4.
    """
    base = load("10-retries")
    dr = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "api"},
        "spec": {"host": "api", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
    }
    sc = base.with_overrides(
        {
            "rules.inline": [*base.rules.inline, dr],
            "rules.inline.1.spec.http.0.retries.attempts": 1,
            "services.0.versions": [
                {"name": "good", "replicas": 1, "concurrency": 1000, "service_time": "zero"},
                {
                    "name": "bad",
                    "replicas": 1,
                    "concurrency": 1000,
                    "service_time": "zero",
                    "errors": [{"probability": 1.0, "status": 503}],
                },
            ],
            **stopping(1000),
        }
    )
    r = run(sc, 10005)
    totals = r.totals()
    n = totals["requests"]
    failed = round((1 - totals["success_ratio"]) * n)
    ci = wilson(failed, n)
    check("10 retry excludes previous hosts", "test_retry_excludes_previous_hosts", 1 / 128, ci)
    assert ci.hi < 0.25


def test_retry_route_timeout_includes_retries() -> None:
    """The route timeout covers every try and back-off: nothing outlives it."""
    sc = load("10-retry-backoff", stopping(200, {"rules.inline.1.spec.http.0.timeout": "300ms"}))
    r = run(sc, 10004)
    totals = r.totals()
    assert totals["max_ms"] <= 300.0 + 1e-6
    # Σ back-offs exceeds 300 ms for a good share of requests: those end 504 UT at 300 ms.
    assert totals["flags"].get("UT", 0) > 0
    assert math.isclose(totals["max_ms"], 300.0, abs_tol=1e-6)

    # Tries that take time: 30 ms each, always 503. Three tries and their back-offs take at
    # least 90 ms and the fourth cannot finish before 100 ms, so every request ends 504 UT at
    # exactly 100 ms; a timer restarted per try would let all 7 tries run (≥ 210 ms, URX).
    sc = load(
        "10-retry-backoff",
        stopping(
            200,
            {
                "rules.inline.1.spec.http.0.timeout": "100ms",
                "services.0.versions.0.service_time": "det(30ms)",
            },
        ),
    )
    totals = run(sc, 10005).totals()
    assert totals["flags"] == {"UT": totals["requests"]}
    assert math.isclose(totals["p50_ms"], 100.0, rel_tol=1e-3)  # HDR: 3 significant figures
    assert math.isclose(totals["max_ms"], 100.0, abs_tol=1e-6)
    assert math.isclose(totals["mean_ms"], 100.0, abs_tol=1e-6)


# -- 11 -----------------------------------------------------------------------------------


def test_timeout_fraction() -> None:
    """exp(10ms) behind a 20 ms route timeout: e^(−μT) = e^(−2) time out, 504 UT at T."""
    mu, t_s = 100.0, 0.020
    r = run(load("11-timeouts", stopping(1000)), 11001)
    totals = r.totals()
    n = totals["requests"]
    ut = totals["flags"].get("UT", 0)
    check("11 timeout fraction", "test_timeout_fraction", timeout_fraction(mu, t_s), wilson(ut, n))
    assert totals["success_ratio"] == pytest.approx(1 - ut / n)
    codes = r.codes()
    assert set(codes.loc[codes["flag"] == "UT", "status"]) == {504}
    assert set(codes.loc[codes["flag"] != "UT", "status"]) == {200}
    # No request outlives T, and the mean latency is E[min(S, T)] = (1 − e^(−μT))/μ: timed-out
    # requests are charged T, no more, no less. Known variance under the hypothesis:
    # E[min(S,T)²] = (2/μ²)(1 − e^(−μT)(1 + μT)).
    assert totals["max_ms"] <= 20.0 + 1e-9
    mean = (1 - math.exp(-mu * t_s)) / mu
    second = 2 / mu**2 * (1 - math.exp(-mu * t_s) * (1 + mu * t_s))
    ci = known_variance_ci(totals["mean_ms"], (second - mean**2) * 1e6, n)
    check("11 mean latency E[min(S,T)]", "test_timeout_fraction", mean * 1e3, ci)


def test_timeout_after_exactly_t() -> None:
    """Every request slower than T (det 30 ms) gets 504 UT after exactly 20 ms."""
    r = run(
        load("11-timeouts", stopping(1000, {"services.0.versions.0.service_time": "det(30ms)"})),
        11002,
    )
    totals = r.totals()
    n = totals["requests"]
    assert totals["flags"] == {"UT": n}
    assert totals["success_ratio"] == 0.0
    assert set(r.codes()["status"]) == {504}
    assert math.isclose(totals["max_ms"], 20.0, abs_tol=1e-9)
    assert math.isclose(totals["mean_ms"], 20.0, abs_tol=1e-9)


# -- 12 -----------------------------------------------------------------------------------


def _accepted_per_interval(result: Result, width_s: float) -> list[int]:
    """Accepted (non-429) requests per metrics interval of *width_s*, over the whole run.

    Zero service time: a request completes when it arrives, so these are arrivals by outcome.
    """
    codes = result.codes()
    limited = codes[codes["status"] == 429]
    assert set(limited["flag"]) <= {"RL"}
    ok = codes[codes["status"] != 429]
    assert set(ok["status"]) <= {200}
    per = ok.groupby((ok["t_s"] / width_s).round().astype(int))["count"].sum()
    intervals = round(result.meta["config"]["duration_s"] / width_s)
    return [int(per.get(k, 0)) for k in range(intervals)]


def _token_bucket_laws(
    max_tokens: int, per_fill: int, fill_s: float, overrides: dict[str, Any], seed: int, test: str
) -> None:
    """Check both laws of truth 12 on one run; metrics intervals = fill intervals."""
    r = run(load("12-local-rate-limit", overrides), seed)
    acc = _accepted_per_interval(r, fill_s)
    # Law 1: over [0, T] accepted ≤ max_tokens + ⌊T/fill⌋·tokens_per_fill, checked at every
    # interval end T → (k+1)·fill from below (⌊T/fill⌋ = k). Exact, no tolerance.
    # Envoy ≥ 1.32 (envoyproxy/envoy#35207; Istio 1.24 ships 1.32) refills continuously, one
    # token every fill/tokens_per_fill, so the bound it obeys is max_tokens + ⌊T·tpf/fill⌋;
    # the simulator models that (istiolab/envoy/policy.py, measured against a real Envoy).
    # Both are checked: the continuous bound always, the truth's timer bound where the two
    # implementations coincide (tokens_per_fill = 1).
    cumulative = 0
    for k, a in enumerate(acc):
        cumulative += a
        t_end = (k + 1) * fill_s - 1e-9
        continuous = max_tokens + math.floor(t_end * per_fill / fill_s)
        assert cumulative <= continuous, f"{cumulative} accepted by {t_end:.3f} s > {continuous}"
        if per_fill == 1:
            timer = token_bucket_max_accepted(max_tokens, per_fill, fill_s, t_end)
            assert cumulative <= timer
    # Law 2: under steady overload the accepted rate equals the fill rate. Over a window
    # [a, b) the accepted count is (tokens at a) + (tokens added in [a, b)) − (tokens at b);
    # a bucket holds 0..max_tokens, so |accepted − (b − a)·tpf/fill| ≤ max_tokens: a
    # deterministic bound (for either refill), not a statistical one.
    a_k = round(1.0 / fill_s)  # from t = 1 s (the initial full bucket is long spent)
    window = (len(acc) - a_k) * fill_s
    in_window = sum(acc[a_k:])
    rate = per_fill / fill_s
    assert abs(in_window - window * rate) <= max_tokens
    record(
        f"12 token bucket accepted rate (max {max_tokens}, {per_fill}/{fill_s:g}s)",
        test,
        rate,
        Interval(in_window / window, rate - max_tokens / window, rate + max_tokens / window, 1),
        True,
    )
    totals = r.totals()
    assert totals["flags"]["RL"] == totals["requests"] - totals["upstream_requests"]


def test_token_bucket() -> None:
    """The scenario's bucket: 50 tokens, +10 per 100 ms (100/s), 300 req/s offered."""
    _token_bucket_laws(50, 10, 0.1, {}, 12001, "test_token_bucket")


def test_token_bucket_one_token_per_fill() -> None:
    """tokens_per_fill = 1 (timer and continuous refills coincide): 5 tokens, +1 per 50 ms
    (the smallest fill interval Envoy accepts), 60 req/s offered → 20 accepted/s."""
    value = "rules.inline.2.spec.configPatches.0.patch.value.typed_config.value.token_bucket"
    overrides = {
        value: {"max_tokens": 5, "tokens_per_fill": 1, "fill_interval": "0.05s"},
        "traffic.0.arrival.rate_rps": 60.0,
        "run.metrics_interval_s": 0.05,
    }
    _token_bucket_laws(5, 1, 0.05, overrides, 12002, "test_token_bucket_one_token_per_fill")


def test_a_routes_own_bucket_replaces_the_gateways(tmp_path: Path) -> None:
    """Envoy uses the most specific local_ratelimit config: a route with its own bucket meets
    only that bucket (checked against Envoy by conformance config 31). Gateway 3 tokens, /heavy
    12 tokens, both refilled once a minute: over 2 s at 100 req/s exactly 12 /heavy requests and
    3 other requests pass; meeting both buckets would let only 3 /heavy requests through."""
    rules = CONFORMANCE / "31-rate-limit-gateway-and-route.yaml"
    scenario = tmp_path / "both-buckets.yaml"
    scenario.write_text(
        f"""name: both-buckets
run: {{duration_s: 2, warmup_s: 0, seed: 1, metrics_interval_s: 0.5}}
rules: {{paths: ["{rules}"]}}
traffic:
- name: clients
  arrival: {{kind: poisson, rate_rps: 100}}
  requests: [{{path: /heavy/report, weight: 1}}, {{path: /, weight: 1}}]
ingress: {{azs: [us-east-1a], nodes_per_az: 1}}
services:
- name: httpbin
  port: 8000
  versions:
  - {{name: v1, replicas_per_az: 1, concurrency: 8, service_time: det(1ms)}}
  - {{name: v2, replicas_per_az: 1, concurrency: 8, service_time: det(1ms)}}
"""
    )
    r = run(load_scenario(scenario), 12003)
    codes = r.codes().groupby(["route", "status"])["count"].sum()
    assert codes[("heavy", 200)] == 12
    assert codes[("default", 200)] == 3
    assert codes[("heavy", 429)] + codes[("default", 429)] > 150  # the rest are limited


# -- 13 -----------------------------------------------------------------------------------


def _bursts(result: Result, gap_s: float = 5.0) -> list[pd.DataFrame]:
    """The 503 responses of the run, grouped into bursts separated by more than *gap_s*."""
    codes = result.codes()
    errors = codes[codes["status"] == 503].sort_values("t_s")
    out: list[pd.DataFrame] = []
    start = 0
    times = errors["t_s"].tolist()
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > gap_s:
            out.append(errors.iloc[start:i])
            start = i
    return out


def test_outlier_detection_timeline() -> None:
    """One always-failing host of 10: ejected on its 5th consecutive 5xx, back after
    base × (ejection count) at the next 10 s interval tick: 30 s, then 60 s, then 90 s."""
    interval, base, consecutive = 10.0, 30.0, 5
    r = run(load("13-outlier-detection"), 13001)
    bursts = _bursts(r)
    assert len(bursts) == 4, [b["t_s"].tolist() for b in bursts]
    # The host fails from t = 12 s on; it is ejected on its 5th consecutive 503 (no retries on
    # 5xx by default). The workers stop picking it when the cluster manager delivers the
    # ejection: at once when its last delivery (here the re-admission) is more than
    # update_merge_window (1 s) old, else 1 s after the ejection (ClusterManagerImpl::
    # scheduleUpdate, source/common/upstream/cluster_manager_impl.cc; measured on Envoy in
    # docs/conformance.md). Both engines.
    assert bursts[0]["t_s"].iloc[0] >= 12.0
    step = r.meta["config"]["interval_s"]  # 0.1 s: time resolution of the codes
    window = 1.0
    for k, b in enumerate(bursts):
        times = b["t_s"].repeat(b["count"].tolist()).tolist()
        assert len(times) >= consecutive
        fifth = times[consecutive - 1]
        assert times[-1] <= fifth + window + step + 1e-9, times
        # from the re-admission (the interval tick before the burst) to the ejection
        gap = fifth - math.floor(times[0] / interval) * interval
        if k == 0 or gap > window + step:
            assert len(times) == consecutive, times
        elif gap < window - step:
            assert len(times) > consecutive, times  # the held delivery: ~1 s more traffic
    for k in range(1, len(bursts)):
        times = bursts[k - 1]["t_s"].repeat(bursts[k - 1]["count"].tolist()).tolist()
        ejected = float(times[consecutive - 1])  # the 5th 503 is in [ejected, +0.1 s)
        lo = math.ceil((ejected + base * k) / interval - 1e-9) * interval
        hi = math.ceil((ejected + step + base * k) / interval - 1e-9) * interval
        back = float(bursts[k]["t_s"].iloc[0])
        # Envoy un-ejects only on its interval timer (ticks every 10 s from t = 0), at the
        # first tick ≥ ejection + base·k. The host takes ≈ 1/10 of 50 req/s, so its first
        # request after the tick comes within 2 s (P(none in 2 s) = e^(−10)).
        assert lo - 1e-9 <= back < hi + 2.0, (k, ejected, back, lo)
    backs = [float(b["t_s"].iloc[0]) for b in bursts[1:]]
    assert [math.floor(t / interval) * interval for t in backs] == [50.0, 120.0, 220.0]


def _ejected_hosts(bad: int, good: int, max_percent: int, profile: str | None = None) -> int:
    """Failing hosts that got no traffic at all in [5 s, 25 s]: the ejected ones."""
    overrides: dict[str, Any] = {
        "services.0.versions.0.replicas": good,
        "services.0.versions.1.replicas": bad,
        "services.0.versions.1.errors.0.start_s": 0.0,
        "rules.inline.2.spec.trafficPolicy.outlierDetection.maxEjectionPercent": max_percent,
        "run.duration_s": 25.0,
        "run.warmup_s": 5.0,
        "run.metrics_interval_s": 1.0,
    }
    if profile is not None:
        overrides["rules.profile"] = profile
    r = run(load("13-outlier-detection", overrides), 13002)
    up = r.upstream()
    hit = set(up.loc[up["attempts"] > 0, "host"])
    return sum(1 for i in range(bad) if f"api-bad-{i}" not in hit)


@pytest.mark.parametrize(
    ("bad", "good", "max_percent", "expected"),
    [
        (3, 7, 10, 1),  # 10 % of 10 hosts = 1
        (3, 7, 20, 2),
        (3, 7, 15, 1),  # a 2nd ejection would make 20 % > 15 %
        (3, 7, 100, 3),
        (1, 4, 10, 0),  # 1 of 5 hosts is already 20 % > 10 %: Envoy ≥ 1.27 ejects none
    ],
)
def test_outlier_max_ejection_percent(bad: int, good: int, max_percent: int, expected: int) -> None:
    """At most maxEjectionPercent of the hosts are ejected (Envoy ≥ 1.27, Istio ≥ 1.19:
    ejected share *after* the ejection ≤ max; Istio does not set always_eject_one_host)."""
    assert _ejected_hosts(bad, good, max_percent) == expected


def test_outlier_max_ejection_percent_old_envoy() -> None:
    """Envoy < 1.27 (Istio ≤ 1.18) compared the share *before* ejecting, so one host could
    always be ejected, and the cap could be overshot by one host."""
    assert _ejected_hosts(1, 4, 10, profile="1.14") == 1
    assert _ejected_hosts(3, 7, 15, profile="1.14") == 2
