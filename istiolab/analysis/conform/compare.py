"""Which metrics a scenario's features make meaningful, their values, intervals and verdicts.

Every metric is a number per replication, computed the same way from an
:class:`~istiolab.analysis.conform.sides.Observation` on either side. With R replications per
side the verdict asks whether the simulator's mean lies in an acceptance band around Envoy's
mean: ``envoy ± (t · se + tolerance)``, where ``se`` is Welch's standard error of the
difference of the two means (both sides vary: seeds on the simulator, seeds and the machine on
Envoy), ``t`` the two-sided 95 % Student quantile at Welch's degrees of freedom, and
``tolerance`` a fixed allowance per *kind* of metric (not per scenario) for what the two sides
cannot share: on latencies, the loopback hops, the Python upstream server and load generator
and their event loops' timer granularity on a shared 2-core machine add about 1-5 ms
(measured: Envoy-side medians 2-7 ms above the simulator's in every scenario whose other
metrics agree), so latency metrics get 3-5 ms plus 20-25 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from istiolab.analysis.conform.sides import Observation
from istiolab.envoy.model import RouteTable

__all__ = ["Metric", "MetricDef", "compare", "metric_defs", "t_quantile"]

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_MIN_SHARE = 0.005  # a status or flag below this share on both sides is not compared


def t_quantile(df: float) -> float:
    """The two-sided 95 % Student quantile at *df* degrees of freedom (1.96 beyond 30)."""
    if not df >= 1:
        return _T975[0]
    if df > 30:
        return 1.96
    lo = math.floor(df)
    hi = min(lo + 1, 30)
    frac = df - lo
    return _T975[lo - 1] * (1 - frac) + _T975[hi - 1] * frac


@dataclass(frozen=True)
class MetricDef:
    """How one metric is read from an observation and how much slack it gets.

    Attributes:
        name: ``share.status.503``, ``share.flag.URX``, ``tries_per_request``,
            ``pod_share.<pod>``, ``success_p50_ms`` ...
        value: Reads the metric from one observation (NaN when undefined).
        abs_tol: Absolute allowance.
        rel_tol: Allowance relative to Envoy's mean.
    """

    name: str
    value: Callable[[Observation], float]
    abs_tol: float
    rel_tol: float


@dataclass(frozen=True)
class Metric:
    """One compared metric.

    Attributes:
        name: The metric's name.
        sim: Mean over the simulator's replications.
        envoy: Mean over Envoy's replications.
        low: Lower end of the band the simulator's mean must fall in.
        high: Upper end.
        ok: Whether it does.
        known: Why the two are known to differ (a source reference), or "".
    """

    name: str
    sim: float
    envoy: float
    low: float
    high: float
    ok: bool
    known: str = ""


def _share_status(code: int) -> Callable[[Observation], float]:
    return lambda o: o.statuses.get(code, 0) / o.requests if o.requests else math.nan


def _share_flag(flag: str) -> Callable[[Observation], float]:
    return lambda o: o.flags.get(flag, 0) / o.requests if o.requests else math.nan


def _pod_share(pod: str) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        total = sum(o.pod_attempts.values())
        return o.pod_attempts.get(pod, 0) / total if total else math.nan

    return f


def _pod_extreme(
    pods: Sequence[str], pick: Callable[[list[float]], float]
) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        counts = [o.pod_attempts.get(p, 0) for p in pods]
        total = sum(counts)
        return pick([c / total for c in counts]) if total else math.nan

    return f


def _tries(o: Observation) -> float:
    return sum(o.pod_attempts.values()) / o.requests if o.requests else math.nan


def _accepted(o: Observation) -> float:
    return (o.requests - o.statuses.get(429, 0)) / o.window_s


def metric_defs(
    table: RouteTable,
    pod_groups: Sequence[tuple[str, Sequence[str]]],
    envoy: Sequence[Observation],
    sim: Sequence[Observation],
) -> list[MetricDef]:
    """The metrics this scenario's features make meaningful.

    Args:
        table: The compiled route table (retries, rate limits, load-balancer policies).
        pod_groups: ``(lb policy, pod names)`` for every cluster with endpoints.
        envoy: Envoy's observations (which statuses and flags occurred).
        sim: The simulator's observations.

    Returns:
        Status and flag shares that reach 0.5 % on either side; upstream tries per request
        when a route retries; per-pod shares for clusters of several pods (largest and
        smallest share under a consistent hash, whose ring depends on endpoint addresses);
        the accepted rate under a rate limit; latency quantiles of successes and the mean.
    """
    everything = [*envoy, *sim]
    defs: list[MetricDef] = []

    def frequent(
        keys: set[object], share: Callable[[object], Callable[[Observation], float]]
    ) -> list[object]:
        out = []
        for k in sorted(keys, key=str):
            fn = share(k)
            for side in (envoy, sim):
                vals = [fn(o) for o in side]
                if vals and np.nanmean(vals) >= _MIN_SHARE:
                    out.append(k)
                    break
        return out

    statuses: set[object] = {s for o in everything for s in o.statuses if s != 200}
    for code in frequent(statuses, lambda c: _share_status(int(str(c)))):
        defs.append(MetricDef(f"share.status.{code}", _share_status(int(str(code))), 0.02, 0.1))
    flags: set[object] = {f for o in everything for f in o.flags}
    for flag in frequent(flags, lambda f: _share_flag(str(f))):
        defs.append(MetricDef(f"share.flag.{flag}", _share_flag(str(flag)), 0.02, 0.1))
    if any(r.retry is not None and r.retry.num_retries > 0 for r in table.routes()):
        defs.append(MetricDef("tries_per_request", _tries, 0.0, 0.05))
    for lb, pods in pod_groups:
        if len(pods) < 2:
            continue
        if lb in ("RING_HASH", "MAGLEV"):
            defs.append(MetricDef("pod_share.max", _pod_extreme(pods, max), 0.03, 0.0))
            defs.append(MetricDef("pod_share.min", _pod_extreme(pods, min), 0.03, 0.0))
        else:
            for p in pods:
                defs.append(MetricDef(f"pod_share.{p}", _pod_share(p), 0.03, 0.0))
    if table.rate_limit is not None or any(r.rate_limit is not None for r in table.routes()):
        defs.append(MetricDef("accepted_rps", _accepted, 1.0, 0.05))
    defs.append(MetricDef("success_p50_ms", lambda o: o.success_p50_ms, 3.0, 0.2))
    defs.append(MetricDef("success_p99_ms", lambda o: o.success_p99_ms, 5.0, 0.25))
    defs.append(MetricDef("mean_ms", lambda o: o.mean_ms, 3.0, 0.2))
    return defs


def _mean_var(values: Sequence[float]) -> tuple[float, float, int]:
    arr = np.array([v for v in values if v == v], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    var = float(arr.var(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), var, int(arr.size)


def compare(
    defs: Sequence[MetricDef],
    envoy: Sequence[Observation],
    sim: Sequence[Observation],
    known: dict[str, str] | None = None,
) -> list[Metric]:
    """Each metric's means, acceptance band and verdict.

    Args:
        defs: From :func:`metric_defs`.
        envoy: Envoy's replications (runs where the load generator fell behind left out).
        sim: The simulator's replications.
        known: Metric name -> why the two are known to differ (kept with the metric; the
            verdict is still computed).

    Returns:
        One :class:`Metric` per definition.
    """
    out: list[Metric] = []
    for d in defs:
        e_mean, e_var, e_n = _mean_var([d.value(o) for o in envoy])
        s_mean, s_var, s_n = _mean_var([d.value(o) for o in sim])
        if e_n == 0 or s_n == 0:
            out.append(Metric(d.name, s_mean, e_mean, math.nan, math.nan, False))
            continue
        terms = [v / n for v, n in ((e_var, e_n), (s_var, s_n)) if v == v]
        se2 = sum(terms)
        if se2 > 0:
            # Welch-Satterthwaite degrees of freedom.
            denom = sum((v / n) ** 2 / (n - 1) for v, n in ((e_var, e_n), (s_var, s_n)) if v == v)
            df = se2**2 / denom if denom > 0 else 1.0
            half = t_quantile(df) * math.sqrt(se2)
        else:
            half = 0.0
        half += d.abs_tol + d.rel_tol * abs(e_mean)
        low, high = e_mean - half, e_mean + half
        ok = bool(low <= s_mean <= high)
        out.append(Metric(d.name, s_mean, e_mean, low, high, ok, (known or {}).get(d.name, "")))
    return out
