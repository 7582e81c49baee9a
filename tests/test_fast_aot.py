"""The fast engine's kernel compiled ahead of time: the same answers, without numba's cost.

``make test`` builds the extension module (``python -m istiolab.sim.fast.cache --jit``, which
also fills numba's just-in-time cache at the same time), so these tests compile nothing; they
skip when no module was built (no C compiler on the machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from istiolab.cli.app import main as cli_main
from istiolab.sim.engine import simulate
from istiolab.sim.fast import aot
from istiolab.sim.fast import cache as fast_cache
from istiolab.sim.fast import run as fast_run
from istiolab.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = aot.PACKAGE_DIR
# the top-level scenarios, and one of each feature the kernel grew last (mirroring, traces,
# consistent hashing, HTTP/1.1 pools), from the conformance suite
SCENARIOS = [
    *sorted((ROOT / "sim/scenarios").glob("*.yaml")),
    *sorted((ROOT / "sim/scenarios/conform").glob("0[39]-*.yaml")),
    *sorted((ROOT / "sim/scenarios/gateway-api").glob("*.yaml"))[:2],
]
FRAMES = ("summary", "timeseries", "upstream", "ingress", "codes")

needs_aot = pytest.mark.skipif(
    not aot.available(), reason="no ahead-of-time kernel (python -m istiolab.sim.fast.cache)"
)


def _frames(result: object) -> dict[str, pd.DataFrame]:
    return {name: getattr(result, name)() for name in FRAMES}


@needs_aot
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_aot_and_jit_kernels_give_identical_frames(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiled from one source, the two kernels make the same events: frames equal exactly."""
    scenario = load_scenario(path)
    if scenario.run.duration_s > 30:
        scenario = scenario.with_overrides({"run.duration_s": 30.0})
    from istiolab.sim.fast import kernel

    monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", "jit")
    assert fast_run.kernel_function() is kernel.run_until  # numba's dispatcher
    jit = simulate(scenario, seed=7, engine="fast")
    monkeypatch.delenv("ISTIOLAB_FAST_KERNEL")
    built = aot.load()
    assert built is not None
    assert fast_run.kernel_function() is built
    ahead = simulate(scenario, seed=7, engine="fast")
    for name, frame in _frames(jit).items():
        pd.testing.assert_frame_equal(_frames(ahead)[name], frame, check_exact=True, obj=name)
    for key in ("totals", "counters", "attempt_series"):
        assert ahead.meta[key] == jit.meta[key], key


_PROBE = textwrap.dedent(
    """
    import sys
    def rss():
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
    from istiolab.sim.engine import simulate
    from istiolab.sim.scenario import load_scenario
    sc = load_scenario(sys.argv[1])
    before = rss()
    r = simulate(sc, seed=1, engine="fast")
    loaded = ["numba" in sys.modules, "llvmlite" in sys.modules]
    print(r.meta["assumptions"]["engine"], *loaded, rss() - before)
    """
)


@needs_aot
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_the_aot_kernel_runs_without_numba_and_its_memory() -> None:
    """A fresh process runs the fast engine without importing numba or llvmlite.

    The first fast run of a process grows it by less than 40 MiB (the run's own tables and
    frames included; measured 13.6-14.0 MiB), and numba's just-in-time kernel by over 60 MiB
    more (measured 126 MiB, 112 more): bounds at about 3x and half the measured values, so
    that allocator noise passes and loading numba (or LLVM) does not.
    """
    seed = str(ROOT / "sim/scenarios/seed-httpbin.yaml")
    env = {k: v for k, v in os.environ.items() if k != "ISTIOLAB_FAST_KERNEL"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, seed], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    engine, numba, llvmlite, grew_kib = out.stdout.split()
    assert (engine, numba, llvmlite) == ("fast", "False", "False"), out.stdout
    env["ISTIOLAB_FAST_KERNEL"] = "jit"
    jit = subprocess.run(
        [sys.executable, "-c", _PROBE, seed], capture_output=True, text=True, env=env, timeout=600
    )
    assert jit.returncode == 0, jit.stderr
    _, jit_numba, _, jit_grew_kib = jit.stdout.split()
    assert jit_numba == "True"
    assert int(grew_kib) < 40 * 1024, grew_kib
    assert int(jit_grew_kib) - int(grew_kib) > 60 * 1024, (grew_kib, jit_grew_kib)


