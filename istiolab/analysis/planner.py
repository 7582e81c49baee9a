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

Several knobs (``plan(scenario, ["ingress.nodes_per_az", "services.0.versions.0.replicas"],
...)`` or :class:`Knob` with a cost per unit) are searched jointly for the smallest total cost
Σ costᵢ·valueᵢ whose runs meet every objective. The feasible set is assumed monotone in every
knob (more of any never hurts), so the smallest feasible value of the other knobs can only fall
as the first knob grows: the search walks the first knob up from its smallest feasible value
(with the others at their ``high``), finds the others' smallest feasible values below the
previous ones (the same exponential and binary search), and stops once the first knob alone
costs more than the best point found. Two knobs of ranges m and n take O((m + n) log) points.

Unfinished requests count: a ``success_ratio`` objective is held against
``success_ratio_incl_unfinished`` (completed successes over completed plus unfinished requests
beyond a steady state's, :mod:`istiolab.sim.accounting`) and ``error_rate`` is its complement,
unless ``unfinished_ok=True``. ``rho`` is the busiest tier's utilisation (``rho<=0.8`` is a
utilisation ceiling). An answer whose busiest tier runs at ρ ≥ 0.85 gets a ``high_rho``
warning (:attr:`Plan.warnings`).

Windowed objectives: ``window_p99_ms_max`` (alias ``window_p99_ms``) and
``window_error_rate_max`` (alias ``window_error_rate``) hold the worst metrics window after the
warm-up (:meth:`Result.windows <istiolab.sim.results.Result.windows>`, one window per
``run.metrics_interval_s``) to the threshold, and ``time_to_recover_s`` the seconds from an
event to the window from which every window to the end of the run meets the objectives again
(:meth:`Result.window_totals <istiolab.sim.results.Result.window_totals>`). What a window
must meet is read off the plan's own objectives: its p99 at most the smallest ``p99_ms`` or
``window_p99_ms_max`` threshold, its error rate at most the smallest ``error_rate`` or
``window_error_rate_max`` threshold or 1 − the largest ``success_ratio`` one (1 % when none
is given). A run without events has no recovery to time: a ``time_to_recover_s`` objective
is not checked on it.

N-1 (``must_survive``): every candidate is also run with each of the given events added to
the scenario (``az_loss:us-east-1a``, ``node_loss``, ``pod_crash:api/v1:2``; at the middle of
the window after the warm-up unless ``@SECONDS`` says when), on the same seeds, and meets the
objectives only if they hold in the base scenario *and* in every variant. The checks and the
evidence then carry a ``variant`` column (``base`` or the event as written); the time to
recover of a variant is timed from its added event.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
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
    resolve_executor,
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
    "Knob",
    "Plan",
    "SLONotMetError",
    "Survive",
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
        names = [m for m, _ in METRICS if m != "warnings"] + list(_ALIASES)
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


_ALIASES = {
    "rho": "rho_max",
    "window_p99_ms": "window_p99_ms_max",
    "window_p999_ms": "window_p999_ms_max",
    "window_error_rate": "window_error_rate_max",
}
"""SLO metric names that read another sweep column."""

_KNOB_RE = re.compile(
    r"^\s*([A-Za-z0-9_.\-]+?)\s*(?::\s*([0-9.]+(?:[eE][-+]?\d+)?))?\s*"
    r"(?:=\s*(\d+)\s*\.\.\s*(\d+))?\s*$"
)


