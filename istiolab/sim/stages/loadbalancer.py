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
``unhealthy_threshold × interval`` (between ``(threshold − 1) × interval`` and ``threshold ×
interval`` after the failure, as the checks tick on their own clock).

Two zonal models:

* Idealised (traffic without a client model): the client's zone is a preference only. With no
  healthy target in it the request goes to a healthy target elsewhere at once (as if the
  zone left DNS and every client re-resolved instantly); with none at all the LB fails open.
* Zonal (traffic with ``traffic[].client``), as AWS documents it: every zone has one LB node
  with its own address. With cross-zone off a node sends only to healthy targets in its own
  zone; with it on, to healthy targets in any zone. A node with no healthy target it may use
  sends to all the targets it may use, healthy or not ("routing failover", the target group
  health fail-open). A zone is unhealthy when its node is down or it has no healthy target it
  may use; ``aws.dns_failover_delay_s`` later its address leaves the DNS answer ("DNS
  failover"), and comes back as long after it is healthy again. With every zone unhealthy,
  DNS answers with all of them. Sources: Elastic Load Balancing docs, "Cross-zone load
  balancing" and "Target group health" (DNS failover, routing failover); AWS Knowledge Center
  "How do ELB DNS and traffic flow work with different cross-zone configurations" (a zone
  stays in DNS with a healthy target in its own zone when cross-zone is off, in any zone when
  it is on). An NLB resets the connections to a target it marks unhealthy (the target group
  attribute ``target_health_state.unhealthy.connection_termination.enabled``, on by default).
  An NLB passes the client's TCP connection through, so a dead target is the client's own
  connect timeout (black hole) or refusal; an ALB or CLB ends the client's connection itself
  and answers a request it cannot deliver with 502 ``LBF`` at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.scenario import AwsSpec
from istiolab.sim.stages.ingress import GatewayPod, IngressNode


class Target:
    """An LB target: an ingress node (instance mode) or a gateway pod (ip mode)."""

    __slots__ = (
        "az",
        "down_event",
        "failing_since",
        "healthy",
        "name",
        "node",
        "outstanding",
        "pod",
    )

    def __init__(self, name: str, az: str, node: IngressNode, pod: GatewayPod | None) -> None:
        self.name = name
        self.az = az
        self.node = node
        self.pod = pod
        self.healthy = True
        self.outstanding = 0
        self.failing_since: float | None = None
        # Triggered when the LB marks the target unhealthy (and resets its connections).
        self.down_event: simpy.Event | None = None

    @property
    def dead(self) -> bool:
        """Nothing answers on it: its node is gone (or, for an ip target, its pod is)."""
        return not self.node.alive

    def passes_check(self, local: bool) -> bool:
        """What a health check sees right now."""
        if not self.node.alive:
            return False
        if self.pod is None and local:
            return bool(self.node.pods)
        return True


class Connection:
    """A client TCP connection (keep-alive pool member).

    Attributes:
        lb_az: The zone of the LB node it goes through (None: the idealised client).
        fate: Why it cannot be opened (``blackhole``: nothing answers, ``reset``: refused),
            or None when it opens.
    """

    __slots__ = ("created", "fate", "lb_az", "pod", "requests", "target", "worker")

    def __init__(
        self,
        target: Target,
        pod: GatewayPod | None,
        worker: int,
        created: float,
        lb_az: str | None = None,
        fate: str | None = None,
    ) -> None:
        self.target = target
        self.pod = pod
        self.worker = worker
        self.created = created
        self.requests = 0
        self.lb_az = lb_az
        self.fate = fate


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
        azs: list[str] | None = None,
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
        # Zonal candidates per LB node zone, until a target's health flips.
        self._zonal: dict[str, list[Target]] = {}
        self.azs: list[str] = sorted({t.az for t in targets}) if azs is None else list(azs)
        # Zonal model: LB nodes per zone, what a dead one does to packets, zone health for DNS.
        self.node_up = dict.fromkeys(self.azs, True)
        self.node_failure = dict.fromkeys(self.azs, "blackhole")
        # Per zone, its unhealthy spans [start, end) (end inf while it lasts), in time order:
        # a client's cached answer is the answer of the time it was filled.
        self._unhealthy: dict[str, list[list[float]]] = {az: [] for az in self.azs}

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
                        self._zonal.clear()
                elif t.failing_since is None:
                    t.failing_since = now
                if (
                    t.healthy
                    and t.failing_since is not None
                    and now - t.failing_since >= (hc.unhealthy_threshold - 1) * hc.interval_s
                ):
                    t.healthy = False
                    self._zonal.clear()
                    if t.down_event is not None:
                        t.down_event.succeed()
                        t.down_event = None
            self.update_zones()

    def mark_initial_health(self) -> None:
        """Targets that fail the check from the start (e.g. ``Local`` without a pod) are out."""
        for t in self.targets:
            t.healthy = t.passes_check(self.local)
        self._zonal.clear()
        self.update_zones()
        for spans in self._unhealthy.values():
            if spans:
                spans[0][0] = -math.inf  # out of DNS from the start

    def unhealthy_event(self, target: Target) -> simpy.Event | None:
        """An event triggered when the LB marks *target* unhealthy; None if it already is."""
        if not target.healthy:
            return None
        if target.down_event is None:
            target.down_event = simpy.Event(self.env)
        return target.down_event

    # -- zones and DNS (zonal model) --------------------------------------------------------

    def kill_node(self, az: str, failure: str) -> None:
        """The LB node of *az* dies; packets to its address meet *failure*."""
        if az in self.node_up:
            self.node_up[az] = False
            self.node_failure[az] = failure
            self.update_zones()

    def zone_healthy(self, az: str) -> bool:
        """The zone's LB node is up and has a healthy target it may send to."""
        if not self.node_up.get(az, False):
            return False
        return any(t.healthy and (self.cross_zone or t.az == az) for t in self.targets)

    def update_zones(self) -> None:
        """Note when each zone turned unhealthy or healthy (DNS fail-over reads it)."""
        now = self.env.now
        for az in self.azs:
            healthy = self.zone_healthy(az)
            spans = self._unhealthy[az]
            open_span = bool(spans) and spans[-1][1] == math.inf
            if healthy and open_span:
                spans[-1][1] = now
            elif not healthy and not open_span:
                spans.append([now, math.inf])

    def dns_answer(self, at: float | None = None) -> list[str]:
        """The zones whose LB node addresses the DNS name resolved to at *at* (default now).

        A zone leaves the answer ``dns_failover_delay_s`` after it turned unhealthy and comes
        back as long after it recovered; with no zone left, every zone is answered (Route 53
        answers with all records when all are unhealthy). Times before the run see the
        starting state.
        """
        t = self.env.now if at is None else at
        delay = self.spec.dns_failover_delay_s
        out = [
            az
            for az in self.azs
            if not any(a + delay <= t < b + delay for a, b in self._unhealthy[az])
        ]
        return out or list(self.azs)

    # -- selection -------------------------------------------------------------------------

    def candidates(self, az: str, zonal: bool = False) -> list[Target]:
        """The targets the LB node of *az* picks from.

        Idealised (*zonal* false): healthy targets of the zone, else healthy targets anywhere
        (instant DNS fail-over), else all (fail open). Zonal: healthy targets the node may
        use (its zone's with cross-zone off, any with it on), else every target it may use.
        """
        if zonal:
            cands = self._zonal.get(az)
            if cands is None:
                usable = [t for t in self.targets if self.cross_zone or t.az == az]
                healthy = [t for t in usable if t.healthy]
                cands = self._zonal[az] = healthy or usable or list(self.targets)
            return cands
        healthy = [t for t in self.targets if t.healthy]
        if not self.cross_zone:
            local = [t for t in healthy if t.az == az]
            if local:
                return local
        if healthy:
            return healthy
        return list(self.targets)  # fail open

    def choose(self, az: str, zonal: bool = False) -> Target:
        """Pick a target for a new connection (NLB) or a request (ALB/CLB)."""
        cands = self.candidates(az, zonal)
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

    def open_connection(self, req: SimRequest, lb_az: str) -> Connection:
        """A new connection of a client with a client model, to the LB node of *lb_az*.

        Its ``fate`` says whether it opens: a dead LB node or (NLB) a dead target does what its
        ``failure`` says (``blackhole``: no answer; ``reset``); a live node whose kube-proxy
        finds no gateway pod rejects it (``reset``, NLB).
        """
        now = self.env.now
        target = self.choose(lb_az, True)
        if not self.node_up.get(lb_az, True):
            return Connection(target, None, 0, now, lb_az, self.node_failure[lb_az])
        pod, _ = self.gateway_for(target)
        worker = int(self._u() * self.workers)
        fate = None
        if self.spec.lb != "nlb":
            pass  # an ALB/CLB node ends the connection itself: it opens while the node lives
        elif target.dead:
            fate = target.node.failure
        elif pod is None:
            fate = "reset"
        return Connection(target, pod, worker, now, lb_az, fate)

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
            target = self.choose(req.client_az, req.zonal)
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
