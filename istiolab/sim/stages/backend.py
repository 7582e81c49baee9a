"""Backend pods.

A FIFO queue per pod with ``concurrency`` servers, service times, error models, an optional
Istio sidecar hop, and a life cycle (start-up, crash, endpoint removal).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from istiolab.sim.scenario import ErrorSpec, ServiceSpec, VersionSpec
from istiolab.sim.stages._server import FifoServer

Sampler = Callable[[], float]


class Pod:
    """One backend pod.

    Attributes:
        name: ``<service>-<version>-<n>``.
        service: Service name; ``host`` its FQDN.
        version: Version name.
        labels: Pod labels (``app`` plus the version's labels).
        az: Availability zone.
        alive: False after a crash (connections are refused).
        in_endpoints: Whether Envoy still balances over it (lags ``alive`` by the endpoint delay).
        active: Requests in flight from the gateway (LEAST_REQUEST reads it).
    """

    __slots__ = (
        "_errors",
        "_fast_errors",
        "_rng_u",
        "_service",
        "_sidecar_cpu",
        "_sidecar_lat",
        "_stop_on_cancel",
        "active",
        "alive",
        "az",
        "env",
        "extra_errors",
        "host",
        "in_endpoints",
        "labels",
        "name",
        "node_alive",
        "ready_at",
        "served",
        "server",
        "service",
        "sidecar",
        "version",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        service: ServiceSpec,
        version: VersionSpec,
        az: str,
        *,
        service_time: Sampler,
        uniform: Sampler,
        sidecar_cpu: Sampler | None,
        sidecar_latency: Sampler | None,
        ready_at: float = 0.0,
    ) -> None:
        self.env = env
        self.name = name
        self.service = service.name
        self.host = service.host
        self.version = version.name
        self.labels = {"app": service.name, **version.pod_labels}
        self.az = az
        self.alive = True
        self.node_alive = True
        self.in_endpoints = True
        self.ready_at = ready_at
        self.active = 0
        self.served = 0
        self.server = FifoServer(env, version.concurrency)
        self.sidecar = FifoServer(env, service.sidecar_concurrency) if service.sidecar else None
        self._service = service_time
        self._sidecar_cpu = sidecar_cpu
        self._sidecar_lat = sidecar_latency
        # errors answered before any work (cost "none") are drawn before the queue; the others
        # after the service time, as before (so the default draws the same random numbers)
        self._errors: list[ErrorSpec] = [e for e in version.errors if e.cost == "service_time"]
        self._fast_errors: list[ErrorSpec] = [e for e in version.errors if e.cost == "none"]
        self._stop_on_cancel = version.on_cancel == "stop"
        self.extra_errors: list[tuple[float, float, float, int]] = []  # (start, end, p, status)
        self._rng_u = uniform

    @property
    def ready(self) -> bool:
        """Alive, started, and in the endpoints."""
        return self.alive and self.in_endpoints and self.env.now >= self.ready_at

    def busy(self) -> float:
        """Servers in use (for utilisation)."""
        return float(self.server.count)

    def capacity(self) -> float:
        """Servers."""
        return float(self.server.capacity)

    def serve(
        self, connect_timeout_s: float, pre_s: float = 0.0, deadline: float | None = None
    ) -> Generator[Any, Any, tuple[int, str]]:
        """Serve one upstream request after *pre_s* of network latency.

        Returns ``(status, flag)`` (flag "" for none). The sidecar's extra latency is charged
        on the response path: see :meth:`tail_latency`.

        A dead pod whose node is up refuses the connection at once (``UF``); when its node is
        gone the connection attempt times out after *connect_timeout_s* (``UF``).

        With a *deadline* (per-try or route timeout), the request returns ``(504, "UT")`` at the
        deadline if it is not done; the work already started at the pod goes on in a detached
        process (Envoy resets the stream, the application does not notice). This runs inline
        and costs extra events only when a queue wait or the deadline actually intervenes.
        """
        env = self.env
        if not self.alive:
            wait = pre_s + (connect_timeout_s if not self.node_alive else 0.0)
            if deadline is not None and env.now + wait > deadline:
                yield env.timeout(max(0.0, deadline - env.now))
                return 504, "UT"
            if wait > 0:
                yield env.timeout(wait)
            return 503, "UF"
        if self.sidecar is not None:
            if pre_s > 0:
                if deadline is not None and env.now + pre_s > deadline:
                    yield env.timeout(max(0.0, deadline - env.now))
                    return 504, "UT"
                yield env.timeout(pre_s)
                pre_s = 0.0
            cpu = self._sidecar_cpu() if self._sidecar_cpu is not None else 0.0
            if cpu > 0:
                ev = self.sidecar.acquire()
                if ev is not None:
                    if deadline is None:
                        yield ev
                    else:
                        yield ev | env.timeout(max(0.0, deadline - env.now))
                        if not ev.triggered:
                            env.process(self._rest(ev, cpu, True))
                            return 504, "UT"
                if deadline is not None and env.now + cpu > deadline:
                    left = env.now + cpu - deadline
                    yield env.timeout(max(0.0, deadline - env.now))
                    env.process(self._rest(None, left, True))
                    return 504, "UT"
                yield env.timeout(cpu)
                self.sidecar.release()
        if pre_s > 0:
            if deadline is not None and env.now + pre_s > deadline:
                yield env.timeout(max(0.0, deadline - env.now))
                return 504, "UT"
            yield env.timeout(pre_s)
        if self._fast_errors:
            status = self._error_status(self._fast_errors, self.served + 1, extra=False)
            if status != 200:
                self.served += 1
                return (503, "UC") if status == 0 else (status, "")
        ev = self.server.acquire()
        if ev is not None:
            if deadline is None:
                yield ev
            else:
                yield ev | env.timeout(max(0.0, deadline - env.now))
                if not ev.triggered:
                    env.process(self._rest(ev, None, False))
                    return 504, "UT"
        t = self._service()
        if deadline is not None and env.now + t > deadline:
            left = env.now + t - deadline
            yield env.timeout(max(0.0, deadline - env.now))
            # on_cancel "stop": the application notices the reset and drops the work
            env.process(self._finish_service(0.0 if self._stop_on_cancel else left))
            return 504, "UT"
        if t > 0:
            yield env.timeout(t)
        self.server.release()
        self.served += 1
        if not self.alive:
            return 503, "UC"  # crashed while serving: the connection is reset
        status = self._error_status(self._errors, self.served)
        if status == 0:
            return 503, "UC"
        return status, ""

    def _finish_service(self, left: float) -> Generator[Any, Any, None]:
        """The rest of a service the client stopped waiting for."""
        if left > 0:
            yield self.env.timeout(left)
        self.server.release()
        self.served += 1

    def _rest(
        self, queued: Any, sidecar_cpu_left: float | None, in_sidecar: bool
    ) -> Generator[Any, Any, None]:
        """The rest of a request after its client timed out: the pod still does the work."""
        env = self.env
        if in_sidecar:
            assert self.sidecar is not None
            if queued is not None:
                yield queued
                sidecar_cpu_left = self._sidecar_cpu() if self._sidecar_cpu is not None else 0.0
            if sidecar_cpu_left:
                yield env.timeout(sidecar_cpu_left)
            self.sidecar.release()
            ev = self.server.acquire()
            if ev is not None:
                yield ev
        elif queued is not None:
            yield queued
        t = 0.0 if self._stop_on_cancel else self._service()
        if t > 0:
            yield env.timeout(t)
        self.server.release()
        self.served += 1

    def tail_latency(self) -> float:
        """Response-path latency of this pod's sidecar (0 without a sidecar)."""
        return self._sidecar_lat() if self._sidecar_lat is not None else 0.0

    def _error_status(self, errors: list[ErrorSpec], ordinal: int, *, extra: bool = True) -> int:
        """The status of the request that is the pod's *ordinal*-th (200 when none fails it)."""
        now = self.env.now
        for e in errors:
            if e.start_s is not None and now < e.start_s:
                continue
            if e.end_s is not None and now >= e.end_s:
                continue
            if e.first_n and ordinal <= e.first_n:
                return e.status
            if e.probability > 0 and self._rng_u() < e.probability:
                return e.status
        if not extra:
            return 200
        for start, end, p, status in self.extra_errors:
            if start <= now < end and self._rng_u() < p:
                return status
        return 200


class PodRegistry:
    """Every pod of every service, with a change counter so clusters can cache host lists."""

    def __init__(self) -> None:
        self.pods: list[Pod] = []
        self.generation = 0

    def add(self, pod: Pod) -> None:
        """Register a pod."""
        self.pods.append(pod)
        self.generation += 1

    def changed(self) -> None:
        """Note that a pod's membership changed."""
        self.generation += 1

    def select(self, host: str, labels: tuple[tuple[str, str], ...]) -> list[Pod]:
        """Pods of *host* whose labels include *labels*, in creation order."""
        return [
            p for p in self.pods if p.host == host and all(p.labels.get(k) == v for k, v in labels)
        ]


def uniform_sampler(rng: np.random.Generator, block: int = 4096) -> Sampler:
    """Buffered U[0, 1) draws from *rng* (one numpy call per *block* draws)."""
    buf: list[float] = []

    def draw() -> float:
        nonlocal buf
        if not buf:
            buf = rng.random(block).tolist()
            buf.reverse()
        return buf.pop()

    return draw


def int_sampler(rng: np.random.Generator, high: int, block: int = 4096) -> Callable[[], int]:
    """Buffered integers in [0, high)."""
    buf: list[int] = []

    def draw() -> int:
        nonlocal buf
        if not buf:
            buf = rng.integers(0, high, size=block).tolist()
            buf.reverse()
        return buf.pop()

    return draw
