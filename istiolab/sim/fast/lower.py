"""Lower a scenario and its compiled route table to the flat arrays the fast kernel runs on.

Everything the SimPy engine decides from Python objects is decided here once, ahead of the
run, from the same sources: routing comes from the compiled :class:`RouteTable` through
:func:`istiolab.envoy.match.route` (every distinct request a population can send is routed once,
and the kernel looks the decision up by request class), retry conditions from
:func:`istiolab.envoy.policy.retriable`, the ingress pool and pods from the scenario's own
helpers (``nodes``, ``gateway_nodes``, ``pod_azs``). Nothing here reads configuration files
itself; :func:`istiolab.sim.engine.build_table` compiles them.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from istiolab.envoy.match import Request, effective_rate_limit, route
from istiolab.envoy.model import RateLimit, RouteTable
from istiolab.envoy.policy import retriable
from istiolab.errors import SimulationError
from istiolab.profiles import get_profile
from istiolab.sim import budget
from istiolab.sim.calibration import PROXY_COSTS
from istiolab.sim.dists import (
    Deterministic,
    Distribution,
    DistSpec,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Shifted,
    Uniform,
    Zero,
)
from istiolab.sim.fast import layout as lay
from istiolab.sim.scenario import Scenario
from istiolab.sim.stages.router import hash_key
from istiolab.sim.stages.upstream import POOLED_BELOW, UPDATE_MERGE_WINDOW_S, key_hash
from istiolab.sim.tallies import HdrLayout
from istiolab.sim.workload import cumulative_weights, load_timestamps

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MAX_TRIES = 16
"""Tries one request can remember for the ``previous_hosts`` predicate (1 + retries)."""
MAX_CLASSES = 200_000
"""Distinct requests (template × session user) routed ahead of the run."""
MAX_KEYS = 256
"""(route, cluster, version) combinations a scenario may produce (each holds 4 histograms)."""
MAX_PODS = 100_000
"""Backend pods a run may create, counting those events and the autoscaler add."""
MAX_POOLS = 1_000_000
"""Most HTTP/1.1 pools (pooled clusters × gateway workers × pods) the pool table holds (32 MB)."""
_LB_KINDS = {
    "ROUND_ROBIN": lay.LB_ROUND_ROBIN,
    "LEAST_REQUEST": lay.LB_LEAST_REQUEST,
    "RING_HASH": lay.LB_RING,
    "MAGLEV": lay.LB_RING,
}
_EVENT_KINDS = {
    "pod_crash": lay.E_POD_CRASH,
    "node_loss": lay.E_NODE_LOSS,
    "az_loss": lay.E_AZ_LOSS,
    "error_burst": lay.E_ERROR_BURST,
    "deploy": lay.E_DEPLOY,
    "scale": lay.E_SCALE,
}


class UnsupportedError(Exception):
    """The scenario uses a feature the fast engine does not implement (the message says which)."""


@dataclasses.dataclass
class Plan:
    """A lowered scenario: static arrays for the kernel and the names to label its tallies.

    Attributes:
        arrays: The kernel's static inputs by name (see :data:`STATIC`, the argument order).
        layout: The HDR bucket layout of every histogram.
        routes: Route names by index; the last is ``"-"`` (no route).
        clusters: Cluster names by index; the last is ``"-"`` (local reply).
        labels: Version labels by index; the last is ``"-"`` (no pod tried).
        keys: (route, cluster, label) indices of each key, by key index.
        statuses: HTTP status by status index.
        nodes: (name, az) of each ingress node.
        azs: The scenario's AZs.
        version_names: (service, version) of each version entity.
        streams: Names of the random streams, by index.
        max_pods: Pods the pod tables hold.
        initial_pods: Pods at the start (the first rows of ``arrays["init_pods"]``).
        table: The compiled route table.
        findings: Notes from compiling the rules.
        class_paths: The request path of each request class (``cls_route``'s index), the
            ``http.path`` tag of a traced request.
    """

    arrays: dict[str, npt.NDArray[Any]]
    layout: HdrLayout
    routes: list[str]
    clusters: list[str]
    labels: list[str]
    keys: list[tuple[int, int, int]]
    statuses: list[int]
    nodes: list[tuple[str, str]]
    azs: list[str]
    version_names: list[tuple[str, str]]
    streams: list[str]
    max_pods: int
    initial_pods: int
    table: RouteTable
    findings: list[Any]
    class_paths: list[str] = dataclasses.field(default_factory=list)


STATIC = (
    "cfg_i",
    "cfg_f",
    "dists",
    "emp",
    "tr_i",
    "tr_f",
    "tr_cum",
    "tr_az",
    "steps",
    "replay",
    "cls_route",
    "cls_key",
    "cls_keyed",
    "tg_i",
    "node_az",
    "node_gw_at",
    "node_gw",
    "gw_node",
    "gw_scale",
    "rt_i",
    "rt_f",
    "rt_retry_status",
    "wc_cluster",
    "wc_weight",
    "mr_i",
    "bk_i",
    "bk_f",
    "cl_i",
    "cl_f",
    "ver_in_cl",
    "ve_i",
    "ve_f",
    "ve_label",
    "er_i",
    "er_f",
    "ev_i",
    "ev_f",
    "status_of",
    "key_of",
    "key_stage",
)
"""The kernel's static arguments, in order."""


class _Dists:
    """The distribution table: one row per distinct distribution (kind, a, b, offset)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float]] = []
        self.emp: list[float] = []

    def add(self, spec: DistSpec | None, *, skip_zero: bool) -> int:
        """Row of *spec*; -1 for None, and for a zero cost when *skip_zero* (the stage is off)."""
        if spec is None:
            return -1
        d = spec.build()
        if skip_zero and d.mean == 0 and d.variance == 0:
            return -1  # the SimPy engine skips a zero cost entirely (no event, no draw)
        return self.add_dist(d)

    def add_dist(self, d: Distribution) -> int:
        offset = 0.0
        if isinstance(d, Shifted):
            offset = d.offset_s
            d = d.base
        row: tuple[float, float, float, float]
        if d.variance == 0 and not isinstance(d, Empirical):
            # a constant draws nothing from its stream (as the SimPy sampler)
            row = (float(lay.D_DET), d.mean, 0.0, offset)
        elif isinstance(d, Zero):
            row = (float(lay.D_ZERO), 0.0, 0.0, offset)
        elif isinstance(d, Deterministic):
            row = (float(lay.D_DET), d.value_s, 0.0, offset)
        elif isinstance(d, Exponential):
            row = (float(lay.D_EXP), d.mean_s, 0.0, offset)
        elif isinstance(d, LogNormal):
            row = (float(lay.D_LOGNORMAL), d.mu, d.sigma, offset)
        elif isinstance(d, Gamma):
            row = (float(lay.D_GAMMA), d.shape, d.scale, offset)
        elif isinstance(d, Uniform):
            row = (float(lay.D_UNIFORM), d.low_s, d.high_s, offset)
        elif isinstance(d, Empirical):
            row = (float(lay.D_EMPIRICAL), float(len(self.emp)), float(d.samples_s.size), offset)
            self.emp.extend(d.samples_s.tolist())
        else:
            raise UnsupportedError(f"distribution {d!r}")
        self.rows.append(row)
        return len(self.rows) - 1


def _status_retry_table(policy: Any) -> list[int]:
    return [int(retriable(policy, s, "")) for s in range(600)]


def lower(scenario: Scenario, table: RouteTable, findings: list[Any]) -> Plan:
    """Lower *scenario* (with its compiled *table*) to a :class:`Plan`.

    Raises:
        UnsupportedError: When the scenario uses a feature the fast engine does not implement.
        SimulationError: When the scenario cannot be built (as the SimPy engine would raise).
    """
    sc = scenario
    run = sc.run
    if sc.aws.lb == "clb":
        raise UnsupportedError("aws.lb = clb (surge queue)")
    if simpy_only := sc.simpy_only_features():
        raise UnsupportedError(simpy_only[0])
    cost = PROXY_COSTS.get(sc.rules.proxy)
    if cost is None:
        raise SimulationError(
            f"unknown proxy cost model {sc.rules.proxy!r}; use one of {sorted(PROXY_COSTS)}"
        )
    profile = get_profile(table.profile)
    dists = _Dists()
    azs = list(sc.ingress.azs)
    az_index = {a: i for i, a in enumerate(azs)}
    hdr = HdrLayout(1, int(3600.0 * 1e6), 3)  # Metrics' defaults: 1 µs – 1 h, 3 figures
    n_intervals = max(1, math.ceil(run.duration_s / run.metrics_interval_s - 1e-9))

    # -- services, versions, pods -----------------------------------------------------------
    version_names: list[tuple[str, str]] = []
    label_names: list[str] = []
    ve_i: list[list[int]] = []
    ve_f: list[list[float]] = []
    ve_label: list[int] = []
    er_i: list[int] = []
    er_f: list[list[float]] = []
    pods: list[tuple[int, int]] = []  # (version entity, az) of the initial pods
    pod_labels: list[dict[str, str]] = []
    hosts: list[str] = []
    sidecar_cpu = dists.add(DistSpec.model_validate(f"det({cost.cpu_ms}ms)"), skip_zero=True)
    sidecar_lat = dists.add(DistSpec.model_validate(f"det({cost.latency_ms}ms)"), skip_zero=True)
    for svc in sc.services:
        for ver in svc.versions:
            v = len(version_names)
            version_names.append((svc.name, ver.name))
            if ver.name not in label_names:
                label_names.append(ver.name)
            ve_label.append(label_names.index(ver.name))
            hosts.append(svc.host)
            pod_labels.append({"app": svc.name, **ver.pod_labels})
            hpa = ver.autoscale
            ve_i.append(
                [
                    sc.services.index(svc),
                    ver.concurrency,
                    dists.add_dist(ver.service_time.build()),
                    len(er_i),
                    len(ver.errors),
                    int(hpa is not None),
                    hpa.min_replicas if hpa else 0,
                    hpa.max_replicas if hpa else 0,
                    int(svc.sidecar),
                    svc.sidecar_concurrency,
                    -1 if hpa is None or hpa.node_capacity is None else hpa.node_capacity,
                    0 if hpa is None or hpa.pods_per_node is None else hpa.pods_per_node,
                    sum(1 for e in ver.errors if e.cost == "none"),
                    int(ver.on_cancel == "stop"),
                ]
            )
            ve_f.append(
                [
                    ver.startup_s,
                    hpa.target_utilisation if hpa else 0.0,
                    hpa.tolerance if hpa else 0.0,
                    hpa.sync_period_s if hpa else 0.0,
                    svc.endpoint_delay_s,
                    hpa.node_provisioning_s if hpa else 0.0,
                ]
            )
            for e in ver.errors:
                er_i.append(e.status)
                er_f.append(
                    [
                        e.probability,
                        -math.inf if e.start_s is None else e.start_s,
                        math.inf if e.end_s is None else e.end_s,
                        float(e.first_n),
                        1.0 if e.cost == "none" else 0.0,
                    ]
                )
            for az in ver.pod_azs(azs):
                pods.append((v, az_index[az]))
    n_versions = len(version_names)

    # the most pods a run can create: initial, plus what deploy/scale events and the
    # autoscalers can add (each sync period adds at most max_replicas)
    max_pods = len(pods)
    for ev in sc.events:
        if ev.kind in ("deploy", "scale"):
            max_pods += ev.replicas if ev.replicas is not None else 1
    for svc in sc.services:
        for ver in svc.versions:
            if ver.autoscale is not None:
                periods = math.ceil(run.duration_s / ver.autoscale.sync_period_s) + 1
                max_pods += ver.autoscale.max_replicas * periods
    if max_pods > MAX_PODS:
        raise UnsupportedError(f"up to {max_pods} backend pods (the fast engine holds {MAX_PODS})")
    max_pods = max(max_pods, 1)

    # -- clusters ---------------------------------------------------------------------------
    cluster_names = list(table.clusters)
    cl_index = {n: i for i, n in enumerate(cluster_names)}
    cl_i: list[list[int]] = []
    cl_f: list[list[float]] = []
    ver_in_cl = np.zeros((max(1, len(cluster_names)), max(1, n_versions)), dtype=np.int64)
    n_pooled = 0
    for c, name in enumerate(cluster_names):
        pol = table.clusters[name]
        # Envoy's per-worker HTTP/1.1 pools with their pending queues (sim/stages/upstream.py,
        # _Pool) run at the same limits as in the SimPy engine. Not only a tight limit binds:
        # idle connections stay open and count, and an empty pool may always open one, so at
        # Envoy's 1024 (older profiles' default) 32 workers x 400 pods hold over 12 000
        # connections and requests wait for their own pool's, far below 1024 in flight.
        pooled = pol.max_connections < POOLED_BELOW
        n_pooled += int(pooled)
        od = pol.outlier
        cl_i.append(
            [
                _LB_KINDS.get(pol.lb, lay.LB_RANDOM),
                min(pol.max_requests, 2**62),
                min(pol.max_connections + pol.max_pending_requests, 2**62),
                min(pol.max_retries, 2**62),
                int(od is not None),
                -1 if od is None or od.consecutive_5xx is None else od.consecutive_5xx,
                -1
                if od is None or od.consecutive_gateway_errors is None
                else od.consecutive_gateway_errors,
                od.max_ejection_percent if od else 0,
                od.min_health_percent if od else 0,
                n_pooled if pooled else 0,  # the pooled cluster's ordinal + 1
                min(pol.max_connections, 2**62),
                min(pol.max_pending_requests, 2**62),
            ]
        )
        cl_f.append(
            [
                pol.connect_timeout_s,
                od.interval_s if od else 1.0,
                od.base_ejection_s if od else 0.0,
                UPDATE_MERGE_WINDOW_S,
            ]
        )
        for v in range(n_versions):
            labels = pod_labels[v]
            if hosts[v] == pol.host and all(labels.get(k) == val for k, val in pol.labels):
                ver_in_cl[c, v] = 1

    # -- routes, buckets ----------------------------------------------------------------------
    routes = table.routes()
    route_names = [r.name for r in routes]
    route_index = {id(r): i for i, r in enumerate(routes)}
    specs: list[RateLimit] = []
    gw_bucket = -1
    if table.rate_limit is not None:
        specs.append(table.rate_limit)
        gw_bucket = 0
    rt_i: list[list[int]] = []
    rt_f: list[list[float]] = []
    rt_retry: list[list[int]] = []
    wc_cluster: list[int] = []
    wc_weight: list[int] = []
    statuses = {200, 404, 502, 503, 504}
    mr_i: list[list[int]] = []
    for r in routes:
        spec = effective_rate_limit(table.rate_limit, r)
        bucket = -1
        if r.rate_limit is not None:
            specs.append(r.rate_limit)  # a bucket of the route's own in every gateway pod
            bucket = len(specs) - 1
        elif spec is not None:
            bucket = gw_bucket
        if spec is not None:
            statuses.add(spec.status)
        f, rp = r.fault, r.retry
        if rp is not None and rp.num_retries + 1 > MAX_TRIES:
            raise UnsupportedError(f"more than {MAX_TRIES - 1} retries on route {r.name}")
        if f is not None and f.abort_per_million:
            statuses.add(f.abort_status or 503)
        if r.redirect is not None:
            statuses.add(r.redirect.code)
        if r.direct_response is not None:
            statuses.add(r.direct_response.status)
        rt_i.append(
            [
                f.delay_per_million if f else 0,
                (f.abort_status or 503) if f else 0,
                f.abort_per_million if f else 0,
                bucket,
                r.redirect.code if r.redirect is not None else 0,
                r.direct_response.status if r.direct_response is not None else 0,
                len(wc_cluster),
                len(r.clusters),
                r.total_weight,
                int(rp is not None),
                rp.num_retries if rp else 0,
                int(rp.previous_hosts) if rp else 0,
                rp.host_selection_retry_max_attempts if rp else 0,
                int(retriable(rp, 504, "UT")) if rp else 0,
                int(retriable(rp, 503, "UF")) if rp else 0,
                int(retriable(rp, 503, "UC")) if rp else 0,
                int(f is not None),
                r.cluster_not_found_status or 503,
                len(mr_i),
                sum(1 for m in r.mirrors if m.cluster in cl_index),
            ]
        )
        # a mirror of a cluster the gateway does not have copies nothing (Router.dispatch)
        mr_i.extend(
            [cl_index[m.cluster], m.per_million] for m in r.mirrors if m.cluster in cl_index
        )
        rt_f.append(
            [
                (f.delay_s or 0.0) if f else 0.0,
                r.timeout_s if r.timeout_s else math.inf,
                rp.per_try_timeout_s
                if rp is not None and rp.per_try_timeout_s is not None
                else math.inf,
                rp.backoff_base_s if rp else 0.0,
                rp.backoff_max_s if rp else 0.0,
            ]
        )
        rt_retry.append(_status_retry_table(rp) if rp else [0] * 600)
        for wc in r.clusters:
            if wc.name not in cl_index:
                # a pick of it gets Envoy's local reply, cluster_not_found_status with NC
                # (the SimPy router, router.py; Envoy's router.cc, Filter::decodeHeaders)
                statuses.add(r.cluster_not_found_status or 503)
                wc_cluster.append(lay.WC_NOT_FOUND)
            else:
                wc_cluster.append(cl_index[wc.name])
            wc_weight.append(wc.weight)
    # routes that send to a consistent-hash cluster: their requests' hash keys matter
    ring = {n for n in cluster_names if table.clusters[n].lb in ("RING_HASH", "MAGLEV")}
    ring_route = [any(wc.name in ring for wc in r.clusters) for r in routes]
    bk_i = [[s.status, s.enabled_per_million, s.enforced_per_million] for s in specs]
    bk_f = [[float(s.max_tokens), float(s.tokens_per_fill), s.fill_interval_s] for s in specs]

    # -- statuses -------------------------------------------------------------------------------
    for svc in sc.services:
        for ver in svc.versions:
            for e in ver.errors:
                statuses.add(e.status if e.status else 503)
    for ev in sc.events:
        if ev.kind == "error_burst":
            statuses.add(ev.status if ev.status else 503)
    status_list = sorted(statuses)
    status_of = np.full(1000, -1, dtype=np.int64)
    for i, s in enumerate(status_list):
        status_of[s] = i

    # -- keys: every (route, cluster, version label) a request can end with -------------------
    n_r, n_c, n_l = len(routes), len(cluster_names), len(label_names)
    keys: list[tuple[int, int, int]] = [(n_r, n_c, n_l)]
    for ri, r in enumerate(routes):
        keys.append((ri, n_c, n_l))
        for wc in r.clusters:
            if wc.name not in cl_index:
                continue  # answered at the router: the request ends without a cluster
            c = cl_index[wc.name]
            keys.append((ri, c, n_l))
            for v in range(n_versions):
                if ver_in_cl[c, v] and (ri, c, ve_label[v]) not in keys:
                    keys.append((ri, c, ve_label[v]))
    keys = list(dict.fromkeys(keys))
    if len(keys) > MAX_KEYS:
        raise UnsupportedError(
            f"{len(keys)} route/cluster/version combinations (at most {MAX_KEYS})"
        )
    key_of = np.full((n_r + 1) * (n_c + 1) * (n_l + 1), -1, dtype=np.int64)
    for k, (ri, c, lab) in enumerate(keys):
        key_of[(ri * (n_c + 1) + c) * (n_l + 1) + lab] = k

    # -- traffic: arrivals, request classes routed ahead of the run -------------------------------
    tr_i: list[list[int]] = []
    tr_f: list[list[float]] = []
    cum: list[float] = []
    tr_az: list[int] = []
    steps: list[list[float]] = []
    replay: list[float] = []
    cls_route: list[int] = []
    class_paths: list[str] = []  # the path of each request class (a traced request's tag)
    # each class's consistent-hash key (xxHash64), for a ring cluster's pick (0 = no key)
    cls_key: list[int] = []
    cls_keyed: list[int] = []

    def keyed(route_at: int, path: str, headers: dict[str, str]) -> None:
        """The hash key of a request class routed to *route_at*, as Router.dispatch takes it."""
        policy = routes[route_at].hash_policy if route_at >= 0 else None
        if policy is not None and policy[0] == "source_ip" and ring_route[route_at]:
            raise UnsupportedError(
                f"consistent hashing on the source IP (route {routes[route_at].name})"
            )
        key = hash_key(policy, headers, path, 0)
        cls_key.append(key_hash(key) if key is not None else 0)
        cls_keyed.append(int(key is not None))

    pool_at = 0
    base = Path(sc.base_dir) if sc.base_dir else None
    for t in sc.traffic:
        a = t.arrival
        kind = {"poisson": lay.A_POISSON, "constant": lay.A_CONSTANT, "schedule": lay.A_SCHEDULE,
                "diurnal": lay.A_DIURNAL, "replay": lay.A_REPLAY}[a.kind]  # fmt: skip
        rate = a.rate_rps or 0.0
        lam_max, start, end = rate, 0.0, math.inf
        steps_at, replay_at, n_replay = len(steps), len(replay), 0
        if a.kind == "schedule":
            assert a.steps is not None
            steps.extend([[s.at_s, s.rate_rps] for s in a.steps])
            lam_max = max(s.rate_rps for s in a.steps)
            start = a.steps[0].at_s
            k = len(a.steps)
            while k > 0 and a.steps[k - 1].rate_rps == 0:
                k -= 1
            if k < len(a.steps):
                end = a.steps[k].at_s
        elif a.kind == "diurnal":
            assert a.amplitude is not None
            lam_max = rate * (1 + a.amplitude)
        elif a.kind == "replay":
            if a.timestamps_s is not None:
                times = list(a.timestamps_s)
            else:
                assert a.file is not None
                path = Path(a.file)
                if not path.is_absolute() and base is not None:
                    path = base / path
                times = load_timestamps(path).tolist()
            replay.extend(times)
            n_replay = len(times)
        conn = t.connections
        keepalive = conn.mode == "keepalive"
        sessions = t.sessions
        users = sessions.users if sessions is not None else 0
        tpl_at = len(cum)
        weights = [r.weight for r in t.requests]
        cum.extend(cumulative_weights(weights))
        az_at = len(tr_az)
        if t.az_split is not None:
            names, az_w = list(t.az_split), list(t.az_split.values())
        else:
            names, az_w = azs, [1.0] * len(azs)
        for name in names:
            if name not in az_index:
                raise SimulationError(
                    f"traffic {t.name!r} az_split names {name}, not one of the scenario's AZs {azs}"
                )
            tr_az.append(az_index[name])
        az_cum = cumulative_weights(az_w)
        cum.extend(az_cum)
        class_at = len(cls_route)
        n_classes = len(t.requests) * max(1, users)
        if len(cls_route) + n_classes > MAX_CLASSES:
            raise UnsupportedError(
                f"traffic {t.name!r} sends {n_classes} distinct requests (templates × users; "
                f"the fast engine routes at most {MAX_CLASSES} ahead of the run)"
            )
        for req in t.requests:
            host = req.host or t.host
            class_paths.extend([req.path] * max(1, users))
            if sessions is None:
                cls_route.append(_decide(table, req.path, req.method, host, dict(req.headers),
                                         route_index))  # fmt: skip
                keyed(cls_route[-1], req.path, dict(req.headers))
                continue
            extra = ""
            if sessions.extra_cookies:
                extra = sessions.extra_cookies.rstrip().rstrip(";").rstrip() + "; "
            prefix = f"{extra}{sessions.cookie_name}="
            n_beta = round(sessions.beta_fraction * sessions.users)
            template_cookie = req.headers.get("cookie")
            cache: dict[tuple[tuple[str, str], ...], int] = {}
            for user in range(users):
                headers = dict(req.headers)
                cookie = f"{prefix}beta" if user < n_beta else f"{prefix}u{user}"
                headers["cookie"] = f"{template_cookie}; {cookie}" if template_cookie else cookie
                if sessions.sticky_hash_header is not None:
                    headers[sessions.sticky_hash_header.lower()] = f"u{user}"
                hkey = tuple(headers.items())
                hit = cache.get(hkey)
                if hit is None:
                    hit = cache[hkey] = _decide(table, req.path, req.method, host, headers,
                                                route_index)  # fmt: skip
                cls_route.append(hit)
                keyed(hit, req.path, headers)
        tr_i.append(
            [
                kind,
                int(a.ramp),
                int(keepalive),
                conn.pool_size if keepalive else 0,
                pool_at,
                (conn.requests_per_connection or -1) if keepalive else -1,
                len(t.requests),
                tpl_at,
                users,
                len(names),
                az_at,
                len(a.steps) if a.steps else 0,
                steps_at,
                n_replay,
                replay_at,
                class_at,
            ]
        )
        tr_f.append(
            [
                rate,
                a.amplitude or 0.0,
                a.period_s or 1.0,
                conn.lifetime_s if keepalive and conn.lifetime_s else math.inf,
                lam_max,
                start,
                end,
            ]
        )
        tr_i[-1].append(tpl_at + len(weights))  # TI_AZCUM_AT
        pool_at += conn.pool_size if keepalive else 0

    # -- ingress pool and load balancer ------------------------------------------------------------
    ing, aws = sc.ingress, sc.aws
    nodes = ing.nodes()
    if not nodes:
        raise SimulationError("the ingress pool has no nodes: set ingress.nodes_per_az >= 1")
    placements = ing.gateway_nodes()
    if not placements:
        raise SimulationError("no gateway pods: set ingress.pods_per_node >= 1 or gateway_replicas")
    per_node = [placements.count(n) for n in range(len(nodes))]
    gw_scale = [max(1.0, per_node[n] * ing.concurrency / ing.cores_per_node) for n in placements]
    node_gw_at = [0]
    node_gw: list[int] = []
    for n in range(len(nodes)):
        node_gw.extend(k for k, m in enumerate(placements) if m == n)
        node_gw_at.append(len(node_gw))
    if aws.target_type == "ip":
        tg = [[az_index[nodes[m][1]], m, k] for k, m in enumerate(placements)]
    else:
        tg = [[az_index[az], n, -1] for n, (_, az) in enumerate(nodes)]
    default_cpu = DistSpec.model_validate(f"det({cost.cpu_ms}ms)")
    default_lat = DistSpec.model_validate(f"det({cost.latency_ms}ms)")

    # -- events ---------------------------------------------------------------------------
    ev_i: list[list[int]] = []
    ev_f: list[list[float]] = []
    svc_index = {s.name: i for i, s in enumerate(sc.services)}
    node_index = {name: i for i, (name, _) in enumerate(nodes)}
    for ev in sorted(sc.events, key=lambda e: e.at_s):
        s = svc_index[ev.service] if ev.service else 0
        svc = sc.services[s]
        which = -1
        if ev.version is not None:
            matches = [i for i, (sn, vn) in enumerate(version_names)
                       if sn == svc.name and vn == ev.version]  # fmt: skip
            which = matches[0] if matches else -2  # -2: names no version (touches no pod)
        if ev.kind in ("deploy", "scale") and which == -1:
            which = version_names.index((svc.name, svc.versions[0].name))
        ev_i.append(
            [
                _EVENT_KINDS[ev.kind],
                s,
                which,
                az_index.get(ev.az, -1) if ev.az is not None else -1,
                node_index.get(ev.node, -1) if ev.node is not None else 0,
                ev.count,
                ev.status,
                ev.replicas if ev.replicas is not None else -1,
            ]
        )
        ev_f.append(
            [
                ev.at_s,
                ev.restart_after_s if ev.restart_after_s is not None else math.inf,
                ev.duration_s if ev.duration_s else math.inf,
                ev.probability,
            ]
        )

    cfg_i = np.zeros(lay.CI_SIZE, dtype=np.int64)
    cfg_i[lay.CI_INTERVALS] = n_intervals
    cfg_i[lay.CI_TRAFFIC] = len(sc.traffic)
    cfg_i[lay.CI_LB_ALB] = int(aws.lb == "alb")
    cfg_i[lay.CI_ALB_RR] = int(aws.alb_algorithm == "round_robin")
    cfg_i[lay.CI_CROSS_ZONE] = int(aws.cross_zone_enabled)
    cfg_i[lay.CI_LOCAL] = int(aws.external_traffic_policy == "Local")
    cfg_i[lay.CI_TARGET_IP] = int(aws.target_type == "ip")
    cfg_i[lay.CI_NODES] = len(nodes)
    cfg_i[lay.CI_GW] = len(placements)
    cfg_i[lay.CI_WORKERS] = ing.concurrency
    cfg_i[lay.CI_TARGETS] = len(tg)
    cfg_i[lay.CI_D_LB] = dists.add(aws.lb_latency, skip_zero=True)
    cfg_i[lay.CI_D_KP] = dists.add(aws.kube_proxy_latency, skip_zero=True)
    cfg_i[lay.CI_D_NODE] = dists.add(aws.cross_node_latency, skip_zero=True)
    cfg_i[lay.CI_D_AZ] = dists.add(aws.cross_az_latency, skip_zero=True)
    cfg_i[lay.CI_D_NET] = cfg_i[lay.CI_D_AZ]  # pod-side cross-AZ hops use the same distribution
    cfg_i[lay.CI_D_CPU] = dists.add(ing.cpu_per_request or default_cpu, skip_zero=True)
    cfg_i[lay.CI_D_LAT] = dists.add(ing.proxy_latency or default_lat, skip_zero=True)
    cfg_i[lay.CI_D_SC_CPU] = sidecar_cpu
    cfg_i[lay.CI_D_SC_LAT] = sidecar_lat
    cfg_i[lay.CI_ROUTES] = n_r
    cfg_i[lay.CI_CLUSTERS] = n_c
    cfg_i[lay.CI_VERSIONS] = n_versions
    cfg_i[lay.CI_BUCKET_TIMER] = int(profile.token_bucket == "timer")
    cfg_i[lay.CI_BACKOFF_DOCS] = int(profile.backoff_formula != "source")
    cfg_i[lay.CI_EJECT_ONE] = int(profile.eject_at_least_one)
    cfg_i[lay.CI_COUNTS_LEN] = hdr.counts_len
    cfg_i[lay.CI_HDR_HIGHEST] = hdr.highest_us
    cfg_i[lay.CI_HDR_UNIT] = hdr._unit
    cfg_i[lay.CI_HDR_HALFMAG] = hdr._half_mag
    cfg_i[lay.CI_HDR_HALFCOUNT] = hdr._half_count
    cfg_i[lay.CI_HDR_MASK] = hdr._mask
    cfg_i[lay.CI_STATUSES] = len(status_list)
    cfg_i[lay.CI_EVENTS] = len(ev_i)
    cfg_i[lay.CI_MAX_PODS] = max_pods
    cfg_i[lay.CI_AZS] = len(azs)
    cfg_i[lay.CI_BUCKET_SPECS] = len(specs)
    cfg_i[lay.CI_GW_BUCKET] = gw_bucket
    cfg_i[lay.CI_HC_UNHEALTHY] = aws.health_check.unhealthy_threshold
    cfg_f = np.zeros(lay.CF_SIZE, dtype=np.float64)
    cfg_f[lay.CF_DURATION] = run.duration_s
    cfg_f[lay.CF_WARMUP] = run.warmup_s
    cfg_f[lay.CF_INTERVAL] = run.metrics_interval_s
    cfg_f[lay.CF_HC_INTERVAL] = aws.health_check.interval_s
    cfg_f[lay.CF_MAX_IN_FLIGHT] = budget.SIM_MAX_IN_FLIGHT
    cfg_f[lay.CF_TRACE_SAMPLE] = run.trace_sample

    def ints(rows: list[list[int]] | list[int], width: int = 0) -> IntArray:
        a = np.array(rows, dtype=np.int64)
        if a.size == 0:
            return np.zeros((1, width) if width else 1, dtype=np.int64)
        return a

    def floats(rows: list[list[float]] | list[float], width: int = 0) -> FloatArray:
        a = np.array(rows, dtype=np.float64)
        if a.size == 0:
            return np.zeros((1, width) if width else 1, dtype=np.float64)
        return a

    pools = n_pooled * len(placements) * ing.concurrency * max_pods
    if pools > MAX_POOLS:
        raise UnsupportedError(
            f"HTTP/1.1 connection pools for {pools} cluster/worker/pod combinations (the fast "
            f"engine holds {MAX_POOLS})"
        )

    arrays: dict[str, npt.NDArray[Any]] = {
        "cfg_i": cfg_i,
        "cfg_f": cfg_f,
        "dists": floats([list(r) for r in dists.rows], 4),
        "emp": floats(dists.emp),
        "tr_i": ints(tr_i, lay.TI_SIZE),
        "tr_f": floats(tr_f, lay.TF_SIZE),
        "tr_cum": floats(cum),
        "tr_az": ints(tr_az),
        "steps": floats(steps, 2),
        "replay": floats(replay),
        "cls_route": ints(cls_route),
        "cls_key": np.array(cls_key or [0], dtype=np.uint64),
        "cls_keyed": ints(cls_keyed),
        "tg_i": ints(tg, 3),
        "node_az": ints([az_index[az] for _, az in nodes]),
        "node_gw_at": ints(node_gw_at),
        "node_gw": ints(node_gw),
        "gw_node": ints(placements),
        "gw_scale": floats(gw_scale),
        "rt_i": ints(rt_i, lay.RI_SIZE),
        "rt_f": floats(rt_f, lay.RF_SIZE),
        "rt_retry_status": ints(rt_retry, 600),
        "wc_cluster": ints(wc_cluster),
        "wc_weight": ints(wc_weight),
        "mr_i": ints(mr_i, lay.MR_SIZE),
        "bk_i": ints(bk_i, lay.BI_SIZE),
        "bk_f": floats(bk_f, lay.BF_SIZE),
        "cl_i": ints(cl_i, lay.KI_SIZE),
        "cl_f": floats(cl_f, lay.KF_SIZE),
        "ver_in_cl": ver_in_cl,
        "ve_i": ints(ve_i, lay.VI_SIZE),
        "ve_f": floats(ve_f, lay.VF_SIZE),
        "ve_label": ints(ve_label),
        "er_i": ints(er_i),
        "er_f": floats(er_f, lay.EF_SIZE),
        "ev_i": ints(ev_i, lay.EI_SIZE),
        "ev_f": floats(ev_f, lay.EVF_SIZE),
        "status_of": status_of,
        "key_of": key_of,
        "key_stage": np.arange(len(keys) * len(lay.STAGE_ROWS), dtype=np.int64),
        "init_pods": ints([list(p) for p in pods], 2),
    }
    streams = ["lb", "lb/latency", "lb/kube-proxy", "lb/cross-node", "lb/cross-az",
               "ingress/cpu", "ingress/latency", "router", "router/weights", "net/cross-az",
               "sidecar", "backoff", "trace"]  # fmt: skip
    for t in sc.traffic:
        streams += [f"traffic/{t.name}/arrivals", f"traffic/{t.name}/requests",
                    f"traffic/{t.name}/connections"]  # fmt: skip
    streams += [f"upstream/{n}" for n in cluster_names]
    return Plan(
        arrays=arrays,
        layout=hdr,
        routes=[*route_names, "-"],
        clusters=[*cluster_names, "-"],
        labels=[*label_names, "-"],
        keys=keys,
        statuses=status_list,
        nodes=nodes,
        azs=azs,
        version_names=version_names,
        streams=streams,
        max_pods=max_pods,
        initial_pods=len(pods),
        table=table,
        findings=findings,
        class_paths=class_paths,
    )


def _decide(
    table: RouteTable,
    path: str,
    method: str,
    host: str,
    headers: dict[str, str],
    route_index: dict[int, int],
) -> int:
    """Route index of one request class through the compiled table; -1 for no route (404 NR)."""
    d = route(table, Request(path, method, host, headers))
    if d.route is None:
        if d.status not in (None, 404) or d.flags not in ("", "NR"):
            raise UnsupportedError(f"a local reply {d.status} {d.flags} without a route")
        return -1
    return route_index[id(d.route)]
