"""Run :func:`~istiolab.sim.engine.simulate` in a worker process, so a run can be cancelled.

The notebook kernel stays free while a simulation runs (the Cancel button's click reaches it),
and cancelling really stops the work: the worker process is terminated, which matters on a
two-core Binder. One worker is kept between runs (starting one costs about a second of imports)
and is a fresh interpreter (``python -m istiolab.widgets.runner``), never a ``fork``: a Jupyter
kernel has threads, and a forked child could inherit a lock that one of them holds. Jobs and
results travel as pickles over a socket pair.

Workers never outlive their use. The worker dies with the kernel, even when the kernel is
SIGKILLed (it is started through :func:`istiolab.processes.popen`, and watches the kernel's pid),
and with its :class:`Runner` when that is garbage-collected. Only the newest runner keeps an idle
worker: re-running a notebook cell that builds a dashboard leaves the old dashboard alive in the
kernel (ipywidgets keeps every widget until it is closed), so creating a runner stops the idle
workers of the older ones, and an older runner's worker stops when its running job ends. An older
dashboard still works; its next run starts a worker again (about a second). An idle worker also
exits after :data:`IDLE_S` seconds, so a dashboard left alone does not hold the simulator's
memory.

Progress is measured: the worker reports the fraction of simulated time done
(``simulate(progress=...)``, a hundred times per run). Until the first report arrives (while the
worker starts and builds the model) it is estimated from the wall time per simulated request of
the previous run, up to :data:`ESTIMATE_CAP`; the reports then fill the rest, so the bar never
moves back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from istiolab import processes

if TYPE_CHECKING:
    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

DEFAULT_S_PER_REQUEST = 7e-5
"""Wall seconds per simulated request before any run was timed (2020s laptop core)."""
WORKER_START_S = 1.0
"""Rough cost of starting the worker process (imports)."""
ESTIMATE_CAP = 0.3
"""Largest progress shown before the worker reports simulated time (the estimated part)."""
IDLE_S = 90.0
"""An idle worker exits after this many seconds (it holds the simulator's memory)."""


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    from istiolab.sim.engine import simulate

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        scenario, seed, params, engine = job

        def report(fraction: float) -> None:
            conn.send(("progress", fraction))

        try:
            result = simulate(scenario, seed, params=params, progress=report, engine=engine)
            conn.send(("ok", result))
        except Exception as err:  # every failure is reported to the notebook
            conn.send(("error", f"{type(err).__name__}: {err}"))


def offered_requests(scenario: Scenario) -> float:
    """Requests the scenario's clients offer over the run (an estimate for progress bars)."""
    total = 0.0
    for t in scenario.traffic:
        rate = getattr(t.arrival, "rate_rps", None)
        if rate is None:
            steps = getattr(t.arrival, "steps", None) or []
            rates = [float(getattr(s, "rate_rps", 0.0)) for s in steps]
            rate = sum(rates) / len(rates) if rates else 500.0
        total += float(rate) * scenario.run.duration_s
    return total


@dataclasses.dataclass
class Job:
    """One submitted run.

    Attributes:
        started: Wall-clock start (``time.monotonic()``).
        estimate_s: Estimated wall time.
        start_cost_s: The part of the estimate spent starting the worker.
        state: ``running``, ``done``, ``error`` or ``cancelled``.
        result: The result when done.
        error: The error message when failed.
        wall_s: Wall time when finished.
        reported: Fraction of simulated time done, as last reported by the worker.
    """

    started: float
    estimate_s: float
    start_cost_s: float = 0.0
    state: str = "running"
    result: Result | None = None
    error: str = ""
    wall_s: float = 0.0
    reported: float | None = None
    _done: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    _shown: float = dataclasses.field(default=0.0, repr=False)
    _base: float | None = dataclasses.field(default=None, repr=False)

    @property
    def fraction(self) -> float:
        """Fraction done, never smaller than a value returned before (a bar never goes back).

        Until the worker's first report, an estimate from the wall time, at most
        :data:`ESTIMATE_CAP` (the estimate covers starting the worker and building the model);
        from then on the reported simulated fraction fills the rest of the bar.
        """
        if self.state != "running":
            return 1.0
        if self.reported is None:
            elapsed = time.monotonic() - self.started
            value = min(ESTIMATE_CAP, elapsed / max(self.estimate_s, 1e-3))
        else:
            if self._base is None:
                self._base = self._shown  # what the bar showed when the first report came
            value = self._base + (1.0 - self._base) * min(1.0, max(0.0, self.reported))
        self._shown = max(self._shown, value)
        return self._shown

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; True when it did within *timeout*."""
        return self._done.wait(timeout)


_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()  # every live runner of this process
_NEWEST: weakref.ref[Runner] | None = None  # the runner allowed to keep an idle worker
_RUNNERS_LOCK = threading.Lock()


def _end_worker(proc: subprocess.Popen[bytes], conn: Connection | None) -> None:
    """Stop a worker and close its socket (also used as a finalizer: no reference to a Runner)."""
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()  # an idle worker exits on end-of-file by itself
    processes.stop_process(proc, grace_s=0.0)


class Runner:
    """A worker process that runs simulations one at a time.

    Creating a runner stops the idle workers of the runners created before it (see the module
    docstring); they start a new worker when asked to run again.

    Args:
        on_progress: Called from a background thread with the job about every ``tick_s``.
        on_finish: Called from a background thread when a job ends (any state).
        tick_s: Progress period.
        idle_s: Stop the worker after this many idle seconds (``None``: keep it); the next
            run starts a new one (about a second).
    """

    def __init__(
        self,
        on_progress: Callable[[Job], Any] | None = None,
        on_finish: Callable[[Job], Any] | None = None,
        *,
        tick_s: float = 0.2,
        idle_s: float | None = IDLE_S,
    ) -> None:
        self.on_progress = on_progress
        self.on_finish = on_finish
        self.tick_s = tick_s
        self.idle_s = idle_s
        self._idle_timer: threading.Timer | None = None
        self.s_per_request = DEFAULT_S_PER_REQUEST
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._job: Job | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        global _NEWEST
        with _RUNNERS_LOCK:
            older = list(_RUNNERS)
            _RUNNERS.add(self)
            _NEWEST = weakref.ref(self)
        for runner in older:
            runner._retire_if_idle()

    def _is_newest(self) -> bool:
        with _RUNNERS_LOCK:
            return _NEWEST is not None and _NEWEST() is self

    def _retire_if_idle(self) -> None:
        """Stop the worker unless a job is running on it."""
        with self._lock:
            if not self.busy:
                self._stop_worker()

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._job is not None and self._job.state == "running"

    def _ensure_worker(self) -> float:
        if self._proc is not None and self._proc.poll() is None:
            return 0.0
        ours, theirs = socket.socketpair()
        fd = theirs.fileno()
        try:
            proc = processes.popen(
                [sys.executable, "-m", "istiolab.widgets.runner", str(fd), str(os.getpid())],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._proc, self._conn = proc, Connection(ours.detach())
        # A runner nobody references any more (its dashboard was closed and collected) takes
        # its worker with it.
        self._finalizer = weakref.finalize(self, _end_worker, proc, self._conn)
        return WORKER_START_S

    def submit(
        self,
        scenario: Scenario,
        seed: int | None = None,
        params: dict[str, Any] | None = None,
        engine: str = "simpy",
    ) -> Job:
        """Start a run in the worker (*params*, *engine*: as by ``simulate``).

        Raises:
            RuntimeError: When a run is already going.
        """
        with self._lock:
            if self.busy:
                raise RuntimeError("a simulation is already running; cancel it first")
            self._cancel_idle_timer()
            start_cost = self._ensure_worker()
            requests = offered_requests(scenario)
            job = Job(time.monotonic(), start_cost + requests * self.s_per_request, start_cost)
            self._job = job
            assert self._conn is not None
            self._conn.send((scenario, seed, params, engine))
        threading.Thread(
            target=self._wait, args=(job, self._conn, requests), daemon=True, name="istiolab-wait"
        ).start()
        return job

    def _wait(self, job: Job, conn: Connection, requests: float) -> None:
        try:
            while job.state == "running":
                try:
                    ready = conn.poll(self.tick_s)
                except (EOFError, OSError):
                    ready = False
                    if job.state == "running":
                        job.state, job.error = "error", "the simulation worker stopped"
                    break
                if job.state != "running":
                    break
                if not ready:
                    if self.on_progress is not None:
                        self.on_progress(job)
                    continue
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError):
                    if job.state == "running":
                        job.state, job.error = "error", "the simulation worker stopped"
                    break
                if status == "progress":
                    job.reported = float(payload)
                    if self.on_progress is not None:
                        self.on_progress(job)
                    continue
                job.wall_s = time.monotonic() - job.started
                if status == "ok":
                    job.result, job.state = payload, "done"
                    if requests > 0:
                        busy = max(job.wall_s - job.start_cost_s, 0.1 * job.wall_s)
                        self.s_per_request = busy / requests
                else:
                    job.error, job.state = str(payload), "error"
        finally:
            job.wall_s = job.wall_s or time.monotonic() - job.started
            if not self._is_newest():
                self._retire_if_idle()  # a newer runner exists: do not keep a second worker
            else:
                self._start_idle_timer()
            job._done.set()
            if self.on_finish is not None:
                self.on_finish(job)

    def _start_idle_timer(self) -> None:
        if self.idle_s is None:
            return
        with self._lock:
            self._cancel_idle_timer()
            ref = weakref.ref(self)  # the timer must not keep a dropped runner alive

            def expire() -> None:
                runner = ref()
                if runner is not None:
                    runner._retire_if_idle()

            self._idle_timer = threading.Timer(self.idle_s, expire)
            self._idle_timer.daemon = True
            self._idle_timer.start()

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def cancel(self) -> None:
        """Stop the running job by terminating the worker (a new one starts on the next run)."""
        with self._lock:
            job = self._job
            if job is None or job.state != "running":
                return
            job.state = "cancelled"
            self._stop_worker()

    def _stop_worker(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            # SIGTERM at once (a running simulation is abandoned), SIGKILL if it lingers;
            # always reaped, so no zombie stays behind in a long-lived kernel.
            processes.stop_process(proc, grace_s=0.0)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Cancel any run and stop the worker."""
        self._cancel_idle_timer()
        self.cancel()
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(None)
            self._stop_worker()


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - the worker's entry point
    """Serve jobs on the socket whose file descriptor is the first argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        # Exit with the kernel even where PR_SET_PDEATHSIG does not exist; and a Ctrl-C meant
        # for the notebook's process group is the kernel's to handle, not the worker's.
        processes.die_with_owner(int(args[1]))
    _serve(Connection(int(args[0])))


if __name__ == "__main__":  # pragma: no cover
    main()
