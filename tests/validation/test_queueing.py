"""Truths 1–7 of ``external-truths.md``: queueing closed forms, each stage isolated.

Every scenario is a file in ``sim/scenarios/validation`` (runnable on its own for a workshop);
the LB, kube-proxy, network and ingress costs are zero there, so the end-to-end latency is the
time spent in the stage under test. Means come from independent replications (one seed each,
warm-up discarded) and a Student-t interval (``_harness.mean_ci``); every run is also checked
for Little's law (``_harness.run``).
"""

from __future__ import annotations

import math

import pytest

from istiolab.sim.dists import DistSpec
from istiolab.sim.results import Result
from istiolab.sim.theory import (
    erlang_b,
    mg1_wait,
    mm1k_blocking,
    mmc_wait,
    p2c_mean_field,
    random_split_wait,
    round_robin_wait,
    tandem_wait,
)

from ._harness import (
    CONFIDENCE,
    Interval,
    check,
    check_soft,
    load,
    mean_ci,
    record,
    replicate,
    run,
    t_quantile,
)

# every theory case runs on both engines, with the same tolerances (conftest.py)
pytestmark = pytest.mark.usefixtures("engine")


def mean_ms(result: Result) -> float:
    """Mean end-to-end latency after warm-up, ms."""
    return float(result.totals()["mean_ms"])


def blocked(result: Result) -> float:
    """Share of requests rejected by the circuit breaker (503 with flag UO)."""
    codes = result.codes()
    assert set(codes.loc[codes["flag"] == "UO", "status"]) <= {503}
    totals = result.totals()
    return float(totals["flags"].get("UO", 0) / totals["requests"])


def seeds(test: int, n: int) -> range:
    """Seeds of one test: disjoint ranges, so no two tests share random streams."""
    return range(1000 * test, 1000 * test + n)


# -- 1 ------------------------------------------------------------------------------------


def test_mmc_erlang_c() -> None:
    """One pod with concurrency 10 is one shared FIFO queue: M/M/10, W = 12.046 ms."""
    sc = load("01-mmc-erlang-c", {"run.duration_s": 17})
    wq, w = mmc_wait(800, 100, 10)
    assert math.isclose(wq * 1e3, 2.046, abs_tol=5e-4)  # the truth's worked example
    ci = mean_ci(replicate(sc, seeds(1, 20), mean_ms))
    # 20 replications × 15 s measured (≈ 12 000 requests each). 99.9 % t interval with 19 df
    # (t = 3.88) over the replication means; theory W must lie inside. Power: the interval is
    # ≈ ±0.5 ms wide, while ten independent M/M/1 queues at 80/s each (what one queue per
    # server would give) have W = 50 ms, and no queueing at all 10 ms.
    check("1 M/M/c Erlang C", "test_mmc_erlang_c", w * 1e3, ci)
    assert ci.half < 1.0


# -- 2, 3 ---------------------------------------------------------------------------------

# λ = 280/s over c = 4 pods of μ = 100/s (ρ = 0.7): RANDOM 33.33 ms, ROUND_ROBIN 22.37 ms,
# one shared queue (M/M/4) 13.57 ms. One test simulates all three (the ordering compares
# them); every check is recorded before any is asserted, so one failure does not hide another.
_LAM, _MU, _C = 280.0, 100.0, 4
_REPS, _DURATION = 16, 32.0