@dataclass(frozen=True)
class Knob:
    """An integer scenario field the planner may raise, with its cost and range.

    Attributes:
        path: Dotted scenario path, e.g. ``ingress.nodes_per_az``.
        cost: Cost of one unit (say, dollars per node-hour, or 1 to count units); the planner
            minimises the sum of cost × value over the knobs.
        low: Smallest value allowed (None: the plan's ``low``).
        high: Largest value tried (None: the plan's ``high``).
    """

    path: str
    cost: float = 1.0
    low: int | None = None
    high: int | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a knob needs a dotted path")
        if not (math.isfinite(self.cost) and self.cost > 0):
            raise ValueError(f"knob {self.path}: the cost must be a positive number")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"knob {self.path}: low {self.low} exceeds high {self.high}")

    @classmethod
    def parse(cls, text: str | Knob) -> Knob:
        """Parse ``PATH``, ``PATH:COST``, ``PATH=LOW..HIGH`` or ``PATH:COST=LOW..HIGH``.

        Raises:
            ValueError: With the accepted syntax.

        Example:
            >>> Knob.parse("ingress.nodes_per_az:3=1..8")
            Knob(path='ingress.nodes_per_az', cost=3.0, low=1, high=8)
        """
        if isinstance(text, Knob):
            return text
        m = _KNOB_RE.match(text)
        if m is None:
            raise ValueError(
                f"cannot parse knob {text!r}: write PATH, PATH:COST, PATH=LOW..HIGH or "
                "PATH:COST=LOW..HIGH, e.g. ingress.nodes_per_az:3=1..8"
            )
        path, cost, low, high = m.groups()
        return cls(
            path,
            float(cost) if cost else 1.0,
            int(low) if low else None,
            int(high) if high else None,
        )

    def __str__(self) -> str:
        return f"{self.path} (cost {self.cost:g}/unit)"


_SURVIVE_RE = re.compile(
    r"^\s*([a-z_]+)\s*(?::\s*([^@]*?))?\s*(?:@\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*s?)?\s*$"
)
_SURVIVE_KINDS = ("az_loss", "node_loss", "pod_crash", "error_burst")


