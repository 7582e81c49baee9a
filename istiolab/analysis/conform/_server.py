"""Upstream pods for ``istiolab conform`` (private; runs as a child process).

Run as ``python _server.py`` (by file path). Each of a scenario's pods gets its own asyncio
HTTP/1.1 listener on ``127.0.0.1`` that behaves like the simulator's pod
(:mod:`istiolab.sim.stages.backend`): a FIFO queue with ``concurrency`` servers, a service time
drawn from the version's distribution (seeded per pod), and the version's error models, decided
after the service as the simulator does (``first_n`` counts served requests; ``status: 0``
resets the connection; ``start_s``/``end_s`` windows count from the run's start).

Protocol with the parent:

* stdin, first line: ``{"seed": int, "warmup_s": float, "pods": [{"name", "concurrency",
  "service_time": <DistSpec as JSON>, "errors": [<ErrorSpec as JSON>, ...]}, ...]}``.
* stdout, one line once every port is bound: ``{"ports": [port, ...]}`` in pod order.
* then, once per replication: a line ``{"t0": <time.monotonic() of the run's start>, "seed":
  int}`` starts it (CLOCK_MONOTONIC is system-wide, so the parent's clock is ours): every pod's
  draws are re-seeded and its counters restart, as if the pods had just started; the next line
  (anything) ends it, and the server prints ``{"received": [n, ...], "series": [[n, ...],
  ...]}``: the requests each pod received at or after the warm-up, and per pod the requests
  received in each ``bin_s`` (from the start line, default 0.1 s) from the run's start on.
* EOF: exit.

The process also exits when stdin reaches EOF (its parent died), next to ``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import numpy as np

from istiolab.sim.dists import DistSpec

_MAX_HEAD = 65536


class _Pod:
    """One pod: a listener, its FIFO servers and its error models."""

    def __init__(self, spec: dict[str, Any], seed: int, index: int, clock: _Clock) -> None:
        self.name = str(spec["name"])
        self.index = index
        self.sem = asyncio.Semaphore(int(spec["concurrency"]))
        self.dist = DistSpec.model_validate(spec["service_time"]).build()
        self.errors: list[dict[str, Any]] = list(spec.get("errors") or [])
        self.clock = clock
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Fresh draws and counters, as a newly started pod."""
        self.service = self.dist.sampler(np.random.default_rng([seed, self.index, 1]))
        self.uniform = np.random.default_rng([seed, self.index, 2]).random
        self.served = 0
        self.received = 0
        self.series: list[int] = []

    def error_status(self, now: float) -> int:
        # Same order and rules as the simulator's Pod._error_status.
        for e in self.errors:
            start, end = e.get("start_s"), e.get("end_s")
            if start is not None and now < start:
                continue
            if end is not None and now >= end:
                continue
            if e.get("first_n") and self.served <= int(e["first_n"]):
                return int(e.get("status", 503))
            p = float(e.get("probability") or 0.0)
            if p > 0 and self.uniform() < p:
                return int(e.get("status", 503))
        return 200

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                now = self.clock.now()
                if now >= self.clock.warmup_s:
                    self.received += 1
                if now >= 0:
                    k = int(now / self.clock.bin_s)
                    if k >= len(self.series):
                        self.series.extend([0] * (k + 1 - len(self.series)))
                    self.series[k] += 1
                async with self.sem:
                    await asyncio.sleep(self.service())
                self.served += 1
                status = self.error_status(self.clock.now())
                if status == 0:
                    writer.transport.abort()
                    return
                body = b"ok\n" if status < 400 else b"error\n"
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                    b"x-istiolab-pod: %s\r\n\r\n%s" % (status, len(body), self.name.encode(), body)
                )
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()


class _Clock:
    def __init__(self, warmup_s: float) -> None:
        self.t0: float | None = None
        self.warmup_s = warmup_s
        self.bin_s = 0.1

    def now(self) -> float:
        # Before the run starts, time is "before the warm-up" and before every window.
        return -1.0 if self.t0 is None else time.monotonic() - self.t0


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _main() -> None:
    stdin = await _stdin_lines()
    spec = json.loads(await stdin.readline())
    clock = _Clock(float(spec.get("warmup_s", 0.0)))
    pods = [_Pod(p, int(spec.get("seed", 0)), i, clock) for i, p in enumerate(spec["pods"])]
    servers = [
        await asyncio.start_server(p.handle, "127.0.0.1", 0, limit=_MAX_HEAD, backlog=1024)
        for p in pods
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    sys.stdout.write(json.dumps({"ports": ports}) + "\n")
    sys.stdout.flush()
    while True:
        line = await stdin.readline()
        if not line:
            break
        start = json.loads(line)
        for p in pods:
            p.reset(int(start.get("seed", 0)))
        clock.bin_s = float(start.get("bin_s", 0.1))
        clock.t0 = float(start["t0"])
        end = await stdin.readline()
        out = {"received": [p.received for p in pods], "series": [p.series for p in pods]}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        clock.t0 = None
        if not end:
            break
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(_main())
