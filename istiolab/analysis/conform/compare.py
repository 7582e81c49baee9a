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

from istiolab.analysis.conform.sides import BIN_S, Observation, fill_interval_s
from istiolab.envoy.model import RouteTable

__all__ = ["Metric", "MetricDef", "compare", "metric_defs", "t_quantile"]

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_MIN_SHARE = 0.005  # a status or flag below this share on both sides is not compared
_MIN_TRIES_OK = 20  # latency by tries: compared when every run has this many such successes
_EVEN_WINDOW_S = 0.2  # round-robin evenness: per-pod counts over windows this long
_GAP_REQUESTS = 8.0  # an ejection: no attempt for as long as this many would take a pod
_MIN_GAP_S = 0.5


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


def _tries_share(k: int) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        total = sum(o.tries.values())
        return o.tries.get(k, 0) / total if total else math.nan

    return f


def _tries_p50(k: int) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        if o.tries_ok.get(k, 0) < _MIN_TRIES_OK:
            return math.nan
        return o.tries_p50_ms.get(k, math.nan)

    return f


def _measured(o: Observation, pod: str) -> np.ndarray:
    """The pod's attempts per bin of the measured window (after the warm-up)."""
    first = math.ceil(o.warmup_s / BIN_S - 1e-9)
    n = round((o.warmup_s + o.window_s) / BIN_S)
    values = list(o.pod_series.get(pod, ()))[:n]
    values += [0] * (n - len(values))
    return np.array(values[first:], dtype=np.int64)


def _evenness(pods: Sequence[str]) -> Callable[[Observation], float]:
    """Mean over 0.2-s windows of the coefficient of variation of the pods' attempt counts.

    Round robin with one shared index gives counts within one of each other (CV near 0); each
    Envoy worker keeping its own index (and each starting at a random host) spreads them; a
    random pick spreads them as a multinomial. Where the per-worker state shows, the more so
    in short windows, where each worker sends only a few requests (measured on
    conform-round-robin-workers, 4 workers: Envoy 0.088, the simulator 0.082 with one index
    per worker and 0.038 with one index for the gateway).
    """

    def f(o: Observation) -> float:
        if not o.pod_series:
            return math.nan
        per = round(_EVEN_WINDOW_S / BIN_S)
        rows = [_measured(o, p) for p in pods]
        m = min(len(r) for r in rows) // per * per
        if m == 0:
            return math.nan
        counts = np.stack([r[:m].reshape(-1, per).sum(axis=1) for r in rows])
        mean = counts.mean(axis=0)
        keep = mean > 0
        if not keep.any():
            return math.nan
        return float((counts.std(axis=0)[keep] / mean[keep]).mean())

    return f


def _gaps(o: Observation, pod: str, pods: Sequence[str]) -> list[int]:
    """Lengths (bins) of the runs without any attempt to *pod* long enough to be ejections.

    A run counts when it lasts at least as long as :data:`_GAP_REQUESTS` attempts would take
    a pod at the cluster's mean rate per pod (and at least :data:`_MIN_GAP_S`): at Poisson
    arrivals a pod in rotation has such a run by chance with probability e^-8.
    """
    rows = {p: _measured(o, p) for p in pods}
    total = sum(int(r.sum()) for r in rows.values())
    if not total or not o.window_s:
        return []
    rate = total / (len(pods) * o.window_s)
    need = max(_MIN_GAP_S, _GAP_REQUESTS / rate) / BIN_S
    runs: list[int] = []
    length = 0
    for v in rows[pod].tolist():
        if v == 0:
            length += 1
            continue
        if length >= need:
            runs.append(length)
        length = 0
    if length >= need:
        runs.append(length)
    return runs


def _ejected_share(pod: str, pods: Sequence[str]) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        if not o.pod_series:
            return math.nan
        return sum(_gaps(o, pod, pods)) * BIN_S / o.window_s

    return f


def _ejections(pod: str, pods: Sequence[str]) -> Callable[[Observation], float]:
    def f(o: Observation) -> float:
        return float(len(_gaps(o, pod, pods))) if o.pod_series else math.nan

    return f


def _rl_phase(fill_s: float) -> Callable[[Observation], float]:
    """How much the 429s bunch at one phase of the fill interval (0: evenly, 1: one instant).

    The length of the mean of ``exp(2πi · t / fill_interval)`` over the 429s. A bucket
    refilled by a timer (``tokens_per_fill`` at each tick, Envoy <= 1.31) rejects at the end
    of every interval and accepts after each tick; a continuous bucket (Envoy >= 1.32) has no
    phase. The length does not depend on where either side's ticks fall.
    """

    def f(o: Observation) -> float:
        total = sum(o.rl_series)
        if not total or not o.rl_bin_s:
            return math.nan
        k = np.arange(len(o.rl_series))
        angle = 2 * math.pi * (((k + 0.5) * o.rl_bin_s) % fill_s) / fill_s
        weights = np.array(o.rl_series, dtype=np.float64)
        return float(abs((weights * np.exp(1j * angle)).sum()) / total)

    return f


def _accepted(o: Observation) -> float:
    return (o.requests - o.statuses.get(429, 0)) / o.window_s


