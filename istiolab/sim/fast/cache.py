"""Whether the compiled event loop is ready, and compiling it before a command needs it.

The kernel runs either as an extension module compiled ahead of time (:mod:`.aot`: no numba at
run time, a few MiB, loaded in milliseconds) or through numba's just-in-time compiler, which
caches the machine code (next to the package, or in the user's cache folder when the package's
is read-only) and loads it in about a second. Either compile takes three to four minutes on a
laptop's two cores. ``make test`` and ``binder/postBuild`` compile it up front; after a bare
``pip install`` nothing has, and the first fast run would look like a hang. :func:`warm`
compiles it first and says so (the ahead-of-time module when numba's ``pycc`` and a C compiler
are there, else numba's cache), and compiling once in the parent process also spares each
worker of a process pool its own compile of the same code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from istiolab.sim.fast import aot

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

_said: set[str] = set()  # the load problems already said in this process

COMPILING = (
    "compiling the fast engine: once per install, about 3-4 minutes on 2 cores "
    "(--engine simpy needs no compile)"
)
"""What :func:`warm` says before it compiles."""


def _loaded() -> bool:
    """Whether this process has the kernel loaded (asked without importing numba)."""
    if aot.load() is not None:
        return True
    kern = sys.modules.get("istiolab.sim.fast.kernel")
    return kern is not None and bool(getattr(kern, "run_until").overloads)  # noqa: B009


def kernel_ready() -> bool | None:
    """Whether the compiled kernel is loaded, built ahead of time, or in numba's cache.

    Returns:
        True when it is loaded in this process, the ahead-of-time module for the kernel's
        source as it is exists, or numba's cache holds it (the first call loads it), False
        when the first call would compile it, None when it cannot be told (numba missing, or
        its cache laid out otherwise than numba 0.5x-0.6x lay it out).
    """
    if aot.available():
        return True
    try:
        from istiolab.sim.fast import kernel as kern
    except ImportError:
        return None
    if _loaded():
        return True
    try:
        # numba's own reading of its index: empty when there is none, when it was written
        # for another numba, or when kernel.py changed since (the source stamp differs)
        cache: Any = getattr(kern.run_until, "_cache")  # noqa: B009 - numba's, untyped
        index = cache._cache_file._load_index()
    except Exception:  # numba internals moved: say nothing rather than guess
        return None
    return bool(index)


def warm(say: Callable[[str], object] | None = None) -> bool:
    """Compile the fast engine now when it is not ready, saying so first.

    The ahead-of-time module when it can be built (numba's ``pycc`` and a C compiler), else
    numba's just-in-time cache.

    Args:
        say: Called with :data:`COMPILING` before a compile (the CLI's stderr line, a
            notebook's print); None says nothing.

    Returns:
        True when it compiled, False when the kernel was ready or readiness cannot be told
        (then the first run compiles if it must, as it would without this call).
    """
    broken = aot.problem()
    if broken is not None and say is not None and broken not in _said:
        _said.add(broken)  # once per process, not at every slider move
        say(
            f"the ahead-of-time kernel does not load ({broken}); numba's kernel runs instead, "
            "with about 120 MiB more; python -m istiolab.sim.fast.cache builds it again"
        )
    if kernel_ready() is not False:
        return False
    if say is not None:
        say(COMPILING)
    _build(say)
    return True


def _build(say: Callable[[str], object] | None) -> None:
    """Build the ahead-of-time module; if it cannot be, say why and fill numba's cache."""
    try:
        aot.build(kernel_args())
    except aot.BuildError as err:
        if say is not None:
            say(f"{err}; compiling numba's just-in-time kernel instead (the same code)")
        if kernel_ready() is not True:
            _tiny_run()  # numba's JIT: the same kernel, cached by numba


def kernel_args() -> list[Any]:
    """The arguments of one ``run_until`` call on a tiny scenario (their types are the kernel's).

    The ahead-of-time module is compiled for exactly these types (:func:`.aot.build`).
    """
    from istiolab.rng import as_seed_sequence
    from istiolab.sim.engine import build_table
    from istiolab.sim.fast.lower import STATIC, lower
    from istiolab.sim.fast.run import _State
    from istiolab.sim.scenario import mmc_scenario

    scenario = mmc_scenario(100.0, 10.0, 1, duration_s=2.0, warmup_s=0.0)
    plan = lower(scenario, build_table(scenario)[0], [])
    state = _State(plan, as_seed_sequence(1))
    return [1.0, *(plan.arrays[name] for name in STATIC), *state.args()]


def _tiny_run() -> None:
    """The smallest run that calls the kernel: every compiled function is typed from it."""
    from istiolab.sim.engine import simulate
    from istiolab.sim.scenario import mmc_scenario

    simulate(mmc_scenario(100.0, 10.0, 1, duration_s=2.0, warmup_s=0.0), seed=1, engine="fast")


def warm_for(engine: str, scenario: Scenario | None, say: Callable[[str], object] | None) -> bool:
    """:func:`warm` when *engine* will run the fast engine on *scenario*; else nothing.

    ``simpy`` never compiles; ``auto`` compiles only for a scenario the fast engine runs (an
    invalid one is left to the run, which reports it); ``fast`` always. Once the kernel is
    loaded in this process this returns at once, without lowering the scenario again (a
    widget calls it on every slider move).

    Returns:
        True when it compiled.
    """
    if engine == "simpy":
        return False
    if _loaded():
        return False
    if engine == "auto" and scenario is not None:
        from istiolab.sim.engine import fast_unsupported

        try:
            if fast_unsupported(scenario) is not None:
                return False
        except Exception:  # an invalid scenario: the run itself reports it, with its findings
            return False
    return warm(say)


__all__ = ["COMPILING", "kernel_args", "kernel_ready", "warm", "warm_for"]


def _main(argv: list[str]) -> int:
    """``python -m istiolab.sim.fast.cache [--jit]``: compile the kernel once, up front.

    Builds the ahead-of-time module unless it is there, whatever numba's cache holds (a run's
    :func:`warm` compiles only when neither is ready); when it cannot be built, says why and
    fills numba's cache instead. ``--jit`` also fills numba's cache, in a second process at the
    same time (the test suite checks the two compiles against each other).
    """
    jit: subprocess.Popen[bytes] | None = None
    try:
        if "--jit" in argv:
            env = {**os.environ, aot.KERNEL_ENV: "jit"}
            code = "from istiolab.sim.fast.cache import _tiny_run; _tiny_run()"
            jit = subprocess.Popen([sys.executable, "-c", code], env=env)
        if not aot.available():  # also when numba's cache is warm: notebooks want the module
            print(COMPILING, flush=True)
            _build(print)
        return 0 if jit is None else jit.wait()
    finally:
        if jit is not None and jit.poll() is None:  # an error or a signal here: no orphan
            jit.kill()
            jit.wait()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
