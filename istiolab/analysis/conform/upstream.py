"""The scenario's pods as real processes: one loopback listener per pod, reaped on every exit.

:class:`UpstreamPods` starts ``_server.py`` (see its docstring for the protocol) through
:func:`istiolab.processes.popen` (``PR_SET_PDEATHSIG``, forked from a long-lived thread), tracks
itself so SIGTERM and interpreter exit close it, and stops and reaps the child in :meth:`close`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from istiolab import processes
from istiolab.errors import SandboxError
from istiolab.sim.scenario import Scenario

__all__ = ["PodSpec", "UpstreamPods", "scenario_pods"]


@dataclass(frozen=True)
class PodSpec:
    """One pod of the scenario as the upstream server runs it.

    Attributes:
        name: The simulator's pod name, ``<service>-<version>-<n>``.
        host: The service FQDN (which clusters it can belong to).
        labels: Pod labels, ``app`` included (which subsets select it).
        concurrency: Requests served at once.
        service_time: The version's service-time distribution, as JSON.
        errors: The version's error models, as JSON.
    """

    name: str
    host: str
    labels: tuple[tuple[str, str], ...]
    concurrency: int
    service_time: dict[str, Any]
    errors: tuple[dict[str, Any], ...]


def scenario_pods(scenario: Scenario) -> list[PodSpec]:
    """The scenario's initial pods, named and ordered as the simulator names and orders them."""
    out: list[PodSpec] = []
    for svc in scenario.services:
        for ver in svc.versions:
            labels = {"app": svc.name, **ver.pod_labels}
            for i, _az in enumerate(ver.pod_azs(scenario.ingress.azs)):
                out.append(
                    PodSpec(
                        name=f"{svc.name}-{ver.name}-{i}",
                        host=svc.host,
                        labels=tuple(sorted(labels.items())),
                        concurrency=ver.concurrency,
                        service_time=ver.service_time.model_dump(mode="json", exclude_none=True),
                        errors=tuple(e.model_dump(mode="json") for e in ver.errors),
                    )
                )
    return out


class UpstreamPods:
    """The upstream server child process, for any number of replications one after another.

    Each replication starts with :meth:`go` (fresh draws and counters in every pod) and ends
    with :meth:`received`.

    Args:
        pods: The pods to serve, in order.
        seed: Seeds the draws until the first :meth:`go`.
        warmup_s: Requests arriving before this (from :meth:`go`) are not counted.
        startup_timeout_s: Limit for the child to report its ports.
    """

    def __init__(
        self,
        pods: list[PodSpec],
        *,
        seed: int,
        warmup_s: float,
        startup_timeout_s: float = 20.0,
    ) -> None:
        self._pods = pods
        self._seed = seed
        self._warmup_s = warmup_s
        self._timeout = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._stderr: IO[bytes] | None = None
        self.ports: list[int] = []
        self.series: list[list[int]] = []
        """After :meth:`received`: per pod, requests received in each ``bin_s`` of the run."""

    def __enter__(self) -> UpstreamPods:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the child and wait for its ports.

        Raises:
            SandboxError: The child failed or did not report its ports in time.
        """
        processes.install_exit_hooks()
        processes.track(self)
        try:
            self._tmp = processes.make_tempdir("conform-upstream-")
            self._stderr = open(self._tmp / "server.log", "wb")  # noqa: SIM115 - closed in close()
            script = str(Path(__file__).with_name("_server.py"))
            self._proc = processes.popen(
                [sys.executable, "-s", script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                close_fds=True,
            )
            spec = {
                "seed": self._seed,
                "warmup_s": self._warmup_s,
                "pods": [
                    {
                        "name": p.name,
                        "concurrency": p.concurrency,
                        "service_time": p.service_time,
                        "errors": list(p.errors),
                    }
                    for p in self._pods
                ],
            }
            self._send(spec)
            hello = json.loads(self._read_line(time.monotonic() + self._timeout))
            self.ports = [int(p) for p in hello["ports"]]
        except BaseException:
            self.close()
            raise

    def _send(self, obj: dict[str, Any]) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(obj).encode() + b"\n")
        self._proc.stdin.flush()

    def _log_tail(self) -> str:
        if self._tmp is None:
            return "(no output)"
        try:
            text = (self._tmp / "server.log").read_bytes()[-3000:].decode("utf-8", "replace")
        except OSError:
            return "(no output)"
        return text.strip() or "(no output)"

    def _read_line(self, deadline: float) -> bytes:
        assert self._proc is not None
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(f"the upstream pods did not answer in time:\n{self._log_tail()}")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise SandboxError(f"the upstream pods exited:\n{self._log_tail()}")
                buf += chunk
        return buf.split(b"\n", 1)[0]

    def go(self, t0: float, seed: int, bin_s: float = 0.1) -> None:
        """Start a replication: re-seed every pod and start the run's clock.

        Args:
            t0: ``time.monotonic()`` of the load's time zero.
            seed: Seeds every pod's service-time and error draws.
            bin_s: Width of the bins of :attr:`series`.
        """
        self._send({"t0": t0, "seed": seed, "bin_s": bin_s})

    def received(self) -> list[int]:
        """End the replication: requests each pod received after the warm-up.

        Raises:
            SandboxError: The child did not answer.
        """
        self._send({"cmd": "stop"})
        data = json.loads(self._read_line(time.monotonic() + 10.0))
        self.series = [[int(n) for n in pod] for pod in data.get("series", [])]
        return [int(n) for n in data["received"]]

    def close(self) -> None:
        """Stop and reap the child, delete its temp dir (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            processes.stop_process(proc, 2.0)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        processes.untrack(self)
