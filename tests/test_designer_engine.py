"""The RuleDesigner runs its simulations on the engine it was given."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from istiolab import lab
from istiolab.widgets import RuleDesigner


def _engine_of(result: object) -> str:
    meta = json.dumps(result.meta, default=str)  # type: ignore[attr-defined]
    return "fast" if '"engine": "fast"' in meta else "simpy" if '"engine": "simpy"' in meta else "?"


def test_designer_simulates_on_the_chosen_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEM_LIMIT", raising=False)
    monkeypatch.delenv("ISTIOLAB_ENGINE", raising=False)
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    default = RuleDesigner(lab.rules_of(sc), scenario=sc)
    assert default.engine == "auto"  # no declared memory limit: the compiled engine
    assert _engine_of(default.result) == "fast"
    simpy = RuleDesigner(lab.rules_of(sc), scenario=sc, engine="simpy")
    assert _engine_of(simpy.result) == "simpy"
    fast = RuleDesigner(lab.rules_of(sc), scenario=sc, engine="fast")
    assert _engine_of(fast.result) == "fast"
    fast.sliders[0].value = 50  # a slider move re-runs on the same engine
    assert _engine_of(fast.result) == "fast"
    assert "weight: 50" in fast.yaml()


def test_designer_rejects_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        RuleDesigner(lab.rules_of(lab.scenario("canary-90-10")), engine="warp")


def test_widgets_run_simpy_where_the_host_declares_a_memory_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Binder sets MEM_LIMIT; numba's ~120 MiB per kernel does not fit a dozen kernels in it.

    Without the ahead-of-time kernel (replaced here by its absence), the widgets run SimPy.
    """
    from istiolab.lab.engine import session_engine
    from istiolab.sim.fast import aot
    from istiolab.widgets import SimulationDashboard

    monkeypatch.setattr(aot, "available", lambda: False)
    monkeypatch.delenv("ISTIOLAB_ENGINE", raising=False)
    monkeypatch.setenv("MEM_LIMIT", str(2 * 2**30))
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    designer = RuleDesigner(lab.rules_of(sc), scenario=sc)
    assert designer.engine == "simpy"
    assert _engine_of(designer.result) == "simpy"
    assert SimulationDashboard(sc).engine == "simpy"
    monkeypatch.setenv("ISTIOLAB_ENGINE", "fast")  # the override wins over the limit
    assert SimulationDashboard(sc).engine == "fast"
    assert RuleDesigner(lab.rules_of(sc), scenario=sc, engine="simpy").engine == "simpy"
    monkeypatch.setenv("ISTIOLAB_ENGINE", "turbo")
    with pytest.raises(ValueError, match=r"got 'turbo' \(ISTIOLAB_ENGINE\)"):
        session_engine()
    assert session_engine(environ={}) == "auto"
    assert session_engine(environ={"MEM_LIMIT": "2147483648"}) == "simpy"
    # a limit that is no positive number declares nothing (as the memory guard reads it)
    for junk in ("0", "-5", "lots", "1e999", ""):
        assert session_engine(environ={"MEM_LIMIT": junk}) == "auto", junk
    with pytest.raises(ValueError, match="ISTIOLAB_ENGINE") as err:
        session_engine(environ={"ISTIOLAB_ENGINE": "x" * 100_000})
    assert len(str(err.value)) < 200  # the value is quoted cut short, with its size


def test_widgets_run_the_fast_engine_under_a_memory_limit_once_compiled_ahead_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Binder's postBuild builds the extension module: a few MiB, so MEM_LIMIT keeps auto."""
    from istiolab.lab.engine import session_engine
    from istiolab.sim.fast import aot
    from istiolab.widgets import SimulationDashboard

    if not aot.available():
        pytest.skip("no ahead-of-time kernel built (python -m istiolab.sim.fast.cache builds it)")
    monkeypatch.delenv("ISTIOLAB_ENGINE", raising=False)
    monkeypatch.setenv("MEM_LIMIT", str(2 * 2**30))
    assert session_engine() == "auto"
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    designer = RuleDesigner(lab.rules_of(sc), scenario=sc)
    assert designer.engine == "auto"
    assert _engine_of(designer.result) == "fast"
    assert SimulationDashboard(sc).engine == "auto"


def test_notebook_cells_and_their_checks_run_on_the_session_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lab.simulate, which the notebooks and the exercise checker call, follows session_engine."""
    from istiolab.lab import exercises
    from istiolab.lab.engine import simulate
    from istiolab.sim.fast import aot

    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    monkeypatch.delenv("ISTIOLAB_ENGINE", raising=False)
    monkeypatch.delenv("MEM_LIMIT", raising=False)
    assert _engine_of(simulate(sc, seed=1)) == "fast"
    assert _engine_of(simulate(sc, seed=1, engine="simpy")) == "simpy"
    monkeypatch.setenv("MEM_LIMIT", str(2 * 2**30))
    assert _engine_of(simulate(sc, seed=1)) == ("fast" if aot.available() else "simpy")
    monkeypatch.setattr(aot, "available", lambda: False)  # a Binder without a C compiler
    assert _engine_of(simulate(sc, seed=1)) == "simpy"
    # the checker's own runs: the same function, hence the same engine as the cells
    seen: list[str] = []
    real = simulate

    def spy(scenario: Any, seed: Any = None, **kw: Any) -> Any:
        result = real(scenario, seed, **kw)
        seen.append(_engine_of(result))
        return result

    monkeypatch.setattr("istiolab.lab.engine.simulate", spy)
    monkeypatch.setenv("ISTIOLAB_ENGINE", "fast")
    even = lab.scenario("nlb-vs-alb-cross-zone").with_overrides(
        {"run.duration_s": 2, "run.warmup_s": 0.5}
    )
    exercises._even_nlb(even)
    assert seen == ["fast"]
