"""Compile Istio config into the Envoy-level :class:`~istiolab.envoy.model.RouteTable`.

This is the one implementation of routing semantics in istiolab. It follows istiod
(``pilot/pkg/networking/core/route``): one Envoy route per match block, route generation stops
after the first catch-all of a VirtualService, cluster names ``outbound|port|subset|host``,
weights as written, retries/timeouts/faults from the route or the profile's defaults, and
cluster policy from DestinationRules. Legacy input (RouteRule, DestinationPolicy, Istio Ingress,
Mixer quotas) is first converted with :func:`istiolab.config.convert.convert`, which implements
Pilot 0.2's ordering and path semantics, and then compiled with the 0.2 profile.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import fqdn, gateway_ref, host_matches
from istiolab.config.k8s import IngressV1, IngressV1Beta1, Service
from istiolab.config.legacy import DestinationPolicy, MemQuota, RouteRule
from istiolab.config.matching import is_catch_all_match
from istiolab.config.model import (
    Destination,
    DestinationRule,
    EnvoyFilter,
    Gateway,
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    TrafficPolicy,
    VirtualService,
)
from istiolab.config.ratelimit import LocalRateLimitSpec, local_rate_limits
from istiolab.config.validate import validate
from istiolab.envoy import gatewayapi
from istiolab.envoy.model import (
    ClusterPolicy,
    DirectResponse,
    FaultPolicy,
    HeaderMatcher,
    HeaderOps,
    Mirror,
    OutlierPolicy,
    QueryParamMatcher,
    RateLimit,
    Redirect,
    RetryPolicy,
    Rewrite,
    Route,
    RouteMatch,
    RouteSource,
    RouteTable,
    StringMatcher,
    VirtualHost,
    WeightedCluster,
    cluster_name,
)
from istiolab.errors import CompileError, ConfigError
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile, get_profile
from istiolab.units import parse_duration

DEFAULT_PORT = 80
_LB = {
    "UNSPECIFIED": None,
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "ROUND_ROBIN": "ROUND_ROBIN",
    "RANDOM": "RANDOM",
    "PASSTHROUGH": "ROUND_ROBIN",
}


def is_legacy(config: ConfigSet) -> bool:
    """Whether the config needs Pilot 0.2 conversion before compiling."""
    return bool(config.kind((RouteRule, DestinationPolicy, MemQuota, IngressV1Beta1, IngressV1)))


def default_profile(config: ConfigSet) -> str:
    """The profile used when none is given: ``0.2`` for legacy input, else the newest."""
    return "0.2" if is_legacy(config) else get_profile(None).name


def compile(
    config: ConfigSet,
    profile: IstioProfile | str | None = None,
    gateway: str | None = None,
    *,
    port: int | None = None,
) -> RouteTable:
    """Compile a config set into the route table of the ingress gateway (or the mesh).

    Args:
        config: Loaded configuration. Error findings make compilation refuse.
        profile: Istio version. Default: ``0.2`` for legacy input, else the newest.
        gateway: ``namespace/name`` (or ``name``) of the Gateway to compile for; default all
            Gateways of the config. With no Gateway at all, the mesh (sidecar) view is compiled.
        port: Gateway port; default 80 when a server listens there, else the first HTTP port.

    Returns:
        The route table.

    Raises:
        ConfigError: When validation finds errors (every finding is listed).
        CompileError: When the gateway or port asked for does not exist.
    """
    legacy = is_legacy(config)
    prof = get_profile(profile if profile is not None else default_profile(config))
    problems = [f for f in validate(config, prof) if f.severity is Severity.ERROR]
    if problems:
        raise ConfigError(problems)
    notes: list[Finding] = []
    origin_names: dict[str, str] = {}
    if legacy:
        from istiolab.config.convert import convert

        conv = convert(config, prof, modern_defaults=not prof.legacy)
        notes.extend(conv.findings)
        origin_names = {rr.name: rr.key for rr in config.kind(RouteRule)}
        config = conv.config
    return _Compiler(config, prof, notes, origin_names).run(gateway, port)


class _Compiler:
    def __init__(
        self,
        config: ConfigSet,
        profile: IstioProfile,
        notes: list[Finding],
        origin_names: dict[str, str],
    ) -> None:
        self.cs = config
        self.profile = profile
        self.notes = notes
        self.origin_names = origin_names
        self.services = config.kind(Service)
        self.drs = sorted(config.kind(DestinationRule), key=lambda d: (d.namespace, d.name))
        self.rate_limits: list[LocalRateLimitSpec] = [
            rl for ef in config.kind(EnvoyFilter) for rl in local_rate_limits(ef)
        ]
        self.clusters: dict[str, ClusterPolicy] = {}

    def note(
        self, code: str, res: Resource, path: Iterable[str | int], message: str, fix: str
    ) -> None:
        self.notes.append(self.cs.finding(code, res, tuple(path), message, fix))

    # -- top level -------------------------------------------------------------------------

    def run(self, gateway: str | None, port: int | None) -> RouteTable:
        gateway_api = gatewayapi.gateways_for(self.cs, gateway)
        if gateway_api:  # Kubernetes Gateway API Gateways: istiolab.envoy.gatewayapi
            return gatewayapi.compile_gateway_api(
                self.cs, self.profile, gateway_api, port, self, self.notes
            )
        gateways = self.cs.kind(Gateway)
        if gateway is not None:
            ns, name = gateway_ref(gateway, "default") if "/" in gateway else ("", gateway)
            chosen = [g for g in gateways if g.name == name and (not ns or g.namespace == ns)]
            if not chosen:
                known = ", ".join(f"{g.namespace}/{g.name}" for g in gateways) or "none"
                raise CompileError(f"gateway {gateway!r} is not in the config (gateways: {known})")
            gateways = chosen
        if not gateways:
            vhosts = self.mesh(port or DEFAULT_PORT)
            name, lport = "mesh", port or DEFAULT_PORT
            selector: dict[str, str] = {}
        else:
            ports = sorted(
                {
                    s.port.number
                    for g in gateways
                    for s in g.spec.servers
                    if _is_http(s.port.protocol)
                }
            )
            if port is None:
                if not ports:
                    raise CompileError(
                        "no HTTP server in gateways "
                        + ", ".join(f"{g.namespace}/{g.name}" for g in gateways)
                    )
                port = DEFAULT_PORT if DEFAULT_PORT in ports else ports[0]
            elif port not in ports:
                raise CompileError(f"no gateway server listens on port {port} (ports: {ports})")
            lport = port
            vhosts = self.gateway(gateways, port)
            name = "gateway " + ",".join(f"{g.namespace}/{g.name}" for g in gateways) + f":{port}"
            selector = dict(gateways[0].spec.selector)
        rate = self.gateway_rate_limit(selector, gateway_mode=bool(gateways))
        return RouteTable(
            name=name,
            port=lport,
            virtual_hosts=tuple(vhosts),
            clusters=dict(sorted(self.clusters.items())),
            rate_limit=rate,
            profile=self.profile.name,
            findings=tuple(self.notes),
        )

    def gateway(self, gateways: list[Gateway], port: int) -> list[VirtualHost]:
        refs = {(g.namespace, g.name) for g in gateways}
        accepted = [
            h for g in gateways for s in g.spec.servers if s.port.number == port for h in s.hosts
        ]
        selector = {k: v for g in gateways for k, v in g.spec.selector.items()}
        by_domain: dict[str, list[Route]] = defaultdict(list)
        order: list[str] = []
        for vs in sorted(self.cs.kind(VirtualService), key=lambda v: (v.namespace, v.name)):
            bound = {gateway_ref(r, vs.namespace) for r in vs.spec.gateways or []}
            if not bound & refs:
                continue
            routes = self.vs_routes(vs, port, gateway_names=refs, selector=selector)
            for host in vs.spec.hosts:
                for domain in _domains_for(host, accepted):
                    if domain not in by_domain:
                        order.append(domain)
                    by_domain[domain].extend(routes)
        vhosts = []
        for domain in order:
            routes = by_domain[domain]
            # istiod's SortVHostRoutes: catch-all routes of merged VirtualServices go last.
            routes = (
                sorted(routes, key=lambda r: r.match.is_catch_all)
                if len({r.source.resource for r in routes}) > 1
                else routes
            )
            vhosts.append(VirtualHost(f"{domain}:{port}", (domain,), tuple(routes)))
        return vhosts

    def mesh(self, port: int) -> list[VirtualHost]:
        vhosts = []
        for vs in sorted(self.cs.kind(VirtualService), key=lambda v: (v.namespace, v.name)):
            gws = vs.spec.gateways
            if gws and "mesh" not in gws:
                continue
            routes = self.vs_routes(vs, port, gateway_names={("", "mesh")}, selector=None)
            for host in vs.spec.hosts:
                full = fqdn(host, vs.namespace)
                domains = [full]
                if full.endswith(".svc.cluster.local"):
                    name, ns = full.split(".")[:2]
                    domains = (
                        [name, f"{name}.{ns}", f"{name}.{ns}.svc", full]
                        if ns == vs.namespace
                        else [f"{name}.{ns}", f"{name}.{ns}.svc", full]
                    )
                vhosts.append(
                    VirtualHost(f"{full}:{port}", tuple(dict.fromkeys(domains)), tuple(routes))
                )
        return vhosts

    # -- VirtualService → routes -----------------------------------------------------------

    def vs_routes(
        self,
        vs: VirtualService,
        port: int,
        *,
        gateway_names: set[tuple[str, str]],
        selector: dict[str, str] | None,
    ) -> list[Route]:
        out: list[Route] = []
        for i, http in enumerate(vs.spec.http or []):
            base = ("spec", "http", i)
            if http.delegate is not None:
                self.note(
                    "IL313",
                    vs,
                    (*base, "delegate"),
                    "delegate is not compiled; the route is left out",
                    "inline the delegate VirtualService's routes",
                )
                continue
            blocks: list[tuple[int | None, HTTPMatchRequest | None]] = (
                [(j, m) for j, m in enumerate(http.match)] if http.match else [(None, None)]
            )
            action = self.action(vs, http, base, port)
            if action is None:
                continue
            stop = False
            for j, m in blocks:
                if m is not None and not self.block_applies(m, port, vs, gateway_names, selector):
                    continue
                match = route_match(m)
                src_res = self.origin_names.get(http.name or "", vs.key)
                src = RouteSource(src_res, i, j, http.name)
                name = http.name or f"{vs.namespace}/{vs.name}/http[{i}]"
                out.append(dataclasses.replace(action, name=name, match=match, source=src))
                if is_catch_all_match(m):
                    # istiod stops generating routes after the first catch-all of a VirtualService.
                    stop = True
                    break
            if stop:
                break
        return out

    def block_applies(
        self,
        m: HTTPMatchRequest,
        port: int,
        vs: VirtualService,
        gateway_names: set[tuple[str, str]],
        selector: dict[str, str] | None,
    ) -> bool:
        if m.port is not None and m.port != port:
            return False
        if m.gateways is not None:
            names = {
                ("", "mesh") if g == "mesh" else gateway_ref(g, vs.namespace) for g in m.gateways
            }
            if not names & gateway_names:
                return False
        return not (
            m.source_labels
            and selector is not None
            and not m.source_labels.items() <= selector.items()
        )

    def action(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...], listener_port: int
    ) -> Route | None:
        prof = self.profile
        placeholder = RouteMatch()
        src = RouteSource(vs.key, int(base[-1]), None, http.name)
        clusters: list[WeightedCluster] = []
        if http.route:
            dests = http.route
            for d in dests:
                host = fqdn(d.destination.host, vs.namespace)
                port = (
                    d.destination.port.number
                    if d.destination.port
                    else self.service_port(host, listener_port)
                )
                subset = d.destination.subset or ""
                weight = 100 if len(dests) == 1 else (d.weight or 0)
                if len(dests) > 1 and weight == 0:
                    continue  # istiod drops zero-weight destinations
                name = cluster_name(host, port, subset)
                clusters.append(WeightedCluster(name, weight, host, subset, port))
                self.cluster(vs, host, port, subset)
        redirect = None
        if http.redirect is not None:
            r = http.redirect
            redirect = Redirect(r.redirect_code or 301, r.uri, r.authority, r.port, r.scheme)
        direct = None
        if http.direct_response is not None:
            body = http.direct_response.body
            direct = DirectResponse(
                http.direct_response.status, (body.string or "") if body else ""
            )
        timeout = parse_duration(http.timeout) if http.timeout else prof.default_route_timeout_s
        fault = self.fault(vs, http, base)
        mirrors = self.mirrors(vs, http, listener_port)
        rewrite = None
        rw = http.rewrite
        # istio pilot/pkg/networking/core/route/route.go (translateRoute): uri -> prefix_rewrite,
        # uriRegexRewrite -> regex_rewrite {pattern, substitution}; validation refuses both at once.
        regex = rw.uri_regex_rewrite if rw is not None else None
        regex_pair = (
            (regex.match, regex.rewrite or "")
            if regex is not None and regex.match is not None
            else None
        )
        if rw is not None and (rw.uri is not None or rw.authority or regex_pair):
            rewrite = Rewrite(rw.uri, rw.authority, regex_pair)
        hash_policy = self.hash_policy(clusters[0]) if clusters else None
        route = Route(
            name="",
            match=placeholder,
            source=src,
            clusters=tuple(clusters),
            redirect=redirect,
            direct_response=direct,
            timeout_s=timeout if timeout else None,
            retry=self.retry(http, hash_policy is not None) if clusters else None,
            fault=fault,
            mirrors=mirrors,
            headers=_header_ops(http),
            rewrite=rewrite,
            rate_limit=self.route_rate_limit(http.name),
            hash_policy=hash_policy,
        )
        return route

    def service_port(self, host: str, listener_port: int) -> int:
        # istiod's route.GetDestinationCluster: a destination without a port goes to the
        # service's only port, else to the port of the listener the route is built for.
        svc = next((s for s in self.services if s.fqdn() == host), None)
        if svc is not None and len(svc.spec.ports) == 1:
            return svc.spec.ports[0].port
        return listener_port

    def retry(self, http: HTTPRoute, consistent_hash: bool) -> RetryPolicy | None:
        prof = self.profile
        r = http.retries
        if r is None:
            d = prof.default_retry
            if d is None:
                return None
            return RetryPolicy(
                num_retries=d.num_retries,
                retry_on=d.retry_on,
                retriable_status_codes=d.retriable_status_codes,
                previous_hosts=d.previous_hosts and not consistent_hash,
                host_selection_retry_max_attempts=d.host_selection_retry_max_attempts,
                backoff_base_s=prof.backoff_base_s,
                backoff_max_s=prof.backoff_max_s,
            )
        if r.attempts == 0:
            return None
        base = prof.default_retry
        tokens: list[str]
        codes: list[int] = []
        if r.retry_on:
            tokens = []
            for tok in (t.strip() for t in r.retry_on.split(",")):
                if tok.isdigit():
                    codes.append(int(tok))
                elif tok:
                    tokens.append(tok)
            if codes and "retriable-status-codes" not in tokens:
                tokens.append("retriable-status-codes")
        else:
            tokens = list(prof.retry_on_when_unset)
            if base is not None and "retriable-status-codes" in tokens:
                codes = list(base.retriable_status_codes)
        backoff = parse_duration(r.backoff) if r.backoff else prof.backoff_base_s
        return RetryPolicy(
            num_retries=r.attempts if r.attempts is not None else (base.num_retries if base else 2),
            retry_on=tuple(tokens),
            retriable_status_codes=tuple(codes),
            per_try_timeout_s=parse_duration(r.per_try_timeout) if r.per_try_timeout else None,
            previous_hosts=(r.retry_ignore_previous_hosts is not False) and not consistent_hash,
            host_selection_retry_max_attempts=base.host_selection_retry_max_attempts if base else 1,
            backoff_base_s=backoff,
            backoff_max_s=backoff * 10,
        )

    def fault(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...]
    ) -> FaultPolicy | None:
        f = http.fault
        if f is None:
            return None
        delay_s = None
        delay_pm = abort_pm = 0
        status = None
        if f.delay is not None and f.delay.fixed_delay:
            delay_s = parse_duration(f.delay.fixed_delay)
            delay_pm = _per_million(
                f.delay.percentage.value if f.delay.percentage else None, f.delay.percent
            )
        if f.abort is not None:
            if f.abort.http_status is not None:
                status = f.abort.http_status
                abort_pm = _per_million(
                    f.abort.percentage.value if f.abort.percentage else None, None
                )
            else:
                self.note(
                    "IL313",
                    vs,
                    (*base, "fault", "abort"),
                    "gRPC/HTTP2 aborts are not compiled",
                    "use httpStatus",
                )
        if delay_pm == 0 and abort_pm == 0:
            return None
        return FaultPolicy(
            delay_s if delay_pm else None, delay_pm, status if abort_pm else None, abort_pm
        )

    def mirrors(
        self, vs: VirtualService, http: HTTPRoute, listener_port: int
    ) -> tuple[Mirror, ...]:
        out = []
        items: list[tuple[Destination, float]] = []
        if http.mirror is not None:
            pct = (
                http.mirror_percentage.value
                if http.mirror_percentage
                else (float(http.mirror_percent) if http.mirror_percent is not None else 100.0)
            )
            items.append((http.mirror, pct))
        for m in http.mirrors or []:
            items.append((m.destination, m.percentage.value if m.percentage else 100.0))
        for dest, pct in items:
            host = fqdn(dest.host, vs.namespace)
            port = dest.port.number if dest.port else self.service_port(host, listener_port)
            subset = dest.subset or ""
            pm = _per_million(pct, None)
            if pm == 0:
                continue
            self.cluster(vs, host, port, subset)
            out.append(Mirror(cluster_name(host, port, subset), host, subset, port, pm))
        return tuple(out)

    # -- clusters --------------------------------------------------------------------------

    def destination_rule(self, host: str) -> DestinationRule | None:
        for dr in self.drs:  # the first DestinationRule for a host wins (istiod merging)
            if fqdn(dr.spec.host, dr.namespace) == host:
                return dr
        return None

    def cluster(self, vs: VirtualService, host: str, port: int, subset: str) -> None:
        name = cluster_name(host, port, subset)
        if name in self.clusters:
            return
        prof = self.profile
        dr = self.destination_rule(host)
        policy = TrafficPolicy()
        labels: dict[str, str] = {}
        if dr is not None:
            top = dr.spec.traffic_policy or TrafficPolicy()
            policy = _port_policy(top, port)
            if subset:
                sub = next((s for s in dr.spec.subsets or [] if s.name == subset), None)
                if sub is not None:
                    labels = dict(sub.labels or {})
                    if sub.traffic_policy is not None:
                        policy = _merge_policy(policy, _port_policy(sub.traffic_policy, port))
        svc = next((s for s in self.services if s.fqdn() == host), None)
        if svc is not None and svc.spec.selector:
            labels = {**svc.spec.selector, **labels}
        cb = prof.circuit_breaker_default
        kwargs: dict[str, object] = {
            "lb": prof.default_lb,
            "max_connections": cb[0],
            "max_pending_requests": cb[1],
            "max_requests": cb[2],
            "max_retries": cb[3],
            "connect_timeout_s": prof.connect_timeout_s,
        }
        lb = policy.load_balancer
        if lb is not None:
            if lb.simple and _LB.get(lb.simple):
                kwargs["lb"] = _LB[lb.simple]
            if lb.consistent_hash is not None:
                ch = lb.consistent_hash
                kwargs["lb"] = "MAGLEV" if ch.maglev is not None else "RING_HASH"
                size = (
                    (ch.maglev.table_size if ch.maglev else None)
                    or (ch.ring_hash.minimum_ring_size if ch.ring_hash else None)
                    or ch.minimum_ring_size
                )
                kwargs["ring_size"] = size or (65537 if ch.maglev is not None else 1024)
            warm = lb.warmup.duration if lb.warmup else lb.warmup_duration_secs
            if warm:
                kwargs["slow_start_s"] = parse_duration(warm)
                if lb.warmup is not None:
                    if lb.warmup.aggression is not None:
                        kwargs["slow_start_aggression"] = lb.warmup.aggression
                    if lb.warmup.minimum_percent is not None:
                        kwargs["slow_start_min_percent"] = lb.warmup.minimum_percent
        cp = policy.connection_pool
        if cp is not None:
            if cp.tcp is not None:
                if cp.tcp.max_connections:
                    kwargs["max_connections"] = cp.tcp.max_connections
                if cp.tcp.connect_timeout:
                    kwargs["connect_timeout_s"] = parse_duration(cp.tcp.connect_timeout)
            if cp.http is not None:
                h = cp.http
                if h.http1_max_pending_requests:
                    kwargs["max_pending_requests"] = h.http1_max_pending_requests
                if h.http2_max_requests:
                    kwargs["max_requests"] = h.http2_max_requests
                if h.max_retries:
                    kwargs["max_retries"] = h.max_retries
                if h.max_requests_per_connection:
                    kwargs["max_requests_per_connection"] = h.max_requests_per_connection
        od = policy.outlier_detection
        if od is not None:
            c5 = (
                od.consecutive_5xx_errors
                if od.consecutive_5xx_errors is not None
                else od.consecutive_errors
            )
            kwargs["outlier"] = OutlierPolicy(
                consecutive_5xx=5 if c5 is None else (c5 or None),
                consecutive_gateway_errors=od.consecutive_gateway_errors or None,
                interval_s=parse_duration(od.interval) if od.interval else 10.0,
                base_ejection_s=parse_duration(od.base_ejection_time)
                if od.base_ejection_time
                else 30.0,
                max_ejection_percent=od.max_ejection_percent
                if od.max_ejection_percent is not None
                else 10,
                min_health_percent=od.min_health_percent or 0,
            )
        self.clusters[name] = ClusterPolicy(
            name=name,
            host=host,
            subset=subset,
            port=port,
            labels=tuple(sorted(labels.items())),
            source=dr.key if dr is not None else "",
            **kwargs,  # type: ignore[arg-type]
        )

    def hash_policy(self, wc: WeightedCluster) -> tuple[str, str] | None:
        dr = self.destination_rule(wc.host)
        if dr is None:
            return None
        policy = _port_policy(dr.spec.traffic_policy or TrafficPolicy(), wc.port)
        if wc.subset:
            sub = next((s for s in dr.spec.subsets or [] if s.name == wc.subset), None)
            if sub is not None and sub.traffic_policy is not None:
                policy = _merge_policy(policy, _port_policy(sub.traffic_policy, wc.port))
        ch = policy.load_balancer.consistent_hash if policy.load_balancer else None
        if ch is None:
            return None
        if ch.http_header_name:
            return ("header", ch.http_header_name.lower())
        if ch.http_cookie is not None:
            return ("cookie", ch.http_cookie.name)
        if ch.use_source_ip:
            return ("source_ip", "")
        if ch.http_query_parameter_name:
            return ("query", ch.http_query_parameter_name)
        return None

    # -- rate limits -----------------------------------------------------------------------

    def _bucket(self, spec: LocalRateLimitSpec, scope: str) -> RateLimit | None:
        if spec.max_tokens is None:
            return None
        if spec.enabled_per_million == 0 or spec.enforced_per_million == 0:
            ef = next(e for e in self.cs.kind(EnvoyFilter) if e.key == spec.resource)
            self.note(
                "IL314",
                ef,
                ("spec", "configPatches", spec.patch_index),
                "filter_enabled/filter_enforced is missing or 0 %, so Envoy never rejects",
                "set filter_enabled and filter_enforced default_value to 100 HUNDRED",
            )
        return RateLimit(
            max_tokens=spec.max_tokens,
            tokens_per_fill=spec.tokens_per_fill,
            fill_interval_s=spec.fill_interval_s,
            status=spec.status,
            enabled_per_million=spec.enabled_per_million,
            enforced_per_million=spec.enforced_per_million,
            scope=scope,
            source=spec.resource,
        )

    def gateway_rate_limit(
        self, selector: dict[str, str], *, gateway_mode: bool
    ) -> RateLimit | None:
        for spec in self.rate_limits:
            if spec.scope != "gateway":
                continue
            if gateway_mode and spec.context not in ("GATEWAY", "ANY"):
                continue
            if spec.selector and not spec.selector.items() <= selector.items():
                continue
            bucket = self._bucket(spec, "gateway")
            if bucket is not None:
                return bucket
        return None

    def route_rate_limit(self, route_name: str | None) -> RateLimit | None:
        for spec in self.rate_limits:
            if spec.scope == "route" and (spec.route_name is None or spec.route_name == route_name):
                return self._bucket(spec, "route")
        return None


# -- helpers ---------------------------------------------------------------------------------


def _is_http(protocol: str) -> bool:
    return protocol.upper() in ("HTTP", "HTTP2", "GRPC", "HTTPS")


def _domains_for(host: str, accepted: list[str]) -> list[str]:
    """Virtual host domains of a VirtualService host on a gateway that accepts *accepted*."""
    if host == "*":
        return sorted(set(accepted)) if accepted else ["*"]
    if any(host_matches(a, host) for a in accepted):
        return [host]
    # A wildcard VS host narrowed by the gateway's specific hosts.
    return [a for a in accepted if host_matches(host, a)]


def _per_million(value: float | None, percent: int | None) -> int:
    # istiod's translatePercentToFractionalPercent: uint32(value * 10000), truncated.
    if value is not None:
        return int(value * 10_000)
    if percent is not None:
        return percent * 10_000
    return 0


def _matcher(sm: StringMatch, *, ignore_case: bool = False) -> StringMatcher:
    kind = sm.kind
    # istiod's canBeConvertedToPresentMatch: only the non-RE2 "*" means "present"; ".*" stays
    # a regex (it differs from "present" under withoutHeaders, where a missing header is "").
    if kind == "regex" and sm.value == "*":
        return StringMatcher("present")
    return StringMatcher(kind, sm.value, ignore_case and kind in ("exact", "prefix"))


def route_match(m: HTTPMatchRequest | None) -> RouteMatch:
    """The Envoy route match istiod builds from one ``HTTPMatchRequest`` (None: match all).

    Method, authority and scheme become pseudo-header matchers; a ``present`` uri matches every
    path. Workload filters (port, sourceLabels, gateways, sourceNamespace) decide whether the
    block applies at all and are not part of the match.
    """
    if m is None:
        return RouteMatch()
    kind, path = "prefix", "/"
    if m.uri is not None and m.uri.kind != "present":
        kind, path = m.uri.kind, m.uri.value
    headers: list[HeaderMatcher] = []
    for name, sm in (m.headers or {}).items():
        headers.append(HeaderMatcher(name.lower(), _matcher(sm)))
    for name, sm in (m.without_headers or {}).items():
        headers.append(HeaderMatcher(name.lower(), _matcher(sm), invert=True))
    pseudo_headers = ((":method", m.method), (":authority", m.authority), (":scheme", m.scheme))
    for pseudo, psm in pseudo_headers:
        if psm is not None:
            headers.append(HeaderMatcher(pseudo, _matcher(psm)))
    headers.sort(key=lambda h: (h.name, h.invert))
    params = []
    for name, sm in sorted((m.query_params or {}).items()):
        # istiod: only an empty StringMatch ({}) is present_match; exact "" matches "?name" and
        # "?name=" but not "?name=value".
        params.append(QueryParamMatcher(name, _matcher(sm)))
    return RouteMatch(
        path_kind=kind,
        path=path,
        case_sensitive=not m.ignore_uri_case,
        headers=tuple(headers),
        query_params=tuple(params),
    )


def _header_ops(http: HTTPRoute) -> HeaderOps | None:
    h = http.headers
    if h is None:
        return None
    req, resp = h.request, h.response

    def items(d: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((d or {}).items()))

    return HeaderOps(
        request_set=items(req.set if req else None),
        request_add=items(req.add if req else None),
        request_remove=tuple(req.remove or []) if req else (),
        response_set=items(resp.set if resp else None),
        response_add=items(resp.add if resp else None),
        response_remove=tuple(resp.remove or []) if resp else (),
    )


def _port_policy(policy: TrafficPolicy, port: int) -> TrafficPolicy:
    for pl in policy.port_level_settings or []:
        if pl.port is not None and pl.port.number == port:
            return _merge_policy(
                policy,
                TrafficPolicy(
                    load_balancer=pl.load_balancer,
                    connection_pool=pl.connection_pool,
                    outlier_detection=pl.outlier_detection,
                ),
            )
    return policy


def _merge_policy(base: TrafficPolicy, over: TrafficPolicy) -> TrafficPolicy:
    """Istio merges subset (and port) policy over the top level field by field."""
    return TrafficPolicy(
        load_balancer=over.load_balancer or base.load_balancer,
        connection_pool=over.connection_pool or base.connection_pool,
        outlier_detection=over.outlier_detection or base.outlier_detection,
        tls=over.tls or base.tls,
        retry_budget=over.retry_budget or base.retry_budget,
    )
