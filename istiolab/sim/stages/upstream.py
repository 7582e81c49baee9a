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
HTTP/1.1 connection pools are per worker and host, with their pending queues, when the
cluster has a connection limit (see ``_Pool``). Outlier detection follows Envoy's detector
step for step (``_outcome``), and the workers see its ejections and re-admissions when the
cluster manager delivers them, at once or held for its 1 s merge window (``_changed``).
Ring hash builds Envoy's xxHash64 ring (``_ring_pick``).
Retries follow the route's policy (§3.3–3.5): ``retry_on`` conditions, the profile's back-off,
``previous_hosts`` re-picks, per-try timeouts, and the route timeout bounding every try.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import simpy
import xxhash

from istiolab.envoy.model import ClusterPolicy, Route
from istiolab.envoy.policy import backoff_bound, retriable
from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.stages.backend import Pod, PodRegistry

_GATEWAY_ERRORS = (502, 503, 504)


# Envoy's default max_ejection_time (DEFAULT_MAX_EJECTION_TIME_MS); Istio does not set it, and
# Envoy takes the larger of it and base_ejection_time (DetectorConfig::DetectorConfig).
_MAX_EJECTION_S = 300.0


def ring_layout(addresses: list[str], ring_size: int) -> tuple[list[int], list[int]]:
    """Envoy's hash ring over *addresses*: its sorted point hashes and each point's host index.

    ``source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc``
    (``RingHashLoadBalancer::Ring::Ring``): with equal weights every host gets
    ``ceil(minimum_ring_size / hosts)`` points, point i of a host being xxHash64 (seed 0) of
    ``"<host address>_<i>"``; the ring is sorted by hash.
    """
    per_host = math.ceil(ring_size / max(1, len(addresses)))
    points = sorted(
        (xxhash.xxh64_intdigest(f"{address}_{i}".encode()), h)
        for h, address in enumerate(addresses)
        for i in range(per_host)
    )
    return [p[0] for p in points], [p[1] for p in points]


def key_hash(key: str) -> int:
    """The hash of a consistent-hash key: xxHash64 (seed 0) of its bytes.

    A header hash policy hashes the header's value (``HeaderHashMethod`` in
    ``source/common/http/hash_policy.cc``).
    """
    return xxhash.xxh64_intdigest(key.encode())


def ring_lookup(hashes: list[int], key: str) -> int:
    """The ring point a hash key picks: the first at or after its :func:`key_hash`, wrapping.

    ``Ring::chooseHost``.
    """
    return bisect.bisect_left(hashes, key_hash(key)) % len(hashes)