@dataclass(frozen=True)
class Survive:
    """An event every answer of :func:`plan` must also survive (an N-1 variant).

    Attributes:
        name: The variant's label in the checks and evidence (the event as written).
        event: The event's fields (:class:`~istiolab.sim.scenario.EventSpec`) without ``at_s``.
        at_s: When it happens; None: the middle of the window after the warm-up.
    """

    name: str
    event: dict[str, Any]
    at_s: float | None = None

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | Survive) -> Survive:
        """Parse an event as ``--must-survive`` writes it.

        ``az_loss:AZ``, ``node_loss[:NODE]``, ``pod_crash:SERVICE[/VERSION][:COUNT]`` or
        ``error_burst[:SERVICE[/VERSION]][:PROBABILITY[:SECONDS]]``; each may end in
        ``@SECONDS`` (when the event happens). A mapping is taken as the event's fields
        (``{"kind": "error_burst", "probability": 0.2}``), ``at_s`` optional.

        Raises:
            ValueError: With the accepted syntax.

        Example:
            >>> Survive.parse("pod_crash:api/v1:2@30").event
            {'kind': 'pod_crash', 'service': 'api', 'version': 'v1', 'count': 2}
        """
        if isinstance(spec, Survive):
            return spec
        if isinstance(spec, Mapping):
            fields = dict(spec)
            at = fields.pop("at_s", None)
            kind = fields.get("kind")
            if not isinstance(kind, str):
                raise ValueError(f"a must-survive event needs a kind, got {dict(spec)!r}")
            target = fields.get("az") or fields.get("node") or fields.get("service") or ""
            name = f"{kind}:{target}" if target else kind
            return cls(name, fields, None if at is None else float(at))
        m = _SURVIVE_RE.match(spec)
        if m is None or m.group(1) not in _SURVIVE_KINDS:
            raise ValueError(
                f"cannot parse must-survive event {spec!r}: write az_loss:AZ, node_loss[:NODE], "
                "pod_crash:SERVICE[/VERSION][:COUNT] or "
                "error_burst[:SERVICE[/VERSION]][:PROBABILITY[:SECONDS]], optionally @SECONDS, "
                "e.g. az_loss:us-east-1a@30"
            )
        kind, arg, at = m.group(1), (m.group(2) or "").strip(), m.group(3)
        event: dict[str, Any] = {"kind": kind}
        if kind == "az_loss" and arg:
            event["az"] = arg
        elif kind == "node_loss" and arg:
            event["node"] = arg
        elif kind == "error_burst" and arg:
            event.update(_burst(spec, arg))
        elif kind == "pod_crash" and arg:
            target, _, count = arg.partition(":")
            service, _, version = target.partition("/")
            if service:
                event["service"] = service
            if version:
                event["version"] = version
            if count:
                if not count.isdigit() or int(count) < 1:
                    raise ValueError(f"{spec!r}: the pod count must be a positive integer")
                event["count"] = int(count)
        return cls(spec.strip(), event, None if at is None else float(at))

    def variant(self, scenario: Scenario) -> tuple[Scenario, float]:
        """*scenario* with this event added, and the event's time.

        Raises:
            ConfigError: When the event does not fit the scenario (an unknown zone, service…).
        """
        run = scenario.run
        at = (
            self.at_s
            if self.at_s is not None
            else run.warmup_s + (run.duration_s - run.warmup_s) / 2
        )
        if self.event.get("kind") == "az_loss" and "az" not in self.event:
            event = {**self.event, "az": scenario.ingress.azs[0]}  # the first zone by default
        else:
            event = dict(self.event)
        if not 0 <= at < run.duration_s:
            raise ConfigError(
                [
                    finding(
                        "IL401",
                        "plan --must-survive",
                        self.name,
                        f"the event is at {at:g} s, outside the run (0 to {run.duration_s:g} s)",
                        "give @SECONDS within the run, or a longer --duration",
                    )
                ]
            )
        nodes = [name for name, _ in scenario.ingress.nodes()]
        if event.get("kind") == "node_loss" and event.get("node") not in (None, *nodes):
            # the engine kills the node of that name, so a typo would kill nothing
            raise ConfigError(
                [
                    finding(
                        "IL401",
                        "plan --must-survive",
                        self.name,
                        f"no ingress node {event['node']!r}; the nodes are {', '.join(nodes)}",
                        "name one of them, or write node_loss for the first",
                    )
                ]
            )
        kept = [e.model_dump(mode="json", exclude_unset=True) for e in scenario.events]
        return scenario.with_overrides({"events": [*kept, {**event, "at_s": at}]}), at


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
            errors, mean, std, bound, ok, note, meets`` (``note``: why a check was skipped;
            ``meets``: every objective ok at this value).
            With ``must_survive``, one row per (value, variant, objective), ``variant`` after
            ``value`` (``base`` or the event as written), and ``meets`` over every variant.
        knobs: The knobs with their costs and ranges.
        values: The answer per knob path.
        cost: Σ cost × value of the answer.
        warnings: ``[{code, message}]`` about the answer's runs (a variant's are prefixed with
            its name).
        unfinished_ok: Whether unfinished requests were left out of success objectives.
        must_survive: The event variants every answer had to meet the objectives in.
    """

    knob: str
    value: int
    slos: tuple[SLO, ...]
    confidence: float
    seeds: tuple[int, ...]
    tried: tuple[int, ...]
    evidence: pd.DataFrame = field(repr=False)
    checks: pd.DataFrame = field(repr=False)
    knobs: tuple[Knob, ...] = ()
    values: dict[str, int] = field(default_factory=dict)
    cost: float = math.nan
    warnings: tuple[dict[str, str], ...] = ()
    unfinished_ok: bool = False
    must_survive: tuple[str, ...] = ()

    def describe(self) -> str:
        """A human summary: the answer, its cost per knob, warnings, one line per check."""
        text = describe_checks(self.knob, self.value, self.checks, self.confidence)
        lines = text.split("\n")
        if len(self.knobs) > 1:
            answer = ", ".join(f"{k.path} = {self.values[k.path]}" for k in self.knobs)
            lines[0] = answer
        if self.knobs:
            costs = " + ".join(f"{k.path} {self.values[k.path]} × {k.cost:g}" for k in self.knobs)
            lines.insert(1, f"total cost {self.cost:g} = {costs}")
        at = 2 if self.knobs else 1
        for w in self.warnings:
            lines.insert(at, f"warning [{w['code']}]: {w['message']}")
            at += 1
        return "\n".join(lines)


def _burst(spec: str, arg: str) -> dict[str, Any]:
    """The fields of ``error_burst:[SERVICE[/VERSION]][:PROBABILITY[:SECONDS]]``."""
    parts = [p.strip() for p in arg.split(":")]
    out: dict[str, Any] = {}
    if parts and not _number(parts[0]):
        service, _, version = parts.pop(0).partition("/")
        out["service"] = service
        if version:
            out["version"] = version
    numbers = [_number(p) for p in parts]
    if any(n is None for n in numbers) or len(numbers) > 2:
        raise ValueError(f"{spec!r}: write error_burst[:SERVICE[/VERSION]][:PROBABILITY[:SECONDS]]")
    if numbers:
        out["probability"] = numbers[0]
    if len(numbers) > 1:
        out["duration_s"] = numbers[1]
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def describe_checks(knob: str, value: int | None, checks: pd.DataFrame, confidence: float) -> str:
    """Human table of a plan's checks: the answer (or that there is none), one line per check.

    With variants (``must_survive``) each objective is labelled ``variant: objective``.
    """
    side = f"{confidence:.0%} one-sided t bound over seeds"
    variants = "variant" in checks.columns
    width = 40 if variants else 24
    lines = [
        f"{knob} = {value}" if value is not None else f"{knob}: no value meets the objectives",
        f"{'value':>7}  {'objective':{width}} {'mean':>11} {'bound':>11}  ok   ({side})",
    ]
    for r in checks.to_dict("records"):
        extra = f"  {r['errors']} failed run(s)" if r["errors"] else ""
        if r.get("note"):
            extra += f"  ({r['note']})"
        what = f"{r['variant']}: {r['slo']}" if variants else str(r["slo"])
        lines.append(
            f"{r['value']:>7}  {what:{width}} {r['mean']:>11.5g} {r['bound']:>11.5g}  "
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


def _joint(
    meets: Callable[[dict[str, int]], bool], knobs: Sequence[Knob], start: int | None
) -> tuple[dict[str, int], float] | None:
    """The cheapest point meeting the objectives over several knobs (see the module docstring).

    Every knob has its ``low`` and ``high`` filled in; *start* is where the first knob's search
    begins.
    """
    first, rest = knobs[0], list(knobs[1:])
    assert first.low is not None
    assert first.high is not None
    top = {k.path: int(k.high or 0) for k in rest}
    lowest = _smallest(
        lambda v: meets({first.path: v, **top}),
        min(max(start if start is not None else first.low, first.low), first.high),
        first.low,
        first.high,
    )
    if lowest is None:
        return None
    best: tuple[dict[str, int], float] | None = None
    highs = dict(top)
    for v in range(lowest, first.high + 1):
        floor = first.cost * v + sum(k.cost * (k.low or 0) for k in rest)
        if best is not None and floor >= best[1]:
            break  # the first knob alone costs more than the best point found
        sub: tuple[dict[str, int], float] | None
        if len(rest) == 1:
            k = rest[0]
            assert k.low is not None
            ceiling = highs[k.path]
            found = _smallest(
                lambda x, v=v, k=k: meets({first.path: v, k.path: x}),  # type: ignore[misc]
                ceiling,
                k.low,
                ceiling,
            )
            sub = None if found is None else ({k.path: found}, k.cost * found)
            if found is not None:
                highs[k.path] = found  # monotone: more of the first knob never needs more
        else:
            sub = _joint(lambda d, v=v: meets({first.path: v, **d}), rest, None)  # type: ignore[misc]
        if sub is None:
            continue
        cost = first.cost * v + sub[1]
        if best is None or cost < best[1]:
            best = ({first.path: v, **sub[0]}, cost)
    return best


def plan(
    scenario: Scenario,
    knob: str | Knob | Sequence[str | Knob],
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
    engine: str = "auto",
    unfinished_ok: bool = False,
    must_survive: Sequence[str | Mapping[str, Any] | Survive] = (),
) -> Plan:
    """Find the smallest value of a knob, or the cheapest point of several, meeting every SLO.

    See the module docstring for the decision rule (one-sided t bound over seeds, default 95 %)
    and the search (exponential from ``start``, then binary; assumes monotonicity).

    Args:
        scenario: The scenario.
        knob: Dotted path of an integer field, e.g. ``ingress.nodes_per_az`` or
            ``services.httpbin.versions.v1.replicas``; or several (paths or :class:`Knob` with
            a cost per unit and a range), searched jointly for the smallest total cost.
        slo: One or more objectives, as :class:`SLO` or strings like ``"p99_ms<=100"``,
            ``"p999_ms<=300"``, ``"error_rate<=0.001"`` or ``"rho<=0.8"``.
        seeds: Replications per value (>= 2), or explicit seeds.
        confidence: One-sided confidence level of the bounds (0.5 < confidence < 1).
        start: First value tried of the (first) knob (default: its current value, or ``low``).
        low: The answer is never below this (per knob unless the knob says otherwise).
        high: Largest value tried (per knob unless the knob says otherwise).
        executor: Where the runs go (as for :func:`istiolab.analysis.sweep.sweep`); opened once for
            the whole search. ``None``/``"auto"``: serial when one candidate's batch (its seeds
            and variants) is short and on the fast engine, else a process pool.
        base_seed: Root of the seeds (default ``scenario.run.seed``).
        max_workers: Processes of the local pool.
        progress: tqdm progress per value; None shows it only on a terminal.
        engine: The simulation engine of every run: ``auto`` (default: the compiled engine when
            it supports the scenario, else SimPy; the evidence's ``engine`` column says which
            ran), ``simpy`` or ``fast``.
        unfinished_ok: Hold ``success_ratio`` and ``error_rate`` objectives against completed
            requests only (by default unfinished requests beyond a steady state's count as
            failures).
        must_survive: Events every answer must also meet the objectives under (N-1):
            ``"az_loss:us-east-1a"``, ``"node_loss"``, ``"pod_crash:api/v1:2@30"``, a mapping
            of event fields or a :class:`Survive`; each is a variant of the scenario run on the
            same seeds (see the module docstring).

    Returns:
        The answer with its evidence, checks, cost, warnings and a plot method.

    Raises:
        ConfigError: When a knob path does not exist or ``low``/``high`` are invalid values.
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
    raw = [knob] if isinstance(knob, (str, Knob)) else list(knob)
    if not raw:
        raise ValueError("give at least one knob")
    knobs = tuple(
        dataclasses.replace(
            k,
            low=k.low if k.low is not None else low,
            high=k.high if k.high is not None else high,
        )
        for k in (Knob.parse(x) for x in raw)
    )
    paths = [k.path for k in knobs]
    if len(set(paths)) != len(paths):
        raise ValueError(f"a knob is given twice: {paths}")
    check_engine(engine)
    survive = tuple(Survive.parse(x) for x in must_survive)
    names = [v.name for v in survive]
    if len(set(names)) != len(names) or "base" in names:
        raise ValueError(f"must-survive events must differ (and not be named 'base'): {names}")
    for each in survive:
        each.variant(scenario)  # an event that does not fit the scenario fails before any run
    check_runs(
        (1 + len(survive)) * (seeds if isinstance(seeds, int) else len(seeds)), scenario.name
    )
    root = scenario.run.seed if base_seed is None else base_seed
    seed_list = sweep_seeds(root, seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seed_list) < 2:
        raise ValueError("a confidence bound needs at least 2 seeds")
    for k in knobs:
        for v in (k.low, k.high):  # the bounds catch bad paths and out-of-range values
            got = _current_value(scenario.with_overrides({k.path: v}), k.path)
            if got is not None and (isinstance(got, bool) or not isinstance(got, int)):
                raise ConfigError(
                    [
                        finding(
                            "IL401",
                            "plan knob",
                            k.path,
                            f"{k.path} is a {type(got).__name__} field; plan searches integer "
                            "knobs",
                            "pick an integer field: nodes, replicas, concurrency, …",
                        )
                    ]
                )
    first = knobs[0]
    assert first.low is not None
    assert first.high is not None
    if start is None:
        current = _current_value(scenario, first.path)
        start = current if isinstance(current, int) and not isinstance(current, bool) else None
    single = len(knobs) == 1
    recovery = _recovery(slos, unfinished_ok)
    frames: dict[tuple[int, ...], pd.DataFrame] = {}
    checks: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    order: list[tuple[int, ...]] = []

    def label(key: tuple[int, ...]) -> int | str:
        if single:
            return key[0]
        return ", ".join(f"{p}={v}" for p, v in zip(paths, key, strict=True))

    # the runs go one batch (every variant of one candidate, every seed) at a time: a short
    # batch on the fast engine runs serially faster than a pool starts (auto_executor)
    batch = [scenario, *(v.variant(scenario)[0] for v in survive)] * len(seed_list)
    executor = resolve_executor(executor, max_workers, batch, engine)
    with open_executor(executor, max_workers) as run:

        def meets(point: dict[str, int]) -> bool:
            key = tuple(point[p] for p in paths)
            if key not in frames:
                order.append(key)
                sc = scenario.with_overrides(dict(point))
                variants: list[tuple[str, Scenario, float | None]] = [("base", sc, None)]
                variants += [(v.name, *v.variant(sc)) for v in survive]
                tasks = [
                    _Task(vsc, dict(point), s, engine, _after(recovery, at))
                    for _, vsc, at in variants
                    for s in seed_list
                ]
                desc = "plan " + ", ".join(f"{p}={v}" for p, v in point.items())
                rows = run_tasks(run, tasks, progress=progress, desc=desc)
                n, parts, found = len(seed_list), [], []
                for i, (name, vsc, _) in enumerate(variants):
                    part = sweep_frame(paths, tasks[i * n : (i + 1) * n], rows[i * n : (i + 1) * n])
                    rows_i = _check(
                        part, label(key), slos, confidence, unfinished_ok, bool(vsc.events)
                    )
                    if survive:
                        part.insert(len(paths), "variant", name)
                        rows_i = [{"value": r["value"], "variant": name, **r} for r in rows_i]
                    parts.append(part)
                    found.extend(rows_i)
                frames[key] = pd.concat(parts, ignore_index=True)
                frames[key].attrs["engine_notes"] = sorted(
                    {n for p in parts for n in p.attrs.get("engine_notes", [])}
                )
                checks[key] = found
            return all(c["ok"] for c in checks[key])

        if single:
            found = _smallest(
                lambda v: meets({first.path: v}),
                min(max(start if start is not None else first.low, first.low), first.high),
                first.low,
                first.high,
            )
            answer = None if found is None else ({first.path: found}, first.cost * found)
        else:
            answer = _joint(meets, knobs, start)

    keys = sorted(frames)
    evidence = pd.concat([frames[k] for k in keys], ignore_index=True)
    evidence.attrs["engine_notes"] = sorted(
        {n for k in keys for n in frames[k].attrs.get("engine_notes", [])}
    )
    check_frame = pd.DataFrame([c for k in keys for c in checks[k]])
    check_frame["meets"] = check_frame.groupby("value")["ok"].transform("all").astype(bool)
    if answer is None:
        raise SLONotMetError(
            first.path if single else " + ".join(paths),
            first.high,
            slos,
            evidence,
            check_frame,
        )
    values, cost = answer
    key = tuple(values[p] for p in paths)
    return Plan(
        knob=first.path,
        value=values[first.path],
        slos=slos,
        confidence=confidence,
        seeds=tuple(seed_list),
        tried=tuple(k[0] for k in order),  # of the first knob; evidence has every point
        evidence=evidence,
        checks=check_frame,
        knobs=knobs,
        values=dict(values),
        cost=cost,
        warnings=tuple(_variant_warnings(frames[key], slos)),
        unfinished_ok=unfinished_ok,
        must_survive=tuple(v.name for v in survive),
    )


