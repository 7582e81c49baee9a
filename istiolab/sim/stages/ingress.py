"""The Istio ingress node pool: nodes in AZs, gateway pods (Envoys) with worker threads.

A downstream connection is pinned to one worker of one gateway pod; each request costs CPU time
on that worker (FIFO), plus the proxy's extra latency, and is then routed by the pod's
:class:`~istiolab.sim.stages.router.Router`. When a node has more workers than cores, CPU time
is stretched by workers/cores (processor sharing, approximately).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.stages._server import FifoServer
from istiolab.sim.stages.router import Router


class IngressNode:
    """A node of the ingress pool.

    Attributes:
        alive: False once it died (an ``az_loss`` or ``node_loss`` event).
        died_at: When it died (infinity while alive): requests it was carrying then lose
            their answer.
        failure: What a client's packets to it meet once it is dead: ``blackhole`` (nothing
            answers) or ``reset`` (a TCP RST); read only for traffic with a client model.
    """

    __slots__ = ("alive", "az", "died_at", "failure", "name", "pods")

    def __init__(self, name: str, az: str) -> None:
        self.name = name
        self.az = az
        self.alive = True
        self.died_at = math.inf
        self.failure = "blackhole"
        self.pods: list[GatewayPod] = []

    def kill(self, now: float, failure: str) -> None:
        """The node dies at *now*; clients' packets to it meet *failure* from then on."""
        self.alive = False
        self.died_at = now
        self.failure = failure


class GatewayPod:
    """One istio-ingressgateway pod: an Envoy with ``concurrency`` workers."""

    __slots__ = (
        "_cpu",
        "_cpu_scale",
        "_latency",
        "env",
        "name",
        "node",
        "ordinal",
        "router",
        "workers",
    )

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        node: IngressNode,
        workers: int,
        router: Router,
        *,
        cpu: Callable[[], float] | None,
        latency: Callable[[], float] | None,
        cpu_scale: float = 1.0,
        ordinal: int = 0,
    ) -> None:
        self.env = env
        self.name = name
        self.node = node
        self.workers = [FifoServer(env, 1) for _ in range(workers)]
        self.router = router
        self._cpu = cpu
        self._latency = latency
        self._cpu_scale = cpu_scale
        self.ordinal = ordinal

    @property
    def alive(self) -> bool:
        """The pod runs while its node does."""
        return self.node.alive

    @property
    def az(self) -> str:
        """The node's AZ."""
        return self.node.az

    def busy(self) -> float:
        """Busy workers."""
        return float(sum(w.count for w in self.workers))

    def handle(self, req: SimRequest, out: Outcome, worker: int) -> Generator[Any, Any, None]:
        """Process a request on *worker*, then route it.

        Records the ``ingress`` stage time: queueing and CPU on the worker plus the proxy's
        extra latency (the LB hop's latency, waited here, belongs to the ``lb`` stage).
        """
        env = self.env
        out.ingress_node = self.node.name
        out.ingress_az = self.node.az
        spent = 0.0
        if self._cpu is not None:
            t = self._cpu() * self._cpu_scale
            if t > 0:
                if out.pending > 0:
                    yield env.timeout(out.pending)
                    out.pending = 0.0
                t0 = env.now
                w = self.workers[worker % len(self.workers)]
                ev = w.acquire()
                if ev is not None:
                    yield ev
                yield env.timeout(t)
                w.release()
                spent = env.now - t0
        if self._latency is not None:
            lat = self._latency()
            out.tail += lat  # charged on the response path (see Outcome.tail)
            spent += lat
        out.ingress_s = spent
        # Envoy's load balancers are per worker thread: the upstream pick reads this.
        req.worker = self.ordinal * 4096 + worker % len(self.workers)
        upstream = self.router.dispatch(req, out, az=self.node.az)
        if upstream is not None:
            yield from upstream
