"""Sweep aggregation per grid point, ``compare`` of variants, and their command lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from istiolab.analysis.compare import aggregate, compare, mean_interval, side_by_side
from istiolab.analysis.planner import t_quantile
from istiolab.analysis.sweep import PlainProgress, sweep, sweep_seeds
from istiolab.sim.scenario import Scenario, dump_scenario, mmc_scenario

CONC = "services.0.versions.0.concurrency"


def mmc(duration_s: float = 1.5) -> Scenario:
    """M/M/c, λ = 800/s, μ = 100/s per server: c = 9 runs at ρ ≈ 0.89, c = 12 at ρ ≈ 0.67."""
    return mmc_scenario(800, 10, 9, duration_s=duration_s, warmup_s=0.5, seed=3, name="cmp-mmc")


def test_mean_interval_is_the_two_sided_t_interval() -> None:
    mean, low, high = mean_interval([1.0, 2.0, 3.0], 0.95)
    half = t_quantile(0.975, 2) * 1.0 / math.sqrt(3)  # sd of 1, 2, 3 is 1
    assert mean == 2.0
    assert (low, high) == pytest.approx((2 - half, 2 + half), rel=1e-12)
    assert round(half, 3) == 2.484  # t(0.975, 2) = 4.303 from any t table
    one = mean_interval([5.0])
    assert one[0] == 5.0
    assert math.isnan(one[1])
    assert math.isnan(one[2])
    assert all(math.isnan(v) for v in mean_interval([]))
    assert mean_interval([1.0, math.nan, 3.0])[0] == 2.0  # NaN left out


def _frame() -> pd.DataFrame:
    """A hand-made sweep frame: two points, three seeds, one failed run."""
    return pd.DataFrame(
        {
            "x": [1, 1, 1, 2, 2, 2],
            "seed": [7, 8, 9, 7, 8, 9],
            "p99_ms": [10.0, 12.0, 14.0, 20.0, 30.0, math.nan],
            "rho_max": [0.5, 0.7, 0.6, 0.9, 0.95, math.nan],
            "unfinished": [0, 2, 4, 10, 20, math.nan],
            "warnings": ["", "short_run", "", "unstable", "unstable,unfinished", None],
            "error": [None, None, None, None, None, "RuntimeError: boom"],
        }
    )


def test_aggregate_per_point_and_metric() -> None:
    agg = aggregate(_frame(), ["x"], metrics=("p99_ms", "rho_max", "unfinished"))
    assert list(agg.columns[:2]) == ["x", "metric"]
    assert len(agg) == 6
    row = agg[(agg["x"] == 1) & (agg["metric"] == "p99_ms")].iloc[0]
    half = t_quantile(0.975, 2) * 2.0 / math.sqrt(3)  # sd of 10, 12, 14 is 2
    assert (row["n"], row["errors"], row["mean"]) == (3, 0, 12.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((12 - half, 12 + half))
    assert row["warnings"] == "short_run"
    rho2 = agg[(agg["x"] == 2) & (agg["metric"] == "rho_max")].iloc[0]
    # the failed run is counted in errors and left out of the statistics
    assert (rho2["n"], rho2["errors"], rho2["max"]) == (2, 1, 0.95)
    assert rho2["warnings"] == "high_rho,unfinished,unstable"  # ρ 0.9 and 0.95: little headroom
    unf = agg[(agg["x"] == 2) & (agg["metric"] == "unfinished")].iloc[0]
    assert unf["mean"] == 15.0


def test_aggregate_of_a_real_sweep_matches_the_runs() -> None:
    runs = sweep(mmc(), {CONC: [9, 12]}, seeds=3, executor="serial", progress=False)
    agg = aggregate(runs)  # grid columns from frame.attrs
    assert set(agg[CONC]) == {9, 12}
    for c in (9, 12):
        part = runs[runs[CONC] == c]
        got = agg[(agg[CONC] == c) & (agg["metric"] == "p99_ms")].iloc[0]
        assert got["mean"] == pytest.approx(part["p99_ms"].mean())
        assert got["max"] == part["p99_ms"].max()
        assert got["ci_low"] < got["mean"] < got["ci_high"]
    rho = agg[agg["metric"] == "rho_max"].set_index(CONC)["mean"]
    # offered load 8 servers' worth: ρ = 8/9 and 8/12, within simulation noise
    assert rho[9] == pytest.approx(8 / 9, abs=0.05)
    assert rho[12] == pytest.approx(8 / 12, abs=0.05)
    wide = side_by_side(agg)
    assert len(wide) == 2
    assert {"runs", "p99_ms", "rho_max", "rho_worst", "unfinished"} <= set(wide.columns)


def test_compare_pairs_seeds_and_reports_differences() -> None:
    base = mmc()
    table = compare(
        {"c9": base, "c12": base.with_overrides({CONC: 12}), "same": base},
        seeds=8,
        executor="serial",
        progress=False,
    )
    runs = table.attrs["runs"]
    assert table.attrs["baseline"] == "c9"
    assert runs["seed"].tolist() == sweep_seeds(0, 8) * 3
    by = table.set_index(["variant", "metric"])

    def cell(variant: str, metric: str, column: str) -> float:
        value: Any = by.at[(variant, metric), column]
        return float(value)

    assert math.isnan(cell("c9", "p99_ms", "diff"))
    # identical variant on the same seeds: the paired difference is exactly zero
    assert cell("same", "p99_ms", "diff") == 0.0
    # 12 servers instead of 9: a lower mean and ρ, and the paired interval excludes zero.
    # Over 30 seeds the per-seed difference of the means is -5.9 ms, sd 2.9 (SimPy) and
    # -5.5 ms, sd 3.1 (fast): with 8 seeds the 95 % interval's upper end is about -3 ms,
    # three standard errors below 0 (p99 over this 1 s window is too noisy for that)
    per_seed = (
        runs[runs["variant"] == "c12"]["p99_ms"].to_numpy()
        - runs[runs["variant"] == "c9"]["p99_ms"].to_numpy()
    )
    assert cell("c12", "p99_ms", "diff") == pytest.approx(float(np.mean(per_seed)))
    assert cell("c12", "mean_ms", "diff_high") < 0
    assert cell("c12", "rho_max", "diff_high") < 0
    wide = side_by_side(table)
    assert list(wide.columns) == ["metric", "c9", "c12", "same", "Δ c12", "Δ same"]


def test_plain_progress_prints_every_ten_percent(capsys: pytest.CaptureFixture[str]) -> None:
    bar = PlainProgress(20, "sweep x", unit="run")
    for _ in range(20):
        bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "sweep x: 10% (2/20 runs)"
    assert lines[-1] == "sweep x: 100% (20/20 runs)"
    assert len(lines) == 10
    pct = PlainProgress(100, "simulate s")
    pct.update(35)  # one jump over several steps prints one line
    pct.update(0)
    assert capsys.readouterr().err.splitlines() == ["simulate s: 35% (35/100)"]


# ---------------------------------------------------------------------------- command lines


def _app() -> typer.Typer:
    from istiolab.cli import compare as compare_cli
    from istiolab.cli import sweep as sweep_cli

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    sweep_cli.register(app)
    compare_cli.register(app)
    return app


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "mmc.yaml"
    path.write_text(dump_scenario(mmc()))
    return path


def test_parse_variant() -> None:
    from istiolab.cli.compare import parse_variant

    assert parse_variant("on:aws.cross_zone=true,ingress.nodes_per_az=2") == (
        "on",
        {"aws.cross_zone": True, "ingress.nodes_per_az": 2},
    )
    assert parse_variant("slow:--set services.0.service_time=lognormal(40ms, cv=1)") == (
        "slow",
        {"services.0.service_time": "lognormal(40ms, cv=1)"},
    )
    assert parse_variant("base:") == ("base", {})
    for bad in ("noname", ":a=1", "x:a"):
        with pytest.raises(ValueError, match="--variant"):
            parse_variant(bad)


def test_cli_compare(tmp_path: Path) -> None:
    path = _scenario_file(tmp_path)
    runner = CliRunner()
    args = ["compare", str(path), "-V", f"c9:{CONC}=9", "-V", f"c12:{CONC}=12"]
    res = runner.invoke(_app(), [*args, "-k", "3", "-e", "serial", "-q"])
    assert res.exit_code == 0, res.output
    assert "Δ c12" in res.output
    assert "p99_ms" in res.output
    res = runner.invoke(_app(), [*args, "-k", "2", "-e", "serial", "-q", "-f", "json"])
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(res.output)
    assert doc["baseline"] == "c9"
    assert set(doc["warnings"]) == {"c9", "c12"}
    assert len(doc["runs"]) == 4
    # two scenario files side by side
    other = tmp_path / "other.yaml"
    other.write_text(dump_scenario(mmc().with_overrides({CONC: 12})))
    res = runner.invoke(_app(), ["compare", str(path), str(other), "-k", "2", "-e", "serial"])
    assert res.exit_code == 0, res.output
    assert "Δ other" in res.output
    for bad in (["-V", "x"], ["-V", "a:nope.path=1"], ["-e", "threads"], ["--confidence", "2"]):
        executor = [] if "-e" in bad else ["-e", "serial"]
        res = runner.invoke(_app(), ["compare", str(path), *executor, *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert "Traceback" not in res.output


def test_cli_sweep_prints_points_by_default_and_writes_a_documented_folder(
    tmp_path: Path,
) -> None:
    path = _scenario_file(tmp_path)
    runner = CliRunner()
    base = ["sweep", str(path), "-p", f"{CONC}=9,12", "-k", "2", "-e", "serial", "-q"]
    res = runner.invoke(_app(), [*base, "-f", "json"])
    assert res.exit_code == 0, res.output
    import json

    points = json.loads(res.output)
    assert {p["metric"] for p in points} >= {"p99_ms", "rho_max", "unfinished"}
    assert {p[CONC] for p in points} == {9, 12}
    res = runner.invoke(_app(), [*base, "--per-run", "-f", "json"])
    assert len(json.loads(res.output)) == 4
    out = tmp_path / "sweep-out"
    res = runner.invoke(_app(), [*base, "-o", str(out)])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "runs.csv")
    pts = pd.read_csv(out / "points.csv")
    assert len(runs) == 4
    assert set(pts[CONC]) == {9, 12}
    readme = (out / "README.md").read_text()
    for col in [*runs.columns, *pts.columns]:
        assert f"| `{col}` |" in readme, col
    if (out / "runs.parquet").exists():  # with pyarrow: the same rows in both formats
        assert len(pd.read_parquet(out / "runs.parquet")) == 4


def test_compare_cross_zone_off_on_shows_the_busiest_lb_target_halved() -> None:
    """AWS: with cross-zone off, each LB node sends only to its AZ's targets (1/3 to the lone
    pod of us-east-1a); with it on, every one of the six targets takes 1/6."""
    from istiolab.lab.data import scenario

    sc = scenario("nlb-cross-zone-off-uneven").with_overrides({"run.duration_s": 4.0})
    table = compare(
        {"off": sc, "on": sc.with_overrides({"aws.cross_zone": True})},
        seeds=2,
        executor="serial",
        progress=False,
    )
    by = table.set_index(["variant", "metric"])["mean"]
    ratio = float(by[("on", "rho.lb_targets_max")]) / float(by[("off", "rho.lb_targets_max")])
    assert ratio == pytest.approx(0.5, abs=0.08)  # (1/6) / (1/3)
    # the backends see the same load either way
    backend = float(by[("on", "rho.backend/web/v1")]) / float(by[("off", "rho.backend/web/v1")])
    assert backend == pytest.approx(1.0, abs=0.03)
