"""The AWS load balancer in front of the ingress node pool (facts §5).

* **NLB** picks a target per TCP *connection* by a flow hash (here: a uniform draw per new
  connection, which is what a hash of random client ports amounts to), inside the client's AZ
  unless cross-zone is on. Keep-alive connections stay on their target, so per-node load is as
  lumpy as the multinomial spread of connections.
* **ALB** picks per *request*: round robin or least outstanding requests; cross-zone on.
* **CLB** (HTTP listener) picks per request by least outstanding requests; beyond
  ``clb_target_capacity`` outstanding requests on every target, requests wait in the surge
  queue (1024), and beyond that are rejected with 503 (spillover).

Targets are ingress nodes (``instance``: NodePort and a kube-proxy hop; with ``Cluster`` the hop
may go to a gateway pod on another node, with ``Local`` only nodes with a gateway pod pass the
health check) or gateway pods (``ip``). Health checks take a failed target out after
``unhealthy_threshold × interval``; with no healthy target in an AZ the AZ leaves DNS; with no
healthy target at all the LB fails open.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.scenario import AwsSpec
from istiolab.sim.stages.ingress import GatewayPod, IngressNode


class Target:
    """An LB target: an ingress node (instance mode) or a gateway pod (ip mode)."""

    __slots__ = ("az", "failing_since", "healthy", "name", "node", "outstanding", "pod")

    def __init__(self, name: str, az: str, node: IngressNode, pod: GatewayPod | None) -> None:
        self.name = name
        self.az = az
        self.node = node
        self.pod = pod
        self.healthy = True
        self.outstanding = 0
        self.failing_since: float | None = None

    def passes_check(self, local: bool) -> bool:
        """What a health check sees right now."""
        if not self.node.alive:
            return False
        if self.pod is None and local:
            return bool(self.node.pods)
        return True


class Connection:
    """A client TCP connection (keep-alive pool member)."""

    __slots__ = ("created", "pod", "requests", "target", "worker")

    def __init__(self, target: Target, pod: GatewayPod | None, worker: int, created: float) -> None:
        self.target = target
        self.pod = pod
        self.worker = worker
        self.created = created
        self.requests = 0


class LoadBalancer:
    """NLB / ALB / CLB in front of the ingress pool."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: AwsSpec,
        targets: list[Target],
        all_pods: list[GatewayPod],
        *,
        uniform: Callable[[], float],
        lb_latency: Callable[[], float],
        kube_proxy_latency: Callable[[], float],
        cross_node_latency: Callable[[], float],
        cross_az_latency: Callable[[], float],
        workers: int,
    ) -> None:
        self.env = env
        self.spec = spec
        self.targets = targets
        self.all_pods = all_pods
        self._u = uniform
        self._lb_lat = lb_latency
        self._kp_lat = kube_proxy_latency
        self._node_lat = cross_node_latency
        self._az_lat = cross_az_latency
        self.workers = workers
        self.cross_zone = spec.cross_zone_enabled
        self.local = spec.external_traffic_policy == "Local"
        self._rr = 0
        self.surge = 0

    # -- health checks ---------------------------------------------------------------------

    def health_checker(self) -> Generator[Any, Any, None]:
        """Periodic health checks flipping targets after the thresholds."""
        hc = self.spec.health_check
        while True:
            yield self.env.timeout(hc.interval_s)
            now = self.env.now
            for t in self.targets:
                ok = t.passes_check(self.local)
                if ok:
                    t.failing_since = None
                    if not t.healthy:
                        t.healthy = True  # healthy_threshold checks, approximated as one
                elif t.failing_since is None:
                    t.failing_since = now
                if (
                    t.healthy
                    and t.failing_since is not None
                    and now - t.failing_since >= (hc.unhealthy_threshold - 1) * hc.interval_s
                ):
                    t.healthy = False

    def mark_initial_health(self) -> None:
        """Targets that fail the check from the start (e.g. ``Local`` without a pod) are out."""
        for t in self.targets:
            t.healthy = t.passes_check(self.local)

    # -- selection -------------------------------------------------------------------------

    def candidates(self, az: str) -> list[Target]:
        """Healthy targets the client's LB node may use (DNS fail-over, then fail open)."""
        healthy = [t for t in self.targets if t.healthy]
        if not self.cross_zone:
            local = [t for t in healthy if t.az == az]
            if local:
                return local
        if healthy:
            return healthy
        return list(self.targets)  # fail open

    def choose(self, az: str) -> Target:
        """Pick a target for a new connection (NLB) or a request (ALB/CLB)."""
        cands = self.candidates(az)
        if self.spec.lb == "alb" and self.spec.alb_algorithm == "round_robin":
            self._rr = (self._rr + 1) % len(cands)
            return cands[self._rr]
        if self.spec.lb in ("clb", "alb"):
            best = min(t.outstanding for t in cands)
            ties = [t for t in cands if t.outstanding == best]
            return ties[int(self._u() * len(ties))]
        return cands[int(self._u() * len(cands))]

    def gateway_for(self, target: Target) -> tuple[GatewayPod | None, float]:
        """The gateway pod kube-proxy forwards to, and the extra latency of the hop."""
        if target.pod is not None:
            return (target.pod if target.pod.alive else None), 0.0
        node = target.node
        extra = self._kp_lat()
        if self.local or not self.all_pods:
            pods = [p for p in node.pods if p.alive]
            return (pods[int(self._u() * len(pods))] if pods else None), extra
        live = [p for p in self.all_pods if p.alive]
        if not live:
            return None, extra
        pod = live[int(self._u() * len(live))]
        if pod.node is not node:
            extra += self._node_lat()
            if pod.az != node.az:
                extra += self._az_lat()
        return pod, extra

    def new_connection(self, req: SimRequest) -> Connection:
        """A new client connection: target, kube-proxy pick (conntrack keeps it), worker."""
        target = self.choose(req.client_az)
        pod, _ = self.gateway_for(target)
        return Connection(target, pod, int(self._u() * self.workers), self.env.now)

    def handle(
        self, req: SimRequest, out: Outcome, conn: Connection | None
    ) -> Generator[Any, Any, tuple[GatewayPod | None, int, Target]]:
        """Carry a request to a gateway pod.

        Returns the pod (None on failure), the worker and the target (whose ``outstanding``
        the caller decrements when the request is done).
        """
        env = self.env
        per_request = self.spec.lb != "nlb" or conn is None
        if per_request:
            target = self.choose(req.client_az)
            pod, extra = self.gateway_for(target)
            worker = int(self._u() * self.workers)
        else:
            assert conn is not None
            target, pod, worker = conn.target, conn.pod, conn.worker
            extra = self._kp_lat() if target.pod is None else 0.0
        lat = self._lb_lat() + extra
        if target.az != req.client_az:
            lat += self._az_lat()
        out.pending += lat
        if self.spec.lb == "clb" and target.outstanding >= self.spec.clb_target_capacity:
            if self.surge >= self.spec.surge_queue:
                out.status = 503
                out.flag("SPILLOVER")
                return None, 0, target
            self.surge += 1
            if out.pending > 0:
                yield env.timeout(out.pending)
                out.pending = 0.0
            try:
                while target.outstanding >= self.spec.clb_target_capacity:
                    yield env.timeout(0.001)
            finally:
                self.surge -= 1
        if pod is None or not target.node.alive or not pod.alive:
            # The target is gone before the health check noticed: the client sees a failure.
            out.status = 502
            out.flag("LBF")
            return None, 0, target
        target.outstanding += 1
        return pod, worker, target
