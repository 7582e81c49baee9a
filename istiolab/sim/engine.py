"""``simulate(scenario, seed)``: build the pipeline from a scenario and run it.

Pure and picklable: no I/O beyond reading the scenario's rule files, no global state. Every
component draws from its own numpy Generator derived from the seed and the component's *name*
(:func:`istiolab.rng.spawn`), so changing one component does not reshuffle the others.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator
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
from istiolab.sim.metrics import Metrics
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
from istiolab.sim.workload import Arrivals, RequestFactory

Sampler = Callable[[], float]

PROGRESS_STEPS = 100
"""How many times ``simulate(progress=...)`` reports."""

STAGES = ("lb", "ingress", "route")
"""The stages every request's latency is split into (the ``stages`` frame)."""


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
        sc, env = self.sc, self.env
        spec = sc.traffic[index]
        arrivals = Arrivals(
            spec.arrival, self.rng(f"traffic/{spec.name}/arrivals"), base_dir=sc.base_dir
        )
        factory = RequestFactory(
            spec, self.rng(f"traffic/{spec.name}/requests"), azs=list(sc.ingress.azs)
        )
        u = uniform_sampler(self.rng(f"traffic/{spec.name}/connections"))
        keepalive = spec.connections.mode == "keepalive"
        pool: list[Connection | None] = [None] * (spec.connections.pool_size if keepalive else 0)
        lifetime = spec.connections.lifetime_s
        cap = spec.connections.requests_per_connection
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
    ) -> None:
        m = self.metrics
        tags = {"http.path": req.path, "http.status_code": str(out.status), "route": out.route}
        m.trace_span(trace_id=req.id, span="client", parent=None, start=t0, end=t_end, tags=tags)
        t = t0
        names = {"lb": f"aws-{self.sc.aws.lb}", "ingress": out.ingress_node, "route": out.cluster}
        for name, dt in zip(STAGES, seconds, strict=True):
            m.trace_span(
                trace_id=req.id,
                span=names.get(name, name),
                parent="client",
                start=t,
                end=t + dt,
                tags={"stage": name, "version": out.version, "flags": ",".join(out.flags)},
            )
            t += dt

    def sampler_process(self) -> Generator[Any, Any, None]:
        env, m = self.env, self.metrics
        interval = self.sc.run.metrics_interval_s
        while True:
            yield env.timeout(interval)
            # An instantaneous sample at the end of an interval describes the interval just
            # ended: bin it there (Metrics bins by the interval containing t).
            t = env.now - interval / 2
            for node in self.nodes:
                cap = float(sum(len(p.workers) for p in node.pods)) or 1.0
                busy = sum(p.busy() for p in node.pods) if node.alive else 0.0
                m.record_utilisation(
                    t=t, kind="ingress_node", name=node.name, az=node.az, busy=busy, capacity=cap
                )
            for pod in self.registry.pods:
                m.record_utilisation(
                    t=t,
                    kind="pod",
                    name=pod.name,
                    az=pod.az,
                    busy=pod.busy(),
                    capacity=pod.capacity(),
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
                    n.alive = False
                    self._down(n)
                    if ev.node is None:
                        break
        elif ev.kind == "az_loss":
            for n in self.nodes:
                if n.az == ev.az:
                    n.alive = False
                    self._down(n)
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
                for i in range(desired - current):
                    az = self.sc.ingress.azs[(current + i) % len(self.sc.ingress.azs)]
                    self.add_pod(svc, ver, az, ready_at=env.now + ver.startup_s)
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
        engine: ``"simpy"`` (default), ``"fast"`` (compiled with numba, same results in
            distribution, see ``docs/engines.md``) or ``"auto"``: fast when it supports every
            feature the scenario uses, else SimPy, with a finding naming the feature. SimPy stays
            the default until the fast engine agrees with it on every notebook question (it
            does not yet model workers sharing fewer cores; see docs/engines.md).
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
        raise SimulationError(f"the fast engine does not support {plan}; use engine='simpy'")
    result = _Run(scenario, seed, params).run(progress)
    result.findings = (*result.findings, fallback_note(plan))
    return result