def _sources_in(folder: Path, *, change: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in aot.SOURCES:
        shutil.copy2(PACKAGE_DIR / name, folder / name)
    if change:
        with (folder / "kernel.py").open("a", encoding="utf-8") as f:
            f.write("\n# a change\n")


@pytest.fixture
def changed_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package's sources, changed, in a folder of their own (no module built for them)."""
    monkeypatch.setattr(aot, "PACKAGE_DIR", tmp_path / "pkg")
    _sources_in(tmp_path / "pkg", change=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # the same changed sources get the same name in every test: no lookup carried over
    monkeypatch.setattr(aot, "_loaded", {})
    monkeypatch.setattr(aot, "_problems", {})
    monkeypatch.setattr(fast_cache, "_said", set())
    return tmp_path / "pkg"


def test_the_module_is_named_after_its_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module built for other sources is never loaded: its name differs."""
    now = aot.module_name()
    monkeypatch.setattr(aot, "PACKAGE_DIR", tmp_path / "same")
    _sources_in(tmp_path / "same", change=False)
    assert aot.module_name() == now
    monkeypatch.setattr(aot, "PACKAGE_DIR", tmp_path / "changed")
    _sources_in(tmp_path / "changed", change=True)
    assert aot.module_name() != now
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert aot.load() is None  # nothing built for the changed sources


def test_a_broken_module_file_is_ignored_and_said_once(
    changed_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated or foreign file where the module should be (or one built against another
    numpy): the JIT kernel runs instead, and the first warm-up says why and how to rebuild."""
    assert aot.load() is None
    assert aot.problem() is None  # no file: nothing to say
    aot._loaded.clear()
    for path in aot.candidates():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF not really")
    assert aot.load() is None
    assert aot.available() is False
    problem = aot.problem()
    assert problem is not None
    assert problem.startswith(aot.module_name())
    assert "ImportError" in problem
    monkeypatch.setattr(fast_cache, "kernel_ready", lambda: True)  # numba's cache is warm
    said: list[str] = []
    assert fast_cache.warm(said.append) is False  # nothing compiled ...
    assert fast_cache.warm(said.append) is False
    assert len(said) == 1  # ... but said once: the module does not load, and the fix
    assert problem in said[0]
    assert "numba's kernel runs instead" in said[0]
    assert "python -m istiolab.sim.fast.cache" in said[0]
    monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", "jit")
    assert aot.problem() is None  # asked for numba's: nothing is wrong


def test_build_without_a_c_compiler_says_so(
    changed_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(aot.BuildError, match="no C compiler"):
        aot.build([])
    assert not list(changed_sources.glob("_kernel_aot_*"))  # nothing half-written


def test_the_kernel_is_chosen_by_the_environment_and_a_bad_value_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", "jit")
    assert aot.load() is None
    monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", " aot ")
    assert aot.requested() == "aot"
    for bad in ("jti", "JIT", "x" * 100_000, "jit\nrm -rf"):
        monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", bad)
        with pytest.raises(ValueError, match="ISTIOLAB_FAST_KERNEL must be aot or jit") as err:
            aot.load()
        assert len(str(err.value)) < 200  # the value quoted cut short
        with pytest.raises(ValueError, match="ISTIOLAB_FAST_KERNEL"):
            simulate(load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml"), engine="fast")


def test_a_bad_kernel_setting_is_a_usage_error_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with one line naming the variable, not exit 70's "internal error" (a bug)."""
    monkeypatch.setenv("ISTIOLAB_FAST_KERNEL", "jti")
    scenario = str(ROOT / "sim/scenarios/seed-httpbin.yaml")
    code = cli_main(["simulate", scenario, "--engine", "fast", "--duration", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "istiolab: ISTIOLAB_FAST_KERNEL must be aot or jit, got 'jti'\n"


def test_a_failed_compile_is_one_short_error_and_leaves_nothing(
    changed_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compiler's whole stderr is cut short; no module or partial file is left behind."""
    pytest.importorskip("numba")

    def compiler_error() -> str:
        raise RuntimeError("error: " + "x" * 100_000)

    monkeypatch.setattr(aot, "_target_cpu", compiler_error)
    with pytest.raises(aot.BuildError, match="the ahead-of-time compile failed") as err:
        aot.build([])
    assert len(str(err.value)) < 600
    assert not list(changed_sources.glob("_kernel_aot_*"))
