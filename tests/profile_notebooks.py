"""Run notebooks one kernel each and measure them: wall time, per-cell time, peak memory, leftovers.

Usage (from the repository root, or with any Python that has nbclient, ipykernel and psutil)::

    .venv/bin/python tests/profile_notebooks.py [--json OUT] [--cells] notebooks/0*.ipynb

For each notebook: the Run All wall time (kernel start included), the CPU time of the kernel and
every process it started and waited for (user + system, from ``getrusage(RUSAGE_CHILDREN)`` once
the kernel has exited: on a one-CPU Binder Run All takes at least that long, and it grows less
than wall time with what else runs on the machine), the kernel start time (until the first cell
starts), the slowest cells, the peak of the summed RSS of the kernel and every
process it started (sampled every 0.05 s), and the processes of that tree still alive once the
kernel has been shut down (there must be none). Prints one JSON object per notebook and, with
``--json``, writes the list to a file. ``tests/test_binder.py`` runs this script in the Binder
environment; it is also the tool behind the timings table of ``docs/trainer-guide.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import psutil


class TreeSampler:
    """Peak summed RSS of this process's descendants, and every process seen among them."""

    def __init__(self, period_s: float = 0.05) -> None:
        self.period_s = period_s
        self.peak_bytes = 0
        self.seen: dict[int, float] = {}  # pid -> create_time (a pid can be reused)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                for child in me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
                        self.seen.setdefault(child.pid, child.create_time())
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.period_s)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def alive(self) -> list[str]:
        """The processes seen during the run that still exist (name and pid)."""
        left = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{p.name()}[{pid}]")
        return left


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have exited and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def profile(path: Path, *, prepare: Any = None, timeout_s: int = 120) -> dict[str, Any]:
    """Run one notebook in a fresh kernel and measure it.

    Args:
        path: The notebook.
        prepare: Optional callable applied to the read notebook before it runs.
        timeout_s: Per-cell timeout.

    Returns:
        ``notebook``, ``wall_s``, ``cpu_s``, ``kernel_start_s``, ``peak_rss_mb``, ``cells``
        (index, seconds, first line, slowest first), ``errors`` and ``left_running``.
    """
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    if prepare is not None:
        prepare(nb)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout_s,
        allow_errors=True,
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    cpu_before = _children_cpu_s()
    start = time.time()
    with TreeSampler() as tree:
        client.execute()
    wall = time.time() - start
    time.sleep(0.5)  # the kernel's shutdown is asynchronous to its last reply
    cpu_s = _children_cpu_s() - cpu_before
    cells, first = [], None
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            began = _stamp(timing["iopub.execute_input"])
            first = began if first is None else min(first, began)
            seconds = _stamp(timing["shell.execute_reply"]) - began
            line = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
            cells.append({"cell": i, "s": round(seconds, 2), "last_line": line[:60]})
    errors = [
        out.get("evalue") or out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.output_type == "error" or (out.output_type == "stream" and out.name == "stderr")
    ]
    return {
        "notebook": path.stem,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu_s, 2),
        "kernel_start_s": round((first or start) - start, 2),
        "peak_rss_mb": round(tree.peak_bytes / 2**20, 1),
        "cells": sorted(cells, key=lambda c: -c["s"]),
        "errors": errors,
        "left_running": tree.alive(),
    }


def main() -> None:
    """Profile the notebooks named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="write the list of results here")
    parser.add_argument("--cells", type=int, default=3, help="slowest cells to keep per notebook")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    results = []
    for path in args.notebooks:
        row = profile(path)
        row["cells"] = row["cells"][: args.cells]
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
