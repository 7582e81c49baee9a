"""Process hygiene: no Envoy, stub process or temp dir outlives the sandbox that started it.

Children are forked with ``PR_SET_PDEATHSIG`` from a thread that lives as long as the process
(see :class:`_Spawner`), every live sandbox is closed on SIGTERM and at interpreter exit, every
child is reaped, and temp dirs left behind by a SIGKILLed process are swept by the next
sandbox. The :mod:`istiolab.envoy.sandbox` docstring states the guarantees.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

_PR_SET_PDEATHSIG = 1
_TMP_PREFIX = "istiolab-envoy-"
_OWNER_FILE = "owner.pid"


class _Closable(Protocol):
    def close(self) -> None: ...


_libc_prctl: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError, AttributeError):
        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child die with SIGKILL when its parent thread dies.

    On Linux the child also gets its own process group (same session): a terminal's Ctrl-C
    goes to the foreground process group, and would otherwise kill Envoy and the stubs even
    when the Python program catches the ``KeyboardInterrupt`` and carries on. The children
    still die with the parent through ``PR_SET_PDEATHSIG``. Elsewhere (no PDEATHSIG) they
    stay in the parent's group so that group-wide signals still reach them.
    """
    prctl = _libc_prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)
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

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        def make() -> subprocess.Popen[bytes]:
            return subprocess.Popen(argv, preexec_fn=_preexec(), **kwargs)

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
_LIVE: dict[int, _Closable] = {}  # the running sandboxes
_LIVE_LOCK = threading.Lock()
_ATEXIT_DONE = False
_SIGTERM_DONE = False


def _close_all() -> None:
    with _LIVE_LOCK:
        sandboxes = list(_LIVE.values())
    for sb in sandboxes:
        with contextlib.suppress(Exception):
            sb.close()


def _install_hooks() -> None:
    global _ATEXIT_DONE, _SIGTERM_DONE
    if not _ATEXIT_DONE:
        atexit.register(_close_all)
        _ATEXIT_DONE = True
    if _SIGTERM_DONE or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            _close_all()
            sys.exit(128 + signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
    elif callable(previous):
        chained = previous

        def on_sigterm_chained(signum: int, frame: FrameType | None) -> None:
            _close_all()
            chained(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm_chained)
    # SIG_IGN, or a handler set outside Python: leave it alone (atexit still applies).
    _SIGTERM_DONE = True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def _sweep_stale_dirs() -> None:
    """Delete temp dirs of sandboxes whose Python process died without cleaning up (SIGKILL).

    Only dirs whose owner ran in this PID namespace are considered, so a shared ``/tmp``
    across containers is safe.
    """
    namespace = _pid_namespace()
    with contextlib.suppress(OSError):
        for entry in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*"):
            with contextlib.suppress(OSError, ValueError):
                pid_text, owner_ns = (entry / _OWNER_FILE).read_text().split()
                owner = int(pid_text)
                if owner_ns == namespace and owner != os.getpid() and not _pid_alive(owner):
                    shutil.rmtree(entry, ignore_errors=True)


def _stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
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
