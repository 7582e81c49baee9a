"""The statistics the stochastic checks compare against: retry attempts, binomial intervals."""

from __future__ import annotations

import math
import statistics

__all__ = ["expected_attempts", "wilson_interval"]

# -------------------------------------------------------------------- retry semantics (Envoy)


def expected_attempts(p: float, retries: int) -> tuple[float, float]:
    """Mean and variance of upstream requests per client request (external truths item 10).

    A backend failing independently with probability *p*, retried up to *retries* times:
    ``E = (1 - p**(n+1)) / (1 - p)``.
    """
    n = retries
    probs = [(p ** (k - 1)) * (1 - p) for k in range(1, n + 1)] + [p**n]
    mean = sum(k * q for k, q in enumerate(probs, start=1))
    var = sum((k - mean) ** 2 * q for k, q in enumerate(probs, start=1))
    return mean, var


# ------------------------------------------------------------------------- statistics


def _z(confidence: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
