"""Plot functions: each returns its Axes with the expected artists, and keeps no pyplot state."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from istiolab.lab import plots, scenario
from istiolab.sim.engine import simulate
from istiolab.sim.results import Result


@pytest.fixture(scope="module")
def canary() -> Result:
    """90/10 canary, 4 simulated seconds: two versions, one route, no errors."""
    return simulate(
        scenario("canary-90-10").with_overrides({"run.duration_s": 4, "run.warmup_s": 1}), 1
    )


@pytest.fixture(scope="module")
def storm() -> Result:
    """Retries against a backend that fails 30 % of requests (no burst)."""
    sc = scenario("retry-storm").with_overrides({"run.duration_s": 4, "events": []})
    return simulate(sc, 1)


@pytest.fixture(scope="module")
def cross_zone() -> Result:
    return simulate(scenario("nlb-vs-alb-cross-zone").with_overrides({"run.duration_s": 3}), 1)


def labels(ax: Axes) -> list[str]:
    return [str(line.get_label()) for line in ax.get_lines()]


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_no_pyplot_state(canary: Result) -> None:
    plots.latency_over_time(canary)
    plots.overview(canary)
    if "matplotlib.pyplot" in sys.modules:  # imported by something else: it must hold no figure
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


@pytest.mark.parametrize(
    "fn",
    [
        plots.latency_over_time,
        plots.share_over_time,
        plots.responses_over_time,
        plots.latency_cdf,
        plots.utilisation_heatmap,
        plots.retry_amplification,
        plots.ingress_load,
    ],
    ids=lambda f: f.__name__,
)
def test_returns_the_given_axes_or_a_new_figures(fn: Any, canary: Result) -> None:
    ax = Figure().add_subplot()
    assert fn(canary, ax=ax) is ax
    own = fn(canary)
    assert isinstance(own, Axes)
    assert isinstance(own.figure, Figure)
    assert own is not ax


def test_latency_over_time(canary: Result) -> None:
    ax = plots.latency_over_time(canary)
    assert labels(ax) == ["p50", "p90", "p99"]
    ts = canary.timeseries().sort_values("t_s")
    for line, metric in zip(ax.get_lines(), ("p50_ms", "p90_ms", "p99_ms"), strict=True):
        want = ts[ts["metric"] == metric]
        # the plotted points are the result's percentiles, not a copy of one of them
        np.testing.assert_array_equal(np.asarray(line.get_xdata(), dtype=float), want["t_s"])
        np.testing.assert_array_equal(np.asarray(line.get_ydata(), dtype=float), want["value"])
    p50, p99 = (np.asarray(ax.get_lines()[i].get_ydata(), dtype=float) for i in (0, 2))
    assert np.nanmean(p99) > np.nanmean(p50)
    assert ax.get_xlabel() == "time (s)"
    assert ax.get_ylabel() == "latency (ms)"


def test_share_over_time(canary: Result) -> None:
    ax = plots.share_over_time(canary)
    assert labels(ax) == ["v1", "v2"]
    v1, v2 = (np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines())
    assert np.allclose(v1 + v2, 100.0)
    ts = canary.timeseries()
    share = ts[(ts["metric"] == "share") & (ts["version"] == "v2")].sort_values("t_s")
    np.testing.assert_allclose(v2, share["value"] * 100)  # the result's share, in percent
    assert ax.get_ylim() == (0.0, 100.0)


def test_responses_over_time(canary: Result, storm: Result) -> None:
    ax = plots.responses_over_time(canary)
    assert legend_texts(ax) == ["200: served"]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1
    texts = legend_texts(plots.responses_over_time(storm))
    assert "200: served" in texts
    assert any(t.startswith("503") and t.endswith(": failed") for t in texts)


def test_responses_say_a_deny_is_denied() -> None:
    deny = simulate(scenario("deny-route").with_overrides({"run.duration_s": 2}), 1)
    assert legend_texts(plots.responses_over_time(deny)) == ["403 FI: denied"]


def test_share_over_time_weights_routes_by_their_requests() -> None:
    """Cookie A/B: one route per version; the lines are shares of all requests, not 100 % each."""
    sc = scenario("cookie-ab").with_overrides({"run.duration_s": 4, "run.warmup_s": 1})
    result = simulate(sc, 1)
    ax = plots.share_over_time(result)
    v1, v2 = (np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines())
    assert np.allclose(v1 + v2, 100.0)
    # 10 % beta users: ~30 of ~300 requests per interval; 3 sigma of a binomial is ~5 points
    assert np.all(np.abs(v2 - 10.0) < 6.0)


def test_beta_share_by_cohort() -> None:
    sc = scenario("cookie-ab")
    frame = plots.cohort_shares(sc)
    assert list(frame["cohort"]) == ["beta users", "other users"]
    assert list(frame["users"]) == [100, 900]
    assert list(frame["share"]) == [1.0, 0.0]
    # the 2017 regex (no space after ';') misses the browsers' beta users entirely
    tight = sc.with_overrides(
        {"rules.inline.1.spec.http.0.match.0.headers.cookie.regex": "^(.*?;)?(user=beta)(;.*)?$"}
    )
    assert list(plots.cohort_shares(tight)["share"]) == [0.0, 0.0]
    ax = plots.beta_share_by_cohort(sc)
    heights = [bar.get_height() for bar in ax.containers[0]]
    assert heights == [100.0, 0.0]
    with pytest.raises(ValueError, match="no sessions"):
        plots.cohort_shares(scenario("canary-90-10"))


def test_latency_cdf(canary: Result) -> None:
    ax = plots.latency_cdf(canary)
    assert labels(ax) == ["v1", "v2"]
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        x = np.asarray(line.get_xdata(), dtype=float)
        assert y[0] == 0.0
        assert y[-1] == 1.0
        assert np.all(np.diff(x) >= 0)
    assert ax.get_xscale() == "log"


def test_utilisation_heatmap(cross_zone: Result) -> None:
    ax = plots.utilisation_heatmap(cross_zone)
    images = [a for a in ax.get_images() if isinstance(a, AxesImage)]
    assert len(images) == 1
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 10
    assert rows[0].startswith("us-east-1a")
    assert rows[-1].startswith("us-east-1b")
    pixels = images[0].get_array()
    assert pixels is not None
    assert pixels.shape[0] == 10


def test_retry_amplification(storm: Result) -> None:
    ax = plots.retry_amplification(storm)
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "upstream / client requests"]
    amp = np.asarray(line.get_ydata(), dtype=float)
    # 1 + 0.3 + 0.3² + 0.3³ ≈ 1.42 attempts per request with 3 retries on a 30 % failure rate
    assert 1.25 < np.nanmean(amp) < 1.6


def test_ingress_load(cross_zone: Result) -> None:
    expected = {f"ingress-us-east-1a-{i}": 0.25 for i in range(2)}
    ax = plots.ingress_load(cross_zone, expected=expected)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["us-east-1a", "us-east-1b"]
    assert [len(b) for b in bars] == [2, 8]
    heights = [r.get_height() for b in bars for r in b]
    assert sum(heights) == pytest.approx(100.0, abs=0.5)
    assert "expected" in legend_texts(ax)


def test_overview(canary: Result, storm: Result) -> None:
    fig = plots.overview(canary)
    assert isinstance(fig, Figure)
    titles = [a.get_title() for a in fig.axes]
    assert "Utilisation per ingress node" in titles  # no retries: the heatmap
    titles = [a.get_title() for a in plots.overview(storm).axes]
    assert "Retry amplification" in titles


def test_empty_frames_leave_empty_axes(canary: Result) -> None:
    class Empty:
        def __getattr__(self, name: str) -> Any:
            frame = getattr(canary, name)()
            return lambda: frame.iloc[0:0]

    empty: Any = Empty()
    assert plots.responses_over_time(empty).get_legend() is None
    assert plots.utilisation_heatmap(empty).get_images() == []
    assert plots.ingress_load(empty).containers == []


# -- sweeps -------------------------------------------------------------------------------------


@pytest.fixture
def sweep_frame() -> Any:
    """A known sweep: p99 falls with nodes, 4 workers are slower than 2; one failed run."""
    import pandas as pd

    rows: list[tuple[int, int, int, float, str | None]] = []
    for nodes in (1, 2, 3):
        for workers in (2, 4):
            for seed, noise in ((11, -1.0), (12, 0.0), (13, 1.0)):
                p99 = 120.0 / nodes * (1.5 if workers == 4 else 1.0) + noise
                rows.append((nodes, workers, seed, p99, None))
    rows.append((3, 2, 14, float("nan"), "SimulationError: boom"))
    return pd.DataFrame(
        rows, columns=["ingress.nodes_per_az", "ingress.concurrency", "seed", "p99_ms", "error"]
    )


def test_sweep_plot(sweep_frame: Any) -> None:
    from matplotlib.container import ErrorbarContainer

    ax = plots.sweep_plot(sweep_frame, x="ingress.nodes_per_az", y="p99_ms")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [b.get_label() for b in bars] == ["concurrency=2", "concurrency=4"]
    line = bars[0].lines[0]
    assert list(np.asarray(line.get_xdata())) == [1.0, 2.0, 3.0]
    assert np.allclose(line.get_ydata(), [120.0, 60.0, 40.0])  # the failed run is left out
    assert ax.get_xlabel() == "ingress.nodes_per_az"
    assert ax.get_ylabel() == "p99_ms"


def test_slo_frontier(sweep_frame: Any) -> None:
    frame = sweep_frame[sweep_frame["ingress.concurrency"] == 2]
    ax = plots.slo_frontier(
        frame, "ingress.nodes_per_az", "p99_ms", threshold=45.0, answer=3, confidence=0.95
    )
    texts = legend_texts(ax)
    assert "mean over seeds" in texts
    assert "95% upper bound" in texts
    assert "objective p99_ms<=45" in texts
    assert "ingress.nodes_per_az = 3" in texts
    (mean,) = [ln for ln in ax.get_lines() if ln.get_label() == "mean over seeds"]
    assert np.allclose(mean.get_ydata(), [120.0, 60.0, 40.0])
    (bound,) = [ln for ln in ax.get_lines() if ln.get_label() == "95% upper bound"]
    assert np.all(np.asarray(bound.get_ydata(), dtype=float) > mean.get_ydata())
    runs = [c for c in ax.collections if c.get_label() == "runs (one per seed)"]
    assert len(np.asarray(runs[0].get_offsets())) == 9


def test_utilisation_heatmap_merges_short_intervals() -> None:
    """Consecutive intervals are averaged by capacity: fewer columns, the same busy share."""
    sc = scenario("nlb-vs-alb-cross-zone").with_overrides({"run.duration_s": 8})
    result = simulate(sc, 1)
    full = plots.utilisation_heatmap(result, max_columns=100).get_images()[0].get_array()
    merged = plots.utilisation_heatmap(result, max_columns=2).get_images()[0].get_array()
    assert full is not None
    assert merged is not None
    assert merged.shape[0] == full.shape[0]
    assert full.shape[1] >= 6  # the intervals with samples
    step = -(-full.shape[1] // 2)
    assert merged.shape[1] == 2
    u = result.utilisation()
    u = u[u["kind"] == "ingress_node"]
    times = sorted(u["t_s"].unique())
    first = u[u["t_s"].isin(times[:step])].groupby(["az", "name"])[["busy", "capacity"]].sum()
    expected = (first["busy"] / first["capacity"]).to_numpy()
    np.testing.assert_allclose(np.asarray(merged[:, 0], dtype=float), expected)