def test_random_round_robin_shared_queue() -> None:
    """Truth 2: RANDOM over 4 single-server pods is four independent M/M/1, W = 1/(μ − λ/c).
    Truth 3: ROUND_ROBIN makes each pod GI/M/1 with Erlang(4, λ) gaps; RR beats RANDOM and
    loses to one shared queue (M/M/4, truth 1's formula).

    16 replications × 30 s measured (≈ 8 400 requests each) per policy, 99.9 % t intervals
    (15 df, t = 4.07), about ±1–2 ms wide against theory gaps of 11 and 9 ms.
    """
    shared_sc = load(
        "01-mmc-erlang-c",
        {
            "traffic.0.arrival.rate_rps": _LAM,
            "services.0.versions.0.concurrency": _C,
            "run.duration_s": _DURATION,
        },
    )
    rnd = mean_ci(
        replicate(
            load("02-random-per-pod", {"run.duration_s": _DURATION}), seeds(2, _REPS), mean_ms
        )
    )
    # One gateway worker: round robin is per Envoy worker, and the Erlang(4) gaps of truth 3
    # are those of one round-robin sequence (two workers interleave two, and each pod's wait
    # rises by about 1 ms here; tests/capacity/test_worker_lb.py checks the per-worker spread).
    rr_sc = load("03-round-robin", {"run.duration_s": _DURATION, "ingress.concurrency": 1})
    rr = mean_ci(replicate(rr_sc, seeds(3, _REPS), mean_ms))
    shared = mean_ci(replicate(shared_sc, seeds(33, _REPS), mean_ms))
    name = "test_random_round_robin_shared_queue"
    results = [
        check_soft("2 RANDOM M/M/1 per pod", name, random_split_wait(_LAM, _MU, _C) * 1e3, rnd),
        check_soft("3 ROUND_ROBIN GI/M/1", name, round_robin_wait(_LAM, _MU, _C) * 1e3, rr),
        check_soft("3 shared queue M/M/4", name, mmc_wait(_LAM, _MU, _C)[1] * 1e3, shared),
        # The ordering, with the intervals (not just the estimates) apart.
        ("3 shared queue < ROUND_ROBIN", shared.hi < rr.lo),
        ("3 ROUND_ROBIN < RANDOM", rr.hi < rnd.lo),
    ]
    failed = [label for label, ok in results if not ok]
    assert not failed, f"failed: {failed}; RANDOM {rnd}, RR {rr}, shared {shared}"


# -- 4 ------------------------------------------------------------------------------------


def _p2c(n_hosts: int, load_per_host: float, measured_s: float, reps: int, base: int) -> Interval:
    """Replications of T (mean sojourn in units of the 10 ms mean service time)."""
    sc = load(
        "04-least-request-p2c",
        {
            "services.0.versions.0.replicas": n_hosts,
            "traffic.0.arrival.rate_rps": load_per_host * 100.0 * n_hosts,
            "run.duration_s": 0.5 + measured_s,
            "run.warmup_s": 0.5,
            "run.metrics_interval_s": 0.5,
        },
    )
    return mean_ci(replicate(sc, seeds(base, reps), lambda r: mean_ms(r) / 10.0))


# Finite N. T₂ is the N → ∞ limit; with N hosts the expected sojourn is T₂ + b/N + O(1/N²)
# (mean-field approximations of such models are 1/N-accurate: N. Gast, "Expected values
# estimated via mean-field approximation are 1/N-accurate", Proc. ACM Meas. Anal. Comput. Syst.
# 1(1), 2017). Envoy also picks *with* replacement (the same host twice with probability 1/N),
# one more O(1/N) term. Long offline runs of this scenario at λ = 0.9 (10 × 60–240 s each) gave
# T(25) = 2.800, T(50) = 2.706, T(100) = 2.664 (95 % intervals ± 0.02): a fit
# T ≈ 2.614 + 3.7/N + 17/N², i.e. an excess of 0.04–0.05 at N = 100.


def test_least_request_p2c_half_load() -> None:
    """λ = 0.5: extrapolate N = 50 and N = 100 to N → ∞ and compare with T₂(0.5) = 1.266.

    Richardson extrapolation removes the b/N term: T∞ ≈ 2·T(100) − T(50). Its interval
    propagates both estimates' standard errors (independent seeds): half = t·√(4·se₁₀₀² + se₅₀²),
    with the conservative df = R − 1 of one of them. The remaining O(1/N²) term is
    c·(2/100² − 1/50²) = −c/5000, below 0.005 for any c of the size measured at λ = 0.9.
    """
    lam, reps = 0.5, 12
    t100 = _p2c(100, lam, 2.0, reps, 40)
    t50 = _p2c(50, lam, 2.0, reps, 41)
    q = t_quantile(CONFIDENCE, reps - 1)
    se100, se50 = t100.half / q, t50.half / q
    est = 2 * t100.estimate - t50.estimate
    half = q * math.sqrt(4 * se100**2 + se50**2)
    theory = p2c_mean_field(lam)
    assert math.isclose(theory, 1.266, abs_tol=5e-4)
    check(
        "4 P2C mean field λ=0.5 (N→∞ extrapolated)",
        "test_least_request_p2c_half_load",
        theory,
        Interval(est, est - half, est + half, 2 * reps),
    )
    # Power: RANDOM gives 1/(1 − λ) = 2.0, ROUND_ROBIN over 100 hosts 1.262; the interval
    # (± ≈ 0.05) excludes RANDOM by far; it cannot tell P2C from ROUND_ROBIN at this light
    # load, which is what the λ = 0.9 test is for.
    assert half < 0.1


