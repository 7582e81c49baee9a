"""Process hygiene: no Envoy, stub process or temp dir outlives the sandbox that started it.

The mechanisms are istiolab's, shared with the sweep's pools and the dashboard's worker
(:mod:`istiolab.processes`); this module is how the sandbox uses them. Children are forked with
``PR_SET_PDEATHSIG`` from a thread that lives as long as the process, every live sandbox is
closed on SIGTERM and at interpreter exit, every child is reaped, and the sandbox's temp dir is
one directory in the run's directory, which the next istiolab run sweeps when this process was
SIGKILLed. The :mod:`istiolab.envoy.sandbox` docstring states the guarantees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from istiolab import processes

__all__ = ["sandbox_tempdir", "spawn", "started", "stop", "stopped"]


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a sandbox child (Envoy, the stubs) that dies with this process."""
    return processes.popen(argv, **kwargs)


def stop(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """Stop and reap a sandbox child (see :func:`istiolab.processes.stop_process`)."""
    processes.stop_process(proc, grace_s)


def started(sandbox: Any) -> None:
    """Register a starting sandbox: closed on SIGTERM and at interpreter exit."""
    processes.install_exit_hooks()
    processes.track(sandbox)


def stopped(sandbox: Any) -> None:
    """Forget a closed sandbox."""
    processes.untrack(sandbox)


def sandbox_tempdir() -> Path:
    """A new temp dir for one sandbox, inside the run's directory (swept if we get SIGKILLed)."""
    return processes.make_tempdir("envoy-")
