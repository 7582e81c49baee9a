"""Shared statistics and helpers for the validation suite.

Every stochastic assertion in this package compares a closed form from ``external-truths.md``
with a confidence interval computed from the simulation, never with a hand-picked tolerance:

* means: independent replications (different seeds, warm-up discarded in each), then a
  Student-t interval over the replication means (``mean_ci``);
* proportions of independent Bernoulli trials: the Wilson score interval (``wilson``);
* proportions that are *not* independent per request (blocking in a queue, where consecutive
  requests see the same state): replications and a t interval, like means.

Confidence level. Each interval is a 99.9 % interval. The suite makes about 70 such assertions;
with 99 % intervals a correct simulator would fail one of them with probability
1 − 0.99⁷⁰ ≈ 50 % whenever its random streams change, which would train people to re-pick seeds.
At 99.9 % the family-wise false-alarm rate is at most 70 × 0.1 % = 7 % (Bonferroni). Each test
also states the interval's half-width next to the effect it must detect, so the wider interval
does not hide a broken feature (the power argument).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from istiolab.analysis.planner import t_quantile as planner_t_quantile
from istiolab.sim.engine import build_table, simulate
from istiolab.sim.fast.run import prepare
from istiolab.sim.results import Result
from istiolab.sim.scenario import Scenario, load_scenario
from istiolab.sim.theory import wilson_interval

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "sim" / "scenarios" / "validation"

CONFIDENCE = 0.999
"""Confidence of every interval in the suite (see the module docstring)."""

ENGINE = "simpy"
"""The engine :func:`run` simulates with; the ``engine`` fixture (``conftest.py``) sets it."""


# -- Student t quantile (no scipy in the test environment) ------------------------------------


def t_quantile(confidence: float, df: int) -> float:
    """The t value with P(|T| < t) = *confidence* (two-sided), from the planner's t quantile."""
    return planner_t_quantile(0.5 + confidence / 2, df)


def z_quantile(confidence: float) -> float:
    """Two-sided normal quantile."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


# -- intervals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval."""

    estimate: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        """Half-width (for symmetric intervals; the larger side otherwise)."""
        return max(self.estimate - self.lo, self.hi - self.estimate)

    def __contains__(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def __str__(self) -> str:
        return f"{self.estimate:.6g} [{self.lo:.6g}, {self.hi:.6g}] (n={self.n})"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval for the mean of independent, identically distributed *values*.

    Half-width t_{(1+c)/2, R-1} · s / √R, s the sample standard deviation of the R values.
    """
    r = len(values)
    if r < 2:
        raise ValueError("need at least two replications")
    m = math.fsum(values) / r
    s2 = math.fsum((v - m) ** 2 for v in values) / (r - 1)
    half = t_quantile(confidence, r - 1) * math.sqrt(s2 / r)
    return Interval(m, m - half, m + half, r)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval for a proportion of *n* independent Bernoulli trials."""
    lo, hi = wilson_interval(successes, n, confidence)
    return Interval(successes / n if n else math.nan, lo, hi, n)


def known_variance_ci(
    mean: float, variance: float, n: int, confidence: float = CONFIDENCE
) -> Interval:
    """Normal interval for a sample mean of *n* iid values whose variance is known in closed
    form under the hypothesis being tested (CLT): mean ± z·√(variance/n)."""
    half = z_quantile(confidence) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half, n)


# -- scenarios and runs ---------------------------------------------------------------------


