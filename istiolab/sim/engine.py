"""``simulate(scenario, seed)``: build the pipeline from a scenario and run it.

Pure and picklable: no I/O beyond reading the scenario's rule files, no global state. Every
component draws from its own numpy Generator derived from the seed and the component's *name*
(:func:`istiolab.rng.spawn`), so changing one component does not reshuffle the others.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from istiolab.config import ConfigSet, from_documents, load
from istiolab.config.codecs import RawDocument, load_paths
from istiolab.config.model import Gateway, VirtualService
from istiolab.envoy.compile import compile as compile_table
from istiolab.envoy.model import RouteTable
from istiolab.errors import ConfigError, SimulationError
from istiolab.findings import Finding, finding
from istiolab.profiles import get_profile
from istiolab.rng import SeedLike, as_seed_sequence, spawn
from istiolab.sim import accounting, budget
from istiolab.sim._flow import start as start_flow
from istiolab.sim.calibration import PROXY_COSTS
from istiolab.sim.dists import DistSpec
from istiolab.sim.metrics import STAGES, Metrics, request_spans
from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.results import Result
from istiolab.sim.rule_overrides import apply_rule_overrides
from istiolab.sim.scenario import Scenario, ServiceSpec, VersionSpec
from istiolab.sim.stages.backend import Pod, PodRegistry, int_sampler, uniform_sampler
from istiolab.sim.stages.ingress import GatewayPod, IngressNode
from istiolab.sim.stages.loadbalancer import Connection, LoadBalancer, Target
from istiolab.sim.stages.router import Router
from istiolab.sim.stages.upstream import UpstreamCluster
from istiolab.sim.theory import hpa_desired
from istiolab.sim.workload import Arrivals, ClientSpec, RequestFactory, TrafficSpec

Sampler = Callable[[], float]

PROGRESS_STEPS = 100
"""How many times ``simulate(progress=...)`` reports."""

CLIENT_STAGES = ("client", *STAGES)
"""The stages of a request from a traffic source with a client model: ``client`` is the time
before its last try (failed tries and back-offs), or all of it when the client gave up."""

_CONNECTION_FAILURES = {"CONNECT_TIMEOUT": "connect-failure", "CONNECT_REFUSED": "connect-failure"}


def scenario_config(scenario: Scenario) -> ConfigSet:
    """The configuration a scenario routes with: its rule files, then its inline resources.

    Relative rule paths are resolved against the scenario's folder. Nothing is validated here:
    the findings of loading stay in the returned set.
    """
    rules = scenario.rules
    base = Path(scenario.base_dir) if scenario.base_dir else Path.cwd()
    config = ConfigSet()
    paths = [p if Path(p).is_absolute() else str(base / p) for p in rules.paths]
    inline = [RawDocument(d, "<scenario rules.inline>", i, 0) for i, d in enumerate(rules.inline)]
    if rules.set:
        # overrides act on the documents, so their values are validated like written ones
        loaded = load(paths) if paths else ConfigSet()
        if any(f.severity.value == "error" for f in loaded.findings):
            return loaded
        docs = apply_rule_overrides([*load_paths(paths), *inline], rules.set)
        return from_documents(docs)
    if paths:
        config = config + load(paths)
    if inline:
        config = config + from_documents(inline)
    return config


def build_table(scenario: Scenario) -> tuple[RouteTable, list[Finding]]:
    """Compile the scenario's rules (or the implicit catch-all to the first service).

    Raises:
        ConfigError: When the rules have errors (every finding listed).
    """
    rules = scenario.rules
    config = scenario_config(scenario)
    if not config.resources and not config.findings:
        config = ConfigSet.of(implicit_rules(scenario.services[0]))
    if config.findings and any(f.severity.value == "error" for f in config.findings):
        raise ConfigError([f for f in config.findings if f.severity.value == "error"])
    table = compile_table(config, rules.profile, rules.gateway)
    return table, [*config.findings, *table.findings]


def implicit_rules(service: ServiceSpec) -> list[Gateway | VirtualService]:
    """A Gateway for every host and a VirtualService sending everything to *service*."""
    gw = Gateway.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "istiolab-default", "namespace": "istio-system"},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
                ],
            },
        }
    )
    vs = VirtualService.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": service.name, "namespace": service.namespace},
            "spec": {
                "hosts": ["*"],
                "gateways": ["istio-system/istiolab-default"],
                "http": [
                    {
                        "name": "default",
                        "route": [
                            {
                                "destination": {
                                    "host": service.host,
                                    "port": {"number": service.port},
                                }
                            }
                        ],
                    }
                ],
            },
        }
    )
    return [gw, vs]


def _sampler(spec: DistSpec | None, rng: np.random.Generator) -> Sampler | None:
    if spec is None:
        return None
    d = spec.build()
    if d.mean == 0 and d.variance == 0:
        return None  # a zero cost is skipped entirely: that is how a stage is isolated
    return d.sampler(rng)


def _settle(first: simpy.Event, value: Outcome | None, _event: object = None) -> None:
    """Settle a try with *value* (its answer, or None when the client's timer fired) once."""
    if not first.triggered:
        first.succeed(value)


class _ClientState:
    """The connection pool and the DNS caches of one traffic source with a client model.

    Each source IP caches the load balancer's DNS answer for ``dns_ttl_s`` and picks one of its
    addresses per new connection, uniformly or by ``az_split`` among those listed. A source
    IP's first look-up finds a cache filled at a uniform point of the last TTL, holding the
    answer of that time (a steady state: clients did not all start with the run).
    """

    def __init__(
        self, lb: LoadBalancer, spec: TrafficSpec, cs: ClientSpec, u: Callable[[], float]
    ) -> None:
        self.lb = lb
        self.cs = cs
        self.u = u
        conns = spec.connections
        self.keepalive = conns.mode == "keepalive"
        self.pool: list[Connection | None] = [None] * (conns.pool_size if self.keepalive else 0)
        self.lifetime = conns.lifetime_s
        self.cap = conns.requests_per_connection
        self.weights = spec.az_split
        self.ttl = cs.dns_ttl_s
        self._cache: dict[int, tuple[float, list[str]]] = {}

    def resolve(self, source_ip: int) -> str:
        """The LB node zone a new connection from *source_ip* goes to."""
        now = self.lb.env.now
        entry = self._cache.get(source_ip)
        if entry is None:
            # A cache filled at a uniform point of the last TTL, with the answer of then.
            filled = now - self.u() * self.ttl
            entry = self._cache[source_ip] = (filled + self.ttl, self.lb.dns_answer(filled))
        elif now >= entry[0]:
            entry = self._cache[source_ip] = (now + self.ttl, self.lb.dns_answer())
        answer = entry[1]
        if len(answer) == 1:
            return answer[0]
        weights = [self.weights.get(a, 0.0) for a in answer] if self.weights else []
        total = math.fsum(weights)
        if total <= 0:
            return answer[int(self.u() * len(answer))]
        x = self.u() * total
        for az, w in zip(answer, weights, strict=True):
            x -= w
            if x < 0:
                return az
        return answer[-1]

    def connection(self, req: SimRequest) -> tuple[Connection, int]:
        """The connection a try goes on (a pool slot's, or a new one), and its slot (-1: none)."""
        lb = self.lb
        if not self.keepalive:
            req.client_az = self.resolve(req.source_ip)
            return lb.open_connection(req, req.client_az), -1
        slot = int(self.u() * len(self.pool))
        conn = self.pool[slot]
        now = lb.env.now
        if (
            conn is None
            or (self.lifetime is not None and now - conn.created >= self.lifetime)
            or (self.cap is not None and conn.requests >= self.cap)
        ):
            req.client_az = self.resolve(req.source_ip)
            conn = self.pool[slot] = lb.open_connection(req, req.client_az)
        conn.requests += 1
        req.client_az = conn.lb_az or req.client_az
        return conn, slot

    def drop(self, slot: int, conn: Connection) -> None:
        """Close a broken connection: the next request on its slot opens a new one."""
        if slot >= 0 and self.pool[slot] is conn:
            self.pool[slot] = None


class _Run:
    def __init__(self, scenario: Scenario, seed: SeedLike, params: dict[str, Any] | None) -> None:
        self.sc = scenario
        self.seq = as_seed_sequence(seed if seed is not None else scenario.run.seed)
        self.seed_value = (
            seed if isinstance(seed, int) else scenario.run.seed if seed is None else None
        )
        self.params = params or {}
        self.env = simpy.Environment()
        self.table, self.notes = build_table(scenario)
        self.profile = get_profile(self.table.profile)
        self._rngs: dict[str, np.random.Generator] = {}

    def rng(self, name: str) -> np.random.Generator:
        g = self._rngs.get(name)
        if g is None:
            g = self._rngs[name] = spawn(self.seq, [name])[name]
        return g

    # -- construction ----------------------------------------------------------------------

    def build(self) -> None:
        sc, env = self.sc, self.env
        run = sc.run
        self.metrics = Metrics(
            duration_s=run.duration_s,
            warmup_s=run.warmup_s,
            interval_s=run.metrics_interval_s,
            trace_sample=run.trace_sample,
            rng=self.rng("trace"),
        )
        self._tracing = run.trace_sample > 0
        cost = PROXY_COSTS.get(sc.rules.proxy)
        if cost is None:
            raise SimulationError(
                f"unknown proxy cost model {sc.rules.proxy!r}; use one of {sorted(PROXY_COSTS)}"
            )
        default_cpu = DistSpec.model_validate(f"det({cost.cpu_ms}ms)")
        default_lat = DistSpec.model_validate(f"det({cost.latency_ms}ms)")
        # Up-time spans [start, end) of every pod and node: the capacity side of utilisation.
        self._up: dict[object, list[list[float]]] = {}
        # Backends
        self.registry = PodRegistry()
        self.pods_by_version: dict[tuple[str, str], list[Pod]] = {}
        self._pod_counter = itertools.count()
        for svc in sc.services:
            for ver in svc.versions:
                for az in ver.pod_azs(list(sc.ingress.azs)):
                    self.add_pod(svc, ver, az, ready_at=0.0)
        cross_az = _sampler(sc.aws.cross_az_latency, self.rng("net/cross-az")) or (lambda: 0.0)

        def network(a: str, b: str) -> float:
            return cross_az() if a != b else 0.0

        self.clusters: dict[str, UpstreamCluster] = {}
        for name, pol in self.table.clusters.items():
            self.clusters[name] = UpstreamCluster(
                env,
                pol,
                self.registry,
                uniform=uniform_sampler(self.rng(f"upstream/{name}")),
                network_latency=network,
                record_upstream=self.metrics.upstream_sink,
                # The maxEjectionPercent rule changed in Envoy 1.27 (Istio 1.19).
                eject_at_least_one=self.profile.eject_at_least_one,
            )
        # Ingress pool
        ing = sc.ingress
        cpu = _sampler(ing.cpu_per_request or default_cpu, self.rng("ingress/cpu"))
        lat = _sampler(ing.proxy_latency or default_lat, self.rng("ingress/latency"))
        cache: dict[Any, Any] = {}
        self.gateway_pods: list[GatewayPod] = []
        self.nodes = [IngressNode(name, az) for name, az in ing.nodes()]
        if not self.nodes:
            raise SimulationError("the ingress pool has no nodes: set ingress.nodes_per_az >= 1")
        for node in self.nodes:
            self._up[node] = [[0.0, math.inf]]
        placements = [self.nodes[i] for i in ing.gateway_nodes()]
        per_node: dict[str, int] = {}
        for n in placements:
            per_node[n.name] = per_node.get(n.name, 0) + 1
        for k, node in enumerate(placements):
            scale = max(1.0, per_node[node.name] * ing.concurrency / ing.cores_per_node)
            router = Router(
                env,
                self.table,
                self.clusters,
                uniform=uniform_sampler(self.rng(f"router/{k}")),
                random_value=int_sampler(self.rng(f"router/{k}/weights"), 2**62),
                backoff_formula=self.profile.backoff_formula,
                bucket_mode=self.profile.token_bucket,
                decision_cache=cache,
            )
            pod = GatewayPod(
                env,
                f"istio-ingressgateway-{k}",
                node,
                ing.concurrency,
                router,
                cpu=cpu,
                latency=lat,
                cpu_scale=scale,
                ordinal=k,
            )
            node.pods.append(pod)
            self.gateway_pods.append(pod)
        if not self.gateway_pods:
            raise SimulationError(
                "no gateway pods: set ingress.pods_per_node >= 1 or gateway_replicas"
            )
        aws = sc.aws
        if aws.target_type == "ip":
            targets = [Target(p.name, p.az, p.node, p) for p in self.gateway_pods]
        else:
            targets = [Target(n.name, n.az, n, None) for n in self.nodes]
        zero: Sampler = lambda: 0.0  # noqa: E731
        self.lb = LoadBalancer(
            env,
            aws,
            targets,
            self.gateway_pods,
            uniform=uniform_sampler(self.rng("lb")),
            lb_latency=_sampler(aws.lb_latency, self.rng("lb/latency")) or zero,
            kube_proxy_latency=_sampler(aws.kube_proxy_latency, self.rng("lb/kube-proxy")) or zero,
            cross_node_latency=_sampler(aws.cross_node_latency, self.rng("lb/cross-node")) or zero,
            cross_az_latency=_sampler(aws.cross_az_latency, self.rng("lb/cross-az")) or zero,
            workers=ing.concurrency,
            azs=list(ing.azs),
        )
        self.lb.mark_initial_health()
        self.check_routes()

    def check_routes(self) -> None:
        """Findings for traffic whose host no virtual host serves, and clusters with no pods."""
        from istiolab.envoy.match import select_virtual_host

        for t in self.sc.traffic:
            if select_virtual_host(self.table, t.host) is None:
                self.notes.append(
                    finding(
                        "IL401",
                        "Scenario",
                        f"traffic.{t.name}.host",
                        f"host {t.host!r} matches no virtual host of {self.table.name} "
                        f"(domains: {[d for vh in self.table.virtual_hosts for d in vh.domains]})",
                        "set traffic.host to a host the rules serve, or add a Gateway for it",
                        severity=None,
                    )
                )
        for name, c in self.clusters.items():
            if not c.hosts():
                self.notes.append(
                    finding(
                        "IL401",
                        "Scenario",
                        "services",
                        f"cluster {name} selects no pod (host {c.policy.host}, "
                        f"labels {dict(c.policy.labels)}); "
                        "its requests get 503 UH",
                        "add the service/version to the scenario's services",
                    )
                )

    def add_pod(self, svc: ServiceSpec, ver: VersionSpec, az: str, ready_at: float) -> Pod:
        k = next(self._pod_counter)
        cost = PROXY_COSTS[self.sc.rules.proxy]
        name = f"{svc.name}-{ver.name}-{len(self.pods_by_version.get((svc.name, ver.name), []))}"
        pod = Pod(
            self.env,
            name,
            svc,
            ver,
            az,
            service_time=ver.service_time.build().sampler(
                self.rng(f"pod/{svc.name}/{ver.name}/{k}/service")
            ),
            uniform=uniform_sampler(self.rng(f"pod/{svc.name}/{ver.name}/{k}/errors")),
            sidecar_cpu=_sampler(
                DistSpec.model_validate(f"det({cost.cpu_ms}ms)"), self.rng("sidecar")
            )
            if svc.sidecar
            else None,
            sidecar_latency=_sampler(
                DistSpec.model_validate(f"det({cost.latency_ms}ms)"), self.rng("sidecar")
            )
            if svc.sidecar
            else None,
            ready_at=ready_at,
        )
        self.registry.add(pod)
        self.pods_by_version.setdefault((svc.name, ver.name), []).append(pod)
        self._up[pod] = [[ready_at, math.inf]]
        return pod

    # -- processes -------------------------------------------------------------------------

    def client(self, index: int) -> Generator[Any, Any, None]:
        spec = self.sc.traffic[index]
        if spec.client is not None:
            state = _ClientState(
                self.lb, spec, spec.client, uniform_sampler(self.rng(f"traffic/{spec.name}/client"))
            )

            def modelled(req: SimRequest, now: float) -> None:
                req.zonal = True
                start_flow(self.client_request(req, state))

            yield from self._arrivals(spec, modelled)
            return
        u = uniform_sampler(self.rng(f"traffic/{spec.name}/connections"))
        keepalive = spec.connections.mode == "keepalive"
        pool: list[Connection | None] = [None] * (spec.connections.pool_size if keepalive else 0)
        lifetime = spec.connections.lifetime_s
        cap = spec.connections.requests_per_connection

        def idealised(req: SimRequest, now: float) -> None:
            conn = None
            if keepalive:
                slot = int(u() * len(pool))
                conn = pool[slot]
                if (
                    conn is None
                    or (lifetime is not None and now - conn.created >= lifetime)
                    or (cap is not None and conn.requests >= cap)
                    or not conn.target.healthy
                    or not conn.target.node.alive
                ):
                    conn = pool[slot] = self.lb.new_connection(req)
                conn.requests += 1
            start_flow(self.request(req, conn))

        yield from self._arrivals(spec, idealised)

    def _arrivals(
        self, spec: TrafficSpec, start: Callable[[SimRequest, float], None]
    ) -> Generator[Any, Any, None]:
        """A traffic source's arrivals: each request is made and handed to *start*."""
        sc, env = self.sc, self.env
        arrivals = Arrivals(
            spec.arrival, self.rng(f"traffic/{spec.name}/arrivals"), base_dir=sc.base_dir
        )
        factory = RequestFactory(
            spec, self.rng(f"traffic/{spec.name}/requests"), azs=list(sc.ingress.azs)
        )
        counter = self._ids
        default_az = sc.ingress.azs[0]
        warmup = sc.run.warmup_s
        limit = budget.SIM_MAX_IN_FLIGHT
        while True:
            gap = arrivals.next_gap(env.now)
            if gap is None:
                return
            yield env.timeout(gap)
            now = env.now
            attrs = factory.make(now)
            if now >= warmup:
                self.started += 1
            if self.in_flight >= limit:
                # Memory bound (budget.SIM_MAX_IN_FLIGHT): refused, and counted as unfinished.
                if now >= warmup:
                    self.rejected += 1
                continue
            req = SimRequest(
                next(counter),
                attrs.path,
                attrs.method,
                attrs.host,
                attrs.headers,
                attrs.source_ip,
                attrs.az or default_az,
            )
            start(req, now)

    def client_request(self, req: SimRequest, st: _ClientState) -> Generator[Any, Any, None]:
        """One request of a modelled client: tries, timeouts, back-offs, then one row."""
        env, cs = self.env, st.cs
        policy = cs.retries
        self.in_flight += 1
        t0 = env.now
        tries = upstream = 0
        retried = False
        while True:
            tries += 1
            t_try = env.now
            conn, slot = st.connection(req)
            out = Outcome()
            first = env.event()
            timer = env.timeout(cs.timeout_s)
            timer.callbacks.append(partial(_settle, first, None))
            start_flow(self._try(req, conn, out, first, cs))
            done = yield first
            upstream += out.upstream_requests
            t_end = env.now + out.pending + out.tail if done is not None else env.now
            if done is None or t_end - t_try > cs.timeout_s:
                # The client's timeout fired first: it closes the connection and gives up the
                # try; what the gateway and the backend already started goes on.
                t_end = t_try + cs.timeout_s
                status, flags, kind = 0, ["CLIENT_TIMEOUT"], "timeout"
            else:
                status, flags = out.status, list(out.flags)
                kind = None
                if status == 0:
                    kind = next(
                        (_CONNECTION_FAILURES[f] for f in flags if f in _CONNECTION_FAILURES),
                        "reset",
                    )
            if kind is not None or (cs.reconnect_on_5xx and status >= 500):
                st.drop(slot, conn)
            failed = kind is not None or status >= 500
            retriable = failed and (
                kind in policy.retry_on
                or (status >= 500 and ("5xx" in policy.retry_on or str(status) in policy.retry_on))
            )
            if retriable and tries < policy.attempts:
                bound = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (tries - 1))
                yield env.timeout(max(0.0, t_end - env.now) + st.u() * bound)
                retried = True
                continue
            break
        if retried:
            flags.append("CLIENT_RETRY")
        if kind is None:
            client_s = t_try - t0
            lb_s, ingress_s = out.lb_s, out.ingress_s
            route_s = max(0.0, t_end - t_try - lb_s - ingress_s)
        else:
            client_s, lb_s, ingress_s, route_s = t_end - t0, 0.0, 0.0, 0.0
        self.in_flight -= 1
        seconds = (client_s, lb_s, ingress_s, route_s)
        m = self.metrics
        m.record_row(
            (
                t0,
                t_end,
                out.route,
                out.cluster,
                out.version,
                status,
                ",".join(flags),
                out.retries,
                upstream,
                out.ingress_node,
                out.ingress_az,
                CLIENT_STAGES,
                seconds,
            )
        )
        if self._tracing and m.should_trace():
            out.status, out.flags = status, flags
            self._trace(req, out, t0, t_end, seconds, CLIENT_STAGES)

    def _try(
        self,
        req: SimRequest,
        conn: Connection,
        out: Outcome,
        first: simpy.Event,
        cs: ClientSpec,
    ) -> Generator[Any, Any, None]:
        """One try of a modelled client on *conn*; settles *first* with *out* when answered.

        A try that gets no answer never settles: the client's timeout does.
        """
        env, lb = self.env, self.lb
        if conn.fate is not None:
            out.status = 0
            if conn.fate == "blackhole":
                yield env.timeout(cs.connect_timeout_s)
                out.flag("CONNECT_TIMEOUT")
            else:
                out.flag("CONNECT_REFUSED")
            _settle(first, out)
            return
        if conn.requests > 1:  # a reused connection may have broken since it opened
            lost = self._lost(conn)
            if lost is not None:
                yield from self._lose(out, *lost)
                _settle(first, out)
                return
        t0 = env.now
        pod, worker, target = yield from lb.handle(req, out, conn)
        out.lb_s = out.pending + (env.now - t0)
        if pod is not None:
            try:
                yield from pod.handle(req, out, worker)
            finally:
                target.outstanding -= 1
            lost = self._lost(conn)
            if lost is not None:
                # The gateway (or the LB node) died while the request was in flight: its answer
                # is lost.
                yield from self._lose(out, *lost)
        _settle(first, out)

    def _lost(self, conn: Connection) -> tuple[str, Target | None] | None:
        """Whether an open connection is broken: (failure, the target whose marking resets it)."""
        lb = self.lb
        az = conn.lb_az
        if az is not None and not lb.node_up.get(az, True):
            return lb.node_failure[az], None
        if lb.spec.lb != "nlb":
            return None  # an ALB/CLB picks a target per request and answers 502 LBF itself
        target = conn.target
        if target.dead:
            return target.node.failure, target
        pod = conn.pod
        if pod is not None and not pod.alive:
            return pod.node.failure, (target if pod.node is target.node else None)
        return None

    def _lose(
        self, out: Outcome, failure: str, reset_by: Target | None
    ) -> Generator[Any, Any, None]:
        """A request on a broken connection: reset now, or no answer (black hole).

        In a black hole the answer never comes; when the dead machine is an NLB target, the
        NLB resets the connection once it marks the target unhealthy.
        """
        out.status = 0
        if failure == "blackhole":
            if reset_by is None:
                yield self.env.event()  # never triggered: the client's timeout ends the try
            ev = self.lb.unhealthy_event(reset_by) if reset_by is not None else None
            if ev is not None:
                yield ev
        out.flag("RESET")

    def request(self, req: SimRequest, conn: Connection | None) -> Generator[Any, Any, None]:
        env = self.env
        self.in_flight += 1
        out = Outcome()
        t0 = env.now
        pod, worker, target = yield from self.lb.handle(req, out, conn)
        # Stage times are accounted, not measured: latencies are folded into later events.
        out.lb_s = out.pending + (env.now - t0)
        if pod is not None:
            try:
                yield from pod.handle(req, out, worker)
            finally:
                target.outstanding -= 1
        # What is left to wait touches no resource: add it to the end time without an event.
        t_end = env.now + out.pending + out.tail
        route_s = max(0.0, t_end - t0 - out.lb_s - out.ingress_s)
        self.in_flight -= 1
        m = self.metrics
        m.record_row(
            (
                t0,
                t_end,
                out.route,
                out.cluster,
                out.version,
                out.status,
                ",".join(out.flags),
                out.retries,
                out.upstream_requests,
                out.ingress_node,
                out.ingress_az,
                STAGES,
                (out.lb_s, out.ingress_s, route_s),
            )
        )
        if self._tracing and m.should_trace():
            self._trace(req, out, t0, t_end, (out.lb_s, out.ingress_s, route_s))

    def _trace(
        self,
        req: SimRequest,
        out: Outcome,
        t0: float,
        t_end: float,
        seconds: tuple[float, ...],
        stages: tuple[str, ...] = STAGES,
    ) -> None:
        m = self.metrics
        spans = request_spans(
            path=req.path,
            status=out.status,
            flags=",".join(out.flags),
            route=out.route,
            cluster=out.cluster,
            version=out.version,
            ingress_node=out.ingress_node,
            lb=self.sc.aws.lb,
            t0=t0,
            t_end=t_end,
            stages=stages,
            seconds=seconds,
        )
        for span, parent, start, end, tags in spans:
            m.trace_span(trace_id=req.id, span=span, parent=parent, start=start, end=end, tags=tags)

    def sampler_process(self) -> Generator[Any, Any, None]:
        env, m = self.env, self.metrics
        interval = self.sc.run.metrics_interval_s
        while True:
            yield env.timeout(interval)
            # An instantaneous sample at the end of an interval describes the interval just
            # ended: bin it there (Metrics bins by the interval containing t).
            t = env.now - interval / 2
            for node in self.nodes:
                # A lost node has no capacity: counting its idle workers would halve the
                # utilisation the survivors run at after an AZ loss.
                if node.alive:
                    # a node without a gateway pod counts one idle server, as the fast engine
                    cap = float(sum(len(p.workers) for p in node.pods)) or 1.0
                    busy = sum(p.busy() for p in node.pods)
                    waiting = float(sum(w.queued for p in node.pods for w in p.workers))
                else:
                    cap = busy = waiting = 0.0
                m.record_utilisation(
                    t=t,
                    kind="ingress_node",
                    name=node.name,
                    az=node.az,
                    busy=busy,
                    capacity=cap,
                    queued=waiting,
                )
            for pod in self.registry.pods:
                up = pod.alive and pod.node_alive
                m.record_utilisation(
                    t=t,
                    kind="pod",
                    name=pod.name,
                    az=pod.az,
                    busy=pod.busy() if up else 0.0,
                    capacity=pod.capacity() if up else 0.0,
                    queued=float(pod.server.queued) if up else 0.0,
                )

    def _servers(self) -> list[tuple[str, object, Any]]:
        """Every queue of the run: (tier, owner, server), owner a gateway pod or a backend pod."""
        out: list[tuple[str, object, Any]] = []
        for gw in self.gateway_pods:
            out.extend(("gateway_workers", gw, w) for w in gw.workers)
        for pod in self.registry.pods:
            out.append((f"backend/{pod.service}/{pod.version}", pod, pod.server))
            if pod.sidecar is not None:
                out.append((f"sidecar/{pod.service}/{pod.version}", pod, pod.sidecar))
        return out

    def accounts(self) -> Generator[Any, Any, None]:
        """Snapshot every queue's accounts at the end of the warm-up, then count in flight.

        Requests in flight are counted at the quarters of the measured window (the last mark is
        taken at the end of the run).
        """
        env, run = self.env, self.sc.run
        if run.warmup_s > 0:
            yield env.timeout(run.warmup_s)
        for _, _, server in self._servers():
            self._snap[server] = (server.advance(), server.arrivals, server.waited, server.wait_s)
        quarter = (run.duration_s - run.warmup_s) / 4
        for _ in range(3):
            yield env.timeout(quarter)
            self.in_flight_marks.append(self.in_flight)

    def tiers(self) -> dict[str, accounting.TierAccount]:
        """What each tier's queues did over the window [warm-up, end]."""
        run = self.sc.run
        lo, hi = run.warmup_s, run.duration_s

        def up_s(owner: object) -> float:
            return sum(
                max(0.0, min(b, hi) - max(a, lo)) for a, b in self._up.get(owner, [[lo, hi]])
            )

        tiers: dict[str, accounting.TierAccount] = {}
        per_owner: dict[object, accounting.TierAccount] = {}
        for tier, owner, server in self._servers():
            area0, arrivals0, waited0, wait0 = self._snap.get(server, (0.0, 0, 0, 0.0))
            uptime = up_s(owner.node) if isinstance(owner, GatewayPod) else up_s(owner)
            servers = server.capacity
            for acc in (
                tiers.setdefault(tier, accounting.TierAccount()),
                per_owner.setdefault(owner, accounting.TierAccount()),
            ):
                acc.busy_s += server.advance() - area0
                acc.capacity_s += servers * uptime
                acc.arrivals += server.arrivals - arrivals0
                acc.waited += server.waited - waited0
                acc.wait_s += server.wait_s - wait0
                acc.servers += servers if getattr(owner, "alive", True) else 0
        # An LB target is a node (instance targets) or a gateway pod (ip targets): its load is
        # the load of the gateway workers behind it. The busiest target is the hot spot.
        best: accounting.TierAccount | None = None
        for target in self.lb.targets:
            gws = [target.pod] if target.pod is not None else target.node.pods
            acc = accounting.TierAccount()
            for gw in gws:
                own = per_owner.get(gw)
                if own is None:
                    continue
                acc.busy_s += own.busy_s
                acc.capacity_s += own.capacity_s
                acc.arrivals += own.arrivals
                acc.waited += own.waited
                acc.wait_s += own.wait_s
                acc.servers += own.servers
            if acc.capacity_s > 0 and (
                best is None or acc.busy_s / acc.capacity_s > best.busy_s / best.capacity_s
            ):
                best = acc
        if best is not None:
            tiers["lb_targets_max"] = best
        return tiers

    def events(self) -> Generator[Any, Any, None]:
        env = self.env
        for ev in sorted(self.sc.events, key=lambda e: e.at_s):
            if ev.at_s > env.now:
                yield env.timeout(ev.at_s - env.now)
            self.apply_event(ev)

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        def proc() -> Generator[Any, Any, None]:
            yield self.env.timeout(delay)
            fn()

        self.env.process(proc())

    def _down(self, thing: object) -> None:
        """Close the open up-time span of a pod or node (capacity stops counting)."""
        spans = self._up.get(thing)
        if spans and spans[-1][1] == math.inf:
            spans[-1][1] = max(spans[-1][0], self.env.now)

    def _kill_pod(self, pod: Pod, svc: ServiceSpec, node_gone: bool = False) -> None:
        self._down(pod)
        pod.alive = False
        pod.node_alive = not node_gone
        self.registry.changed()

        def leave() -> None:
            pod.in_endpoints = False
            self.registry.changed()

        self._later(svc.endpoint_delay_s, leave)

    def apply_event(self, ev: Any) -> None:
        sc, env = self.sc, self.env
        svcs = {s.name: s for s in sc.services}
        if ev.kind in ("pod_crash", "error_burst", "deploy", "scale"):
            svc = svcs[ev.service] if ev.service else sc.services[0]
            vers = [v for v in svc.versions if ev.version in (None, v.name)]
            pods = [p for v in vers for p in self.pods_by_version.get((svc.name, v.name), [])]
        if ev.kind == "pod_crash":
            victims = [p for p in pods if p.alive][: ev.count]
            for p in victims:
                self._kill_pod(p, svc)
                if ev.restart_after_s is not None:
                    ver = next(v for v in svc.versions if v.name == p.version)

                    def revive(p: Pod = p, ver: VersionSpec = ver) -> None:
                        p.alive = True
                        p.node_alive = True
                        p.in_endpoints = True
                        p.ready_at = env.now + ver.startup_s
                        self._up.setdefault(p, []).append([p.ready_at, math.inf])
                        self.registry.changed()

                    self._later(ev.restart_after_s, revive)
        elif ev.kind == "error_burst":
            end = env.now + (ev.duration_s or sc.run.duration_s)
            for p in pods:
                p.extra_errors.append((env.now, end, ev.probability, ev.status))
        elif ev.kind in ("deploy", "scale"):
            ver = vers[0]
            target = ev.replicas if ev.replicas is not None else 1
            live = [p for p in pods if p.alive]
            add = target if ev.kind == "deploy" else target - len(live)
            for i in range(max(0, add)):
                az = sc.ingress.azs[(len(live) + i) % len(sc.ingress.azs)]
                self.add_pod(svc, ver, az, ready_at=env.now + ver.startup_s)
            for p in live[target:] if add < 0 else []:
                self._kill_pod(p, svc)
        elif ev.kind == "node_loss":
            for n in self.nodes:
                if ev.node in (None, n.name):
                    n.kill(env.now, ev.failure)
                    self._down(n)
                    if ev.node is None:
                        break
            self.lb.update_zones()
        elif ev.kind == "az_loss":
            # What dies (docs/howto-capacity.md, "What an AZ loss does"): the zone's ingress
            # nodes (the LB targets, with their gateway pods and the requests they carry),
            # its LB node unless lb_node_down is false, its backend pods unless pods_down is
            # false. Health checks and DNS notice later, on their own clocks.
            for n in self.nodes:
                if n.az == ev.az:
                    n.kill(env.now, ev.failure)
                    self._down(n)
            if ev.lb_node_down:
                self.lb.kill_node(ev.az, ev.failure)
            self.lb.update_zones()
            if ev.pods_down:
                for s in sc.services:
                    for v in s.versions:
                        for p in self.pods_by_version.get((s.name, v.name), []):
                            if p.az == ev.az and p.alive:
                                self._kill_pod(p, s, node_gone=True)

    def autoscaler(self, svc: ServiceSpec, ver: VersionSpec) -> Generator[Any, Any, None]:
        """Kubernetes HPA on mean CPU utilisation over each sync period."""
        spec = ver.autoscale
        assert spec is not None
        env = self.env
        step = min(spec.sync_period_s / 10, self.sc.run.metrics_interval_s)
        # Pods of this version the nodes hold (None: no limit); grows as nodes are added.
        room_left = spec.node_capacity
        while True:
            busy = cap = 0.0
            t_end = env.now + spec.sync_period_s
            while env.now < t_end - 1e-12:
                yield env.timeout(min(step, t_end - env.now))
                live = [p for p in self.pods_by_version.get((svc.name, ver.name), []) if p.ready]
                busy += sum(p.busy() for p in live)
                cap += sum(p.capacity() for p in live)
            live = [p for p in self.pods_by_version.get((svc.name, ver.name), []) if p.alive]
            current = len(live)
            if current == 0 or cap == 0:
                continue
            desired = hpa_desired(current, busy / cap, spec.target_utilisation, spec.tolerance)
            desired = max(spec.min_replicas, min(spec.max_replicas, desired))
            if desired == current:
                continue
            self.hpa_log.append((env.now, svc.name, ver.name, current, desired))
            if desired > current:
                # Pods beyond the room on the current nodes wait for new ones (Pending).
                add = desired - current
                room = add if room_left is None else max(0, room_left - current)
                if add > room and room_left is not None:
                    per_node = spec.pods_per_node or (add - room)
                    room_left += -(-(add - room) // per_node) * per_node
                for i in range(add):
                    az = self.sc.ingress.azs[(current + i) % len(self.sc.ingress.azs)]
                    delay = ver.startup_s + (spec.node_provisioning_s if i >= room else 0.0)
                    self.add_pod(svc, ver, az, ready_at=env.now + delay)
            else:
                for p in live[desired:]:
                    self._kill_pod(p, svc)

    # -- run -------------------------------------------------------------------------------

    def run(self, progress: Callable[[float], object] | None = None) -> Result:
        self._ids = itertools.count()
        self.hpa_log: list[tuple[float, str, str, int, int]] = []
        self.started = self.rejected = self.in_flight = 0
        self.in_flight_marks: list[int] = []
        self._snap: dict[object, tuple[float, int, int, float]] = {}
        self.build()
        env = self.env
        env.process(self.accounts())
        for i in range(len(self.sc.traffic)):
            env.process(self.client(i))
        env.process(self.sampler_process())
        env.process(self.lb.health_checker())
        if self.sc.events:
            env.process(self.events())
        for svc in self.sc.services:
            for ver in svc.versions:
                if ver.autoscale is not None:
                    env.process(self.autoscaler(svc, ver))
        duration = self.sc.run.duration_s
        if progress is None:
            env.run(until=duration)
        else:
            # Stopping and resuming changes no event's order (the heap is ordered by time,
            # priority and insertion), so the result is the same as in one piece.
            for step in range(1, PROGRESS_STEPS + 1):
                env.run(until=duration * step / PROGRESS_STEPS)
                progress(step / PROGRESS_STEPS)
        seed = (
            self.seed_value
            if self.seed_value is not None
            else list(
                self.seq.entropy if isinstance(self.seq.entropy, list) else [self.seq.entropy]
            )
        )
        result = self.metrics.result(seed=seed, scenario_name=self.sc.name, params=self.params)
        result.findings = tuple(self.notes)
        result.scaling = list(self.hpa_log)
        accounting.finish(
            result,
            started=self.started,
            rejected=self.rejected,
            in_flight_marks=[*self.in_flight_marks, self.in_flight],
            tiers=self.tiers(),
            warmup_s=self.sc.run.warmup_s,
            assumed=accounting.assumptions(self.sc, self.table, "simpy"),
            events=accounting.event_marks(self.sc),
        )
        return result


ENGINES = ("auto", "simpy", "fast")
"""The engines :func:`simulate` can run: ``fast`` is the compiled one (:mod:`istiolab.sim.fast`),
``auto`` picks it when it supports every feature the scenario uses."""


def fast_unsupported(scenario: Scenario) -> str | None:
    """Why the fast engine cannot run *scenario* (the feature it lacks), or None when it can.

    Raises:
        ConfigError: When the scenario's rules are invalid.
        SimulationError: When the scenario cannot be built.
    """
    from istiolab.sim.fast.run import prepare

    table, notes = build_table(scenario)
    plan = prepare(scenario, table, list(notes))
    return plan if isinstance(plan, str) else None


def fast_refused(reason: str) -> SimulationError:
    """The error of ``engine="fast"`` on a scenario it cannot run (*reason*: the feature)."""
    return SimulationError(f"the fast engine does not support {reason}; use engine='simpy'")


def engine_fallback(result: Result) -> str | None:
    """Why ``engine="auto"`` ran SimPy for *result* (its ``IL401`` note), or None."""
    # simulate() marks the fallback with fallback_note(), an info finding on the path "engine"
    return next((f.message for f in result.findings if f.path == "engine"), None)


def simulate(
    scenario: Scenario,
    seed: SeedLike = None,
    *,
    params: dict[str, Any] | None = None,
    progress: Callable[[float], object] | None = None,
    engine: str = "simpy",
    force: bool = False,
) -> Result:
    """Run a scenario.

    Args:
        scenario: A validated scenario (``load_scenario``).
        seed: Overrides ``scenario.run.seed``; same scenario, seed and engine give identical
            results.
        params: Swept parameters recorded in every result frame.
        progress: Called with the fraction of simulated time done (0 < f <= 1), a hundred
            times over the run; it does not change the result. Raising in it stops the run
            (that is how a caller can cancel).
        engine: ``"simpy"`` (default: the reference, no compiled code), ``"fast"`` (compiled
            with numba, same results in distribution, see ``docs/engines.md``) or ``"auto"``:
            fast when it supports every feature the scenario uses, else SimPy, with a finding
            naming the feature. Sweeps, the planner, ``compare`` and the CLI default to
            ``"auto"``, the notebooks to their session's engine
            (:func:`istiolab.lab.engine.simulate`); this function stays on SimPy, the
            reference, so that a library call never compiles unless asked (the kernel built
            ahead of time costs a few MiB to load, numba's about 120 MiB; docs/engines.md).
        force: Run even when more requests are expected than ``limits.SIM_MAX_REQUESTS``
            (the limits that cost memory still hold; see :mod:`istiolab.sim.budget`).

    Returns:
        The result (tidy DataFrames, summary).

    Raises:
        ConfigError: When the scenario's rules are invalid, or the run would exceed a limit
            (``IL402``, estimated before anything is built).
        SimulationError: When the scenario cannot be built, or ``engine="fast"`` cannot run it.
        ValueError: When *engine* is not one of :data:`ENGINES`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    budget.check(scenario, force=force)
    if engine == "simpy":
        return _Run(scenario, seed, params).run(progress)
    from istiolab.sim.fast.run import fallback_note, prepare, simulate_fast

    table, notes = build_table(scenario)
    plan = prepare(scenario, table, notes)
    if not isinstance(plan, str):
        return simulate_fast(plan, scenario, seed, params=params, progress=progress)
    if engine == "fast":
        raise fast_refused(plan)
    result = _Run(scenario, seed, params).run(progress)
    result.findings = (*result.findings, fallback_note(plan))
    return result