class _HostState:
    """One host's outlier-detection monitor (Envoy's ``DetectorHostMonitorImpl``).

    One per host, shared by all gateway workers: Envoy keeps the consecutive counters in the
    host's monitor (atomics bumped from every worker), not per worker.
    """

    __slots__ = (
        "backoff",
        "consecutive_5xx",
        "consecutive_gw",
        "ejected",
        "ejected_at",
        "ejected_until",
        "unejected_at",
    )

    def __init__(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_gw = 0
        self.ejected = False
        self.ejected_at = -1.0
        self.ejected_until = -1.0
        # ejectTimeBackoff(): the ejection-time multiplier
        self.backoff = 0
        # lastUnejectionTime(); None until the host was first re-admitted
        self.unejected_at: float | None = None


# The cluster manager delivers host health changes (an ejection, a re-admission) to the workers'
# load balancers at once only when its last delivery to them is more than update_merge_window
# old; otherwise it holds the change back and delivers every change held so far in one update
# update_merge_window after the first held one (ClusterManagerImpl::scheduleUpdate and
# applyUpdates, source/common/upstream/cluster_manager_impl.cc; the window is
# common_lb_config.update_merge_window, 1000 ms unless set, and Istio does not set it). A host
# ejected less than a second after the previous ejection or re-admission in its cluster thus
# keeps its traffic for another second: measured against Envoy 1.40 (docs/conformance.md,
# conform-outlier-detection), an always-failing host re-ejected after its re-admission took 15
# requests where the threshold was 3.
UPDATE_MERGE_WINDOW_S = 1.0

POOLED_BELOW = 2**31
"""A connection limit below this runs the HTTP/1.1 pool model (:class:`_Pool`), in both engines.

At or above it the limit is Envoy's "unlimited" in practice (Istio's default is 2^32 - 1): a
connection is then always available, and the in-flight bound ``max_connections +
max_pending_requests`` is all that is left of the circuit breaker."""


class _Pool:
    """One gateway worker's HTTP/1.1 connection pool to one host (``ConnPoolImplBase``).

    Envoy keeps a pool per worker thread and host; a connection carries one request at a time.
    """

    __slots__ = ("conns", "idle", "waiters")

    def __init__(self) -> None:
        self.conns = 0  # open connections of this pool (busy or idle)
        self.idle = 0  # connections ready for a request
        self.waiters: deque[simpy.Event] = deque()  # the pool's pending requests, FIFO


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
        self._pools: dict[tuple[int, str], _Pool] = {}
        self.connections = 0  # open connections across the workers' pools (cx_active)
        self.pending = 0  # requests waiting in the pools (rq_pending_active)
        # Outlier detection as the workers see it (see UPDATE_MERGE_WINDOW_S): the hosts
        # ejected in the last delivered update, the time of that delivery, the time a held
        # update will be delivered, and the main thread's re-admission times still to come.
        self._view_ejected: frozenset[str] = frozenset()
        self._last_update = -math.inf
        self._merge_at: float | None = None
        self._readmits: list[float] = []
        self.ejections: list[tuple[str, float, float, float]] = []
        """``(pod, ejected_at, delivered_at, readmitted_at)`` of every ejection: when the
        detector ejected the host, when the workers' load balancers stopped picking it, and
        when the detector re-admitted it (its delivery is the next ejection's business)."""

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
        if self.policy.outlier is not None:
            self._advance(now)
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
            # the workers' view: the ejections delivered so far, until the next delivery
            ejected = self._view_ejected
            ok = [p for p in ready if p.name not in ejected] if ejected else ready
            if self._readmits:
                until = min(until, self._readmits[0])
            if self._merge_at is not None:
                until = min(until, self._merge_at)
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
            members = self.hosts()
            hashes, owners = ring_layout([self._address(p) for p in members], self.policy.ring_size)
            self._ring = [(h, members[o]) for h, o in zip(hashes, owners, strict=True)]
            self._ring_keys = hashes
        n = len(self._ring)
        i = ring_lookup(self._ring_keys, key)
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

    # Envoy's detector (source/common/upstream/outlier_detection_impl.cc), consecutive-error
    # part; success-rate ejection is off as Istio sets it. Its interval timer ticks every
    # ``interval`` from the cluster's start (t = 0 here); the simulator applies what the ticks
    # do lazily, when the host's next response arrives or an ejection is decided:
    # * checkHostForUneject: an ejected host is re-admitted at the first tick at which
    #   min(base_ejection_time x backoff, max_ejection_time) has passed since its ejection;
    #   unejectHost resets its consecutive counters;
    # * the end of onIntervalTimer: at every tick at least one interval after the host's last
    #   re-admission, a host that is not ejected has its backoff lowered by one.

    def _settle(self, st: _HostState, now: float, interval: float) -> None:
        """Apply the interval ticks up to *now* to *st* (re-admission, backoff decay)."""
        if st.ejected:
            if now < st.ejected_until:
                return
            st.ejected = False  # DetectorImpl::unejectHost at the tick ejected_until
            st.consecutive_5xx = st.consecutive_gw = 0
            st.unejected_at = st.ejected_until
        if st.unejected_at is not None and st.backoff:
            # ticks k*interval with unejected_at + interval <= k*interval <= now; the
            # re-admission tick itself is k0*interval
            k0 = round(st.unejected_at / interval)
            ticks = int(now / interval + 1e-9) - k0
            if ticks > 0:
                st.backoff = max(0, st.backoff - ticks)
                st.unejected_at = (k0 + ticks) * interval  # decay counted up to this tick

    def _outcome(self, pod: Pod, status: int, flag: str) -> None:
        od = self.policy.outlier
        if od is None:
            return
        st = self._state.get(pod.name)
        if st is None:
            st = self._state[pod.name] = _HostState()
        now = self.env.now
        self._settle(st, now, od.interval_s)
        # DetectorHostMonitorImpl::putHttpResponseCode: a connect failure is reported as 503
        # (putResultNoLocalExternalSplit); a detection fires when a counter *equals* the
        # threshold, so a counter that ran past it (the host was ejected already, see
        # onConsecutiveErrorWorker) fires again only after a reset.
        if status >= 500 or flag in ("UF", "UC"):
            fired = []
            if status in _GATEWAY_ERRORS or flag in ("UF", "UC"):
                st.consecutive_gw += 1
                if st.consecutive_gw == od.consecutive_gateway_errors:
                    fired.append("gw")
            else:
                st.consecutive_gw = 0
            st.consecutive_5xx += 1
            if st.consecutive_5xx == od.consecutive_5xx:
                fired.append("5xx")
        else:
            st.consecutive_5xx = st.consecutive_gw = 0
            return
        for kind in fired:
            # DetectorImpl::onConsecutiveErrorWorker (posted to the main thread; immediate
            # here): nothing for a host already ejected, else ejectHost and reset the counter.
            if st.ejected:
                return
            self._eject(pod, st, now)
            if kind == "gw":
                st.consecutive_gw = 0
            else:
                st.consecutive_5xx = 0

    # -- delivery of health changes to the workers (see UPDATE_MERGE_WINDOW_S) --------------

    def _deliver(self, t: float) -> None:
        """The workers' load balancers get the detector's state at *t* (postThreadLocal...)."""
        self._view_ejected = frozenset(
            name for name, st in self._state.items() if st.ejected_at <= t < st.ejected_until
        )
        self._last_update = t
        self._merge_at = None
        self._avail_until = -1.0
        for i, (name, at, delivered, back) in enumerate(self.ejections):
            if delivered < 0 and name in self._view_ejected:
                self.ejections[i] = (name, at, t, back)

    def _changed(self, t: float) -> None:
        """A host's health changed on the main thread at *t* (scheduleUpdate)."""
        if t - self._last_update > UPDATE_MERGE_WINDOW_S:
            self._deliver(t)  # out of the merge window: at once, cancelling a held update
        elif self._merge_at is None:
            self._merge_at = t + UPDATE_MERGE_WINDOW_S
            self._avail_until = min(self._avail_until, self._merge_at)

    def _advance(self, now: float) -> None:
        """Run the re-admissions and held deliveries due by *now*, in time order."""
        while True:
            t_back = self._readmits[0] if self._readmits else math.inf
            t_merge = self._merge_at if self._merge_at is not None else math.inf
            if min(t_back, t_merge) > now:
                return
            if t_merge <= t_back:
                self._deliver(t_merge)
            else:
                heapq.heappop(self._readmits)
                self._changed(t_back)

    def _eject(self, pod: Pod, st: _HostState, now: float) -> None:
        od = self.policy.outlier
        assert od is not None
        # earlier deliveries read the host states as they were, so run them first
        self._advance(now)
        hosts = self.hosts()
        ejected = sum(1 for p in hosts if self._ejected(p))
        # Envoy < 1.27 checks the ejected share *before* ejecting, so one host is always
        # ejectable and the cap can be overshot by one host. Envoy >= 1.27 (envoyproxy/envoy
        # #27624, #27909; Istio >= 1.19) checks the share *after* ejecting (ejectHost): never
        # more than max_ejection_percent, possibly none (Istio does not set
        # always_eject_one_host). Fixed by tests/validation (truth 13).
        if self._eject_at_least_one:
            if hosts and 100.0 * ejected / len(hosts) >= od.max_ejection_percent:
                return
        elif not hosts or 100.0 * (ejected + 1) / len(hosts) > od.max_ejection_percent:
            return
        base = od.base_ejection_s
        max_s = max(_MAX_EJECTION_S, base)
        # ejectHost: the multiplier grows while base x backoff < max + base
        if st.backoff * base < max_s + base:
            st.backoff += 1
        duration = min(base * st.backoff, max_s)
        # checkHostForUneject runs at the interval ticks: re-admission at the first tick at
        # which the ejection time has passed.
        interval = od.interval_s
        tick = -(-(now + duration - 1e-9) // interval) * interval
        st.ejected, st.ejected_at, st.ejected_until = True, now, tick
        heapq.heappush(self._readmits, tick)
        self.ejections.append((pod.name, now, -1.0, tick))
        self._changed(now)

    # -- HTTP/1.1 connection pools ----------------------------------------------------------
    # Envoy's pools (source/common/conn_pool/conn_pool_base.cc, source/common/http/http1/
    # conn_pool.cc): ConnPoolImplBase::newStreamImpl attaches a request to a ready connection
    # of its worker's pool for the host; without one it refuses the request when the cluster's
    # max_pending_requests is reached (503 UO, upstream_rq_pending_overflow), else queues it
    # as a pending stream and tryCreateNewConnection opens a connection if the cluster's
    # max_connections (counted across workers) allows it, or in any case when this pool has
    # no connection at all. A queued request waits for a connection of *its* pool to free
    # (onUpstreamReady, FIFO). Connections stay open between requests; a reset or a timed-out
    # stream closes its connection. Connects are taken as instant (a loopback or in-VPC
    # handshake is far shorter than a service time).

    def _acquire(self, pool: _Pool) -> simpy.Event | str | None:
        """A connection of *pool* now (None), a pending slot to wait on (an event), or "UO"."""
        if pool.idle:
            pool.idle -= 1
            return None
        pol = self.policy
        if self.pending >= pol.max_pending_requests:
            return "UO"
        if self.connections < pol.max_connections or pool.conns == 0:
            pool.conns += 1
            self.connections += 1
            return None
        ev = self.env.event()
        pool.waiters.append(ev)
        self.pending += 1
        return ev

    def _release(self, pool: _Pool, closed: bool) -> None:
        """The request on one of *pool*'s connections ended; *closed*: the connection too."""
        if closed:
            pool.conns -= 1
            self.connections -= 1
            if pool.waiters and (self.connections < self.policy.max_connections or pool.conns == 0):
                pool.conns += 1
                self.connections += 1
            else:
                return
        if pool.waiters:
            self.pending -= 1
            pool.waiters.popleft().succeed()
        else:
            pool.idle += 1

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
        sent = self.env.now + pre_s
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
            self._record((sent, self.policy.name, pod.name, status, flag))
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
        pooled = pol.max_connections < POOLED_BELOW
        while True:
            if self.active >= pol.max_requests or (
                not pooled and self.active >= pol.max_connections + pol.max_pending_requests
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
            pre, out.pending = out.pending, 0.0
            pool = None
            if pooled:
                if pre > 0:  # a fault delay comes before the router asks the pool
                    yield env.timeout(pre)
                    pre = 0.0
                key = (req.worker, pod.name)
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = _Pool()
                got = self._acquire(pool)
                if got == "UO":
                    status, flag = 503, "UO"
                    break
                if isinstance(got, simpy.Event):
                    # pending: the route timeout runs, the per-try timeout starts only when
                    # the pool hands over a connection (UpstreamRequest::onPoolReady)
                    if deadline is None:
                        yield got
                    else:
                        yield got | env.timeout(max(0.0, deadline - env.now))
                    if not got.triggered:
                        pool.waiters.remove(got)
                        self.pending -= 1
                        status, flag = 504, "UT"
                        break
            version = pod.version
            out.upstream_requests += 1
            per_try = policy.per_try_timeout_s if policy is not None else None
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
            if pool is not None:
                self._release(pool, flag in ("UF", "UC", "UT"))
            if pol.outlier is not None:
                self._outcome(pod, status, flag)
            if self._record is not None:
                # stamped when the try was sent, as a pod's access log would see it
                self._record((try_start, pol.name, pod.name, status, flag))
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
