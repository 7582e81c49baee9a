"""Parameter sweeps: one scenario, a factorial grid of overrides, several seeds, any executor.

``sweep(scenario, grid, seeds)`` runs :func:`~istiolab.sim.engine.simulate` once per (grid
point, seed) and returns one tidy row per run with the run's summary totals. The grid maps dotted
scenario paths (as in :meth:`Scenario.with_overrides
<istiolab.sim.scenario.Scenario.with_overrides>`) to the values to try; the runs are its
Cartesian product, crossed with the seeds.

Seeds come from ``numpy.random.SeedSequence(base_seed).spawn(seeds)``: each child is reduced to
one integer (its first 32-bit state word), that integer is the run's seed and is written in the
``seed`` column, so any row can be reproduced alone with ``simulate(scenario.with_overrides(
params), seed=row.seed)``. Every grid point uses the same seeds (common random numbers), so
differences between points are not drowned in seed noise.

Where the runs execute does not change the frame: the serial loop, a local process pool and a
Dask cluster give bit-identical frames for the same seeds, because each run is a pure function of
(scenario, params, seed) and rows are put back in grid × seed order whatever order they finish in.
A run that raises becomes an *error row* (metrics missing, ``error`` set); it never stops the
sweep. Nothing here has import-time side effects: the process start method is chosen per call,
and Dask is imported only when asked for.

Executors:

* ``None`` or ``"auto"`` (the default): ``"serial"`` when every run is on the fast engine and all
  of them together are expected to simulate at most :data:`SERIAL_REQUESTS` requests, else
  ``"local"`` (:func:`auto_executor`); ``"local"`` whenever ``max_workers`` is given. Runs of
  the compiled engine take milliseconds, and a pool's start-up (each worker imports istiolab
  and loads the compiled kernel) costs more than they do.
* ``"local"``: a :class:`concurrent.futures.ProcessPoolExecutor` (``forkserver``
  where available, else ``spawn``), ``max_workers`` defaulting to :func:`available_cpus` (the
  CPUs this process may really use: on Binder or in a container ``os.cpu_count()`` reports the
  host's, often dozens, while the quota is one or two, and as many workers would exhaust memory).
  Its workers die with the process that started them, even when it is SIGKILLed
  (:func:`istiolab.processes.die_with_owner`), and are stopped rather than waited for after an
  error, Ctrl-C or SIGTERM.
* ``"serial"``: a plain loop in this process (debugging, tiny sweeps, notebooks on Binder).
* ``"local:N"``: a throw-away Dask ``LocalCluster`` with N single-threaded worker processes on
  127.0.0.1 and no dashboard; it is always closed, also on errors and Ctrl-C, and its worker
  processes exit on their own when this process dies (Dask's parent-alive pipe).
* a scheduler address (``"tcp://10.0.0.5:8786"`` or ``"host:port"``): a Dask ``Client`` to it.
* a ``dask.distributed.Client``, or any :class:`concurrent.futures.Executor` (left open).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from istiolab import limits, processes
from istiolab.errors import ConfigError, MissingDependencyError
from istiolab.findings import Finding, finding

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

__all__ = [
    "METRICS",
    "ExecutorLike",
    "PlainProgress",
    "available_cpus",
    "check_engine",
    "run_point",
    "sweep",
    "sweep_seeds",
]

ExecutorLike: TypeAlias = object
"""``None``/``"local"``, ``"serial"``, ``"local:N"``, a Dask address (str), a
``dask.distributed.Client`` or a ``concurrent.futures.Executor``."""

METRICS: tuple[tuple[str, str], ...] = (
    ("requests", "Int64"),
    ("rps", "float64"),
    ("success_ratio", "float64"),
    ("p50_ms", "float64"),
    ("p90_ms", "float64"),
    ("p99_ms", "float64"),
    ("mean_ms", "float64"),
    ("retries", "Int64"),
    ("upstream_requests", "Int64"),
    ("p999_ms", "float64"),
    ("success_p99_ms", "float64"),
    ("success_p999_ms", "float64"),
    ("unfinished", "Int64"),
    ("success_ratio_incl_unfinished", "float64"),
    ("error_rate", "float64"),
    ("rho_max", "float64"),
    ("window_p99_ms_max", "float64"),
    ("window_p999_ms_max", "float64"),
    ("window_error_rate_max", "float64"),
    ("time_to_recover_s", "float64"),
    ("warnings", "object"),
)
"""Summary columns of a sweep frame and their dtypes (from :meth:`Result.totals`).

