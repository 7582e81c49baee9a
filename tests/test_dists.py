"""Service-time distributions: declared moments, sampler streams, the YAML spec and its shorthand.

Tolerances come from confidence intervals, never from trial and error:

* Mean. By the CLT the sample mean of n draws is ≈ Normal(μ, σ²/n), so |x̄ − μ| ≤ z·σ/√n with
  z = Φ⁻¹(1 − α/2) = 3.29 for a 99.9 % two-sided interval.
* Variance. The sample variance s² is ≈ Normal(σ², (μ₄ − σ⁴)/n) (delta method; μ₄ is the fourth
  central moment, computed in closed form per family below, so the bound knows about kurtosis),
  so |s² − σ²| ≤ z·√((μ₄ − σ⁴)/n). The normal approximation for s² needs the eighth moment to be
  moderate, so the variance cases use moderate parameters (log-normal cv = 0.5); the heavy
  log-normal (cv = 1.5, kurtosis ≈ 200) is checked on its mean only.

With fixed seeds each check is deterministic; the interval is what makes a pass meaningful: a
wrong parametrisation (say, log-normal with μ = ln mean) misses by many standard errors.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from istiolab.sim._base import SimModel
from istiolab.sim.dists import (
    Deterministic,
    Distribution,
    DistSpec,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Shifted,
    Uniform,
    Zero,
    buffered,
    dist,
)

N = 200_000
Z999 = NormalDist().inv_cdf(1 - 0.001 / 2)  # 3.2905


def lognormal_mu4(mean: float, cv: float) -> float:
    """Fourth central moment of a log-normal from its raw moments E[Xᵏ] = exp(kμ + k²σ²/2)."""
    s2 = math.log1p(cv * cv)
    mu = math.log(mean) - s2 / 2
    raw = [math.exp(k * mu + k * k * s2 / 2) for k in range(5)]
    m = raw[1]
    return raw[4] - 4 * m * raw[3] + 6 * m * m * raw[2] - 3 * m**4


EMPIRICAL = np.array([0.001, 0.002, 0.002, 0.005, 0.013, 0.040])


def gamma_mu4(mean: float, cv: float) -> float:
    """Gamma(k, θ): μ₄ = 3k(k + 2)θ⁴ (excess kurtosis 6/k)."""
    k, theta = 1 / cv**2, mean * cv**2
    return 3 * k * (k + 2) * theta**4


_E = EMPIRICAL

# (distribution, its mean, variance and fourth central moment μ₄), all in closed form, so a
# distribution whose declared mean or variance is wrong fails even if its sampler agrees with it.
MOMENT_CASES: list[tuple[Distribution, float, float, float]] = [
    (Exponential(0.010), 0.010, 0.010**2, 9 * 0.010**4),
    (LogNormal(0.020, 0.5), 0.020, (0.5 * 0.020) ** 2, lognormal_mu4(0.020, 0.5)),
    (Gamma(0.010, 0.5), 0.010, (0.5 * 0.010) ** 2, gamma_mu4(0.010, 0.5)),
    (Gamma(0.010, 2.0), 0.010, (2.0 * 0.010) ** 2, gamma_mu4(0.010, 2.0)),
    (Uniform(0.001, 0.003), 0.002, 0.002**2 / 12, 0.002**4 / 80),
    (
        Empirical(_E),
        float(_E.mean()),
        float(np.mean((_E - _E.mean()) ** 2)),
        float(np.mean((_E - _E.mean()) ** 4)),
    ),
    (Shifted(Exponential(0.010), 0.002), 0.012, 0.010**2, 9 * 0.010**4),
]


@pytest.mark.parametrize(("d", "mean", "var", "mu4"), MOMENT_CASES, ids=repr)
def test_sample_mean_and_variance_inside_999_ci(
    d: Distribution, mean: float, var: float, mu4: float
) -> None:
    assert d.mean == pytest.approx(mean, rel=1e-12)
    assert d.variance == pytest.approx(var, rel=1e-12)
    x = d.sample_n(np.random.default_rng(20240601), N)
    assert x.shape == (N,)
    assert x.dtype == np.float64
    assert (x >= 0).all()
    assert abs(x.mean() - mean) <= Z999 * math.sqrt(var / N)
    assert abs(x.var(ddof=1) - var) <= Z999 * math.sqrt((mu4 - var**2) / N)
    assert d.second_moment == pytest.approx(var + mean**2, rel=1e-12)


def test_heavy_lognormal_mean_inside_999_ci() -> None:
    # cv = 1.5: the mean's CLT still holds (skewness of x̄ is 7.9/√n ≈ 0.02 at n = 200k).
    d = LogNormal(0.020, 1.5)
    x = d.sample_n(np.random.default_rng(7), N)
    assert abs(x.mean() - 0.020) <= Z999 * math.sqrt(d.variance / N)
    assert d.variance == pytest.approx((1.5 * 0.020) ** 2)
    assert d.cv == pytest.approx(1.5)


def test_lognormal_median_matches_its_parametrisation() -> None:
    # Median = exp(μ) = mean / √(1 + cv²). Binomial CI on the fraction below the median:
    # 0.5 ± 3.29·√(0.25/n).
    d = LogNormal(0.020, 1.5)
    x = d.sample_n(np.random.default_rng(8), N)
    median = 0.020 / math.sqrt(1 + 1.5**2)
    assert abs((x < median).mean() - 0.5) <= Z999 * math.sqrt(0.25 / N)


def test_constant_distributions_are_exact() -> None:
    rng = np.random.default_rng(0)
    for d, value in ((Zero(), 0.0), (Deterministic(0.005), 0.005)):
        assert d.mean == value
        assert d.variance == 0.0
        assert d.second_moment == value**2
        assert (d.sample_n(rng, 100) == value).all()
        draw = d.sampler(rng)
        assert [draw() for _ in range(10)] == [value] * 10


SAMPLER_CASES: list[Distribution] = [
    Exponential(0.01),
    LogNormal(0.02, 1.5),
    Gamma(0.01, 0.3),
    Gamma(0.01, 3.0),
    Uniform(0.0, 1.0),
    Empirical([0.1, 0.2, 0.7]),
    Shifted(LogNormal(0.02, 0.5), 0.001),
    Deterministic(0.5),
]


@pytest.mark.parametrize("d", SAMPLER_CASES, ids=repr)
@pytest.mark.parametrize("block", [1, 7, 1000])
def test_sampler_yields_the_sample_n_stream(d: Distribution, block: int) -> None:
    # 3500 draws span several refills (and a partial last block), so block seams are exercised.
    draw = d.sampler(np.random.default_rng(42), block)
    got = [draw() for _ in range(3500)]
    assert all(type(v) is float for v in got)
    assert got == d.sample_n(np.random.default_rng(42), 3500).tolist()
    assert d.sample(np.random.default_rng(42)) == got[0]


def test_sampler_is_reproducible_and_seed_dependent() -> None:
    d = Exponential(1.0)
    a, b, c = (d.sampler(np.random.default_rng(s)) for s in (1, 1, 2))
    xs, ys, zs = ([f() for _ in range(10)] for f in (a, b, c))
    assert xs == ys
    assert xs != zs


def test_buffered_rejects_empty_blocks() -> None:
    with pytest.raises(ValueError, match="block must be >= 1, got 0"):
        buffered(np.random.default_rng(0).random, 0)


def test_value_semantics() -> None:
    assert Exponential(0.01) == Exponential(0.01)
    assert Exponential(0.01) != Exponential(0.02)
    assert Exponential(0.01) != Gamma(0.01, 1.0)
    assert len({Exponential(0.01), Exponential(0.01), Uniform(0, 1)}) == 2
    assert repr(Shifted(Exponential(0.01), 0.002)) == "Shifted(Exponential(0.01), 0.002)"
    assert isinstance(Zero(), Distribution)


def test_gamma_and_lognormal_parameters() -> None:
    g = Gamma(0.010, 0.5)
    assert (g.shape, g.scale) == pytest.approx((4.0, 0.0025))
    ln = LogNormal(0.020, 1.5)
    assert ln.sigma == pytest.approx(math.sqrt(math.log(3.25)))
    assert ln.mu == pytest.approx(math.log(0.020) - math.log(3.25) / 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Exponential(-1), "mean_s must be > 0, got -1.0"),
        (lambda: Exponential(0), "mean_s must be > 0, got 0.0"),
        (lambda: Exponential(math.inf), "mean_s must be finite, got inf"),
        (lambda: LogNormal(0.01, 0), "cv must be > 0, got 0.0"),
        (lambda: Gamma(0.01, -2), "cv must be > 0, got -2.0"),
        (lambda: Deterministic(-0.1), "value_s must be >= 0, got -0.1"),
        (lambda: Deterministic(math.nan), "value_s must be >= 0, got nan"),
        (lambda: Uniform(-1, 1), "low_s must be >= 0, got -1.0"),
        (lambda: Uniform(2, 1), r"high_s must be >= low_s \(2.0\), got 1.0"),
        (lambda: Empirical([]), "samples_s must not be empty"),
        (lambda: Empirical([0.1, -0.2]), r"samples_s\[1\] must be finite and >= 0, got -0.2"),
        (lambda: Shifted(Zero(), -1), "offset_s must be >= 0, got -1.0"),
    ],
)
def test_constructors_name_the_bad_value(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# -- spec and shorthand ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exp(10ms)", Exponential(0.010)),
        ("exponential(mean=10ms)", Exponential(0.010)),
        ("det(5ms)", Deterministic(0.005)),
        ("const(0.5s)", Deterministic(0.5)),
        ("5ms", Deterministic(0.005)),
        ("7", Deterministic(0.007)),
        (5, Deterministic(0.005)),
        (2.5, Deterministic(0.0025)),
        ("lognormal(20ms, cv=1.5)", LogNormal(0.020, 1.5)),
        ("lognormal(cv=1.5, mean=20)", LogNormal(0.020, 1.5)),
        ("gamma(10ms, 0.5)", Gamma(0.010, 0.5)),
        ("uniform(1ms, 3ms)", Uniform(0.001, 0.003)),
        ("unif(low=1, high=3ms)", Uniform(0.001, 0.003)),
        ("empirical(1ms, 2ms, 9)", Empirical([0.001, 0.002, 0.009])),
        ([1, 2, 9], Empirical([0.001, 0.002, 0.009])),
        ("zero", Zero()),
        ("zero()", Zero()),
        ("exp(10ms, offset=2ms)", Shifted(Exponential(0.010), 0.002)),
        ("det(300us)", Deterministic(0.0003)),
        ("det(0.07ms)", Deterministic(7e-05)),
        ({"kind": "exp", "mean_ms": 10}, Exponential(0.010)),
        ({"kind": "lognormal", "mean_ms": 20, "cv": 1.5}, LogNormal(0.020, 1.5)),
    ],
)
def test_shorthand_and_full_forms_build_the_distribution(text: Any, expected: Distribution) -> None:
    assert dist(text).build() == expected


def test_exp_shorthand_mean_is_exactly_ten_ms() -> None:
    d = dist("exp(10ms)").build()
    assert isinstance(d, Exponential)
    assert d.mean == 0.010  # exact: ms → s does not accumulate float error


def test_dist_with_keyword_fields() -> None:
    spec = dist("lognormal", mean_ms=20, cv=1.5)
    assert spec == dist("lognormal(20ms, cv=1.5)")
    assert spec.to_dict() == {"kind": "lognormal", "mean_ms": 20.0, "cv": 1.5}
    assert dist(spec) is spec
    with pytest.raises(TypeError, match="must be a kind"):
        dist(5, mean_ms=3)


@pytest.mark.parametrize(
    "text",
    [
        "zero()",
        "det(5ms)",
        "exp(10ms)",
        "lognormal(20ms, cv=1.5)",
        "gamma(0.25ms, cv=0.1)",
        "uniform(1ms, 3ms)",
        "empirical(1ms, 2.5ms)",
        "exp(10ms, offset=0.5ms)",
    ],
)
def test_shorthand_round_trips(text: str) -> None:
    spec = dist(text)
    assert spec.shorthand() == text
    assert DistSpec.model_validate(spec.to_dict()) == spec


def test_shorthand_works_inside_other_specs() -> None:
    class Stage(SimModel):
        service_time: DistSpec
        latency: DistSpec = DistSpec(kind="zero")

    stage = Stage.model_validate({"service_time": "lognormal(20ms, cv=1.5)", "latency": 0.3})
    assert stage.service_time.build() == LogNormal(0.020, 1.5)
    assert stage.latency.build() == Deterministic(0.0003)


@pytest.mark.parametrize(
    ("data", "field_in_message"),
    [
        ({"kind": "exponential"}, "needs mean_ms"),
        ({"kind": "lognormal", "mean_ms": 20}, "needs cv"),
        ({"kind": "gamma", "cv": 1}, "needs mean_ms"),
        ({"kind": "uniform", "low_ms": 1}, "needs high_ms"),
        ({"kind": "deterministic", "mean_ms": 5}, "needs value_ms"),
        ({"kind": "empirical"}, "needs samples_ms"),
        ({"kind": "exponential", "mean_ms": 1, "cv": 2}, "cv is not used by kind 'exponential'"),
        ({"kind": "uniform", "low_ms": 3, "high_ms": 1}, r"high_ms must be >= low_ms \(3.0\)"),
        ("lognormal(20ms)", "needs cv"),
        ("exp()", "needs mean_ms"),
        ("exp(10ms, 2ms)", "exponential takes 1 \\(mean_ms\\)"),
        ("lognormal(20ms, cv=2ms)", "cv is a ratio without a unit, got '2ms'"),
        ("exp(mean=1, mean=2)", "mean_ms is given twice"),
        ("exp(rate=5)", "unknown parameter 'rate'"),
        ("weibull(1ms)", "unknown distribution 'weibull'"),
        ("exp(ten)", "'ten' in 'exp\\(ten\\)' is not a time"),
        ("fast", "'fast' is not a distribution"),
        (True, "cannot be a boolean"),
    ],
)
def test_spec_errors_name_the_field(data: Any, field_in_message: str) -> None:
    with pytest.raises(ValidationError, match=field_in_message):
        dist(data)


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"kind": "exponential", "mean_ms": -1}, ("mean_ms",)),
        ({"kind": "exponential", "mean_ms": math.nan}, ("mean_ms",)),
        ({"kind": "lognormal", "mean_ms": 1, "cv": 0}, ("cv",)),
        ({"kind": "deterministic", "value_ms": -5}, ("value_ms",)),
        ({"kind": "empirical", "samples_ms": []}, ("samples_ms",)),
        ({"kind": "empirical", "samples_ms": [1, -1]}, ("samples_ms", 1)),
        ({"kind": "exponential", "mean_ms": 1, "offset_ms": -1}, ("offset_ms",)),
        ({"kind": "weibull"}, ("kind",)),
        ({"kind": "exponential", "mean_ms": 1, "mean": 2}, ("mean",)),
    ],
)
def test_field_constraint_errors_are_located_at_the_field(data: Any, loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        DistSpec.model_validate(data)
    assert info.value.errors()[0]["loc"] == loc


def test_spec_is_frozen() -> None:
    spec = dist("exp(10ms)")
    with pytest.raises(ValidationError):
        spec.mean_ms = 5  # type: ignore[misc]
