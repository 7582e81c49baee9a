"""The simulation engine of a notebook session: the notebooks, their checks and their widgets.

Everything a notebook simulates, the cells an attendee reads, the exercise checker that
computes the expected answer and the widgets, runs on the engine :func:`session_engine` names
(one rule, read from the environment at each call): what an attendee reads and what a check
computes must come from the same engine (the two engines agree in distribution, not run for
run).

The default is ``auto``: the compiled engine (``docs/engines.md``) for every scenario it runs,
a slider move in about a tenth of a second. Where the host declares a memory limit in
``MEM_LIMIT``, as mybinder.org's spawner does, it is ``auto`` only when the kernel was compiled
ahead of time (:mod:`istiolab.sim.fast.aot`, which ``binder/postBuild`` builds: a few MiB per
kernel), and ``simpy`` otherwise: numba's just-in-time kernel costs about 120 MiB in each
kernel that loads it, and a workshop's Binder (2 GiB) holds a kernel per open notebook within
the 300 MiB each that ``tests/test_binder.py`` holds them to. ``ISTIOLAB_ENGINE`` overrides
both (``auto``, ``simpy`` or ``fast``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from istiolab.rng import SeedLike
    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

ENGINE_ENV = "ISTIOLAB_ENGINE"
"""Environment variable naming the session's simulation engine (``auto``, ``simpy``, ``fast``)."""


def session_engine(engine: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The engine a notebook session simulates on: *engine* if given, else the host's default.

    Args:
        engine: An explicit engine (one :func:`~istiolab.sim.engine.simulate` runs), or None.
        environ: The environment to read (default ``os.environ``).

    Returns:
        ``auto``, ``simpy`` or ``fast``: ``ISTIOLAB_ENGINE`` if set, else ``simpy`` where
        ``MEM_LIMIT`` declares a memory limit and the kernel was not compiled ahead of time,
        else ``auto``.

    Raises:
        ValueError: When *engine*, or ``ISTIOLAB_ENGINE``, is not an engine.

    Examples:
        >>> session_engine(environ={})
        'auto'
        >>> session_engine(environ={"MEM_LIMIT": "2147483648", "ISTIOLAB_ENGINE": "fast"})
        'fast'
    """
    from istiolab.lab.memory import declared_limit_bytes
    from istiolab.limits import truncate
    from istiolab.sim.engine import ENGINES
    from istiolab.sim.fast import aot

    env = os.environ if environ is None else environ
    named = env.get(ENGINE_ENV, "").strip()
    if engine is not None:
        chosen, where = engine, ""
    elif named:
        chosen, where = named, f" ({ENGINE_ENV})"
    else:
        light = not declared_limit_bytes(env) or aot.available()
        chosen, where = ("auto" if light else "simpy"), ""
    if chosen not in ENGINES:
        got = truncate(chosen, 40)
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {got!r}{where}")
    return chosen


def simulate(
    scenario: Scenario,
    seed: SeedLike = None,
    *,
    params: dict[str, Any] | None = None,
    progress: Callable[[float], object] | None = None,
    engine: str | None = None,
    force: bool = False,
) -> Result:
    """:func:`istiolab.sim.engine.simulate` on the session's engine (:func:`session_engine`).

    The notebooks and the exercise checker call this one, so a cell and the check of its
    answer run on the same engine. When that engine would compile the fast kernel first
    (it was not compiled yet), the cell prints so before the minutes it takes. The arguments
    are those of :func:`~istiolab.sim.engine.simulate`; *engine* None means the session's.

    Raises:
        ConfigError: When the scenario's rules are invalid, or the run would exceed a limit.
        SimulationError: When the scenario cannot be built.
        ValueError: When *engine*, or ``ISTIOLAB_ENGINE``, is not an engine.
    """
    from istiolab.sim.engine import simulate as run
    from istiolab.sim.fast.cache import warm_for

    chosen = session_engine(engine)
    # a first fast run with no compiled kernel compiles for minutes: say so in the cell first
    warm_for(chosen, scenario, print)
    return run(scenario, seed, params=params, progress=progress, engine=chosen, force=force)