def metric_defs(
    table: RouteTable,
    pod_groups: Sequence[tuple[str, Sequence[str]]],
    envoy: Sequence[Observation],
    sim: Sequence[Observation],
    outlier_groups: Sequence[Sequence[str]] = (),
    outlier_cycle_s: float = 0.0,
) -> list[MetricDef]:
    """The metrics this scenario's features make meaningful.

    Args:
        table: The compiled route table (retries, rate limits, load-balancer policies).
        pod_groups: ``(lb policy, pod names)`` for every cluster with endpoints.
        envoy: Envoy's observations (which statuses and flags occurred).
        sim: The simulator's observations.
        outlier_groups: Pod names of every cluster with outlier detection.
        outlier_cycle_s: The longest ``interval + base ejection time`` of those clusters:
            ejections are compared over windows of at least two such cycles (the detector's
            interval timer starts with the cluster, before the load, on the Envoy side and at
            t = 0 in the simulator; over a shorter window that phase decides the ejected time).

    Returns:
        Status and flag shares that reach 0.5 % on either side; upstream tries per request
        when a route retries, the share of requests by tries (``tries.share.<k>``) and the
        median latency of successes by tries (``success_p50_ms.tries_<k>``, where the
        back-off shows); per-pod shares for clusters of several pods (under outlier
        detection only over windows of two detector cycles or more; largest and smallest
        share under a consistent hash, whose ring depends on endpoint addresses; where
        both sides report it, instead the share of Envoy's picks that the simulator's ring
        predicts for the same addresses, ``ring_agreement``), and the
        round-robin evenness (``rr_evenness``, see :func:`_evenness`); under outlier
        detection, each pod's share of the window spent ejected and its number of
        ejections (runs without traffic, see :func:`_gaps`); the accepted rate under a rate
        limit, and how the 429s bunch within the fill interval (see :func:`_rl_phase`);
        latency quantiles of successes and the mean.
    """
    everything = [*envoy, *sim]
    defs: list[MetricDef] = []
    long_enough = all(o.window_s >= 2 * outlier_cycle_s for o in everything)

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
        ks: set[object] = {k for o in everything for k in o.tries}
        for k in frequent(ks, lambda k: _tries_share(int(str(k)))):
            defs.append(MetricDef(f"tries.share.{k}", _tries_share(int(str(k))), 0.02, 0.1))
        for k in sorted({k for o in everything for k in o.tries_ok}):
            if all(o.tries_ok.get(k, 0) >= _MIN_TRIES_OK for o in everything):
                defs.append(MetricDef(f"success_p50_ms.tries_{k}", _tries_p50(k), 3.0, 0.2))
    for lb, pods in pod_groups:
        if len(pods) < 2:
            continue
        if lb in ("RING_HASH", "MAGLEV"):
            if everything and all(o.ring_agreement == o.ring_agreement for o in everything):
                # Envoy's picks checked against the simulator's ring over the same addresses.
                # The shares themselves follow the ring layout, which depends on the endpoint
                # addresses, random on both sides (Envoy: loopback ports, the simulator: pod
                # IPs): over 40 keys the smallest share ranges from 6 to 13 keys of 40 between
                # layouts, so three layouts per side compare two draws of addresses, not the
                # two load balancers (measured: 0.28 against 0.23 with ring_agreement 1.00).
                defs.append(MetricDef("ring_agreement", lambda o: o.ring_agreement, 0.01, 0.0))
            else:
                defs.append(MetricDef("pod_share.max", _pod_extreme(pods, max), 0.03, 0.0))
                defs.append(MetricDef("pod_share.min", _pod_extreme(pods, min), 0.03, 0.0))
        ejecting = any(set(pods) & set(g) for g in outlier_groups)  # ejections dominate it
        if lb not in ("RING_HASH", "MAGLEV") and (long_enough or not ejecting):
            # under ejections a window shorter than two detector cycles measures the timer's
            # phase, not the load balancer: whether a pod ejected before the window is back
            # inside it (seen on conform-outlier-detection in 2.5 s windows: the flaky pod's
            # share 0 in the simulator, 0 to 0.07 on Envoy, by the phase)
            for p in pods:
                defs.append(MetricDef(f"pod_share.{p}", _pod_share(p), 0.03, 0.0))
        if lb == "ROUND_ROBIN" and not ejecting and all(o.pod_series for o in everything):
            defs.append(MetricDef("rr_evenness", _evenness(pods), 0.005, 0.1))
    for pods in outlier_groups:
        if len(pods) < 2 or not long_enough or not all(o.pod_series for o in everything):
            continue
        for p in pods:
            defs.append(MetricDef(f"ejected_share.{p}", _ejected_share(p, pods), 0.03, 0.1))
            defs.append(MetricDef(f"ejections.{p}", _ejections(p, pods), 0.5, 0.1))
    if table.rate_limit is not None or any(r.rate_limit is not None for r in table.routes()):
        defs.append(MetricDef("accepted_rps", _accepted, 1.0, 0.05))
        fill = fill_interval_s(table)
        if fill is not None and all(sum(o.rl_series) >= 30 for o in everything):
            defs.append(MetricDef("rl_phase_concentration", _rl_phase(fill), 0.05, 0.1))
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