_TAILS = {"p99_ms": 0.01, "success_p99_ms": 0.01, "p999_ms": 0.001, "success_p999_ms": 0.001}
"""Share of requests beyond the quantile of each quantile objective."""


def _answer_warnings(frame: pd.DataFrame, slos: Sequence[SLO] = ()) -> list[dict[str, str]]:
    """Warnings about the answer's runs.

    High utilisation, unstable or unfinished runs, and quantile objectives resting on too few
    requests.
    """
    from istiolab.sim.accounting import MIN_TAIL_SAMPLES, RHO_HIGH, warning

    out: list[dict[str, str]] = []
    ok = frame[frame["error"].isna()]
    fewest = int(ok["requests"].min()) if len(ok) else 0
    for s in slos:
        tail = _TAILS.get(s.metric)
        if tail is not None and fewest * tail < MIN_TAIL_SAMPLES:
            out.append(
                warning(
                    "short_run",
                    f"{s.metric} rests on {fewest * tail:.1f} requests beyond the quantile in "
                    f"the shortest run at the answer ({fewest} requests); run at least "
                    f"{round(MIN_TAIL_SAMPLES / tail)} per run (--duration)",
                )
            )
            break
    rho = [float(x) for x in ok["rho_max"].astype("float64") if not math.isnan(float(x))]
    if rho and max(rho) >= RHO_HIGH:
        out.append(
            warning(
                "high_rho",
                f"the answer runs its busiest tier at ρ up to {max(rho):.2f} (mean "
                f"{sum(rho) / len(rho):.2f}): little headroom for bursts or a lost zone; add "
                "an objective rho<=0.8 to keep headroom",
            )
        )
    codes = sorted({c for w in ok["warnings"].dropna() for c in str(w).split(",") if c})
    for code in ("unstable", "unfinished"):
        if code in codes:
            out.append(
                warning(code, f"a run at the answer carried the warning {code!r} (see simulate)")
            )
    return out


