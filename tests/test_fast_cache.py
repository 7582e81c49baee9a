"""Whether the compiled kernel is ready, and the commands that say they compile it first.

The compile itself (three to four minutes) is not run here: `make test` builds the
ahead-of-time module and warms numba's cache once, and a test that compiled again would double
the suite. An empty cache is a fresh ``NUMBA_CACHE_DIR`` in a child process that asks for the
JIT kernel (``ISTIOLAB_FAST_KERNEL=jit``), where only readiness is asked (nothing is called).
``kernel_ready`` is replaced in the CLI tests to stand for an empty cache; ``warm`` then runs
its tiny fast run for real, on the kernel already loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from istiolab.cli import simulate as simulate_cli
from istiolab.cli import sweep as sweep_cli
from istiolab.sim.engine import simulate
from istiolab.sim.fast import cache
from istiolab.sim.scenario import mmc_scenario

ROOT = Path(__file__).resolve().parents[1]
DENY = str(ROOT / "sim/scenarios/deny-route.yaml")


def test_kernel_ready_reads_numba_cache(tmp_path: Path) -> None:
    from istiolab.sim.fast import aot

    simulate(mmc_scenario(100.0, 10.0, 1, duration_s=1.0, warmup_s=0.0), seed=1, engine="fast")
    assert cache.kernel_ready() is True  # loaded in this process
    assert cache.warm(lambda line: pytest.fail(f"said {line!r} with the kernel loaded")) is False
    code = "from istiolab.sim.fast.cache import kernel_ready; print(kernel_ready())"
    cases: list[tuple[Path | None, str, str]] = [(tmp_path, "jit", "False"), (None, "jit", "True")]
    if aot.available():  # the ahead-of-time module is ready whatever numba's cache holds
        cases.append((tmp_path, "", "True"))
    for cache_dir, kernel, expected in cases:
        env = dict(os.environ)  # None: this process's cache, which `make test` filled
        env["ISTIOLAB_FAST_KERNEL"] = kernel
        if cache_dir is not None:
            env["NUMBA_CACHE_DIR"] = str(cache_dir)  # an empty cache: the first call compiles
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected, (cache_dir, kernel, out.stdout, out.stderr)


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    simulate_cli.register(app)
    sweep_cli.register(app)
    return app


def test_commands_say_they_compile_before_a_cold_fast_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache: simulate, sweep and plan say so on stderr, once, before the run."""
    monkeypatch.setattr(cache, "_loaded", lambda: False)
    monkeypatch.setattr(cache, "kernel_ready", lambda: False)
    runner = CliRunner()
    commands = [
        ["simulate", DENY, "--duration", "2"],
        ["simulate", DENY, "--duration", "2", "--engine", "fast"],
        ["sweep", DENY, "-p", "run.duration_s=2", "-q"],
    ]
    for argv in commands:
        res = runner.invoke(_cli(), argv)
        assert res.exit_code == 0, res.output
        assert res.stderr.count(cache.COMPILING) == 1, (argv, res.stderr)
    quiet = [
        ["simulate", DENY, "--duration", "2", "--engine", "simpy"],
        # auto on a feature the fast engine lacks runs SimPy: nothing to compile
        ["simulate", DENY, "--duration", "2", "--set", "aws.lb=clb"],
    ]
    for argv in quiet:
        res = runner.invoke(_cli(), argv)
        assert res.exit_code == 0, res.output
        assert cache.COMPILING not in res.stderr, argv
    monkeypatch.setattr(cache, "kernel_ready", lambda: True)
    res = runner.invoke(_cli(), commands[0])
    assert res.exit_code == 0, res.output
    assert cache.COMPILING not in res.stderr


def test_a_notebook_cell_says_it_compiles_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """lab.engine.simulate (the notebooks' and the checker's) prints the line in the cell."""
    from istiolab.lab.engine import simulate as lab_simulate

    monkeypatch.setattr(cache, "_loaded", lambda: False)
    monkeypatch.setattr(cache, "kernel_ready", lambda: False)
    sc = mmc_scenario(100.0, 10.0, 1, duration_s=1.0, warmup_s=0.0)
    monkeypatch.setenv("ISTIOLAB_ENGINE", "auto")
    lab_simulate(sc, seed=1)
    assert capsys.readouterr().out.count(cache.COMPILING) == 1
    monkeypatch.setenv("ISTIOLAB_ENGINE", "simpy")  # Binder's default: nothing compiles
    lab_simulate(sc, seed=1)
    assert cache.COMPILING not in capsys.readouterr().out


def test_the_widgets_show_the_line_before_a_cold_fast_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's status and the designer's share line carry it while the kernel compiles."""
    pytest.importorskip("ipywidgets")
    from istiolab import lab
    from istiolab.widgets import RuleDesigner, SimulationDashboard

    views: list[Any] = []
    shown: list[str] = []
    real_warm = cache.warm

    def spy(say: Any) -> bool:
        compiled = real_warm(say)
        shown.append(str(views[-1].value))  # what the widget shows while the kernel compiles
        return compiled

    monkeypatch.setattr(cache, "_loaded", lambda: False)
    monkeypatch.setattr(cache, "kernel_ready", lambda: False)
    monkeypatch.setattr(cache, "warm", spy)
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    dash = SimulationDashboard(sc, engine="auto")
    views.append(dash.status)
    dash.run()
    designer = RuleDesigner(lab.rules_of(sc), engine="auto")
    designer.scenario = sc
    views.append(designer.share_view)
    designer.refresh()
    assert len(shown) == 2, shown
    assert all(cache.COMPILING in line for line in shown), shown


def test_warm_falls_back_to_numba_when_the_module_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No C compiler (as a build without one meets it): warm says why, then fills numba's cache."""
    from istiolab.sim.fast import aot

    def no_compiler(args: object) -> Path:
        raise aot.BuildError("no C compiler on PATH (cc or gcc): numba's pycc links with one")

    ran: list[bool] = []
    monkeypatch.setattr(cache, "kernel_ready", lambda: False)
    monkeypatch.setattr(aot, "build", no_compiler)
    monkeypatch.setattr(cache, "_tiny_run", lambda: ran.append(True))
    said: list[str] = []
    assert cache.warm(said.append) is True
    assert said[0] == cache.COMPILING
    assert "no C compiler" in said[1], said
    assert "just-in-time" in said[1], said
    assert ran == [True]


def test_the_compile_command_builds_the_module_even_with_numba_cache_warm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m istiolab.sim.fast.cache` (postBuild, make test) wants the module itself."""
    from istiolab.sim.fast import aot

    built: list[int] = []
    monkeypatch.setattr(aot, "available", lambda: False)
    monkeypatch.setattr(cache, "kernel_ready", lambda: True)  # numba's cache is warm
    monkeypatch.setattr(cache, "kernel_args", lambda: [1.0])

    def build(args: list[float]) -> Path:
        built.append(len(args))
        return Path("m.so")

    monkeypatch.setattr(aot, "build", build)
    assert cache._main([]) == 0
    assert built == [1]
    assert cache.COMPILING in capsys.readouterr().out

    def fails(args: object) -> Path:
        raise aot.BuildError("numba's pycc is not importable: gone")

    ran: list[bool] = []
    monkeypatch.setattr(aot, "build", fails)
    monkeypatch.setattr(cache, "kernel_ready", lambda: False)
    monkeypatch.setattr(cache, "_tiny_run", lambda: ran.append(True))
    assert cache._main([]) == 0
    assert "pycc is not importable: gone; compiling numba's" in capsys.readouterr().out
    assert ran == [True]
