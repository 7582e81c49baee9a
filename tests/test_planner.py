"""Capacity planner: objectives, confidence bounds, the search, and the Erlang C answer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from istiolab.analysis.planner import (
    SLO,
    SLONotMetError,
    _smallest,
    confidence_bound,
    plan,
    t_quantile,
)
from istiolab.errors import ConfigError
from istiolab.lab.plots import plan_frontier
from istiolab.sim import theory
from istiolab.sim.scenario import Scenario, dump_scenario, mmc_scenario

KNOB = "services.0.versions.0.concurrency"
LAM, MU = 800.0, 100.0


def mmc(c: int, duration_s: float, warmup_s: float = 1.0) -> Scenario:
    """An isolated M/M/c: one pod with concurrency c, every other cost zero."""
    return mmc_scenario(
        LAM, 1000 / MU, c, duration_s=duration_s, warmup_s=warmup_s, seed=1, name="plan-mmc"
    )


def test_slo_parse() -> None:
    assert SLO.parse("p99_ms<=100") == SLO("p99_ms", "<=", 100.0)
    assert SLO.parse(" success_ratio >= 0.999 ") == SLO("success_ratio", ">=", 0.999)
    assert SLO.parse("mean_ms<1e2").threshold == 100.0
    assert str(SLO.parse("p99_ms<=100")) == "p99_ms<=100"
    assert SLO.parse("p99_ms<=100").upper
    assert not SLO.parse("rps>10").upper
    for bad in ("p99_ms=100", "p99_ms<=", "<=3", "p99_ms<=fast"):
        with pytest.raises(ValueError, match="cannot parse SLO"):
            SLO.parse(bad)
    with pytest.raises(ValueError, match="unknown SLO metric"):
        SLO.parse("p95_ms<=100")
    assert not SLO.parse("p99_ms<=100").holds(math.nan)


def test_t_quantile_matches_tables() -> None:
    table = {(0.95, 1): 6.313752, (0.95, 2): 2.919986, (0.95, 5): 2.015048, (0.975, 10): 2.228139}
    for (p, df), expected in table.items():
        assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile(0.05, 5) == pytest.approx(-2.015048, abs=1e-6)
    assert t_quantile(0.95, 1e6) == pytest.approx(1.644854, abs=1e-5)  # the normal limit


def test_confidence_bound() -> None:
    xs = [10.0, 12.0, 14.0]
    half = t_quantile(0.95, 2) * 2.0 / math.sqrt(3)
    assert confidence_bound(xs, True, 0.95) == pytest.approx(12.0 + half)
    assert confidence_bound(xs, False, 0.95) == pytest.approx(12.0 - half)
    assert confidence_bound([1.0, 1.0], True, 0.95) == 1.0
    assert math.isnan(confidence_bound([1.0], True, 0.95))
    assert math.isnan(confidence_bound([1.0, math.nan], True, 0.95))


@pytest.mark.parametrize("start", [1, 3, 7, 10, 11, 40, 100])
@pytest.mark.parametrize("answer", [1, 2, 5, 10, 11, 64, 100])
def test_search_finds_the_smallest_value_and_runs_each_once(start: int, answer: int) -> None:
    tried: list[int] = []

    def meets(v: int) -> bool:
        assert v not in tried, f"{v} evaluated twice"
        assert 1 <= v <= 100
        tried.append(v)
        return v >= answer

    assert _smallest(meets, start, 1, 100) == answer
    assert len(tried) <= 2 * math.log2(100) + 2  # exponential + binary, not a linear scan


def test_search_gives_up_at_high() -> None:
    assert _smallest(lambda v: False, 3, 1, 50) is None
    assert _smallest(lambda v: v >= 5, 5, 5, 9) == 5  # never below low


def test_plan_returns_the_erlang_c_answer() -> None:
    """λ = 800/s, μ = 100/s: W(9) = 16.53 ms, W(10) = 12.05 ms (Erlang C).

    The objective mean_ms <= (W(9) + W(10)) / 2 is met from c = 10 on; the planner starts
    from the scenario's c = 8 (unstable), doubles, then bisects. With 6 seeds of 11 s after
    warm-up, per-run means have a standard deviation of about 0.5 ms at c = 10 and 1.8 ms at
    c = 9, so both sides of the threshold are several standard errors away.
    """
    w = {c: theory.mmc_wait(LAM, MU, c)[1] * 1e3 for c in range(9, 20)}
    threshold = (w[9] + w[10]) / 2
    expected = min(c for c in w if w[c] <= threshold)
    assert expected == 10
    result = plan(
        mmc(8, duration_s=12.0),
        KNOB,
        [f"mean_ms<={threshold:.3f}", "success_ratio>=0.99"],
        seeds=6,
        executor="serial",
        progress=False,
    )
    assert result.value == expected
    assert result.tried == (8, 16, 12, 10, 9)
    checks = result.checks
    assert list(checks.columns) == [
        "value",
        "slo",
        "metric",
        "op",
        "threshold",
        "measured",
        "n",
        "errors",
        "mean",
        "std",
        "bound",
        "ok",
        "note",
        "meets",
    ]
    mean_ok = checks[checks["metric"] == "mean_ms"].set_index("value")
    assert not mean_ok.loc[9, "ok"]
    assert mean_ok.loc[10, "ok"]
    assert mean_ok.loc[10, "mean"] == pytest.approx(w[10], rel=0.05)  # agrees with Erlang C
    ev = result.evidence
    assert ev.columns[0] == KNOB
    assert ev[KNOB].tolist() == sorted(ev[KNOB].tolist())
    assert len(ev) == 5 * 6
    assert ev["seed"].nunique() == 6  # the same seeds at every value
    assert "one-sided" in result.describe()
    ax = plan_frontier(result)
    assert ax.get_xlabel() == KNOB
    assert ax.get_ylabel() == "mean_ms"


def test_plan_raises_with_evidence_when_never_met() -> None:
    with pytest.raises(SLONotMetError) as err:
        plan(mmc(8, 2.0, 0.5), KNOB, "mean_ms<=1", seeds=2, high=9, executor="serial")
    assert err.value.evidence[KNOB].tolist() == [8, 8, 9, 9]
    assert not err.value.checks["meets"].any()
    assert "up to 9" in str(err.value)


def test_plan_failed_runs_never_meet() -> None:
    # ingress.pods_per_node = 0 fails at run time (no gateway pods): not a valid answer
    result = plan(
        mmc(10, 2.0, 0.5),
        "ingress.pods_per_node",
        "success_ratio>=0.5",
        seeds=2,
        start=0,
        low=0,
        high=4,
        executor="serial",
    )
    assert result.value == 1
    assert result.checks.set_index("value").loc[0, "errors"] == 2


def test_plan_input_errors() -> None:
    sc = mmc(10, 2.0, 0.5)
    with pytest.raises(ConfigError, match="unknown field"):
        plan(sc, "services.0.versions.0.nope", "p99_ms<=10", executor="serial")
    with pytest.raises(ConfigError, match="integer knobs"):
        plan(sc, "run.metrics_interval_s", "p99_ms<=10", low=1, high=2, executor="serial")
    with pytest.raises(ValueError, match="at least 2 seeds"):
        plan(sc, KNOB, "p99_ms<=10", seeds=1, executor="serial")
    with pytest.raises(ValueError, match="at least one objective"):
        plan(sc, KNOB, [], executor="serial")


def _app() -> typer.Typer:
    from istiolab.cli.sweep import register

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    register(app)
    return app


def test_cli_plan(tmp_path: Path) -> None:
    path = tmp_path / "mmc.yaml"
    path.write_text(dump_scenario(mmc(8, 2.0, 0.5)))
    runner = CliRunner()
    base = ["plan", str(path), "--knob", KNOB, "-k", "2", "-e", "serial"]
    res = runner.invoke(_app(), [*base, "--slo", "mean_ms<=30", "-o", str(tmp_path / "ev.csv")])
    assert res.exit_code == 0, res.output
    assert f"{KNOB} = " in res.output
    assert (tmp_path / "ev.csv").exists()
    res = runner.invoke(_app(), [*base, "--slo", "mean_ms<=1", "--high", "9"])
    assert res.exit_code == 1
    assert "no value" in res.output
    for bad in (["--slo", "p99<=3"], ["--slo", "p99_ms=3"], ["--slo", "p99_ms<=3", "-k", "1"]):
        res = runner.invoke(_app(), [*base, *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(_app(), ["plan", str(path), "--knob", "nope.x", "--slo", "p99_ms<=3"])
    assert res.exit_code == 2
    assert "nope" in res.output
