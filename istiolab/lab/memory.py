"""A memory guard for workshop kernels: a visible warning before the hosting limit is reached.

Binder kills a user's server when its memory passes the limit (``MEM_LIMIT``, in bytes, which
Binder sets in the user's environment; the kernel dies without a word). The guard samples the
kernel's resident memory plus that of every process it started (simulation workers, Envoy) in a
background thread, and after each cell that ran above ``fraction`` of the limit it shows a
warning in that cell's output, with what to do. Notebooks start it in their first code cell::

    from istiolab.lab.memory import guard
    guard()

Memory is read with psutil when it is installed (it comes with ipykernel), else from ``/proc``.
"""

from __future__ import annotations

import contextlib
import html
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LIMIT_BYTES",
    "MemoryGuard",
    "declared_limit_bytes",
    "guard",
    "limit_bytes",
    "tree_rss",
]

DEFAULT_LIMIT_BYTES = 2 * 2**30
"""The limit when ``MEM_LIMIT`` is not set: Binder's usual 2 GiB."""

_GUARD: MemoryGuard | None = None
_LOCK = threading.Lock()


def declared_limit_bytes(environ: Mapping[str, str] | None = None) -> int | None:
    """The memory limit the host declares in ``MEM_LIMIT`` (bytes, > 0), or None.

    Args:
        environ: The environment to read (default: ``os.environ``).

    Returns:
        The limit in bytes, or None when ``MEM_LIMIT`` is unset or not a positive number.
    """
    value = (os.environ if environ is None else environ).get("MEM_LIMIT", "").strip()
    try:
        parsed = int(float(value))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed > 0 else None


def limit_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The memory limit in bytes: ``MEM_LIMIT`` if set to a positive integer, else 2 GiB.

    Args:
        environ: The environment to read (default: ``os.environ``).

    Returns:
        The limit in bytes.
    """
    declared = declared_limit_bytes(environ)
    return DEFAULT_LIMIT_BYTES if declared is None else declared


def _proc_tree_rss(pid: int) -> int:
    """Summed RSS of *pid* and its descendants, read from ``/proc`` (Linux)."""
    page = os.sysconf("SC_PAGE_SIZE")
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # the command name (field 2) may contain spaces: the fields after it start past ")"
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for member in tree:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((Path("/proc") / str(member) / "statm").read_text().split()[1]) * page
    return total


def tree_rss(pid: int | None = None) -> int:
    """Resident memory (bytes) of a process and every process it started, summed.

    Args:
        pid: The root process (default: this one).

    Returns:
        The summed RSS in bytes (0 when the process is gone or memory cannot be read).
    """
    pid = os.getpid() if pid is None else pid
    try:
        import psutil
    except ImportError:
        try:
            return _proc_tree_rss(pid)
        except OSError:
            return 0
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in members:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _show(text: str, html_text: str) -> None:
    """Display a warning in the current cell's output (plain text outside IPython)."""
    try:
        from IPython.display import display
    except ImportError:
        print(text)
        return
    display({"text/plain": text, "text/html": html_text}, raw=True)  # type: ignore[no-untyped-call]


class MemoryGuard:
    """Samples a process tree's memory and warns once a cell has run above a share of the limit.

    Args:
        limit: The memory limit in bytes (default: :func:`limit_bytes`).
        fraction: Warn above this share of the limit.
        period_s: Sampling period of the background thread.
        pid: The process whose tree is watched (default: this one).
        show: Called with the warning as plain text and as HTML.
    """

    def __init__(
        self,
        limit: int | None = None,
        *,
        fraction: float = 0.8,
        period_s: float = 1.0,
        pid: int | None = None,
        show: Callable[[str, str], None] = _show,
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.limit = limit_bytes() if limit is None else limit
        self.fraction = fraction
        self.period_s = period_s
        self.pid = os.getpid() if pid is None else pid
        self.peak = 0
        """Highest sample since the last :meth:`check`."""
        self._warned_at = 0
        self._show = show
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        """One line for a notebook: memory now, the limit and where the warning starts."""
        mib = 2**20
        return (
            f"memory guard: {tree_rss(self.pid) / mib:.0f} MiB in use, limit "
            f"{self.limit / mib:.0f} MiB, warns above {self.threshold / mib:.0f} MiB"
        )

    @property
    def threshold(self) -> int:
        """Bytes above which a warning is shown."""
        return int(self.limit * self.fraction)

    def sample(self) -> int:
        """Read the tree's memory now and keep the peak; returns the sample in bytes."""
        now = tree_rss(self.pid)
        self.peak = max(self.peak, now)
        return now

    def check(self, *_: Any) -> str | None:
        """Show a warning if the tree ran above the threshold since the last check.

        Called after every cell once the guard is registered with IPython. A warning is shown
        again only when the peak has grown by another 5 % of the limit, so a notebook that stays
        high does not repeat it after every cell.

        Returns:
            The warning's text, or None when there was nothing to say.
        """
        self.sample()
        peak, self.peak = self.peak, 0
        if peak < self.threshold or peak < self._warned_at + 0.05 * self.limit:
            return None
        self._warned_at = peak
        mib, limit_mib = peak / 2**20, self.limit / 2**20
        text = (
            f"Memory warning: this kernel and its processes reached {mib:.0f} MiB of the "
            f"{limit_mib:.0f} MiB limit ({peak / self.limit:.0%}). Above the limit the server "
            "is stopped without a message. Free memory now: delete large results you no longer "
            "need (del name), close other notebooks' kernels (Kernel > Shut Down Kernel), use "
            "shorter runs or fewer seeds, or Kernel > Restart."
        )
        html_text = (
            '<div style="border-left:6px solid #c62828;background:#fdecea;padding:8px 12px;'
            'font-weight:600">&#9888; ' + html.escape(text) + "</div>"
        )
        self._show(text, html_text)
        return text

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sample()

    def start(self) -> MemoryGuard:
        """Start sampling in a daemon thread (it ends with the process, or with :meth:`stop`)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="istiolab-memory", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the sampling thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def guard(limit: int | None = None, *, fraction: float = 0.8) -> MemoryGuard:
    """Start this kernel's memory guard (once; later calls return the running one).

    In IPython the guard checks after every cell and shows its warning in that cell's output.

    Args:
        limit: The memory limit in bytes (default: ``MEM_LIMIT``, else 2 GiB).
        fraction: Warn above this share of the limit.

    Returns:
        The running guard.
    """
    global _GUARD
    with _LOCK:
        if _GUARD is None:
            _GUARD = MemoryGuard(limit, fraction=fraction).start()
            with contextlib.suppress(ImportError, AttributeError):
                from IPython import get_ipython

                shell = get_ipython()
                if shell is not None:
                    shell.events.register("post_run_cell", _GUARD.check)
        return _GUARD
