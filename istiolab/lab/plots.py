"""Plots of simulation results (matplotlib).

Every function takes ``ax=None`` and returns the Axes it drew on; without an Axes it makes a
new :class:`matplotlib.figure.Figure` (never pyplot state), so plots work in scripts, notebooks
and tests alike. Inputs are :class:`~istiolab.sim.results.Result` objects (or their frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from istiolab.analysis.planner import confidence_bound, t_quantile

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from istiolab.analysis.planner import Plan
    from istiolab.sim.results import Result


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 3.5)) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def _series(result: Result, metric: str) -> pd.DataFrame:
    ts = result.timeseries()
    return ts[ts["metric"] == metric]


def mark_events(result: Result, ax: Axes) -> Axes:
    """Mark the run's events (pod crash, AZ loss, …) on a time axis: a dashed line and a label.

    The plots of this module with time on the x axis call it; a result without events (or
    one saved before events were recorded) draws nothing.

    Returns:
        The Axes.
    """
    for event in result.events:
        t = float(event["t_s"])
        ax.axvline(t, color="0.35", linestyle="--", linewidth=0.9, zorder=0)
        label = f"{event['kind']} {event['target']}".strip()
        ax.annotate(
            label,
            xy=(t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            fontsize=7,
            color="0.25",
            va="top",
            rotation=90,
        )
    return ax


def latency_over_time(
    result: Result, *, ax: Axes | None = None, percentiles: tuple[str, ...] = ("p50", "p90", "p99")
) -> Axes:
    """Latency percentiles per interval.

    One line per percentile, and per route when there are several.
    """
    ax = _axes(ax)
    for p in percentiles:
        df = _series(result, f"{p}_ms")
        routes = df["route"].unique()
        for route in routes:
            d = df[df["route"] == route].sort_values("t_s")
            label = p if len(routes) == 1 else f"{route} {p}"
            ax.plot(d["t_s"], d["value"], label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency percentiles over time")
    ax.legend(loc="best", fontsize="small")
    return mark_events(result, ax)


def share_over_time(result: Result, *, ax: Axes | None = None) -> Axes:
    """Traffic share per version per interval (what a canary or an A/B test moves)."""
    ax = _axes(ax)
    df = _series(result, "share")
    for version, d in df.groupby("version", sort=True):
        per_t = d.groupby("t_s")["value"].sum()
        ax.plot(per_t.index.to_numpy(), 100 * per_t.to_numpy(), label=str(version))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("share of requests (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Traffic share per version")
    ax.legend(loc="best", fontsize="small")
    return mark_events(result, ax)


def responses_over_time(result: Result, *, ax: Axes | None = None) -> Axes:
    """Responses per second by status code and response flag, stacked."""
    ax = _axes(ax)
    codes = result.codes()
    if codes.empty:
        return ax
    codes = codes.assign(
        key=codes["status"].astype(str) + np.where(codes["flag"] != "", " " + codes["flag"], "")
    )
    pivot = codes.pivot_table(
        index="t_s", columns="key", values="count", aggfunc="sum", fill_value=0
    )
    interval = float(np.diff(pivot.index).min()) if len(pivot.index) > 1 else 1.0
    ax.stackplot(pivot.index, (pivot / interval).T.values, labels=[str(c) for c in pivot.columns])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("responses per second")
    ax.set_title("Responses by code and flag")
    ax.legend(loc="upper left", fontsize="small")
    return mark_events(result, ax)


def latency_cdf(result: Result, *, ax: Axes | None = None, by: str = "version") -> Axes:
    """Latency CDF per version (or route), from the HDR histograms."""
    from hdrh.histogram import HdrHistogram

    ax = _axes(ax)
    hists = result.histograms()
    hists = hists[hists["stage"] == "total"]
    for key, group in hists.groupby(by, sort=True):
        merged: Any = None
        for blob in group["hdr"]:
            h = HdrHistogram.decode(blob)
            if merged is None:
                merged = h
            else:
                merged.add(h)
        if merged is None or merged.get_total_count() == 0:
            continue
        pcts = np.linspace(0, 100, 201)
        values = [merged.get_value_at_percentile(p) / 1000.0 for p in pcts]
        ax.plot(values, pcts / 100, label=str(key) or "-")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_xscale("log")
    ax.set_title(f"Latency CDF per {by}")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def utilisation_heatmap(
    result: Result, *, ax: Axes | None = None, kind: str = "ingress_node"
) -> Axes:
    """Utilisation per ingress node (or pod) over time, nodes grouped by AZ."""
    ax = _axes(ax, (7.0, 3.0))
    u = result.utilisation()
    u = u[u["kind"] == kind]
    if u.empty:
        return ax
    pivot = u.pivot_table(index=["az", "name"], columns="t_s", values="utilisation", aggfunc="mean")
    image = ax.imshow(
        pivot.values, aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest"
    )
    ax.set_yticks(
        range(len(pivot.index)), [f"{az} {name}" for az, name in pivot.index], fontsize="small"
    )
    cols = list(pivot.columns)
    step = max(1, len(cols) // 10)
    ax.set_xticks(range(0, len(cols), step), [f"{cols[i]:g}" for i in range(0, len(cols), step)])
    ax.set_xlabel("time (s)")
    ax.set_title(f"Utilisation per {kind.replace('_', ' ')}")
    ax.figure.colorbar(image, ax=ax, label="busy fraction")
    return ax


def retry_amplification(result: Result, *, ax: Axes | None = None) -> Axes:
    """Upstream requests per client request over time (retries multiply backend load)."""
    ax = _axes(ax)
    rps = _series(result, "rps").groupby("t_s")["value"].sum()
    retries = _series(result, "retries_per_s").groupby("t_s")["value"].sum()
    amp = (rps + retries.reindex(rps.index, fill_value=0)) / rps.replace(0, np.nan)
    ax.plot(amp.index.to_numpy(), amp.to_numpy(), label="upstream / client requests")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplification")
    ax.set_title("Retry amplification")
    ax.legend(loc="best", fontsize="small")
    return mark_events(result, ax)


def overview(result: Result) -> Any:
    """A 2×2 figure with the main plots (what ``istiolab simulate --out`` saves as PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    latency_over_time(result, ax=axes[0][0])
    responses_over_time(result, ax=axes[0][1])
    share_over_time(result, ax=axes[1][0])
    if result.totals()["retries"]:
        retry_amplification(result, ax=axes[1][1])
    else:
        utilisation_heatmap(result, ax=axes[1][1])
    fig.suptitle(f"{result.scenario} (seed {result.seed})")
    return fig


# ---------------------------------------------------------------------------- sweeps and plans


def _short(path: str) -> str:
    """The last part of a dotted scenario path (titles and legends stay readable)."""
    return path.rsplit(".", 1)[-1]


def _grid_columns(frame: pd.DataFrame) -> list[str]:
    """The grid columns of a sweep frame: every column before ``seed``."""
    cols = list(frame.columns)
    return cols[: cols.index("seed")] if "seed" in cols else []


def sweep_plot(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str | list[str] | None = None,
    confidence: float = 0.95,
    ax: Axes | None = None,
) -> Axes:
    """Mean of a metric over seeds against one grid column, with t confidence intervals.

    Args:
        frame: A frame from :func:`istiolab.analysis.sweep.sweep` (error rows are left out).
        x: Grid column for the x axis (numeric values are placed by value, others in order).
        y: Metric column (``p99_ms``, ``success_ratio``, …).
        hue: Column(s) drawn as separate lines; default: every other grid column that varies.
        confidence: Two-sided level of the error bars (needs 2+ seeds per point).
        ax: Axes to draw on (default: a new Figure).

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ok = frame[frame["error"].isna()] if "error" in frame.columns else frame
    if hue is None:
        hues = [c for c in _grid_columns(frame) if c != x and frame[c].nunique() > 1]
    else:
        hues = [hue] if isinstance(hue, str) else list(hue)
    numeric = pd.api.types.is_numeric_dtype(frame[x])
    order = list(pd.unique(frame[x]))
    groups = ok.groupby(hues, sort=False) if hues else [((), ok)]
    for key, group in groups:
        stats = group.groupby(x, sort=False)[y].agg(["mean", "std", "count"])
        stats = stats.reindex([v for v in order if v in stats.index])
        if numeric:
            stats = stats.sort_index()
            xs: Any = stats.index.to_numpy(dtype=float)
        else:
            xs = [order.index(v) for v in stats.index]
        half = [
            t_quantile(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n) if n > 1 else 0.0
            for sd, n in zip(stats["std"], stats["count"], strict=True)
        ]
        keys = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{_short(h)}={k}" for h, k in zip(hues, keys, strict=True)) or y
        ax.errorbar(xs, stats["mean"], yerr=half, marker="o", capsize=3, label=label)
    if not numeric:
        ax.set_xticks(range(len(order)), [str(v) for v in order])
    elif pd.api.types.is_integer_dtype(frame[x]):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {_short(x)} (mean over seeds, {confidence:.0%} CI)")
    ax.legend(loc="best", fontsize="small")
    return ax


def slo_frontier(
    frame: pd.DataFrame,
    knob: str,
    metric: str,
    *,
    threshold: float | None = None,
    op: str = "<=",
    answer: int | None = None,
    bounds: dict[Any, float] | None = None,
    confidence: float = 0.95,
    ax: Axes | None = None,
) -> Axes:
    """A capacity plan: per-run values, their mean and confidence bound against the knob.

    Args:
        frame: Runs with a *knob* column and a *metric* column (``Plan.evidence`` or a sweep).
        knob: The knob column (x axis).
        metric: The objective's metric (y axis).
        threshold: The objective's limit, drawn as a horizontal line.
        op: The objective's operator; ``<=``/``<`` bound from above, ``>=``/``>`` from below.
        answer: The chosen knob value, marked with a vertical line.
        bounds: Knob value → confidence bound; default: computed (one-sided t, *confidence*).
        confidence: One-sided level used when computing the bounds.
        ax: Axes to draw on (default: a new Figure).

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ok = frame[frame["error"].isna()] if "error" in frame.columns else frame
    upper = op in ("<=", "<")
    values = sorted(pd.unique(frame[knob]))
    means = ok.groupby(knob)[metric].mean().reindex(values)
    if bounds is None:
        bounds = {
            v: confidence_bound(
                [float(x) for x in ok.loc[ok[knob] == v, metric]], upper, confidence
            )
            for v in values
        }
    ax.scatter(ok[knob], ok[metric], s=12, color="grey", alpha=0.6, label="runs (one per seed)")
    ax.plot(values, means.to_numpy(dtype=float), marker="o", label="mean over seeds")
    ax.plot(
        values,
        [bounds.get(v, np.nan) for v in values],
        linestyle="--",
        marker="^" if upper else "v",
        label=f"{confidence:.0%} {'upper' if upper else 'lower'} bound",
    )
    shown = ok[metric].astype("float64").dropna()
    if len(shown) and shown.min() > 0 and shown.max() / shown.min() > 50:
        ax.set_yscale("log")  # unstable small values would flatten the interesting region
    title = f"{metric} against {knob}"
    if threshold is not None:
        objective = f"{metric}{op}{threshold:g}"
        ax.axhline(threshold, color="tab:red", linewidth=1, label=f"objective {objective}")
        title = f"Smallest {_short(knob)} meeting {objective}"
    if answer is not None:
        ax.axvline(
            answer, color="tab:green", linewidth=1, linestyle=":", label=f"{knob} = {answer}"
        )
    if pd.api.types.is_integer_dtype(frame[knob]):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(knob)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return ax


# -- added for the notebooks and widgets ------------------------------------------------------


def ingress_load(
    result: Result, *, ax: Axes | None = None, expected: dict[str, float] | None = None
) -> Axes:
    """Share of the requests each ingress node served, one bar per node coloured by AZ.

    Args:
        result: The run.
        ax: Axes to draw on; default a new Figure's.
        expected: Optional share per node name drawn as black ticks (e.g. what cross-zone off
            predicts), to compare with what was measured.

    Returns:
        The Axes (one ``BarContainer`` per AZ, labelled with the AZ).
    """
    ax = _axes(ax)
    ing = result.ingress()
    ing = ing[ing["ingress_node"] != "-"]
    if ing.empty:
        return ax
    names = list(ing["ingress_node"])
    for az, d in ing.groupby("az", sort=True):
        ax.bar([names.index(n) for n in d["ingress_node"]], 100 * d["share"], label=str(az))
    if expected:
        xs = [names.index(n) for n in expected if n in names]
        ys = [100 * expected[n] for n in expected if n in names]
        ax.scatter(xs, ys, marker="_", s=400, color="black", label="expected", zorder=3)
    ax.set_xticks(
        range(len(names)),
        [n.replace("ingress-", "") for n in names],
        rotation=45,
        ha="right",
        fontsize="small",
    )
    ax.set_ylabel("share of requests (%)")
    ax.set_title("Requests per ingress node")
    ax.legend(loc="best", fontsize="small")
    return ax


def plan_frontier(plan: Plan, ax: Axes | None = None, *, metric: str | None = None) -> Axes:
    """A plan's evidence: per-run values, mean and confidence bound against the knob.

    Args:
        plan: The answer of :func:`istiolab.analysis.planner.plan`.
        ax: Axes to draw on (default: a new Figure).
        metric: Objective metric to show (default: the first objective's).

    Returns:
        The Axes.

    Raises:
        ValueError: When *metric* is not one of the plan's objectives.
    """
    slo = next((s for s in plan.slos if metric in (None, s.metric)), None)
    if slo is None:
        raise ValueError(f"{metric!r} is not one of the objectives {list(map(str, plan.slos))}")
    rows = plan.checks[plan.checks["slo"] == str(slo)]
    bounds = dict(zip(rows["value"], rows["bound"], strict=True))
    return slo_frontier(
        plan.evidence,
        plan.knob,
        slo.metric,
        threshold=slo.threshold,
        op=slo.op,
        answer=plan.value,
        bounds=bounds,
        confidence=plan.confidence,
        ax=ax,
    )