def load(name: str, overrides: dict[str, Any] | None = None) -> Scenario:
    """A validation scenario from ``sim/scenarios/validation`` with dotted-path overrides."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    return sc.with_overrides(overrides) if overrides else sc


def run(scenario: Scenario, seed: int) -> Result:
    """Simulate on :data:`ENGINE` and check Little's law on the result (truth 7 holds in *every*
    run). On the fast engine, a scenario it does not support skips the test, naming why."""
    if ENGINE == "fast":
        table, notes = build_table(scenario)
        plan = prepare(scenario, table, notes)
        if isinstance(plan, str):
            pytest.skip(f"the fast engine does not support {plan}")
    result = simulate(scenario, seed, engine=ENGINE)
    assert_little(result)
    return result


def replicate(
    scenario: Scenario, seeds: Iterable[int], metric: Callable[[Result], float]
) -> list[float]:
    """*metric* of independent replications, one per seed (each checked for Little's law)."""
    return [metric(run(scenario, s)) for s in seeds]


def assert_little(result: Result) -> None:
    """L = λW for every route and for the whole path ('*') of one run.

    ``Result.little()`` measures L from the time series (each request's time in system spread
    over the intervals it spans, intervals after the warm-up), independently of λ (requests
    started after the warm-up / window) and W (their mean time in system). Both count exactly
    the requests that completed; they differ only by the in-window time of the requests that
    were already in the system at the warm-up boundary w (counted in L, not in λW).

    So L ≥ λW exactly (up to float rounding), and the excess is bounded: the boundary term is
    at most N(w) · max sojourn / window. N(w), the number in system at w, is no more dispersed
    than a geometric variable with mean L in the systems of this suite (M/M/1 is the most
    dispersed of them), so P(N(w) ≥ 10(L + 1)) ≤ (L/(L+1))^{10(L+1)} ≤ e⁻¹⁰ ≈ 5·10⁻⁵. Hence
    0 ≤ L − λW ≤ 10(L + 1) · max_s / window (+ 1e-9). In the queueing tests that is a few % of
    L. With long service times (HPA: 5.6 s in a 45 s window) the upper bound is loose and only
    the one-sided check bites.

    What it can catch: both sides come from each request's recorded ``t_start``/``t_end``, so
    this checks the metrics' time accounting (binning by completion, spreading a request over
    the intervals it spans, the warm-up cut, the last interval's clamp), not the engine's
    stage timing. The engine's timing is checked against theory independently: per-stage means
    against Jackson and the utilisation law from the servers' own busy-time integrals
    (``test_tandem_jackson``), waits against Erlang C, P-K and the rest.
    """
    config = result.meta["config"]
    steps = config["warmup_s"] / config["interval_s"]
    # L is measured over whole intervals from the first one after the warm-up, λ and W over
    # requests started after the warm-up: the windows coincide only when the warm-up is a
    # whole number of intervals (otherwise the two estimate the same number over different
    # windows and differ by noise that this bound does not cover).
    assert abs(steps - round(steps)) < 1e-9, (
        f"warm-up {config['warmup_s']} s is not a multiple of the metrics interval "
        f"{config['interval_s']} s: Little's law cannot be checked exactly"
    )
    little = result.little()
    max_s = result.totals()["max_ms"] / 1e3
    for row in little.to_dict("records"):
        if row["requests"] == 0:
            continue
        ell, lw, route = float(row["l"]), float(row["lambda_w"]), row["route"]
        bound = 10 * (ell + 1) * max_s / float(row["window_s"]) + 1e-9
        # The boundary term only adds to L: L ≥ λW exactly (up to float rounding).
        assert ell >= lw - 1e-9 * max(1.0, lw), (
            f"Little's law: L={ell:.9g} < λW={lw:.9g} on route {route!r}"
        )
        assert abs(ell - lw) <= bound, (
            f"Little's law fails on route {route!r}: L={ell:.6g}, λW={lw:.6g}, bound {bound:.3g}"
        )


# -- report ---------------------------------------------------------------------------------


def record(truth: str, name: str, theory: float, interval: Interval, passed: bool) -> None:
    """Append one line to ``$ISTIOLAB_VALIDATION_REPORT`` (JSON lines) when it is set.

    The suite's report (truth → test → theory → simulation with CI) is built from these lines.
    """
    path = os.environ.get("ISTIOLAB_VALIDATION_REPORT")
    if not path:
        return
    line = {
        "truth": truth,
        "test": name,
        "theory": theory,
        "estimate": interval.estimate,
        "lo": interval.lo,
        "hi": interval.hi,
        "n": interval.n,
        "passed": passed,
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def check_soft(truth: str, name: str, theory: float, interval: Interval) -> tuple[str, bool]:
    """Record whether *theory* lies inside *interval*; return ``(message, ok)`` to assert later."""
    ok = theory in interval
    record(truth, name, theory, interval, ok)
    return f"{truth}: theory {theory:.6g} outside the {CONFIDENCE:.1%} interval {interval}", ok


def check(truth: str, name: str, theory: float, interval: Interval) -> None:
    """Assert *theory* lies inside *interval* (and record the comparison)."""
    message, ok = check_soft(truth, name, theory, interval)
    assert ok, message