def test_least_request_p2c_heavy_load() -> None:
    """λ = 0.9, N = 100: T₂(0.9) = 2.614 (RANDOM: 10.0, ROUND_ROBIN over 100 hosts: 5.23).

    Finite-N tolerance: at this load a Richardson extrapolation tight enough to be useful
    costs minutes (the variance of 2·T(100) − T(50) is 5× that of T(100)), so here we allow a
    finite-N excess of δ = 10/N = 0.1 service times: twice the b/N measured offline (see
    above), and the sign is known (finite N is slower than the limit). The check is that the
    interval of T(100) meets [T₂, T₂ + δ].
    """
    lam, n = 0.9, 100
    t100 = _p2c(n, lam, 2.0, 16, 42)
    theory = p2c_mean_field(lam)
    assert math.isclose(theory, 2.614, abs_tol=5e-4)
    delta = 10.0 / n
    ok = t100.lo <= theory + delta and t100.hi >= theory
    record(
        "4 P2C mean field λ=0.9 (N=100, δ=10/N)",
        "test_least_request_p2c_heavy_load",
        theory,
        t100,
        ok,
    )
    assert ok, f"T(100) {t100} does not meet [{theory}, {theory + delta}]"
    # Power: the interval (± ≈ 0.15) is far from ROUND_ROBIN's 5.23 and RANDOM's 10.
    assert t100.hi < 3.5


# -- 5 ------------------------------------------------------------------------------------


def test_mg1_pollaczek_khinchine() -> None:
    """M/D/1 and M/M/1 at λ = 80/s, S = 10 ms: Wq = 20 ms and 40 ms (W = 30 and 50 ms)."""
    for spec, base in (("det(10ms)", 50), ("exp(10ms)", 51)):
        d = DistSpec.model_validate(spec).build()
        wq = mg1_wait(80, d.mean, d.variance + d.mean**2)
        sc = load(
            "05-mg1-pollaczek-khinchine",
            {"services.0.versions.0.service_time": spec, "run.duration_s": 62},
        )
        ci = mean_ci(replicate(sc, seeds(base, 20), mean_ms))
        # 20 replications × 60 s (≈ 4 800 requests each); 99.9 % t interval (t = 3.88).
        # W = Wq + E[S]: the latency is the pod's time in system and E[S] = 10 ms exactly.
        check(f"5 M/G/1 P-K {spec}", "test_mg1_pollaczek_khinchine", (wq + d.mean) * 1e3, ci)
        # Power: det and exp differ by 20 ms in W; each interval is narrower than ±10 ms,
        # so a service-time distribution lost on the way (say, every kind sampled as its
        # mean) fails one of the two checks.
        assert ci.half < 10.0


# -- 6 ------------------------------------------------------------------------------------


def test_erlang_b_circuit_breaker() -> None:
    """http2MaxRequests 10 at a = 8 Erlang: 12.17 % get 503 UO, for any service distribution."""
    theory = erlang_b(10, 8.0)
    assert math.isclose(theory, 0.1217, abs_tol=5e-5)
    for spec, base in (("exp(10ms)", 60), ("det(10ms)", 61)):
        sc = load(
            "06-erlang-b-circuit-breaker",
            {"services.0.versions.0.service_time": spec, "run.duration_s": 9},
        )
        # Requests are not independent Bernoulli trials (a burst blocks several in a row), so
        # not a binomial interval: replication means of the blocked share, t interval
        # (16 replications × 8 s ≈ 6 400 requests, 15 df).
        ci = mean_ci(replicate(sc, seeds(base, 16), blocked))
        check(f"6 Erlang B {spec}", "test_erlang_b_circuit_breaker", theory, ci)
        # Power: an off-by-one breaker (9 or 11 slots) blocks 15.2 % or 9.4 %.
        assert ci.hi < erlang_b(9, 8.0)
        assert ci.lo > erlang_b(11, 8.0)


