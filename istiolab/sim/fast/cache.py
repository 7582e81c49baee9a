"""Whether the compiled event loop is ready, and compiling it before a command needs it.

numba compiles the kernel on its first call and caches the machine code (next to the package,
or in the user's cache folder when the package's is read-only). With a warm cache the first
call loads it in about a second; with none it compiles for three to four minutes on a
laptop's two cores. ``make test`` and ``binder/postBuild`` warm the cache; a bare ``pip
install`` does not, and then the first fast run would look like a hang. :func:`warm` compiles
it up front and says so, and compiling once in the parent process also spares each worker of a
process pool its own compile of the same code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

COMPILING = (
    "compiling the fast engine: once per install, about 3-4 minutes on 2 cores "
    "(--engine simpy needs no compile)"
)
"""What :func:`warm` says before it compiles."""


def _loaded() -> bool:
    """Whether this process has the kernel loaded (asked without importing numba)."""
    kern = sys.modules.get("istiolab.sim.fast.kernel")
    return kern is not None and bool(getattr(kern, "run_until").overloads)  # noqa: B009


def kernel_ready() -> bool | None:
    """Whether the compiled kernel is loaded, or in numba's cache for this source.

    Returns:
        True when it is loaded in this process or numba's cache holds it for the kernel's
        source as it is (the first call loads it), False when the first call would compile
        it, None when it cannot be told (numba missing, or its cache laid out otherwise than
        numba 0.5x-0.6x lay it out).
    """
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
    """Compile the fast engine now when numba's cache lacks it, saying so first.

    Args:
        say: Called with :data:`COMPILING` before a compile (the CLI's stderr line, a
            notebook's print); None says nothing.

    Returns:
        True when it compiled, False when the kernel was ready or readiness cannot be told
        (then the first run compiles if it must, as it would without this call).
    """
    if kernel_ready() is not False:
        return False
    if say is not None:
        say(COMPILING)
    _tiny_run()
    return True


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


__all__ = ["COMPILING", "kernel_ready", "warm", "warm_for"]

if __name__ == "__main__":
    # python -m istiolab.sim.fast.cache: what `make test` and binder/postBuild run to compile
    # the kernel once; when readiness cannot be told, a tiny run compiles it if it must
    if not warm(print) and kernel_ready() is None:
        _tiny_run()
