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
    from istiolab.sim.scenario import Scenario


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 3.5)) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


METRIC_LABELS: dict[str, str] = {
    "success_ratio": "success_ratio (non-5xx ratio: 403/404/429 count)",
    "success_ratio_incl_unfinished": "non-5xx ratio, unfinished requests failed",
    "error_rate": "error_rate (5xx, resets, unfinished)",
}
"""Axis labels of metrics whose name alone does not say which "success" they mean."""


def metric_label(metric: str) -> str:
    """The axis label of a metric column: its name, and for the success ratios which one."""
    return METRIC_LABELS.get(metric, metric)


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
    """Share of all requests per version per interval (what a canary or an A/B test moves).

    Each route's per-version share is weighted by the route's requests in the interval, so the
    lines add up to 100 % across versions even when each route sends to one version only (a
    cookie A/B: the beta route is all v2, the default route all v1).
    """
    ax = _axes(ax)
    share = _series(result, "share")
    rps = _series(result, "rps")[["t_s", "route", "value"]].rename(columns={"value": "rps"})
    if share.empty:
        return ax
    df = share.merge(rps, on=["t_s", "route"], how="left")
    df = df.assign(weighted=df["value"].fillna(0.0) * df["rps"].fillna(0.0))
    total = rps.groupby("t_s")["rps"].sum()
    for version, d in df.groupby("version", sort=True):
        per_t = d.groupby("t_s")["weighted"].sum() / total.reindex(
            d["t_s"].unique()
        ).sort_index().replace(0.0, np.nan)
        per_t = per_t.sort_index()
        ax.plot(per_t.index.to_numpy(), 100 * per_t.to_numpy(), label=str(version) or "-")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("share of all requests (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Traffic share per version (all routes)")
    ax.legend(loc="best", fontsize="small")
    return mark_events(result, ax)


def responses_over_time(result: Result, *, ax: Axes | None = None) -> Axes:
    """Responses per second by status code and response flag, stacked.

    Each legend entry names the code, its Envoy flags and its intended outcome
    (:func:`~istiolab.sim.results.outcome`), e.g. ``403 FI: denied``; failed responses are drawn
    in reds, the others in blues and greens.
    """
    from istiolab.sim.results import outcome

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
    meaning = {
        str(k): outcome(int(st), str(fl))
        for k, st, fl in zip(codes["key"], codes["status"], codes["flag"], strict=True)
    }
    labels = [f"{c}: {meaning[str(c)].replace('_', ' ')}" for c in pivot.columns]
    failed = [meaning[str(c)] == "failed" for c in pivot.columns]
    from matplotlib import colormaps

    reds, calm = colormaps["Reds"], colormaps["viridis"]
    n_bad, n_ok = max(1, sum(failed)), max(1, len(failed) - sum(failed))
    colours, i_bad, i_ok = [], 0, 0
    for bad in failed:
        if bad:
            colours.append(reds(0.45 + 0.5 * i_bad / n_bad))
            i_bad += 1
        else:
            colours.append(calm(0.25 + 0.6 * i_ok / n_ok))
            i_ok += 1
    interval = float(np.diff(pivot.index).min()) if len(pivot.index) > 1 else 1.0
    ax.stackplot(pivot.index, (pivot / interval).T.values, labels=labels, colors=colours)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("responses per second")
    ax.set_title("Responses by code, Envoy flag and outcome")
    ax.legend(loc="upper left", fontsize="small")
    return mark_events(result, ax)