def test_mm1k_max_requests() -> None:
    """One single-server pod with max requests K = 10: M/M/1/10 at ρ = 0.9 blocks 5.08 %."""
    theory = mm1k_blocking(90, 100, 10)
    assert math.isclose(theory, 0.0508, abs_tol=5e-5)
    sc = load("06-mm1k-max-requests", {"run.duration_s": 62})
    # 20 replications × 60 s (≈ 5 400 requests each), t interval of the blocked share.
    ci = mean_ci(replicate(sc, seeds(62, 20), blocked))
    check("6 M/M/1/K", "test_mm1k_max_requests", theory, ci)
    # Power: without the breaker nothing is blocked; K = 5 would block 13.3 %.
    assert ci.lo > 0.0
    assert ci.hi < mm1k_blocking(90, 100, 5)


def test_mm1k_http1_connection_pool() -> None:
    """maxConnections 1 and http1MaxPendingRequests 9 on one gateway worker, pod concurrency 100.

    Envoy's HTTP/1.1 pool sends one request per connection and queues the rest in the worker's
    pending queue (source/common/conn_pool/conn_pool_base.cc), refusing with 503 UO when 9 are
    pending: the one connection is the server, so at ρ = 0.9 this is M/M/1/10 again (5.08 %
    blocked), although the pod itself could serve 100 at once.
    """
    theory = mm1k_blocking(90, 100, 10)
    sc = load(
        "06-mm1k-max-requests",
        {
            "run.duration_s": 42,
            "ingress.concurrency": 1,
            "services.0.versions.0.concurrency": 100,
            "rules.inline.2.spec.trafficPolicy": {
                "connectionPool": {
                    "tcp": {"maxConnections": 1},
                    "http": {"http1MaxPendingRequests": 9},
                }
            },
        },
    )
    # 12 replications × 40 s (≈ 3 600 requests each), t interval of the blocked share.
    ci = mean_ci(replicate(sc, seeds(63, 12), blocked))
    check("6 M/M/1/K HTTP/1.1 pool", "test_mm1k_http1_connection_pool", theory, ci)
    # Power: without the pool's queue the pod serves everything (nothing blocked); a queue
    # shorter by three (K = 7) blocks 8.4 %, one longer by four (K = 14) 2.9 %.
    assert ci.lo > mm1k_blocking(90, 100, 14)
    assert ci.hi < mm1k_blocking(90, 100, 7)


# -- 7 ------------------------------------------------------------------------------------


def test_tandem_jackson() -> None:
    """Gateway worker (μ₁ = 2000/s) then backend pod (μ₂ = 1000/s) at λ = 800/s: 5.833 ms.

    Per stage too: the ingress stage's time is the gateway's M/M/1 sojourn 1/(μ₁ − λ)
    = 0.833 ms, the route stage's the backend's 1/(μ₂ − λ) = 5 ms; and Little's law for the
    servers of each stage (utilisation law): mean busy workers = λ/μ₁ = 0.4, busy pod
    servers = λ/μ₂ = 0.8, from the utilisation samples (every 50 ms). ``Result`` exposes no
    per-stage number-in-system, so Little's law for whole stages (queue + server) is checked
    only for the whole path (on every run, by ``_harness.run``).
    """
    sc = load("07-tandem-jackson", {"run.duration_s": 13})
    results = [run(sc, s) for s in seeds(7, 16)]
    lam, mu1, mu2 = 800.0, 2000.0, 1000.0
    check(
        "7 tandem W",
        "test_tandem_jackson",
        tandem_wait(lam, [mu1, mu2]) * 1e3,
        mean_ci([mean_ms(r) for r in results]),
    )

    def stage_ms(r: Result, stage: str) -> float:
        st = r.stages()
        row = st[st["stage"] == stage]
        return float((row["mean_ms"] * row["requests"]).sum() / row["requests"].sum())

    check(
        "7 tandem stage 1 (gateway)",
        "test_tandem_jackson",
        1e3 / (mu1 - lam),
        mean_ci([stage_ms(r, "ingress") for r in results]),
    )
    check(
        "7 tandem stage 2 (backend)",
        "test_tandem_jackson",
        1e3 / (mu2 - lam),
        mean_ci([stage_ms(r, "route") for r in results]),
    )

    def busy(r: Result, kind: str) -> float:
        u = r.utilisation()
        u = u[(u["kind"] == kind) & (u["t_s"] >= 1.0)]
        return float(u["busy"].mean())

    check(
        "7 utilisation law gateway",
        "test_tandem_jackson",
        lam / mu1,
        mean_ci([busy(r, "ingress_node") for r in results]),
    )
    check(
        "7 utilisation law backend",
        "test_tandem_jackson",
        lam / mu2,
        mean_ci([busy(r, "pod") for r in results]),
    )
