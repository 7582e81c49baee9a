"""The fast engine's own random variates: the ziggurat normal and exponential of the kernel.

The kernel draws service times (lognormal: exp of a normal), Poisson gaps and exponential
costs from its own xoshiro256+ streams through a 256-layer ziggurat (``kernel._ziggurat``). These
tests hold the draws to the exact distributions, so an error in a table or a branch (the
base strip's tail, a wedge) shows here rather than as a slightly wrong latency downstream:

* Kolmogorov–Smirnov distance of 400 000 draws from the exact CDF, against the 0.1 % critical
  value 1.949 / √n;
* the share of draws from the tail branch (beyond the base layer's edge r) against its
  probability, within five Poisson standard deviations;
* the first moments inside their 99.9 % intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from istiolab.sim.fast import kernel as kern
from istiolab.sim.fast.run import _streams

N = 400_000
KS_999 = 1.949  # sqrt(-ln(0.001 / 2) / 2): the Kolmogorov distribution's 0.1 % point
Z999 = 3.29


def _draws(fn: object, n: int = N) -> np.ndarray:
    rs = _streams(np.random.SeedSequence(20261203), ["test"])
    return np.array([fn(rs, 0) for _ in range(n)])  # type: ignore[operator]


def _ks(x: np.ndarray, cdf: object) -> float:
    x = np.sort(x)
    f = np.array([cdf(v) for v in x])  # type: ignore[operator]
    i = np.arange(1, len(x) + 1)
    return float(max((i / len(x) - f).max(), (f - (i - 1) / len(x)).max()))


def test_the_tables_end_where_the_density_does() -> None:
    """256 layers of equal area, the top one ending at x = 0 (f = 1), the published r."""
    assert pytest.approx(3.6541528853610088, rel=1e-12) == kern._ZN_R
    assert pytest.approx(7.697117470131050, rel=1e-12) == kern._ZE_R
    tables = ((kern._ZN_W, kern._ZN_K, kern._ZN_F), (kern._ZE_W, kern._ZE_K, kern._ZE_F))
    for width, inner, height in tables:
        assert len(width) == len(inner) == 256
        assert len(height) == 257
        assert height[-1] == 1.0
        assert np.all(np.diff(height[1:]) > 0)
        assert np.all(inner <= np.uint64(1 << 52))


def test_normal_draws_are_standard_normal() -> None:
    x = _draws(kern._normal)
    cdf = lambda v: 0.5 * math.erfc(-v / math.sqrt(2.0))  # noqa: E731
    assert _ks(x, cdf) < KS_999 / math.sqrt(N)
    assert abs(x.mean()) < Z999 / math.sqrt(N)
    assert abs(x.var() - 1.0) < Z999 * math.sqrt(2.0 / N)
    r = kern._ZN_R
    p_tail = math.erfc(r / math.sqrt(2.0))  # both signs
    tail = int((np.abs(x) > r).sum())
    assert abs(tail - N * p_tail) < 5 * math.sqrt(N * p_tail) + 1
    assert abs(int((x > 0).sum()) - N / 2) < Z999 * math.sqrt(N) / 2


def test_exponential_draws_are_standard_exponential() -> None:
    x = _draws(kern._exponential)
    assert (x >= 0).all()
    assert _ks(x, lambda v: 1.0 - math.exp(-v)) < KS_999 / math.sqrt(N)
    assert abs(x.mean() - 1.0) < Z999 / math.sqrt(N)
    assert abs(x.var() - 1.0) < Z999 * math.sqrt(8.0 / N)  # (mu4 - 1) / N, mu4 = 9
    r = kern._ZE_R
    tail = x[x > r]
    assert abs(len(tail) - N * math.exp(-r)) < 5 * math.sqrt(N * math.exp(-r)) + 1
    assert len(tail) > 0
    assert (tail - r).mean() == pytest.approx(1.0, abs=5 / math.sqrt(len(tail)))