``error_rate`` is ``1 − success_ratio_incl_unfinished`` (unfinished requests beyond a steady
state's count as errors), ``rho_max`` the utilisation of the busiest tier (``totals.rho``),
``window_*`` and ``time_to_recover_s`` the worst metrics window and the recovery after the first
event (:meth:`Result.window_totals <istiolab.sim.results.Result.window_totals>`, judged against
the task's recovery objective, by default a window error rate ≤ 1 %) and ``warnings`` the run's
warning codes joined by commas ('' for none); see docs/outputs.md."""

Row: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class _Task:
    """One run: the already-overridden scenario, the grid point, the seed and the engine.

    ``recovery`` holds the keyword arguments of :meth:`Result.window_totals
    <istiolab.sim.results.Result.window_totals>` (``p99_ms``, ``error_rate``, ``after_s``): what
    a window must meet for ``time_to_recover_s``, and after which event.
    """

    scenario: Scenario
    params: dict[str, Any]
    seed: int
    engine: str = "auto"
    recovery: Mapping[str, float] | None = None


def sweep_seeds(base_seed: int, n: int) -> list[int]:
    """The integer seeds of *n* replications: ``SeedSequence(base_seed).spawn(n)``, one word each.

    Args:
        base_seed: Root seed (>= 0).
        n: Number of replications (>= 1).

    Returns:
        *n* distinct-stream seeds in ``[0, 2**32)``; the same arguments always give the same list.

    Example:
        >>> sweep_seeds(1, 3) == sweep_seeds(1, 3)
        True
    """
    if n < 1:
        raise ValueError(f"seeds must be >= 1, got {n}")
    if base_seed < 0:
        raise ValueError(f"the base seed must be >= 0, got {base_seed}")
    return [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(base_seed).spawn(n)]


def check_engine(engine: str) -> None:
    """Raise :class:`ValueError` unless *engine* is one :func:`~istiolab.sim.engine.simulate` runs.

    Checked before any run, so a typo fails at once rather than in every row.
    """
    from istiolab.sim.engine import ENGINES  # the engine module pulls in SimPy: import on use

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def run_point(
    scenario: Scenario,
    params: Mapping[str, Any],
    seed: int,
    engine: str = "auto",
    recovery: Mapping[str, float] | None = None,
) -> Row:
    """Run one sweep cell and return its row (what every sweep task executes).

    Pure and picklable. Any exception is caught and reported in the row's ``error`` field, with
    the metrics left missing, so one bad grid point cannot stop a sweep.

    Args:
        scenario: The scenario with *params* already applied.
        params: The grid point (dotted path → value), recorded with the run.
        seed: The run's seed.
        engine: The simulation engine (``auto``, ``simpy`` or ``fast``; see
            :func:`~istiolab.sim.engine.simulate`).
        recovery: Keyword arguments of :meth:`Result.window_totals
            <istiolab.sim.results.Result.window_totals>` (None: its defaults).

    Returns:
        ``{"run_id", "engine", "engine_note", "error", <metric>: value, ...}`` (grid columns
        and seed are added by the caller); ``engine`` is the engine that ran (``fast`` or
        ``simpy``), ``engine_note`` why ``auto`` ran SimPy (None when it did not fall back).
    """
    from istiolab.sim.engine import engine_fallback, simulate

    try:
        result = simulate(scenario, seed=seed, params=dict(params), engine=engine)
        totals = result.totals()
        totals.update(result.window_totals(**dict(recovery or {})))
    except Exception as err:  # every failure becomes an error row, by design
        return _error_row(scenario, params, seed, err)
    row: Row = {"run_id": result.run_id, "error": None}
    row["engine"] = result.assumptions.get("engine")
    row["engine_note"] = engine_fallback(result)
    for name, _ in METRICS:
        row[name] = totals.get(name)
    incl = totals.get("success_ratio_incl_unfinished")
    row["error_rate"] = None if incl is None else 1.0 - incl
    tiers = {str(k): float(v) for k, v in (totals.get("rho") or {}).items()}
    rho = [v for v in tiers.values() if v == v]  # NaN: no capacity
    row["rho_max"] = max(rho) if rho else None
    row["rho_tiers"] = tiers  # not a sweep column (tiers differ by scenario); compare uses it
    row["warnings"] = ",".join(w["code"] for w in result.warnings)
    return row


def _error_row(scenario: Scenario, params: Mapping[str, Any], seed: int, err: BaseException) -> Row:
    from istiolab.sim.results import make_run_id, normalise_params

    try:
        run_id = make_run_id(scenario.name, seed, normalise_params(params))
    except ValueError:
        run_id = ""
    message = str(err).strip() or "(no message)"
    row: Row = {"run_id": run_id, "error": f"{type(err).__name__}: {message}"}
    row["engine"] = row["engine_note"] = None
    for name, _ in METRICS:
        row[name] = None
    row["rho_tiers"] = {}
    return row


# ---------------------------------------------------------------------------- grid


def _grid_points(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The factorial product of *grid* in key order, values in the order given."""
    keys = list(grid)
    axes: list[list[Any]] = []
    for key in keys:
        values = grid[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            values = [values]  # a scalar is a one-value axis
        axes.append([v.item() if isinstance(v, np.generic) else v for v in values])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes)]


def _validate_grid(
    scenario: Scenario, grid: Mapping[str, Any]
) -> list[tuple[Scenario, dict[str, Any]]]:
    """Check every grid point before any run: paths exist, values validate, params are JSON.

    Raises:
        ConfigError: Listing every bad path or value (code IL401).
    """
    from istiolab.sim.results import normalise_params

    problems: list[Finding] = []
    for key, values in grid.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            problems.append(_bad(str(key), f"grid key {key!r} is not a dotted scenario path"))
        elif isinstance(values, Sequence) and not isinstance(values, str) and len(values) == 0:
            problems.append(_bad(key, f"grid path {key!r} has no values"))
    if problems:
        raise ConfigError(problems)
    points = _grid_points(grid)
    out: list[tuple[Scenario, dict[str, Any]]] = []
    seen: set[str] = set()
    for params in points:
        try:
            normalise_params(params)
            out.append((scenario.with_overrides(params), params))
        except ConfigError as err:
            for f in err.findings:
                text = f.format()
                if text not in seen:  # the same bad path fails at every point: say it once
                    seen.add(text)
                    problems.append(f)
        except ValueError as err:
            problems.append(_bad(",".join(params), str(err)))
    if problems:
        raise ConfigError(problems)
    return out


def _bad(path: str, message: str) -> Finding:
    return finding(
        "IL401",
        "sweep grid",
        path,
        message,
        "use dotted scenario paths (docs/scenario.md), list items by index or name",
    )


# ---------------------------------------------------------------------------- executors

RunMany = Callable[[Sequence[_Task], Any], list[Row]]
"""Run tasks, updating a progress bar (or None), and return their rows in task order."""


def _run_serial(tasks: Sequence[_Task], bar: Any) -> list[Row]:
    rows = []
    for t in tasks:
        rows.append(run_point(t.scenario, t.params, t.seed, t.engine, t.recovery))
        if bar is not None:
            bar.update()
    return rows


def _run_on(pool: cf.Executor) -> RunMany:
    def run(tasks: Sequence[_Task], bar: Any) -> list[Row]:
        futures: dict[cf.Future[Row], int] = {}
        rows: list[Row | None] = [None] * len(tasks)
        try:
            for i, t in enumerate(tasks):
                fut = pool.submit(run_point, t.scenario, t.params, t.seed, t.engine, t.recovery)
                futures[fut] = i
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    rows[i] = fut.result()
                except Exception as err:  # a worker died or the task could not be shipped
                    t = tasks[i]
                    rows[i] = _error_row(t.scenario, t.params, t.seed, err)
                if bar is not None:
                    bar.update()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return [r for r in rows if r is not None]

    return run


def _start_method() -> str:
    # forkserver forks from a clean server process (no inherited threads or locks, unlike
    # fork) and starts faster than spawn; spawn is the portable fallback (Windows, macOS).
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _local_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool whose workers die with this process, even when it is SIGKILLed.

    Without the initializer, workers (children of the forkserver, not of this process) and
    the forkserver itself outlive a killed parent: each worker holds both ends of the task
    queue's pipe, so it never reads end-of-file and waits for work forever.
    """
    ctx = multiprocessing.get_context(_start_method())
    return cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=processes.die_with_owner,
        initargs=(os.getpid(),),
    )


def _close_pool(pool: cf.ProcessPoolExecutor, finished: bool) -> None:
    """Shut *pool* down: wait for it after a normal end, else stop its workers now.

    After an error, Ctrl-C or SIGTERM the running simulations are of no use, and waiting for
    them (``shutdown(wait=True)``) would keep the command alive for as long as a run lasts.
    """
    if finished:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    # The executor has no public way to stop its workers before Python 3.14
    # (terminate_workers); its process table is read before shutdown() clears it.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    # shutdown() also drops the manager thread's reference, so it is taken here too.
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        with contextlib.suppress(OSError, ValueError):
            proc.terminate()
    for proc in workers:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2.0)
    # The pool's manager thread closes its wake-up pipe once it sees the workers gone; left
    # running, it races CPython 3.11's exit hook (concurrent.futures.process._python_exit),
    # which writes to that pipe and prints an EBADF traceback when the close wins. (Read
    # after shutdown(), the attribute is None, and the join never happened: the race stayed.)
    if manager is not None:
        manager.join(timeout=2.0)


def _dask() -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError("distributed", "dask") from None
    return Client, LocalCluster


SERIAL_REQUESTS = 2_000_000
"""Expected requests of a whole sweep (warm-up included) up to which ``executor=None`` runs in
this process when the fast engine runs every run: about a second of the fast engine's time
here, against 1–2 s for two pool workers to start (``python -m bench`` (d), 3 December 2026: a
16-run sweep of 23 200 requests a run took 0.5 s serial, 1.3 s on two processes and 2.1 s on a
Dask LocalCluster of two)."""


def resolve_executor(
    executor: ExecutorLike, max_workers: int | None, scenarios: Sequence[Scenario], engine: str
) -> ExecutorLike:
    """*executor* with ``None``/``"auto"`` made concrete for runs of *scenarios* on *engine*.

    Asking for a number of workers (*max_workers*) asks for the pool; otherwise
    :func:`auto_executor` decides. Any other executor is returned as it is.
    """
    if executor is not None and executor != "auto":
        return executor
    return "local" if max_workers is not None else auto_executor(scenarios, engine)


def auto_executor(scenarios: Sequence[Scenario], engine: str) -> str:
    """The executor ``executor=None`` picks for runs of *scenarios* on *engine*.

    Args:
        scenarios: Every run's scenario (overrides applied), one per run.
        engine: The runs' engine (``auto``, ``simpy`` or ``fast``).

    Returns:
        ``"serial"`` when the fast engine runs every one of them (``engine`` ``fast``, or
        ``auto`` on scenarios it supports) and their expected requests add up to at most
        :data:`SERIAL_REQUESTS`; else ``"local"``.
    """
    from istiolab.sim import budget
    from istiolab.sim.engine import fast_unsupported

    if engine == "simpy":
        return "local"
    total = 0
    for sc in scenarios:
        try:
            total += budget.estimate(sc).requests
        except Exception:  # an invalid run becomes an error row; where it runs does not matter
            continue
        if total > SERIAL_REQUESTS:
            return "local"
    if engine == "auto":
        distinct = {id(sc): sc for sc in scenarios}.values()  # a grid point's seeds share one
        for sc in distinct:
            try:
                if fast_unsupported(sc) is not None:
                    return "local"
            except Exception:
                continue
    return "serial"


def available_cpus() -> int:
    """CPUs this process can use: its CPU affinity, capped by a cgroup CPU quota if there is one.

    Example:
        >>> available_cpus() >= 1
        True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 CFS quota), None when unlimited."""
    try:
        v2 = (root / "cpu.max").read_text(encoding="ascii").split()
        quota, period = v2[0], v2[1]
    except (OSError, IndexError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii").strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii").strip()
        except OSError:
            return None
    if quota in ("max", "-1"):
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _is_dask_client(obj: object) -> bool:
    return type(obj).__module__.startswith("distributed") and hasattr(obj, "get_executor")


@contextmanager
def open_executor(
    executor: ExecutorLike = None, max_workers: int | None = None
) -> Iterator[RunMany]:
    """Open *executor* for one or more batches of runs, and close what it opened.

    Used by :func:`sweep` and the capacity planner (which runs many small batches on one pool).

    Args:
        executor: See the module docstring.
        max_workers: Processes of the local pool (default :func:`available_cpus`).

    Yields:
        A function ``run(tasks, bar) -> rows`` that keeps task order.

    Raises:
        ValueError: For an unknown executor string or a bad ``local:N``.
        MissingDependencyError: When a Dask executor is asked for without ``distributed``.
        ConnectionError: When a Dask scheduler address cannot be reached.
    """
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if executor is None or executor == "local":
        pool = _local_pool(max_workers or available_cpus())
        finished = False
        try:
            yield _run_on(pool)
            finished = True
        finally:
            _close_pool(pool, finished)
    elif executor == "serial":
        yield _run_serial
    elif isinstance(executor, str) and executor.startswith("local:"):
        n = _local_workers(executor)
        client_cls, cluster_cls = _dask()
        with (
            cluster_cls(
                n_workers=n,
                processes=True,
                threads_per_worker=1,
                dashboard_address=None,  # the default binds 0.0.0.0:8787
                host="127.0.0.1",
                # Workers stopped by Ctrl-C or SIGTERM log heartbeat failures with tracebacks
                # on their way out; a run's own errors come back as error rows, not as logs.
                silence_logs=logging.CRITICAL,
            ) as cluster,
            client_cls(cluster) as client,
        ):
            yield from _on_client(client)
    elif isinstance(executor, str):
        if ":" not in executor:
            raise ValueError(
                f"unknown executor {executor!r}: use 'local', 'serial', 'local:N' (Dask "
                "LocalCluster) or a Dask scheduler address such as tcp://10.0.0.5:8786"
            )
        client_cls, _ = _dask()
        try:
            client = client_cls(executor, timeout=10)
        except (OSError, TimeoutError) as err:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {executor}: {err}; check the address, "
                "or use 'local:N' for a local cluster"
            ) from err
        with client:
            yield from _on_client(client)
    elif isinstance(executor, cf.Executor):
        yield _run_on(executor)
    elif _is_dask_client(executor):
        yield from _on_client(executor)
    else:
        raise TypeError(
            "executor must be None, 'local', 'serial', 'local:N', a Dask address, a "
            f"dask.distributed.Client or a concurrent.futures.Executor, got {executor!r}"
        )


def _on_client(client: Any) -> Iterator[RunMany]:
    # pure=False: the task is pure, but hashing a scenario for Dask's cache key costs more
    # than it saves, and every task here is distinct anyway.
    ex = client.get_executor(pure=False)
    try:
        yield _run_on(ex)
    finally:
        ex.shutdown(wait=False)


def _local_workers(text: str) -> int:
    n = text.partition(":")[2]
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"'local:N' needs a positive number of workers, got {text!r}")
    return int(n)


# ---------------------------------------------------------------------------- sweep


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = 1,
    executor: ExecutorLike = None,
    *,
    base_seed: int | None = None,
    max_workers: int | None = None,
    progress: bool | None = None,
    engine: str = "auto",
) -> pd.DataFrame:
    """Run a scenario over a factorial grid of overrides and several seeds.

    Args:
        scenario: The base scenario.
        grid: Dotted scenario path → values to try (``{"ingress.nodes_per_az": [1, 2, 3]}``);
            the runs are the Cartesian product in key order. A scalar is a one-value axis;
            a value that is itself a list is nested (``{"rules.paths": [["a.yaml"],
            ["b.yaml"]]}``). ``None`` or ``{}`` runs the scenario as it is.
        seeds: Number of replications per grid point (seeds from
            ``SeedSequence(base_seed).spawn(seeds)``, see :func:`sweep_seeds`), or explicit
            integer seeds (to reproduce rows).
        executor: Where to run: ``None``/``"auto"`` (serial for short fast-engine sweeps,
            else a process pool: :func:`auto_executor`), ``"local"`` (process pool),
            ``"serial"``, ``"local:N"`` (Dask LocalCluster), a Dask address or Client, or a
            ``concurrent.futures.Executor``.
        base_seed: Root of the seeds (default ``scenario.run.seed``).
        max_workers: Processes of the local pool (default :func:`available_cpus`).
        progress: Show a tqdm progress bar; ``None`` shows it on a terminal and a plain line
            every 10 % elsewhere (:class:`PlainProgress`); ``False`` shows nothing.
        engine: The simulation engine of every run: ``auto`` (default: the compiled engine
            when it supports the scenario, else SimPy; the ``engine`` column says which ran and
            ``frame.attrs["engine_notes"]`` why a run fell back), ``simpy`` or ``fast``.

    Returns:
        One row per (grid point, seed), grid order × seed order, with columns:

        * one column per grid path, named by the path, holding the value used;
        * ``seed`` (int64): the run's seed;
        * ``run_id`` (str): the Result's run id (a hash of scenario name, seed and params);
        * ``engine`` (str): the engine that ran it, ``fast`` or ``simpy`` (missing on error rows);
        * ``requests`` (Int64), ``rps``, ``success_ratio``, ``p50_ms``, ``p90_ms``, ``p99_ms``,
          ``mean_ms`` (float64), ``retries``, ``upstream_requests`` (Int64): whole-run totals
          after warm-up (:meth:`Result.totals <istiolab.sim.results.Result.totals>`), missing
          on error rows, then the rest of :data:`METRICS` (p99.9, success latency, unfinished,
          error rate, the busiest tier's ρ, the worst metrics window, the time to recover after
          the first event, warning codes);
        * ``error`` (object): None, or ``"ExceptionType: message"`` when the run failed.

        ``frame.attrs`` holds ``scenario`` (name), ``base_seed``, ``grid``, ``executor`` (the
        one that ran, ``auto`` resolved) and ``engine_notes`` (the distinct reasons ``auto``
        ran SimPy, empty when it never did).

    Raises:
        ConfigError: Before any run, when a grid path does not exist or a value is invalid.
        ValueError: For bad seeds, an unknown executor string or an unknown engine.

    Example:
        >>> from istiolab.sim.scenario import load_scenario
        >>> sc = load_scenario("sim/scenarios/seed-httpbin.yaml")  # doctest: +SKIP
        >>> sweep(sc, {"ingress.nodes_per_az": [1, 2]}, seeds=3)  # doctest: +SKIP
    """
    grid = dict(grid or {})
    n_seeds = seeds if isinstance(seeds, int) else len(seeds)
    check_runs(math.prod(_axis_len(v) for v in grid.values()) * n_seeds, scenario.name)
    points = _validate_grid(scenario, grid)
    root = scenario.run.seed if base_seed is None else base_seed
    seed_list = sweep_seeds(root, seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must not be empty")
    if any(s < 0 for s in seed_list):
        raise ValueError(f"seeds must be >= 0, got {seed_list}")
    check_engine(engine)
    tasks = [_Task(sc, params, s, engine) for sc, params in points for s in seed_list]
    executor = resolve_executor(executor, max_workers, [t.scenario for t in tasks], engine)
    with open_executor(executor, max_workers) as run:
        rows = run_tasks(run, tasks, progress=progress, desc=f"sweep {scenario.name}")
    frame = sweep_frame(list(grid), tasks, rows)
    frame.attrs.update(
        {
            "scenario": scenario.name,
            "base_seed": root,
            "grid": dict(grid),
            "executor": executor if isinstance(executor, str) else type(executor).__name__,
        }
    )
    return frame


def _axis_len(values: Any) -> int:
    is_list = isinstance(values, Sequence) and not isinstance(values, str)
    return len(values) if is_list else 1


def check_runs(runs: int, name: str) -> None:
    """Refuse a sweep of more than ``limits.SWEEP_MAX_RUNS`` runs, before any is scheduled.

    Raises:
        ConfigError: With an ``IL402`` finding naming the count and the limit.
    """
    if runs > limits.SWEEP_MAX_RUNS:
        raise ConfigError(
            [
                finding(
                    "IL402",
                    f"Scenario {name}",
                    "seeds",
                    f"the sweep would start {runs:,} runs, over the limit of "
                    f"{limits.SWEEP_MAX_RUNS:,} (SWEEP_MAX_RUNS in docs/limits.md)",
                    "fewer grid values or seeds, or split the sweep",
                )
            ]
        )


def run_tasks(
    run: RunMany, tasks: Sequence[_Task], *, progress: bool | None, desc: str
) -> list[Row]:
    """Run *tasks* with progress on stderr.

    *progress* True: a tqdm bar; False: nothing; None: a bar on a terminal, else a plain line
    every 10 % (:class:`PlainProgress`), so a log or CI job shows a long sweep moving without
    the bar's carriage-return redraws.
    """
    if progress is None and not _stderr_is_tty() and not _in_kernel():
        return run(tasks, PlainProgress(len(tasks), desc, unit="run"))
    from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

    with tqdm(
        total=len(tasks), desc=desc, unit="run", disable=None if progress is None else not progress
    ) as bar:
        return run(tasks, bar)


def _in_kernel() -> bool:
    """Inside a Jupyter kernel, where tqdm.auto draws a widget instead of plain lines."""
    import sys

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _stderr_is_tty() -> bool:
    import sys

    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class PlainProgress:
    """Progress as plain lines on stderr: one each time another *step* of the total is done.

    Has the two members of a tqdm bar the runners use (``update()`` and ``n``), so it can stand
    in for one where a bar's redraws would fill a log.

    Args:
        total: Units of work (runs, or percent of simulated time).
        desc: Label at the start of each line.
        unit: Name of a unit, shown after the count.
        step: Fraction of *total* between lines (default 10 %).
    """

    def __init__(self, total: int, desc: str, *, unit: str = "", step: float = 0.1) -> None:
        self.total = max(0, int(total))
        self.desc = desc
        self.unit = unit
        self.n = 0
        self._every = max(1, math.ceil(self.total * step)) if self.total else 1
        self._next = self._every

    def update(self, k: int = 1) -> None:
        """Count *k* more units done; print a line when another step is complete."""
        import sys

        self.n += k
        if self.total and (self.n >= self._next or self.n >= self.total):
            while self._next <= self.n:
                self._next += self._every
            pct = min(100, round(100 * self.n / self.total))
            unit = f" {self.unit}s" if self.unit else ""
            print(f"{self.desc}: {pct}% ({self.n}/{self.total}{unit})", file=sys.stderr, flush=True)


def sweep_frame(
    columns: Sequence[str], tasks: Sequence[_Task], rows: Sequence[Row]
) -> pd.DataFrame:
    """Assemble the tidy sweep frame (see :func:`sweep` for the schema)."""
    data: dict[str, pd.Series[Any]] = {}
    for col in columns:
        data[col] = pd.Series([t.params[col] for t in tasks])
    data["seed"] = pd.Series([t.seed for t in tasks], dtype="int64")
    data["run_id"] = pd.Series([r["run_id"] for r in rows], dtype=str)
    data["engine"] = pd.Series([r.get("engine") for r in rows], dtype=object)
    for name, dtype in METRICS:
        values = [r[name] for r in rows]
        if dtype == "float64":
            values = [math.nan if v is None else float(v) for v in values]
        data[name] = pd.Series(values, dtype=dtype)
    data["error"] = pd.Series([r["error"] for r in rows], dtype=object)
    frame = pd.DataFrame(data)
    frame.attrs["engine_notes"] = sorted(
        {str(r["engine_note"]) for r in rows if r.get("engine_note")}
    )
    return frame
