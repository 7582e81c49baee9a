"""Process hygiene: no child process or temp dir outlives the istiolab run that made it.

One place for what every part of istiolab that starts processes needs (the Envoy sandbox, the
sweep's process pools and Dask workers, the notebook dashboard's simulation worker):

* :func:`preexec` and :func:`popen`: children forked with ``PR_SET_PDEATHSIG`` (Linux), so the
  kernel kills them when their parent dies, even by SIGKILL. :func:`popen` forks from a thread
  that lives as long as the process (the kernel fires ``PR_SET_PDEATHSIG`` when the *thread*
  that forked the child ends, not the process).
* :func:`die_with_owner`: for processes istiolab does not fork itself (``multiprocessing``
  pool workers are forked by the ``forkserver`` process, Dask workers by their nanny): called
  inside the child, it sets ``PR_SET_PDEATHSIG`` towards the direct parent *and* watches the
  owning istiolab process by pid, and exits when either dies.
* :func:`stop_process`: wait, SIGTERM, SIGKILL, and always reap.
* :func:`track` and :func:`install_exit_hooks`: objects closed on SIGTERM and at interpreter
  exit; :func:`exit_on_signals`: the command line's SIGTERM/SIGINT handling (exit ``128 +
  signal`` after cleaning up, see :class:`Terminated`), within :data:`UNWIND_LIMIT_S` of the
  signal, or at once on a second signal.
* :func:`run_dir` and :func:`make_tempdir`: every temp dir of a run lives in one per-run
  directory, ``<system temp>/istiolab-<pid>-<random>/``, deleted at exit; a run killed with
  SIGKILL leaves it behind, and the next run (in the same PID namespace) deletes it once the
  owner pid is dead.

Nothing here has import-time side effects other than looking up ``prctl`` in libc.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

__all__ = [
    "RUN_DIR_PREFIX",
    "UNWIND_LIMIT_S",
    "Terminated",
    "die_with_owner",
    "exit_on_signals",
    "install_exit_hooks",
    "make_tempdir",
    "pid_alive",
    "popen",
    "preexec",
    "run_dir",
    "stop_process",
    "sweep_stale_run_dirs",
    "track",
    "untrack",
]

RUN_DIR_PREFIX = "istiolab-"
"""Per-run directories are ``<system temp>/istiolab-<owner pid>-<random>``."""
OWNER_FILE = "owner.pid"
"""File in a run directory holding ``"<owner pid> <pid namespace>"``."""
_PR_SET_PDEATHSIG = 1
_WATCH_POLL_S = 0.5  # owner-pid polling period where pidfd_open is unavailable
UNWIND_LIMIT_S = 5.0
"""Seconds a signalled process may take to clean up before it exits without finishing.

:func:`exit_on_signals` and :func:`install_exit_hooks` arm a watchdog when SIGTERM or Ctrl-C
arrives: if the process still runs this long after the signal (a clean-up blocked on something
that does not answer), the watchdog deletes the run directory and exits ``128 + signal``; the
kernel and the workers' owner watch stop the children. A normal unwind takes well under a
second (``verify``: Envoy and the stubs stop in ~0.3 s)."""


class _Closable(Protocol):
    def close(self) -> None: ...


_libc_prctl: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError, AttributeError):
        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM or SIGINT arrives (see :func:`exit_on_signals`).

    A :class:`SystemExit` whose code is ``128 + signum``, the shell's convention for "killed by
    a signal", so ``finally`` blocks and context managers clean up on the way out, the process
    exits with that code without a traceback, and ``except Exception`` handlers (which would
    otherwise swallow a ``KeyboardInterrupt``-like exception) do not catch it.

    Attributes:
        signum: The signal that arrived.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


# ---------------------------------------------------------------------------- children


def preexec(new_group: bool = True) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child die with SIGKILL when its parent thread dies.

    Args:
        new_group: On Linux, also give the child its own process group (same session): a
            terminal's Ctrl-C goes to the foreground process group, and would otherwise kill
            the children even when the Python program catches the ``KeyboardInterrupt`` and
            carries on. The children still die with the parent through ``PR_SET_PDEATHSIG``.
            Elsewhere (no PDEATHSIG) they stay in the parent's group so that group-wide
            signals still reach them.

    Returns:
        The function, or None where ``prctl`` is unavailable (not Linux).
    """
    prctl = _libc_prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)
        if new_group:
            os.setpgid(0, 0)

    return set_pdeathsig


