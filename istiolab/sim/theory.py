"""Closed forms the simulator must reproduce (``external-truths.md``), for tests and notebooks.

Rates are per second, times in seconds. Every function is pure and cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of an M/G/c/c loss system (Erlang B) with offered load *a* = λ/μ."""
    if c < 0 or a < 0:
        raise ValueError(f"need c >= 0 and a >= 0, got c={c}, a={a}")
    b = 1.0
    for k in range(1, c + 1):  # numerically stable recursion
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in an M/M/c queue (Erlang C); requires ρ = a/c < 1."""
    if a >= c:
        raise ValueError(f"unstable: offered load {a} >= servers {c}")
    b = erlang_b(c, a)
    rho = a / c
    return b / (1 - rho + rho * b)


def mmc_wait(lam: float, mu: float, c: int) -> tuple[float, float]:
    """Mean wait in queue Wq and mean time in system W of M/M/c (one shared FIFO queue)."""
    a = lam / mu
    wq = erlang_c(c, a) / (c * mu - lam)
    return wq, wq + 1.0 / mu


def mm1_wait(lam: float, mu: float) -> float:
    """Mean time in system of M/M/1: 1/(μ − λ)."""
    if lam >= mu:
        raise ValueError(f"unstable: λ={lam} >= μ={mu}")
    return 1.0 / (mu - lam)


def random_split_wait(lam: float, mu: float, c: int) -> float:
    """RANDOM host selection over *c* independent FIFO hosts: each is M/M/1 with λ/c."""
    return mm1_wait(lam / c, mu)


def round_robin_wait(lam: float, mu: float, c: int) -> float:
    """ROUND_ROBIN over *c* hosts: each host is GI/M/1 with Erlang(c, λ) inter-arrivals.

    W = 1/(μ(1−σ)) where σ ∈ (0, 1) solves σ = (λ / (λ + μ(1−σ)))^c.
    """
    if lam >= c * mu:
        raise ValueError("unstable")
    lo, hi = 0.0, 1.0 - 1e-15

    def f(s: float) -> float:
        return float((lam / (lam + mu * (1.0 - s))) ** c - s)

    # f(0) > 0 and f is negative just below 1 for a stable queue: bisection is safe.
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    sigma = (lo + hi) / 2
    return 1.0 / (mu * (1.0 - sigma))


def p2c_mean_field(load: float, terms: int = 64) -> float:
    """Mean sojourn time (service mean 1) of power-of-two-choices in the mean-field limit.

    T₂(λ) = Σ_{i≥1} λ^{2^i − 2}; λ = per-host load < 1.
    """
    if not 0 <= load < 1:
        raise ValueError(f"need 0 <= load < 1, got {load}")
    total = 0.0
    for i in range(1, terms):
        term = load ** (2**i - 2)
        total += term
        if term < 1e-15:
            break
    return total


def mg1_wait(lam: float, mean_s: float, second_moment_s2: float) -> float:
    """Pollaczek–Khinchine mean wait in queue: Wq = λE[S²]/(2(1−ρ))."""
    rho = lam * mean_s
    if rho >= 1:
        raise ValueError(f"unstable: ρ={rho}")
    return lam * second_moment_s2 / (2 * (1 - rho))


def mm1k_blocking(lam: float, mu: float, k: int) -> float:
    """Blocking probability of M/M/1/K: (1−ρ)ρᴷ/(1−ρᴷ⁺¹)."""
    rho = lam / mu
    if math.isclose(rho, 1.0):
        return 1.0 / (k + 1)
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


def tandem_wait(lam: float, mus: Sequence[float]) -> float:
    """Jackson tandem of M/M/1 stations: W = Σ 1/(μᵢ − λ)."""
    return sum(mm1_wait(lam, mu) for mu in mus)


def retry_success(p_fail: float, retries: int) -> float:
    """P(success) with independent failures and *retries* retries: 1 − p^(n+1)."""
    return 1 - p_fail ** (retries + 1)


def retry_amplification(p_fail: float, retries: int) -> float:
    """Expected upstream requests per client request: (1 − p^(n+1))/(1 − p)."""
    if p_fail >= 1:
        return float(retries + 1)
    return (1 - p_fail ** (retries + 1)) / (1 - p_fail)


def timeout_fraction(mu: float, timeout_s: float) -> float:
    """Fraction of exponential(μ) services longer than the timeout: e^{−μT}."""
    return math.exp(-mu * timeout_s)


def token_bucket_max_accepted(
    max_tokens: int, tokens_per_fill: int, fill_interval_s: float, duration_s: float
) -> int:
    """Upper bound of requests a local rate limit accepts over [0, T]."""
    return max_tokens + int(duration_s // fill_interval_s) * tokens_per_fill


def cross_zone_shares(targets_per_az: Sequence[int], cross_zone: bool) -> list[float]:
    """Share of traffic per target with clients split evenly across AZs by DNS.

    Returns one share per target, AZ by AZ (AZs with no targets get no traffic and their
    clients' share goes... nowhere: AWS removes such an AZ from DNS, so shares renormalise).
    """
    live = [n for n in targets_per_az if n > 0]
    if not live:
        return []
    if cross_zone:
        total = sum(live)
        return [1.0 / total] * total
    per_az = 1.0 / len(live)
    return [per_az / n for n in live for _ in range(n)]


def hpa_desired(current: int, current_metric: float, target: float, tolerance: float = 0.1) -> int:
    """Kubernetes HPA: ⌈current × metric/target⌉, unchanged within the tolerance."""
    ratio = current_metric / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def wilson_interval(successes: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