def _variant_warnings(frame: pd.DataFrame, slos: Sequence[SLO]) -> list[dict[str, str]]:
    """:func:`_answer_warnings` of the base runs, then of each variant, prefixed with its name."""
    if "variant" not in frame.columns:
        return _answer_warnings(frame, slos)
    out: list[dict[str, str]] = []
    for name, part in frame.groupby("variant", sort=False):
        for w in _answer_warnings(part, slos if name == "base" else ()):
            out.append(w if name == "base" else {**w, "message": f"[{name}] {w['message']}"})
    return out


_LATENCY_GOALS = ("p99_ms", "window_p99_ms_max")
_ERROR_GOALS = ("error_rate", "window_error_rate_max")


def _recovery(slos: Sequence[SLO], unfinished_ok: bool) -> dict[str, float]:
    """What a metrics window must meet for ``time_to_recover_s``, read off the objectives.

    Its p99 at most the smallest p99 threshold (``p99_ms``, ``window_p99_ms_max``), its error
    rate at most the smallest error threshold (``error_rate``, ``window_error_rate_max``, or
    1 − a ``success_ratio`` threshold); 1 % when no objective bounds errors.
    """
    from istiolab.sim.results import RECOVERY_ERROR_RATE

    del unfinished_ok  # a window counts the requests completed in it either way
    out: dict[str, float] = {}
    p99 = [s.threshold for s in slos if _ALIASES.get(s.metric, s.metric) in _LATENCY_GOALS]
    if p99:
        out["p99_ms"] = min(p99)
    errors = [
        s.threshold for s in slos if s.upper and _ALIASES.get(s.metric, s.metric) in _ERROR_GOALS
    ]
    errors += [1.0 - s.threshold for s in slos if s.metric == "success_ratio" and not s.upper]
    out["error_rate"] = max(0.0, min(errors)) if errors else RECOVERY_ERROR_RATE
    return out