class _Spawner:
    """Runs ``Popen`` on a thread that lives as long as the process.

    ``PR_SET_PDEATHSIG`` fires when the forking *thread* exits, so a child forked from a
    short-lived worker thread would be killed as soon as that thread ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(
        self, argv: list[str], new_group: bool = True, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        def make() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, preexec_fn=preexec(new_group), **kwargs)

        if threading.current_thread() is threading.main_thread():
            return make()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="istiolab-spawner", daemon=True
                )
                self._thread.start()
        fut: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((make, fut))
        return fut.result()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller
                fut.set_exception(exc)


_SPAWNER = _Spawner()


def popen(argv: list[str], *, new_group: bool = True, **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` for a child that dies with this process.

    The child gets :func:`preexec` and is forked from the main thread or from a private thread
    that lives as long as the process, never from the calling short-lived thread.

    Args:
        argv: Program and arguments.
        new_group: See :func:`preexec`.
        **kwargs: Passed to ``Popen`` (not ``preexec_fn``).

    Returns:
        The started process.
    """
    return _SPAWNER.popen(argv, new_group, **kwargs)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """Wait ``grace_s`` for a process to exit, then SIGTERM, then SIGKILL; always reap."""
    for action in (None, proc.terminate, proc.kill):
        if action is not None:
            with contextlib.suppress(OSError):
                action()
        try:
            proc.wait(timeout=grace_s if action is None else 2.0)
            return
        except subprocess.TimeoutExpired:
            continue


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as alive until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_owner(owner: int, ignore_sigint: bool = True) -> None:
    """Make the calling process exit when *owner* or its own parent dies.

    For processes that something other than istiolab forks (pool workers forked by
    ``multiprocessing``'s forkserver, Dask workers forked by their nanny), so :func:`preexec`
    cannot be used. Use it as a pool ``initializer``. Two mechanisms, because either alone
    misses a case: ``PR_SET_PDEATHSIG`` towards the direct parent (the forkserver exits when
    the owner dies, taking its workers with it), and a daemon thread that watches *owner*
    itself (``pidfd_open`` where the kernel has it, else polling every half second) for
    parents that outlive the owner.

    Args:
        owner: Pid of the istiolab process the caller works for.
        ignore_sigint: Ignore SIGINT: a terminal's Ctrl-C reaches the whole foreground process
            group, and the owner, not every worker, decides what an interrupt means (it stops
            the pool); a worker would otherwise print its own ``KeyboardInterrupt`` traceback.
    """
    if ignore_sigint and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    prctl = _libc_prctl
    if prctl is not None:
        # The parent may die between the fork and this call; the owner check below (and the
        # forkserver's own exit when the owner is gone) cover that window.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not pid_alive(owner):
        os._exit(1)
    threading.Thread(
        target=_watch_owner, args=(owner,), name="istiolab-owner-watch", daemon=True
    ).start()


def _watch_owner(owner: int) -> None:
    fd = -1
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(owner)
    if fd >= 0:
        # A pidfd becomes readable when the process exits; no polling, no pid-reuse race.
        select.select([fd], [], [])
    else:
        while pid_alive(owner):
            time.sleep(_WATCH_POLL_S)
    os._exit(1)  # no clean-up to do in a worker whose owner is gone; do not wait for it


# ---------------------------------------------------------------------------- exit hooks

