"""Scenarios that ask for a run that would eat the machine are refused before anything is built.

Each case is a one-line override of a bundled scenario, as a user would type it with ``--set``.
The refusal is an ``IL402`` finding (``IL401`` for values no run can use, such as ∞), comes
within a second, and the command line turns it into findings and exit code 1, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from istiolab import limits
from istiolab.analysis.sweep import sweep
from istiolab.errors import ConfigError
from istiolab.sim import budget
from istiolab.sim.engine import simulate
from istiolab.sim.scenario import Scenario, load_scenario

from .mutations import mutated_data

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sim" / "scenarios" / "seed-httpbin.yaml"


@pytest.fixture(scope="module")
def seed() -> Scenario:
    return load_scenario(SEED)


def codes_of(err: ConfigError) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in err.findings]


# The seed scenario runs one Poisson source; each override crosses exactly one limit.
OVER = [
    pytest.param({"run.duration_s": 1e12}, ["requests", "intervals"], id="duration-1e12"),
    pytest.param({"run.metrics_interval_s": 1e-9}, ["intervals"], id="interval-1ns"),
    pytest.param({"traffic.0.arrival.rate_rps": 1e9}, ["requests"], id="rate-1e9"),
    pytest.param({"services.0.versions.0.replicas_per_az": 10**9}, ["max_pods"], id="pods-1e9"),
    pytest.param({"ingress.nodes_per_az": 10**8}, ["gateway_pods"], id="gateway-1e8"),
    pytest.param({"traffic.0.source_ips": 10**9}, ["source_ips"], id="source-ips-1e9"),
]


@pytest.mark.parametrize(("overrides", "paths"), OVER)
def test_over_a_limit_is_refused_before_the_run(
    seed: Scenario, overrides: dict[str, Any], paths: list[str]
) -> None:
    sc = seed.with_overrides(overrides)
    t = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        simulate(sc, seed=1, engine="simpy")
    assert time.perf_counter() - t < 1.0  # estimated, not attempted
    assert codes_of(err.value) == [("IL402", p) for p in paths]
    text = str(err.value)
    assert "docs/limits.md" in text


def test_the_estimate_counts_without_building(seed: Scenario) -> None:
    sc = seed.with_overrides(
        {"services.0.versions.0.replicas_per_az": 10**9, "run.duration_s": 600.0}
    )
    b = budget.estimate(sc)
    assert b.pods == 2 * 10**9  # two AZs; a list of 2·10⁹ pods would take tens of GB
    rate = float(seed.traffic[0].arrival.rate_rps or 0)
    assert b.requests == pytest.approx(rate * 600.0, abs=1)
    assert b.intervals == round(600.0 / seed.run.metrics_interval_s)


def test_force_lifts_the_time_limit_but_not_the_memory_ones(
    seed: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The requests limit only protects time; a forced run goes ahead. Made small here so the
    # forced run stays short.
    monkeypatch.setattr(limits, "SIM_MAX_REQUESTS", 10)
    sc = seed.with_overrides({"run.duration_s": 2.0, "run.warmup_s": 0.5})
    with pytest.raises(ConfigError) as err:
        simulate(sc, seed=1, engine="simpy")
    assert codes_of(err.value) == [("IL402", "requests")]
    assert simulate(sc, seed=1, engine="simpy", force=True).totals()["requests"] > 10
    monkeypatch.setattr(limits, "SIM_MAX_INTERVALS", 10)
    with pytest.raises(ConfigError) as err:
        simulate(sc.with_overrides({"run.metrics_interval_s": 0.01}), seed=1, force=True)
    assert codes_of(err.value) == [("IL402", "intervals")]


def test_just_under_the_limits_runs(seed: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = seed.with_overrides({"run.duration_s": 2.0, "run.warmup_s": 0.5})
    b = budget.estimate(sc)
    monkeypatch.setattr(limits, "SIM_MAX_REQUESTS", b.requests)
    monkeypatch.setattr(limits, "SIM_MAX_INTERVALS", b.intervals)
    assert budget.check(sc) == b


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_findings(value: str, tmp_path: Path) -> None:
    text = SEED.read_text("utf-8").replace("run: {", f"run: {{metrics_interval_s: {value}, ", 1)
    assert text != SEED.read_text("utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert [f.code for f in err.value.findings] == ["IL401"]
    assert "finite" in str(err.value)


def test_a_sweep_of_a_billion_seeds_is_refused_at_once(seed: Scenario) -> None:
    t = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        sweep(seed, {"ingress.nodes_per_az": [1, 2]}, seeds=10**9, executor="serial")
    assert time.perf_counter() - t < 1.0  # no seed was spawned
    assert codes_of(err.value) == [("IL402", "seeds")]
    assert "2,000,000,000 runs" in str(err.value)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "istiolab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", str(SEED), "--set", "run.metrics_interval_s=1e-9"],
        ["simulate", str(SEED), "--set", "run.duration_s=1e12"],
        ["simulate", str(SEED), "--set", "run.duration_s=inf"],
        ["sweep", str(SEED), "--seeds", "1000000000"],
    ],
    ids=["interval", "duration", "infinite", "sweep-seeds"],
)
def test_the_cli_answers_with_findings_not_a_traceback(args: list[str]) -> None:
    done = run_cli(*args)
    assert "Traceback" not in done.stderr
    assert done.returncode in (1, 2), done.stderr
    assert "IL402" in done.stderr or "IL401" in done.stderr


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs": each level is nine aliases of the one before (9**levels strings)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("name", "code"), [("bomb", "IL010"), ("/dev/zero", "IL007")])
def test_scenario_files_are_read_with_the_config_limits(
    name: str, code: str, tmp_path: Path
) -> None:
    path = Path(name)
    if name == "bomb":
        path = tmp_path / "bomb.yaml"
        path.write_text(alias_bomb(), "utf-8")
    t = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert time.perf_counter() - t < 1.0
    assert [f.code for f in err.value.findings] == [code]
    assert str(path) in str(err.value)


# -- mutations of valid scenarios ------------------------------------------------------------


def test_mutated_scenarios_give_findings_never_a_crash() -> None:
    # Every field of every bundled scenario, swapped for each hostile value: validation and the
    # budget answer with IL401/IL402 findings or accept it; nothing else escapes.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from istiolab.config import codecs
    from istiolab.sim.scenario import scenario_from_dict

    bases = []
    for path in sorted((ROOT / "sim" / "scenarios").glob("*.yaml")):
        (doc,) = codecs.loads(codecs.read_text(path), str(path))
        bases.append((doc.data, str(path.parent)))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        raw, base_dir = data.draw(st.sampled_from(bases))
        mutant = data.draw(mutated_data(raw))
        codes: set[str] = set()
        try:
            budget.check(scenario_from_dict(mutant, base_dir=base_dir))
        except ConfigError as err:
            codes = {f.code for f in err.findings} or {"none"}
        assert codes <= {"IL401", "IL402"}

    check()


def test_a_run_of_1e308_seconds_is_refused_with_a_finding(seed: Scenario) -> None:
    huge = seed.model_copy(update={"run": seed.run.model_copy(update={"duration_s": 1e308})})
    with pytest.raises(ConfigError) as err:
        budget.check(huge)
    assert {f.code for f in err.value.findings} == {"IL402"}