def _after(recovery: Mapping[str, float], at: float | None) -> dict[str, float]:
    """The recovery objective of one variant: timed from its added event, if it has one."""
    return dict(recovery) if at is None else {**recovery, "after_s": at}


def _measured(s: SLO, unfinished_ok: bool) -> str:
    """The sweep column an objective is held against."""
    if s.metric == "success_ratio" and not unfinished_ok:
        return "success_ratio_incl_unfinished"
    return _ALIASES.get(s.metric, s.metric)


def _check(
    frame: pd.DataFrame,
    value: int | str,
    slos: Sequence[SLO],
    confidence: float,
    unfinished_ok: bool = False,
    events: bool = True,
) -> list[dict[str, Any]]:
    failed = frame["error"].notna()
    out = []
    for s in slos:
        column = _measured(s, unfinished_ok)
        if column == "time_to_recover_s" and not events:
            # nothing happens in this variant, so there is nothing to recover from
            out.append(
                {
                    "value": value,
                    "slo": str(s),
                    "metric": s.metric,
                    "op": s.op,
                    "threshold": s.threshold,
                    "measured": column,
                    "n": 0,
                    "errors": int(failed.sum()),
                    "mean": math.nan,
                    "std": math.nan,
                    "bound": math.nan,
                    "ok": bool(not failed.any()),
                    "note": "no event to recover from",
                }
            )
            continue
        xs = [float(x) for x in frame.loc[~failed, column].astype("float64")]
        if s.metric == "error_rate" and unfinished_ok:
            xs = [1.0 - float(x) for x in frame.loc[~failed, "success_ratio"].astype("float64")]
            column = "1 - success_ratio"
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
                "measured": column,
                "n": n,
                "errors": int(failed.sum()),
                "mean": mean,
                "std": sd,
                "bound": bound,
                "ok": bool(not failed.any() and s.holds(bound)),
                "note": "",
            }
        )
    return out
