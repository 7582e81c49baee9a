"""Capacity planning: the smallest value of an integer knob that meets a service-level objective.

``plan(scenario, "ingress.nodes_per_az", ["p99_ms<=100", "success_ratio>=0.999"])`` simulates
the scenario at several values of the knob, each with the same ``seeds`` replications (common
random numbers, see :mod:`istiolab.analysis.sweep`), and returns the smallest value whose runs
meet every objective *with stated confidence*:

* For each objective ``metric op threshold`` the runs at a value give a sample x₁…xₙ of the
  metric (one per seed). With mean x̄, sample standard deviation s and t = the one-sided
  ``confidence`` quantile of Student's t with n − 1 degrees of freedom, the value meets
  ``metric <= threshold`` when the upper bound x̄ + t·s/√n is ``<=`` the threshold, and
  ``metric >= threshold`` when the lower bound x̄ − t·s/√n is ``>=`` it. The default
  confidence is 95 %, one-sided. This bounds the *mean over seeds* of each run-level metric
  (e.g. of the per-run p99), not a single run.
* A value with any failed run (an error row) or a missing metric does not meet the objective.

Search: the first value tried is ``start`` (default: the knob's current value in the scenario).
If it fails, the value doubles (``v → max(v + 1, 2v)``, capped at ``high``) until one meets; if
it meets, the search steps down by 1, 2, 4, … (not below ``low``) until one fails. A binary
search between the last failing and the first meeting value then finds the smallest meeting
value. This assumes the objective is *monotone* in the knob (more nodes, replicas or concurrency
never hurts), which holds for capacity knobs but not for every path (say, retries); each value
is simulated at most once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from istiolab.analysis.sweep import (
    METRICS,
    ExecutorLike,
    _Task,
    check_engine,
    check_runs,
    open_executor,
    run_tasks,
    sweep_frame,
    sweep_seeds,
)
from istiolab.errors import ConfigError, IstiolabError
from istiolab.findings import finding

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

__all__ = [
    "SLO",
    "Plan",
    "SLONotMetError",
    "confidence_bound",
    "describe_checks",
    "plan",
    "t_quantile",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}
_SLO_RE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class SLO:
    """A service-level objective on one sweep metric: ``metric op threshold``.

    Attributes:
        metric: A sweep metric (``p99_ms``, ``mean_ms``, ``success_ratio``, ``rps``, …).
        op: ``<=``, ``<``, ``>=`` or ``>``.
        threshold: The limit, in the metric's unit.
    """

    metric: str
    op: str
    threshold: float

    def __post_init__(self) -> None:
        names = [m for m, _ in METRICS]
        if self.metric not in names:
            raise ValueError(f"unknown SLO metric {self.metric!r}; use one of {names}")
        if self.op not in _OPS:
            raise ValueError(f"unknown SLO operator {self.op!r}; use one of {list(_OPS)}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"the SLO threshold must be a finite number, got {self.threshold}")

    @classmethod
    def parse(cls, text: str | SLO) -> SLO:
        """Parse ``"p99_ms<=100"`` or ``"success_ratio >= 0.999"``.

        Raises:
            ValueError: With the accepted syntax, metrics and operators.
        """
        if isinstance(text, SLO):
            return text
        m = _SLO_RE.match(text)
        if m is None:
            raise ValueError(
                f"cannot parse SLO {text!r}: write METRIC OP NUMBER, e.g. p99_ms<=100 or "
                "success_ratio>=0.999"
            )
        return cls(m.group(1), m.group(2), float(m.group(3)))

    @property
    def upper(self) -> bool:
        """True when the objective caps the metric (``<=``/``<``): the upper bound is checked."""
        return self.op in ("<=", "<")

    def holds(self, bound: float) -> bool:
        """Whether a confidence bound satisfies the objective (NaN never does)."""
        return not math.isnan(bound) and _OPS[self.op](bound, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


def t_quantile(p: float, df: float) -> float:
    """The *p* quantile of Student's t distribution with *df* degrees of freedom.

    Inverts the t CDF (a regularised incomplete beta function) by bisection; accurate to about
    1e-10, enough for confidence bounds (scipy is not a dependency).

    Example:
        >>> round(t_quantile(0.95, 4), 4)
        2.1318
    """
    if not 0 < p < 1:
        raise ValueError(f"need 0 < p < 1, got {p}")
    if df <= 0:
        raise ValueError(f"need df > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betai(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def _betai(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes §6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    log_front += a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def confidence_bound(values: Sequence[float], upper: bool, confidence: float) -> float:
    """One-sided t confidence bound on the mean of *values* (NaN when fewer than 2 or any NaN).

    Args:
        values: One observation per seed.
        upper: Upper bound (x̄ + t·s/√n) if True, else lower (x̄ − t·s/√n).
        confidence: One-sided confidence level, e.g. 0.95.
    """
    n = len(values)
    if n < 2 or any(math.isnan(v) for v in values):
        return math.nan
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean + half if upper else mean - half


class SLONotMetError(IstiolabError):
    """No value of the knob up to ``high`` met the objectives; the evidence is attached.

    Attributes:
        knob: The knob path.
        high: The largest value tried.
        evidence: Every run (as :attr:`Plan.evidence`).
        checks: Every objective check (as :attr:`Plan.checks`).
    """

    def __init__(
        self,
        knob: str,
        high: int,
        slos: Sequence[SLO],
        evidence: pd.DataFrame,
        checks: pd.DataFrame,
    ) -> None:
        self.knob, self.high, self.evidence, self.checks = knob, high, evidence, checks
        super().__init__(
            f"no value of {knob} up to {high} meets {', '.join(map(str, slos))}; "
            "raise high, or relax the objectives"
        )


@dataclass(frozen=True)
class Plan:
    """The answer of :func:`plan` and its evidence.

    Attributes:
        knob: The dotted scenario path searched.
        value: The smallest value meeting every objective.
        slos: The objectives.
        confidence: One-sided confidence level of the bounds.
        seeds: The seeds every value was run with.
        tried: Values simulated, in the order the search tried them.
        evidence: One row per run (the sweep schema, :func:`istiolab.analysis.sweep.sweep`), the
            knob as first column, sorted by knob value then seed.
        checks: One row per (value, objective): ``value, slo, metric, op, threshold, n,
            errors, mean, std, bound, ok, meets`` (``meets``: every objective ok at this value).
    """

    knob: str
    value: int
    slos: tuple[SLO, ...]
    confidence: float
    seeds: tuple[int, ...]
    tried: tuple[int, ...]
    evidence: pd.DataFrame = field(repr=False)
    checks: pd.DataFrame = field(repr=False)

    def describe(self) -> str:
        """A human summary: the answer, then one line per value and objective."""
        return describe_checks(self.knob, self.value, self.checks, self.confidence)


def describe_checks(knob: str, value: int | None, checks: pd.DataFrame, confidence: float) -> str:
    """Human table of a plan's checks: the answer (or that there is none), one line per check."""
    side = f"{confidence:.0%} one-sided t bound over seeds"
    lines = [
        f"{knob} = {value}" if value is not None else f"{knob}: no value meets the objectives",
        f"{'value':>7}  {'objective':24} {'mean':>11} {'bound':>11}  ok   ({side})",
    ]
    for r in checks.to_dict("records"):
        extra = f"  {r['errors']} failed run(s)" if r["errors"] else ""
        lines.append(
            f"{r['value']:>7}  {r['slo']!s:24} {r['mean']:>11.5g} {r['bound']:>11.5g}  "
            f"{'yes' if r['ok'] else 'no '}{extra}"
        )
    return "\n".join(lines)