_LIVE: dict[int, _Closable] = {}  # objects to close on SIGTERM and at exit
# Reentrant: the signal handler calls close_all(), and may have interrupted this thread inside
# track(), untrack() or close_all() itself; a plain Lock would deadlock the handler there.
_LIVE_LOCK = threading.RLock()
_ATEXIT_DONE = False
_SIGTERM_DONE = False


def track(obj: _Closable) -> None:
    """Close *obj* (``obj.close()``) on SIGTERM and at interpreter exit, unless untracked."""
    with _LIVE_LOCK:
        _LIVE[id(obj)] = obj


def untrack(obj: _Closable) -> None:
    """Stop tracking *obj* (it closed itself)."""
    with _LIVE_LOCK:
        _LIVE.pop(id(obj), None)


def close_all() -> None:
    """Close every tracked object; errors are ignored (this runs while exiting)."""
    with _LIVE_LOCK:
        objs = list(_LIVE.values())
    for obj in objs:
        with contextlib.suppress(Exception):
            obj.close()


class _UnwindWatchdog:
    """Ends a process whose clean-up after a signal takes longer than :data:`UNWIND_LIMIT_S`.

    Its thread is started before any signal (starting a thread inside a signal handler can
    block on the interrupted code's locks) and sleeps on an event the handler sets. A second
    signal while the first is being handled ends the process at once (a second Ctrl-C).
    """

    def __init__(self) -> None:
        self._pid = -1
        self._armed = threading.Event()
        self._signum = 0
        self._deadline = 0.0

    def start(self) -> None:
        """Start the thread (idempotent per process: a forked child starts its own)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._armed = threading.Event()
        threading.Thread(target=self._run, name="istiolab-unwind-watchdog", daemon=True).start()

    def signalled(self, signum: int) -> None:
        """Called by the handler: the first signal arms the deadline, a second one exits."""
        if self._armed.is_set():
            self.exit_now("a second signal during clean-up")
        self._signum = signum
        self._deadline = time.monotonic() + UNWIND_LIMIT_S
        self._armed.set()

    def _run(self) -> None:
        self._armed.wait()
        while (left := self._deadline - time.monotonic()) > 0:
            time.sleep(left)
        self.exit_now(f"clean-up took over {UNWIND_LIMIT_S:g} s")

    def exit_now(self, why: str) -> None:
        """Delete the run directory, say why on stderr, exit ``128 + signal`` (no unwinding)."""
        current = _RUN_DIR  # no lock: its holder may be the code that is stuck
        if current is not None and current[0] == os.getpid():
            shutil.rmtree(current[1], ignore_errors=True)
        name = signal.Signals(self._signum).name if self._signum else "a signal"
        with contextlib.suppress(OSError):  # os.write: stderr's buffer has a lock, too
            os.write(2, f"istiolab: stopped after {name}: {why}\n".encode())
        os._exit(128 + self._signum)


_WATCHDOG = _UnwindWatchdog()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _WATCHDOG.signalled(signum)
    close_all()
    raise Terminated(signum)


def install_exit_hooks() -> None:
    """Close tracked objects at interpreter exit and on SIGTERM (idempotent).

    The SIGTERM handler is installed only from the main thread, and only if SIGTERM has the
    default action (then it closes everything and exits ``128 + SIGTERM``) or a Python handler
    (then ours closes everything and calls it). A handler set outside Python, or SIG_IGN, is
    left alone (the ``atexit`` hook still applies).
    """
    global _ATEXIT_DONE, _SIGTERM_DONE
    if not _ATEXIT_DONE:
        atexit.register(close_all)
        _ATEXIT_DONE = True
    if _SIGTERM_DONE or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is _on_signal:  # exit_on_signals is active; its exit restores the old handler
        return
    if previous is signal.SIG_DFL:
        _WATCHDOG.start()
        signal.signal(signal.SIGTERM, _on_signal)
    elif callable(previous):
        chained = previous

        def on_sigterm_chained(signum: int, frame: FrameType | None) -> None:
            close_all()
            chained(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm_chained)
    _SIGTERM_DONE = True


@contextlib.contextmanager
def exit_on_signals(
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[None]:
    """While inside, *signals* close tracked objects and raise :class:`Terminated`.

    For a command line's ``main``: the exception unwinds the stack, so every ``finally`` and
    context manager runs (pools are stopped, sandboxes closed), then the interpreter exits
    ``128 + signum``. SIGINT is handled the same way rather than as ``KeyboardInterrupt``
    because Click turns a ``KeyboardInterrupt`` into "Aborted!" and exit 1. The previous
    handlers are restored on the way out. Outside the main thread this does nothing (Python
    only lets the main thread set handlers).

    Meant for a program's main: once a signal has arrived, the process ends within
    :data:`UNWIND_LIMIT_S` even if a clean-up blocks, and at once on a second signal, whether or
    not the :class:`Terminated` is caught.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _WATCHDOG.start()
    previous = {s: signal.signal(s, _on_signal) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            # A handler Python did not install reads back as None; it cannot be restored.
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


# ---------------------------------------------------------------------------- temp dirs

_RUN_DIR: tuple[int, Path] | None = None  # (owner pid, path): a forked child makes its own
_RUN_DIR_LOCK = threading.Lock()


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def sweep_stale_run_dirs(root: Path | None = None) -> list[Path]:
    """Delete run directories whose owner died without cleaning up (SIGKILL, power loss).

    Only directories whose owner ran in this PID namespace are considered, so a shared
    ``/tmp`` across containers is safe; a directory without a readable owner file is left
    alone (it may be being created right now). The Envoy sandbox's temp dirs of earlier
    istiolab versions (``istiolab-envoy-*``, same owner file) match the same rule.

    Args:
        root: Where to look (default: the system temp dir).

    Returns:
        The directories deleted.
    """
    namespace = _pid_namespace()
    base = Path(tempfile.gettempdir()) if root is None else root
    me = os.getpid()
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in base.glob(f"{RUN_DIR_PREFIX}*"):
            with contextlib.suppress(OSError, ValueError):
                pid_text, owner_ns = (entry / OWNER_FILE).read_text().split()
                owner = int(pid_text)
                if owner_ns == namespace and owner != me and not pid_alive(owner):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
    return removed


def run_dir() -> Path:
    """This process's run directory, created (and stale ones swept) on first use.

    ``<system temp>/istiolab-<pid>-<random>/`` with an owner file; removed at interpreter exit
    (also after SIGTERM or Ctrl-C under :func:`exit_on_signals`, which exit through Python).

    Returns:
        The directory (exists).
    """
    global _RUN_DIR
    pid = os.getpid()
    with _RUN_DIR_LOCK:
        if _RUN_DIR is not None and _RUN_DIR[0] == pid and _RUN_DIR[1].is_dir():
            return _RUN_DIR[1]
        sweep_stale_run_dirs()
        path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{pid}-"))
        (path / OWNER_FILE).write_text(f"{pid} {_pid_namespace()}")
        if _RUN_DIR is None or _RUN_DIR[0] != pid:
            atexit.register(_remove_run_dir)
        _RUN_DIR = (pid, path)
        return path


def _remove_run_dir() -> None:
    global _RUN_DIR
    with _RUN_DIR_LOCK:
        current, _RUN_DIR = _RUN_DIR, None
    # Only the process that made it removes it: a forked child that inherited the atexit
    # hook must not delete its parent's directory.
    if current is not None and current[0] == os.getpid():
        shutil.rmtree(current[1], ignore_errors=True)


def make_tempdir(prefix: str) -> Path:
    """A new temp dir inside :func:`run_dir` (the caller deletes it when done).

    Args:
        prefix: Start of the directory's name (``"envoy-"``).

    Returns:
        The new, empty directory.
    """
    return Path(tempfile.mkdtemp(prefix=prefix, dir=run_dir()))
