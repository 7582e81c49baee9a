"""Upstream clusters: Envoy's host selection, circuit breakers, outlier detection, retries.

Host selection follows Envoy's load balancers (facts §3.7): round robin; least request as power
of two choices on active requests (two random draws with replacement, ties keep the first);
random; ring hash / Maglev on a hash key (one consistent-hash ring, rebuilt when hosts change).

Load-balancer state is per Envoy worker thread, as in Envoy, where every worker builds its own
load balancer from the cluster's host set (thread-local clusters,
``source/common/upstream/cluster_manager_impl.cc``): round robin keeps one index per worker,
starting at a random offset (``EdfLoadBalancerBase`` seeds it with a random number,
``source/extensions/load_balancing_policies/common/load_balancer_impl.cc``), so W workers
interleave W independent round-robin sequences; least request reads the hosts' active-request
counts, which Envoy keeps per host across workers (``rq_active`` gauge), so only its random
draws are per worker. The rest:
Retries follow the route's policy (§3.3–3.5): ``retry_on`` conditions, the profile's back-off,
``previous_hosts`` re-picks, per-try timeouts, and the route timeout bounding every try.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Generator
from typing import Any

import simpy
import xxhash

from istiolab.envoy.model import ClusterPolicy, Route
from istiolab.envoy.policy import backoff_bound, retriable
from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.stages.backend import Pod, PodRegistry

_GATEWAY_ERRORS = (502, 503, 504)


class _HostState:
    __slots__ = ("consecutive_5xx", "consecutive_gw", "ejected_until", "ejections")

    def __init__(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_gw = 0
        self.ejected_until = -1.0
        self.ejections = 0


class UpstreamCluster:
    """One Envoy cluster (``outbound|port|subset|host``) over the pods its labels select."""

    def __init__(
        self,
        env: simpy.Environment,
        policy: ClusterPolicy,
        registry: PodRegistry,
        *,
        uniform: Callable[[], float],
        network_latency: Callable[[str, str], float],
        record_upstream: Callable[[tuple[float, str, str, int, str]], None] | None = None,
        eject_at_least_one: bool = True,
    ) -> None:
        self.env = env
        self.policy = policy
        # maxEjectionPercent rule (see _outcome): True = Envoy < 1.27, False = Envoy >= 1.27.
        self._eject_at_least_one = eject_at_least_one
        self.registry = registry
        self._u = uniform
        self._latency = network_latency
        self._record = record_upstream
        self._generation = -1
        self._hosts: list[Pod] = []
        self._rr: dict[int, int] = {}  # per gateway worker (SimRequest.worker)
        self._ring: list[tuple[int, Pod]] = []
        self._ring_keys: list[int] = []
        self._addresses: dict[str, str] = {}
        self.active = 0
        self.active_retries = 0
        self._state: dict[str, _HostState] = {}
        self._avail: list[Pod] = []
        self._avail_gen = -1
        self._avail_until = -1.0

    # -- hosts -----------------------------------------------------------------------------

    def hosts(self) -> list[Pod]:
        """Pods in the endpoints of this cluster (ready ones are picked)."""
        if self._generation != self.registry.generation:
            self._hosts = self.registry.select(self.policy.host, self.policy.labels)
            self._generation = self.registry.generation
            self._ring = []
        return self._hosts

    def _ejected(self, pod: Pod) -> bool:
        st = self._state.get(pod.name)
        return st is not None and self.env.now < st.ejected_until

    def available(self) -> list[Pod]:
        """Hosts that are ready and not ejected; all ready hosts in panic mode.

        Cached until the pod set changes, a pod becomes ready, or an ejection starts or ends
        (the hot path calls this once per try).
        """
        now = self.env.now
        if self._avail_gen == self.registry.generation and now < self._avail_until:
            return self._avail
        hosts = self.hosts()
        until = float("inf")
        ready = []
        for p in hosts:
            # Membership follows the endpoints, not the pod's life: a crashed pod stays in
            # Envoy's host set until EDS removes it (ServiceSpec.endpoint_delay_s), and tries
            # sent to it fail as Pod.serve says (refused, or a connect timeout when its node is
            # gone), unless outlier detection ejects it first.
            if p.in_endpoints:
                if now >= p.ready_at:
                    ready.append(p)
                else:
                    until = min(until, p.ready_at)
        avail = ready
        if self.policy.outlier is not None:
            ok = []
            for p in ready:
                st = self._state.get(p.name)
                if st is not None and now < st.ejected_until:
                    until = min(until, st.ejected_until)
                else:
                    ok.append(p)
            panic = self.policy.outlier.min_health_percent
            avail = ready if hosts and panic > 0 and 100.0 * len(ok) / len(hosts) < panic else ok
        self._avail, self._avail_gen, self._avail_until = avail, self.registry.generation, until
        return avail

    def _address(self, pod: Pod) -> str:
        """The pod's ``IP:port`` as Envoy's host address, which its ring hash hashes.

        Pod IPs come from the CNI and are arbitrary, so each pod gets a random 10.x.y.z address
        (drawn from the run's seeded stream, once per pod and cluster); the ring then varies
        between seeds as it varies between clusters, instead of being one fixed layout.
        """
        addr = self._addresses.get(pod.name)
        if addr is None:
            a, b, c = (int(self._u() * 256) for _ in range(3))
            addr = self._addresses[pod.name] = f"10.{a}.{b}.{c}:8080"
        return addr

    def _ring_pick(self, hosts: list[Pod], key: str) -> Pod:
        # Envoy's ring (source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc,
        # RingHashLoadBalancer::Ring::Ring): with equal weights every host gets
        # ceil(minimum_ring_size / hosts) points, point i of a host being xxHash64 (seed 0) of
        # "<host address>_<i>"; the ring is sorted by hash and a key picks the first point at
        # or after its hash, wrapping to the first point (Ring::chooseHost). The key of a
        # header hash policy is xxHash64 of the header value (source/common/http/hash_policy.cc,
        # HeaderHashMethod).
        if not self._ring:
            points: list[tuple[int, Pod]] = []
            members = self.hosts()
            per_host = math.ceil(self.policy.ring_size / max(1, len(members)))
            for p in members:
                prefix = self._address(p) + "_"
                for i in range(per_host):
                    points.append((xxhash.xxh64_intdigest(f"{prefix}{i}".encode()), p))
            points.sort(key=lambda t: t[0])
            self._ring = points
            self._ring_keys = [h for h, _ in points]
        h = xxhash.xxh64_intdigest(key.encode())
        n = len(self._ring)
        i = bisect.bisect_left(self._ring_keys, h) % n
        avail = {id(p) for p in hosts}
        for k in range(n):  # walk the ring to the next available host
            pod = self._ring[(i + k) % n][1]
            if id(pod) in avail:
                return pod
        return hosts[0]

    def pick(
        self,
        hash_key: str | None,
        exclude: set[str] | None = None,
        attempts: int = 1,
        worker: int = 0,
    ) -> Pod | None:
        """Pick a host with the load balancer of gateway worker *worker*.

        Re-picks up to *attempts* times to avoid *exclude* (the ``previous_hosts``
        predicate); the last pick is kept if all fail.
        """
        hosts = self.available()
        if not hosts:
            return None
        chosen: Pod | None = None
        for _ in range(max(1, attempts + 1 if exclude else 1)):
            chosen = self._pick_once(hosts, hash_key, worker)
            if not exclude or chosen.name not in exclude:
                break
        return chosen

    def _pick_once(self, hosts: list[Pod], hash_key: str | None, worker: int = 0) -> Pod:
        lb = self.policy.lb
        n = len(hosts)
        if n == 1:
            return hosts[0]
        if lb == "ROUND_ROBIN":
            index = self._rr.get(worker)
            if index is None:  # a worker's first pick: its random starting offset
                index = int(self._u() * n)
            self._rr[worker] = index + 1
            return hosts[index % n]
        if lb == "LEAST_REQUEST":
            a = hosts[int(self._u() * n)]
            b = hosts[int(self._u() * n)]
            return b if b.active < a.active else a
        if lb in ("RING_HASH", "MAGLEV") and hash_key is not None:
            return self._ring_pick(hosts, hash_key)
        return hosts[int(self._u() * n)]

    # -- outlier detection -----------------------------------------------------------------

    def _outcome(self, pod: Pod, status: int, flag: str) -> None:
        od = self.policy.outlier
        if od is None:
            return
        st = self._state.get(pod.name)
        if st is None:
            st = self._state[pod.name] = _HostState()
        err5 = status >= 500
        gw = status in _GATEWAY_ERRORS or flag in ("UF", "UC")
        st.consecutive_5xx = st.consecutive_5xx + 1 if err5 else 0
        st.consecutive_gw = st.consecutive_gw + 1 if gw else 0
        tripped = (od.consecutive_5xx is not None and st.consecutive_5xx >= od.consecutive_5xx) or (
            od.consecutive_gateway_errors is not None
            and st.consecutive_gw >= od.consecutive_gateway_errors
        )
        if not tripped or self._ejected(pod):
            return
        hosts = self.hosts()
        ejected = sum(1 for p in hosts if self._ejected(p))
        # Envoy < 1.27 checks the ejected share *before* ejecting, so one host is always
        # ejectable and the cap can be overshot by one host. Envoy >= 1.27 (envoyproxy/envoy
        # #27624, #27909; Istio >= 1.19) checks the share *after* ejecting: never more than
        # max_ejection_percent, possibly none (Istio does not set always_eject_one_host).
        # Fixed by tests/validation (truth 13: "at most maxEjectionPercent ejected").
        if self._eject_at_least_one:
            if hosts and 100.0 * ejected / len(hosts) >= od.max_ejection_percent:
                return
        elif not hosts or 100.0 * (ejected + 1) / len(hosts) > od.max_ejection_percent:
            return
        now = self.env.now
        # The multiplier decays by one for every interval the host spent un-ejected.
        if st.ejections and st.ejected_until <= now:
            healthy_intervals = int((now - st.ejected_until) // od.interval_s)
            st.ejections = max(0, st.ejections - healthy_intervals)
        st.ejections += 1
        until = now + od.base_ejection_s * st.ejections
        # Envoy un-ejects on its interval timer: at the first tick at or after the deadline.
        ticks = -(-until // od.interval_s)
        st.ejected_until = ticks * od.interval_s
        self._avail_until = -1.0  # availability changed
        st.consecutive_5xx = st.consecutive_gw = 0

    # -- requests --------------------------------------------------------------------------

    def attempt(
        self,
        pod: Pod,
        req: SimRequest,
        from_az: str,
        pre_s: float = 0.0,
        deadline: float | None = None,
    ) -> Generator[Any, Any, tuple[int, str]]:
        """One try against *pod* (network hop, sidecar, service) after *pre_s* of latency.

        :meth:`handle` runs the same steps inline (see the comment there).

        Answers ``(504, "UT")`` at *deadline* if it is not done by then.
        """
        self.active += 1
        pod.active += 1
        try:
            lat = pre_s + self._latency(from_az, pod.az)
            status, flag = yield from pod.serve(self.policy.connect_timeout_s, lat, deadline)
        finally:
            self.active -= 1
            pod.active -= 1
        self._outcome(pod, status, flag)
        if self._record is not None:
            self._record((self.env.now, self.policy.name, pod.name, status, flag))
        return status, flag

    def handle(
        self,
        req: SimRequest,
        route: Route,
        out: Outcome,
        *,
        from_az: str,
        hash_key: str | None,
        backoff: Callable[[], float],
        backoff_formula: str,
    ) -> Generator[Any, Any, None]:
        """Send the request with the route's retry and timeout policy; fills *out*."""
        env = self.env
        policy = route.retry
        pol = self.policy
        # Timeouts start when the router sends the request, i.e. after a fault delay.
        start = env.now + out.pending
        deadline = start + route.timeout_s if route.timeout_s else None
        tried: set[str] = set()
        retries = 0
        status, flag, version = 503, "UH", "-"
        while True:
            if (
                self.active >= pol.max_requests
                or self.active >= pol.max_connections + pol.max_pending_requests
            ):
                status, flag = 503, "UO"
                break
            attempts = (
                policy.host_selection_retry_max_attempts
                if policy is not None and policy.previous_hosts
                else 0
            )
            pod = self.pick(hash_key, tried if attempts else None, attempts, req.worker)
            if pod is None:
                status, flag = 503, "UH"
                break
            tried.add(pod.name)
            version = pod.version
            out.upstream_requests += 1
            per_try = policy.per_try_timeout_s if policy is not None else None
            pre, out.pending = out.pending, 0.0
            try_start = env.now + pre if retries == 0 else env.now
            limit = try_start + per_try if per_try is not None else None
            if deadline is not None:
                limit = deadline if limit is None else min(limit, deadline)
            # attempt()'s body, inlined on purpose: calling it adds a generator frame to every
            # resume of every request (measured: 3 % of the seed pipeline's speed, interleaved
            # runs). Mirrors, which are rare, use attempt() itself; keep the two in step.
            self.active += 1
            pod.active += 1
            status, flag = yield from pod.serve(
                pol.connect_timeout_s, pre + self._latency(from_az, pod.az), limit
            )
            self.active -= 1
            pod.active -= 1
            if pol.outlier is not None:
                self._outcome(pod, status, flag)
            if self._record is not None:
                self._record((env.now, pol.name, pod.name, status, flag))
            if flag == "UT":
                if deadline is not None and env.now >= deadline - 1e-12:
                    break  # the route timeout is global and never retried
            elif pod.sidecar is not None:
                out.tail += pod.tail_latency()
            if policy is None or not retriable(policy, status, flag):
                break
            if retries >= policy.num_retries:
                out.flag("URX")
                break
            if self.active_retries >= pol.max_retries:
                break  # retry overflow: the failed response is returned
            retries += 1
            bound = backoff_bound(policy, retries, backoff_formula)
            wait = backoff() * bound
            if deadline is not None and env.now + wait >= deadline:
                yield env.timeout(max(0.0, deadline - env.now))
                status, flag = 504, "UT"
                break
            self.active_retries += 1
            try:
                if wait > 0:
                    yield env.timeout(wait)
            finally:
                self.active_retries -= 1
        out.status = status
        out.retries = retries
        out.version = version
        if flag:
            out.flag(flag)
