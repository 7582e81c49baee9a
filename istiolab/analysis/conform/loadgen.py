"""The load generator: the scenario's arrival process, open loop, over real HTTP/1.1 connections.

Arrival times and request attributes come from the simulator's own traffic model
(:class:`~istiolab.sim.workload.Arrivals`, :class:`~istiolab.sim.workload.RequestFactory`), so
both sides see the same process. The generator is open loop: a request is sent at its arrival
time whatever happened to earlier ones, and its latency is measured from the *scheduled* arrival
(not from when the generator got round to sending it), so a generator that falls behind shows up
as lag instead of silently shortening latencies. :attr:`LoadRun.lag_p99_s` is what the caller
uses to exclude runs where it fell behind.

Connections follow ``traffic[].connections``: ``per_request`` opens one connection per request;
``keepalive`` keeps ``pool_size`` lanes, each request takes a lane uniformly (as the simulator
does) and reuses its idle connection. An HTTP/1.1 connection carries one request at a time, so
when the lane's connection is busy the request opens another one for that lane, keeping the
load open loop (the simulator lets a connection carry overlapping requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from istiolab.envoy.accesslog import REQUEST_ID_HEADER
from istiolab.sim.scenario import Scenario
from istiolab.sim.workload import Arrivals, RequestFactory

__all__ = ["LoadRun", "Planned", "Sent", "plan_arrivals", "run_load"]

_CLIENT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Planned:
    """One request the generator will send.

    Attributes:
        t: Arrival time, seconds from the run's start.
        population: Index of its traffic population.
        method: HTTP method.
        path: Request path.
        host: ``Host`` header.
        headers: Other headers.
    """

    t: float
    population: int
    method: str
    path: str
    host: str
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Sent:
    """What happened to one request.

    Attributes:
        req_id: The ``x-istiolab-req`` header value (joins the access log).
        t: Scheduled arrival, seconds from the run's start.
        lag_s: How late the generator started sending it.
        status: HTTP status, 0 when the connection failed or the client timed out.
        latency_s: From the scheduled arrival to the last byte of the response.
        pod: The pod that answered (``x-istiolab-pod``), "" for local replies.
    """

    req_id: str
    t: float
    lag_s: float
    status: int = 0
    latency_s: float = float("nan")
    pod: str = ""


@dataclass
class LoadRun:
    """One load run's requests and how well the generator kept up.

    Attributes:
        sent: Every planned request, in arrival order.
        t0: ``time.monotonic()`` of the run's time zero.
        lag_p99_s: 99th percentile of the send lag.
        lag_max_s: Largest send lag.
    """

    sent: list[Sent] = field(default_factory=list)
    t0: float = 0.0
    lag_p99_s: float = 0.0
    lag_max_s: float = 0.0


def plan_arrivals(scenario: Scenario, seed: int, duration_s: float) -> list[Planned]:
    """Every request of every population arriving in ``[0, duration_s)``, sorted by time.

    Args:
        scenario: The scenario (its ``traffic``).
        seed: Seeds the arrival and request draws.
        duration_s: Length of the run.

    Returns:
        The planned requests.
    """
    out: list[Planned] = []
    for k, spec in enumerate(scenario.traffic):
        arrivals = Arrivals(
            spec.arrival, np.random.default_rng([seed, k, 1]), base_dir=scenario.base_dir
        )
        factory = RequestFactory(
            spec, np.random.default_rng([seed, k, 2]), azs=list(scenario.ingress.azs)
        )
        t = 0.0
        while True:
            gap = arrivals.next_gap(t)
            if gap is None:
                break
            t += gap
            if t >= duration_s:
                break
            a = factory.make(t)
            out.append(Planned(t, k, a.method, a.path, a.host, tuple(sorted(a.headers.items()))))
    out.sort(key=lambda p: p.t)
    return out


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bool]:
    """Status, headers and whether the connection can be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    reusable = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            await reader.readexactly(n)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()
        reusable = False
    return status, headers, reusable


class _Client:
    def __init__(self, port: int, keepalive: bool, lanes: int, seed: int) -> None:
        self.port = port
        self.keepalive = keepalive
        self.idle: list[list[_Conn]] = [[] for _ in range(max(lanes, 1))]
        self.u = np.random.default_rng([seed, 99]).random
        self.open: set[asyncio.StreamWriter] = set()

    async def send(self, p: Planned, rec: Sent, t0: float) -> None:
        lane = int(self.u() * len(self.idle)) if self.keepalive else 0
        conn: _Conn | None = None
        pool = self.idle[lane]
        if self.keepalive and pool:
            conn = pool.pop()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
                self.open.add(conn[1])
            reader, writer = conn
            lines = [f"{p.method} {p.path} HTTP/1.1", f"host: {p.host}"]
            lines += [f"{k}: {v}" for k, v in p.headers]
            lines.append(f"{REQUEST_ID_HEADER}: {rec.req_id}")
            if not self.keepalive:
                lines.append("connection: close")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, headers, reusable = await asyncio.wait_for(
                _read_response(reader), _CLIENT_TIMEOUT_S
            )
            rec.latency_s = time.monotonic() - t0 - rec.t
            rec.status = status
            rec.pod = headers.get("x-istiolab-pod", "")
            if self.keepalive and reusable:
                pool.append(conn)
                conn = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            rec.status = 0
            rec.latency_s = time.monotonic() - t0 - rec.t
        finally:
            if conn is not None:
                self.open.discard(conn[1])
                conn[1].close()

    def close(self) -> None:
        for w in self.open:
            w.close()
        self.open.clear()


async def _run(plan: list[Planned], port: int, scenario: Scenario, seed: int, t0: float) -> LoadRun:
    conn_specs = [t.connections for t in scenario.traffic]
    clients = [
        _Client(port, c.mode == "keepalive", c.pool_size, seed + 7919 * k)
        for k, c in enumerate(conn_specs)
    ]
    run = LoadRun(t0=t0)
    tasks: list[asyncio.Task[None]] = []
    try:
        for p in plan:
            wait = t0 + p.t - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            rec = Sent(uuid.uuid4().hex, p.t, max(0.0, time.monotonic() - t0 - p.t))
            run.sent.append(rec)
            tasks.append(asyncio.ensure_future(clients[p.population].send(p, rec, t0)))
        if tasks:
            await asyncio.wait(tasks, timeout=_CLIENT_TIMEOUT_S + 5.0)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients:
            c.close()
    lags = np.array([r.lag_s for r in run.sent]) if run.sent else np.zeros(1)
    run.lag_p99_s = float(np.quantile(lags, 0.99))
    run.lag_max_s = float(lags.max())
    return run


def run_load(plan: list[Planned], port: int, scenario: Scenario, seed: int, t0: float) -> LoadRun:
    """Send the planned requests to ``127.0.0.1:port`` and wait for every answer.

    Args:
        plan: From :func:`plan_arrivals`.
        port: Envoy's listener port.
        scenario: The scenario (its connection behaviour).
        seed: Seeds the lane choice.
        t0: ``time.monotonic()`` of the run's time zero (in the near future).

    Returns:
        The run's requests with their outcomes and the generator's lag.
    """
    return asyncio.run(_run(plan, port, scenario, seed, t0))