def _current_value(scenario: Scenario, path: str) -> Any:
    """The value at a dotted path of the scenario (defaults included), or None."""
    cur: Any = scenario.model_dump(mode="python")
    for part in path.split("."):
        if isinstance(cur, list):
            if part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
                cur = cur[int(part)]
            else:
                cur = next((x for x in cur if isinstance(x, dict) and x.get("name") == part), None)
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def _smallest(meets: Callable[[int], bool], start: int, low: int, high: int) -> int | None:
    """Smallest v in [low, high] with meets(v), assuming monotonicity (exponential + binary)."""
    if meets(start):
        ok, fail, step = start, None, 1
        while ok > low:
            v = max(low, ok - step)
            if meets(v):
                ok, step = v, step * 2
            else:
                fail = v
                break
        if fail is None:
            return ok
    else:
        fail, v = start, start
        while True:
            if v >= high:
                return None
            v = min(high, max(v + 1, 2 * v))
            if meets(v):
                ok = v
                break
            fail = v
    while ok - fail > 1:
        mid = (ok + fail) // 2
        if meets(mid):
            ok = mid
        else:
            fail = mid
    return ok


def plan(
    scenario: Scenario,
    knob: str,
    slo: str | SLO | Sequence[str | SLO],
    *,
    seeds: int | Sequence[int] = 5,
    confidence: float = 0.95,
    start: int | None = None,
    low: int = 1,
    high: int = 256,
    executor: ExecutorLike = None,
    base_seed: int | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    engine: str = "simpy",
) -> Plan:
    """Find the smallest value of an integer knob that meets every objective.

    See the module docstring for the decision rule (one-sided t bound over seeds, default 95 %)
    and the search (exponential from ``start``, then binary; assumes monotonicity).

    Args:
        scenario: The scenario.
        knob: Dotted path of an integer field, e.g. ``ingress.nodes_per_az`` or
            ``services.httpbin.versions.v1.replicas``.
        slo: One or more objectives, as :class:`SLO` or strings like ``"p99_ms<=100"``.
        seeds: Replications per value (>= 2), or explicit seeds.
        confidence: One-sided confidence level of the bounds (0.5 < confidence < 1).
        start: First value tried (default: the knob's current value, or ``low``).
        low: The answer is never below this.
        high: Largest value tried.
        executor: Where the runs go (as for :func:`istiolab.analysis.sweep.sweep`); opened once for
            the whole search.
        base_seed: Root of the seeds (default ``scenario.run.seed``).
        max_workers: Processes of the local pool.
        progress: tqdm progress per value; None shows it only on a terminal.
        engine: The simulation engine of every run: ``auto`` (default: the compiled engine
            when it supports the scenario), ``simpy`` or ``fast``.

    Returns:
        The answer with its evidence, checks and a plot method.

    Raises:
        ConfigError: When the knob path does not exist or ``low``/``high`` are invalid values.
        ValueError: For unparsable objectives or bad numeric arguments.
        SLONotMetError: When no value up to ``high`` meets the objectives.
    """
    slos = tuple(SLO.parse(s) for s in ([slo] if isinstance(slo, (str, SLO)) else slo))
    if not slos:
        raise ValueError("give at least one objective, e.g. p99_ms<=100")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    check_engine(engine)
    check_runs(seeds if isinstance(seeds, int) else len(seeds), scenario.name)
    root = scenario.run.seed if base_seed is None else base_seed
    seed_list = sweep_seeds(root, seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seed_list) < 2:
        raise ValueError("a confidence bound needs at least 2 seeds")
    for v in (low, high):  # the bounds of the search catch bad paths and out-of-range values
        got = _current_value(scenario.with_overrides({knob: v}), knob)
        if got is not None and (isinstance(got, bool) or not isinstance(got, int)):
            raise ConfigError(
                [
                    finding(
                        "IL401",
                        "plan knob",
                        knob,
                        f"{knob} is a {type(got).__name__} field; plan searches integer knobs",
                        "pick an integer field: nodes, replicas, concurrency, …",
                    )
                ]
            )
    if start is None:
        current = _current_value(scenario, knob)
        start = current if isinstance(current, int) and not isinstance(current, bool) else low
    start = min(max(start, low), high)

    frames: dict[int, pd.DataFrame] = {}
    checks: dict[int, list[dict[str, Any]]] = {}
    order: list[int] = []

    with open_executor(executor, max_workers) as run:

        def meets(value: int) -> bool:
            if value not in frames:
                order.append(value)
                sc = scenario.with_overrides({knob: value})
                tasks = [_Task(sc, {knob: value}, s, engine) for s in seed_list]
                rows = run_tasks(run, tasks, progress=progress, desc=f"plan {knob}={value}")
                frames[value] = frame = sweep_frame([knob], tasks, rows)
                checks[value] = _check(frame, value, slos, confidence)
            return all(c["ok"] for c in checks[value])

        answer = _smallest(meets, start, low, high)

    values = sorted(frames)
    evidence = pd.concat([frames[v] for v in values], ignore_index=True)
    check_frame = pd.DataFrame([c for v in values for c in checks[v]])
    check_frame["meets"] = check_frame.groupby("value")["ok"].transform("all").astype(bool)
    if answer is None:
        raise SLONotMetError(knob, high, slos, evidence, check_frame)
    return Plan(
        knob=knob,
        value=answer,
        slos=slos,
        confidence=confidence,
        seeds=tuple(seed_list),
        tried=tuple(order),
        evidence=evidence,
        checks=check_frame,
    )


def _check(
    frame: pd.DataFrame, value: int, slos: Sequence[SLO], confidence: float
) -> list[dict[str, Any]]:
    failed = frame["error"].notna()
    out = []
    for s in slos:
        xs = [float(x) for x in frame.loc[~failed, s.metric].astype("float64")]
        bound = confidence_bound(xs, s.upper, confidence)
        n = len(xs)
        mean = sum(xs) / n if n else math.nan
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
        out.append(
            {
                "value": value,
                "slo": str(s),
                "metric": s.metric,
                "op": s.op,
                "threshold": s.threshold,
                "n": n,
                "errors": int(failed.sum()),
                "mean": mean,
                "std": sd,
                "bound": bound,
                "ok": bool(not failed.any() and s.holds(bound)),
            }
        )
    return out