def cohort_shares(scenario: Scenario, *, version: str = "v2", traffic: int = 0) -> pd.DataFrame:
    """Per cohort of a sessions workload: the share of its users whose requests reach *version*.

    The workload's users are replayed through the scenario's compiled routes with the cookie
    header each one sends (:class:`~istiolab.sim.workload.SessionSpec`: the beta users send
    ``<cookie_name>=beta``, the others ``<cookie_name>=u<id>``), so a regex that misses the
    beta users shows as a beta cohort at 0 %. Weighted routes count by their weights.

    Args:
        scenario: A scenario whose traffic *traffic* has ``sessions``.
        version: The version that is "the beta UI".
        traffic: Index of the traffic population.

    Returns:
        ``cohort`` (``beta users``, ``other users``), ``users`` int, ``share`` float (0..1).

    Raises:
        ValueError: If the population has no sessions.
    """
    from istiolab.envoy.compile import compile as compile_routes
    from istiolab.envoy.match import Request, explain
    from istiolab.lab.data import rules_of

    spec = scenario.traffic[traffic]
    sessions = spec.sessions
    if sessions is None:
        raise ValueError(f"traffic {spec.name!r} has no sessions: no cohorts to compare")
    table = compile_routes(rules_of(scenario))
    template = spec.requests[0]
    extra = ""
    if sessions.extra_cookies:
        extra = sessions.extra_cookies.rstrip().rstrip(";").rstrip() + "; "
    prefix = f"{extra}{sessions.cookie_name}="
    n_beta = round(sessions.beta_fraction * sessions.users)
    base_cookie = template.headers.get("cookie", "")
    cache: dict[str, float] = {}

    def reach(cookie_value: str) -> float:
        cookie = f"{base_cookie}; {cookie_value}" if base_cookie else cookie_value
        if cookie not in cache:
            headers = {**template.headers, "cookie": cookie}
            found = explain(
                table, Request(path=template.path, host=template.host or "", headers=headers)
            ).to_dict()
            cache[cookie] = sum(
                float(d.get("percent") or 0.0) / 100.0
                for d in found.get("destinations") or []
                if d.get("subset") == version
            )
        return cache[cookie]

    beta = reach(f"{prefix}beta") if n_beta else float("nan")
    others = [reach(f"{prefix}u{u}") for u in range(n_beta, sessions.users)]
    return pd.DataFrame(
        {
            "cohort": ["beta users", "other users"],
            "users": [n_beta, sessions.users - n_beta],
            "share": [beta, float(np.mean(others)) if others else float("nan")],
        }
    )


def beta_share_by_cohort(
    scenario: Scenario,
    result: Result | None = None,
    *,
    version: str = "v2",
    ax: Axes | None = None,
) -> Axes:
    """Share of the users of each cohort (beta users, the others) who see *version*.

    Bars from :func:`cohort_shares`; with a *result*, the title adds the share of the
    simulated requests that reached *version*, which the cohorts should explain.

    Returns:
        The Axes (one bar per cohort, labelled with its percentage).
    """
    ax = _axes(ax, (6.0, 3.2))
    frame = cohort_shares(scenario, version=version)
    pct = 100 * frame["share"].fillna(0.0)
    colours = ["tab:purple", "tab:grey"]
    bars = ax.bar(frame["cohort"], pct, color=colours)
    for bar, value, users in zip(bars, pct, frame["users"], strict=True):
        ax.annotate(
            f"{value:.0f} % of {users} users",
            xy=(bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=11,
        )
    ax.set_ylim(0, 115)
    ax.set_ylabel(f"users who see {version} (%)")
    title = f"Who sees the beta UI ({version}), by cohort"
    if result is not None:
        s = result.summary()
        total = int(s["requests"].sum())
        reached = int(s.loc[s["version"] == version, "requests"].sum())
        if total:
            title += f"\nsimulated: {100 * reached / total:.1f} % of all requests reach {version}"
    ax.set_title(title)
    return ax


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
    result: Result, *, ax: Axes | None = None, kind: str = "ingress_node", max_columns: int = 24
) -> Axes:
    """Utilisation per ingress node (or pod) over time, nodes grouped by AZ.

    Short intervals make a speckled picture (a 1 s sample of a few busy servers jumps between
    0 and 1): consecutive intervals are averaged so that at most *max_columns* columns remain,
    each weighted by its capacity (busy / capacity over the merged span).
    """
    ax = _axes(ax, (7.0, 3.0))
    u = result.utilisation()
    u = u[u["kind"] == kind]
    if u.empty:
        return ax
    times = np.sort(u["t_s"].unique())
    step = max(1, int(np.ceil(len(times) / max(1, max_columns))))
    starts = times[(np.searchsorted(times, u["t_s"].to_numpy()) // step) * step]
    u = u.assign(t_s=starts)
    sums = u.groupby(["az", "name", "t_s"])[["busy", "capacity"]].sum()
    sums["utilisation"] = sums["busy"] / sums["capacity"].replace(0.0, np.nan)
    pivot = sums["utilisation"].unstack("t_s")
    image = ax.imshow(
        pivot.values, aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest"
    )
    ax.set_yticks(
        range(len(pivot.index)), [f"{az} {name}" for az, name in pivot.index], fontsize="small"
    )
    cols = list(pivot.columns)
    every = max(1, len(cols) // 10)
    ax.set_xticks(range(0, len(cols), every), [f"{cols[i]:g}" for i in range(0, len(cols), every)])
    ax.set_xlabel("time (s)" if step == 1 else f"time (s), {step} intervals per column")
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
    ax.set_ylabel(metric_label(y))
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
    ax.set_ylabel(metric_label(metric))
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
