"""Runs side by side: per-point aggregates of a sweep, and variants of a scenario compared.

:func:`aggregate` reduces a sweep frame (one row per run) to one row per grid point and metric:
the mean over seeds, a two-sided t confidence interval, the extremes and the failed runs.
:func:`compare` runs named variants of a scenario (``--set`` overrides, or several scenario
files) on the same seeds and returns the same tidy layout with one row per variant and metric,
plus the paired difference to the first variant: the seeds are common random numbers, so the
difference of two variants is estimated from per-seed differences, whose spread is much smaller
than either variant's own (docs/outputs.md, "Comparisons").

Both live here rather than in :mod:`istiolab.analysis.sweep` because they use the planner's
Student-t quantile and the planner already imports the sweep module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from istiolab.analysis.planner import t_quantile
from istiolab.analysis.sweep import (
    ExecutorLike,
    _Task,
    check_engine,
    check_runs,
    open_executor,
    run_tasks,
    sweep_frame,
    sweep_seeds,
)

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

__all__ = [
    "AGGREGATE_METRICS",
    "aggregate",
    "compare",
    "mean_interval",
    "side_by_side",
    "variant_warnings",
]

AGGREGATE_METRICS: tuple[str, ...] = (
    "requests",
    "rps",
    "success_ratio",
    "success_ratio_incl_unfinished",
    "error_rate",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "success_p99_ms",
    "mean_ms",
    "retries",
    "unfinished",
    "rho_max",
    "window_p99_ms_max",
    "window_error_rate_max",
    "time_to_recover_s",
)
"""The sweep columns :func:`aggregate` and :func:`compare` summarise, in output order."""

_STATS = ("n", "errors", "mean", "std", "ci_low", "ci_high", "min", "max", "warnings")


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean of *values*.

    NaN values are left out. With one value the interval is NaN (no spread to estimate); with
    none the mean is NaN too.

    Args:
        values: One observation per seed.
        confidence: Two-sided level, e.g. 0.95 (t quantile at ``(1 + confidence) / 2``).

    Returns:
        ``(mean, low, high)``.

    Example:
        >>> m, lo, hi = mean_interval([1.0, 2.0, 3.0])
        >>> m, round(lo, 3), round(hi, 3)
        (2.0, -0.484, 4.484)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    arr = np.asarray([v for v in values if v == v], dtype=np.float64)  # v == v: not NaN
    n = arr.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = t_quantile((1 + confidence) / 2, n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _stats(part: pd.DataFrame, metric: str, confidence: float) -> dict[str, Any]:
    ok = part[part["error"].isna()]
    values = [float(v) for v in pd.to_numeric(ok[metric], errors="coerce") if pd.notna(v)]
    mean, low, high = mean_interval(values, confidence)
    codes = {c for w in ok["warnings"].fillna("") for c in str(w).split(",") if c}
    if "rho_max" in ok:
        from istiolab.sim.accounting import RHO_HIGH

        rho = pd.to_numeric(ok["rho_max"], errors="coerce").dropna()
        if len(rho) and float(rho.max()) >= RHO_HIGH:
            codes.add("high_rho")  # a point with little headroom, as the planner warns
    return {
        "n": len(values),
        "errors": int(part["error"].notna().sum()),
        "mean": mean,
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
        "ci_low": low,
        "ci_high": high,
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
        "warnings": ",".join(sorted(codes)),
    }


def aggregate(
    frame: pd.DataFrame,
    by: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
    metrics: Sequence[str] = AGGREGATE_METRICS,
) -> pd.DataFrame:
    """One row per grid point and metric: mean over seeds, t interval, extremes, failures.

    Args:
        frame: A sweep frame (:func:`~istiolab.analysis.sweep.sweep`, one row per run).
        by: The grid columns; default ``frame.attrs["grid"]``'s keys, else every column before
            ``seed``.
        confidence: Two-sided level of the interval (default 0.95).
        metrics: Which run columns to summarise (default :data:`AGGREGATE_METRICS`).

    Returns:
        A tidy frame with the grid columns, ``metric``, ``n`` (runs with a value), ``errors``
        (failed runs of the point), ``mean``, ``std``, ``ci_low``/``ci_high`` (the t interval
        of the mean; NaN with fewer than two runs), ``min``, ``max`` (for ``rho_max`` the
        busiest tier of the worst seed) and ``warnings`` (the codes any run of the point
        raised, plus ``high_rho`` when a run's busiest tier reached ρ ≥ 0.85). Points keep
        the sweep's grid order, metrics the order of *metrics*.
    """
    if by is None:
        grid = frame.attrs.get("grid")
        by = list(grid) if isinstance(grid, Mapping) else list(frame.columns[: _seed_at(frame)])
    by = list(by)
    missing = [m for m in (*by, *metrics) if m not in frame.columns]
    if missing:
        raise ValueError(f"the frame has no column(s) {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    groups = frame.groupby(by, sort=False, dropna=False) if by else [((), frame)]
    for key, part in groups:
        point = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        for metric in metrics:
            rows.append({**point, "metric": metric, **_stats(part, metric, confidence)})
    out = pd.DataFrame(rows, columns=[*by, "metric", *_STATS])
    out.attrs.update({**frame.attrs, "confidence": confidence})
    return out


def _seed_at(frame: pd.DataFrame) -> int:
    return list(frame.columns).index("seed") if "seed" in frame.columns else 0


def compare(
    variants: Mapping[str, Scenario],
    seeds: int | Sequence[int] = 5,
    executor: ExecutorLike = "serial",
    *,
    base_seed: int = 0,
    confidence: float = 0.95,
    max_workers: int | None = None,
    progress: bool | None = None,
    engine: str = "auto",
    metrics: Sequence[str] = AGGREGATE_METRICS,
) -> pd.DataFrame:
    """Run named scenario variants on the same seeds and put their totals side by side.

    Args:
        variants: Name → scenario, in order; the first is the baseline of the differences.
            Build them with ``scenario.with_overrides({...})`` or load several files.
        seeds: Replications per variant, or explicit seeds.
        executor: Where to run (see :func:`~istiolab.analysis.sweep.sweep`).
        base_seed: Root of the seeds (``SeedSequence(base_seed).spawn(seeds)``).
        confidence: Two-sided level of every interval.
        max_workers: Processes of a local pool.
        progress: Progress display (None: a bar on a terminal, plain lines elsewhere).
        engine: The simulation engine of every run (default ``auto``: the compiled engine when
            it supports the scenario, else SimPy; see :func:`~istiolab.analysis.sweep.sweep`).
        metrics: The run columns to compare.

    Returns:
        A tidy frame: ``variant``, ``metric`` (*metrics*, then ``rho.<tier>`` for every tier
        of ``totals.rho``), the :func:`aggregate` statistics, and ``diff``,
        ``diff_low``, ``diff_high``: the mean paired difference (variant − baseline, seed by
        seed) and its t interval; NaN on the baseline's rows. ``attrs["runs"]`` holds the
        per-run frame (with a ``variant`` column), ``attrs["baseline"]`` the first name.

    Raises:
        ValueError: With no variant, bad seeds or an unknown engine.
    """
    if not variants:
        raise ValueError("compare needs at least one variant")
    check_engine(engine)
    seed_list = sweep_seeds(base_seed, seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or any(s < 0 for s in seed_list):
        raise ValueError(f"seeds must be non-empty and >= 0, got {seed_list}")
    names = list(variants)
    check_runs(len(names) * len(seed_list), names[0])
    tasks = [
        _Task(variants[name], {}, s, engine) for name in names for s in seed_list
    ]  # one task per (variant, seed); params stay empty, the variant is the scenario itself
    with open_executor(executor, max_workers) as run:
        rows = run_tasks(run, tasks, progress=progress, desc="compare")
    runs = sweep_frame([], tasks, rows)
    runs.insert(0, "variant", [name for name in names for _ in seed_list])
    tiers = list(dict.fromkeys(t for r in rows for t in r.get("rho_tiers", {})))
    for tier in tiers:  # ρ of every tier, not only the busiest: where the variants differ
        runs[f"rho.{tier}"] = [r.get("rho_tiers", {}).get(tier, math.nan) for r in rows]
    metrics = [*metrics, *(f"rho.{t}" for t in tiers if f"rho.{t}" not in metrics)]
    out = aggregate(runs, ["variant"], confidence=confidence, metrics=metrics)
    diffs = _paired(runs, names, seed_list, metrics, confidence)
    out = out.merge(diffs, on=["variant", "metric"], how="left")
    out.attrs.update({"runs": runs, "baseline": names[0], "confidence": confidence})
    out.attrs["seeds"] = seed_list
    return out


def _paired(
    runs: pd.DataFrame,
    names: Sequence[str],
    seeds: Sequence[int],
    metrics: Sequence[str],
    confidence: float,
) -> pd.DataFrame:
    """Mean per-seed difference to the baseline and its t interval, per variant and metric."""
    ok = runs[runs["error"].isna()]
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        table = ok.pivot_table(index="seed", columns="variant", values=metric, aggfunc="first")
        for name in names:
            diff = low = high = math.nan
            if name != names[0] and name in table and names[0] in table:
                d = (table[name].astype(float) - table[names[0]].astype(float)).dropna()
                diff, low, high = mean_interval(list(d), confidence)
            rows.append(
                {
                    "variant": name,
                    "metric": metric,
                    "diff": diff,
                    "diff_low": low,
                    "diff_high": high,
                }
            )
    return pd.DataFrame(rows, columns=["variant", "metric", "diff", "diff_low", "diff_high"])


def side_by_side(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A wide, printable view of :func:`compare`'s or :func:`aggregate`'s frame.

    For a comparison: one row per metric, one column per variant holding ``mean [low, high]``
    and one ``Δ name`` column per non-baseline variant with the paired difference and its
    interval. For an aggregate: one row per grid point with ``mean ±half-width`` of the
    :data:`POINT_VIEW` metrics, ``rho_worst`` (the busiest tier of the worst seed), the runs,
    failed runs and warning codes.
    """

    def cell(mean: float, low: float, high: float) -> str:
        if mean != mean:
            return "-"
        if low != low:
            return f"{mean:.{digits}g}"
        return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"

    if "variant" not in table.columns:
        return _points_wide(table, digits)
    names = list(dict.fromkeys(table["variant"]))
    metrics = list(dict.fromkeys(table["metric"]))
    wide: dict[str, list[str]] = {"metric": metrics}
    by = table.set_index(["variant", "metric"])
    for name in names:
        wide[name] = [
            cell(*(float(by.loc[(name, m), c]) for c in ("mean", "ci_low", "ci_high")))
            for m in metrics
        ]
    for name in names[1:]:
        wide[f"Δ {name}"] = [
            cell(*(float(by.loc[(name, m), c]) for c in ("diff", "diff_low", "diff_high")))
            for m in metrics
        ]
    return pd.DataFrame(wide)


POINT_VIEW: tuple[str, ...] = (
    "rps",
    "success_ratio_incl_unfinished",
    "p50_ms",
    "p99_ms",
    "success_p99_ms",
    "unfinished",
    "rho_max",
)
"""The metrics the printed per-point table shows (the frame holds all of them)."""


def _points_wide(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """One row per grid point: ``mean ±half-width`` per metric, the worst ρ, runs, warnings."""
    keys = list(table.columns[: list(table.columns).index("metric")])
    rows: list[dict[str, Any]] = []
    groups = table.groupby(keys, sort=False, dropna=False) if keys else [((), table)]
    for key, part in groups:
        row: dict[str, Any] = dict(
            zip(keys, key if isinstance(key, tuple) else (key,), strict=True)
        )
        by = part.set_index("metric")
        first = by.iloc[0]
        row["runs"] = int(first["n"]) + int(first["errors"])
        row["errors"] = int(first["errors"])
        for metric in POINT_VIEW:
            if metric not in by.index:
                continue
            m, hi = _num(by.at[metric, "mean"]), _num(by.at[metric, "ci_high"])
            if m != m:
                row[metric] = "-"
            elif hi != hi:
                row[metric] = f"{m:.{digits}g}"
            else:
                row[metric] = f"{m:.{digits}g} ±{hi - m:.2g}"
        if "rho_max" in by.index:
            row["rho_worst"] = f"{_num(by.at['rho_max', 'max']):.3g}"
        row["warnings"] = by["warnings"].iloc[0] if "warnings" in by else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _num(value: Any) -> float:
    """A frame cell as a float (pandas types cells loosely)."""
    return float(value)


def variant_warnings(table: pd.DataFrame) -> dict[str, list[str]]:
    """Warning codes any run of each variant raised (from :func:`compare`'s frame)."""
    out: dict[str, list[str]] = {}
    for name, part in table.groupby("variant", sort=False):
        codes = {c for w in part["warnings"] for c in str(w).split(",") if c}
        out[str(name)] = sorted(codes)
    return out
