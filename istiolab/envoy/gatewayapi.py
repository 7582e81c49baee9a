"""Compile Kubernetes Gateway API routes into the Envoy-level :class:`RouteTable`.

istiod turns each Gateway API route into VirtualService routes with "gateway semantics"
(istio/istio ``pilot/pkg/config/kube/gateway/conversion.go`` ``convertHTTPRoute``) and then
into Envoy routes (``pilot/pkg/networking/core/route/route.go``). This module does both steps at
once, into the same model the Istio compiler fills, so ``explain``, the simulator and ``verify``
read it unchanged:

* one Envoy route per match of every rule of every route attached for a hostname, in the
  precedence order of :mod:`istiolab.config.gatewayapi_routing` (``sortHTTPRoutes``);
* ``PathPrefix`` becomes Envoy's ``path_separated_prefix`` (whole path segments, trailing ``/``
  ignored; ``route.go`` ``TranslateRouteMatch`` for gateway semantics), ``PathPrefix /`` stays
  ``prefix: /``; ``Exact`` is ``path``; ``RegularExpression`` is ``safe_regex``;
* header names lower-cased, method as the ``:method`` header, query parameters as written;
* backendRefs with weight 0 dropped; no backend with weight > 0 (and no redirect) answers 500;
  a backendRef that does not resolve keeps its weight on the undefined cluster
  ``UnknownService`` and every route answers such a pick with 500
  (``cluster_not_found_response_code``), so an invalid backend gets 500 for its share;
* ``timeouts.request`` is the route timeout; ``timeouts.backendRequest`` is the per-try timeout
  when the rule has a ``retry`` stanza and otherwise *replaces* the route timeout (istiod's
  ``convertHTTPRoute``); rules without ``retry`` get the profile's default retries, as
  VirtualServices without ``retries`` do;
* filters: header modifiers (names lower-cased, the first of a repeated name wins), redirect
  (default 302), URL rewrite (``ReplaceFullPath`` as ``regex_rewrite`` of ``/.*``,
  ``ReplacePrefixMatch /`` as a regex that keeps the rest of the path, others as
  ``prefix_rewrite``), mirrors (percent or fraction).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.config.gatewayapi import (
    Gateway,
    HTTPHeaderFilter,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    gateway_seconds,
)
from istiolab.config.gatewayapi_checks import status_finding
from istiolab.config.gatewayapi_routing import (
    HTTP_PROTOCOLS,
    GatewayAPI,
    RankedMatch,
    normalized_path,
)
from istiolab.config.model import Gateway as IstioGateway
from istiolab.config.model import HTTPRetry
from istiolab.config.model import HTTPRoute as IstioHTTPRoute
from istiolab.envoy.model import (
    UNKNOWN_CLUSTER,
    DirectResponse,
    HeaderMatcher,
    HeaderOps,
    Mirror,
    QueryParamMatcher,
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
from istiolab.errors import CompileError
from istiolab.findings import Finding
from istiolab.profiles import IstioProfile

DEFAULT_PORT = 80
INVALID_BACKEND_STATUS = 500  # httproute_types.go: invalid backends answer 500 for their share


class ClusterSink(Protocol):
    """What the Istio compiler lends this one: cluster policies, retries, hash policies."""

    clusters: Any

    def cluster(self, vs: Any, host: str, port: int, subset: str) -> None:
        """Record the cluster policy of a destination (DestinationRules apply)."""

    def retry(self, http: Any, consistent_hash: bool) -> RetryPolicy | None:
        """The retry policy of an Istio HTTP route."""

    def hash_policy(self, wc: WeightedCluster) -> tuple[str, str] | None:
        """The consistent-hash policy of a destination, if a DestinationRule sets one."""


def gateways_for(config: ConfigSet, gateway: str | None) -> list[Gateway]:
    """The Gateway API Gateways to compile (istiod's class), or [] to compile Istio's.

    With *gateway* given, those that it names (``namespace/name`` or ``name``); without, all of
    them, but only when the config has no ``networking.istio.io`` Gateway.
    """
    api = GatewayAPI(config)
    gws = api.istio_gateways()
    if gateway is not None:
        ns, _, name = gateway.rpartition("/")
        return [g for g in gws if g.name == name and (not ns or g.namespace == ns)]
    if config.kind(IstioGateway):
        return []
    return gws


def compile_gateway_api(
    config: ConfigSet,
    profile: IstioProfile,
    gateways: Sequence[Gateway],
    port: int | None,
    sink: ClusterSink,
    notes: list[Finding],
) -> RouteTable:
    """The route table of the listeners on one port of *gateways*.

    Args:
        config: The validated config set.
        profile: Istio version (default timeout and retries).
        gateways: The Gateway API Gateways (from :func:`gateways_for`).
        port: Listener port; default 80 when a listener has it, else the lowest HTTP port.
        sink: The Istio compiler, for cluster policies (DestinationRules) and retries.
        notes: Compile notes so far; this adds what it could not represent (``IL613``) and
            the status of every HTTPRoute that names the gateways (``IL615``).

    Returns:
        The route table.

    Raises:
        CompileError: When no HTTP listener of the gateways is on *port*.
    """
    ports = sorted(
        {
            listener.port
            for g in gateways
            for listener in g.spec.listeners
            if listener.protocol.upper() in HTTP_PROTOCOLS
        }
    )
    label = ",".join(f"{g.namespace}/{g.name}" for g in gateways)
    if not ports:
        raise CompileError(f"no HTTP listener in gateways {label}")
    if port is None:
        port = DEFAULT_PORT if DEFAULT_PORT in ports else ports[0]
    elif port not in ports:
        raise CompileError(f"no gateway listener on port {port} (ports: {ports})")
    api = GatewayAPI(config)
    names = {(g.namespace, g.name) for g in gateways}
    for r in api.http_routes:  # the would-be route status, for whoever shows the table
        for p in api.parents(r):
            if (p.ref.namespace or r.namespace, p.ref.name) in names:
                notes.append(status_finding(config, p))
    tls = any(
        listener.port == port and listener.protocol.upper() == "HTTPS"
        for g in gateways
        for listener in g.spec.listeners
    )
    builder = _Builder(config, profile, sink, notes, port, tls)
    vhosts = []
    for host, routes in sorted(api.virtual_hosts(port, gateways).items()):
        built = [builder.route(m) for m in api.ranked(routes)]
        vhosts.append(
            VirtualHost(f"{host}:{port}", (host,), tuple(r for r in built if r is not None))
        )
    return RouteTable(
        name=f"gateway {label}:{port}",
        port=port,
        virtual_hosts=tuple(vhosts),
        clusters=dict(sorted(sink.clusters.items())),
        profile=profile.name,
        findings=tuple(notes),
    )


class _Builder:
    def __init__(
        self,
        config: ConfigSet,
        profile: IstioProfile,
        sink: ClusterSink,
        notes: list[Finding],
        port: int,
        tls: bool,
    ) -> None:
        self.port = port
        self.tls = tls
        self.cs = config
        self.profile = profile
        self.sink = sink
        self.notes = notes
        self.api = GatewayAPI(config)
        self._noted: set[tuple[str, tuple[str | int, ...]]] = set()

    def note(self, res: Resource, path: Iterable[str | int], message: str, fix: str) -> None:
        where = tuple(path)
        if (res.key, where) in self._noted:
            return  # a rule compiles once per match and hostname; say it once
        self._noted.add((res.key, where))
        self.notes.append(self.cs.finding("IL613", res, where, message, fix))

    def route(self, ranked: RankedMatch) -> Route | None:
        route, rule, i = ranked.route, ranked.rule, ranked.rule_index
        base: tuple[str | int, ...] = ("spec", "rules", i)
        name = rule.name or f"{route.namespace}.{route.name}.{i}"
        src = RouteSource(route.key, i, ranked.match_index, rule.name)
        match = route_match(ranked.match)
        filters = {f.type: f for f in rule.filters or []}
        redirect = None
        rewrite = None
        if (f := filters.get("RequestRedirect")) is not None and f.request_redirect is not None:
            rr = f.request_redirect
            path = prefix = None
            if rr.path is not None:
                if rr.path.type == "ReplaceFullPath":
                    path = rr.path.replace_full_path
                else:
                    # conversion.go createRedirectFilter: HTTPRedirect.prefixRewrite, which
                    # route.go ApplyRedirect emits as the redirect's prefix_rewrite
                    prefix = rr.path.replace_prefix_match or "/"
            port = self.redirect_port(rr.port, rr.scheme)
            redirect = Redirect(
                rr.status_code or 302, path, rr.hostname, port, rr.scheme, prefix=prefix
            )
        if (f := filters.get("URLRewrite")) is not None and f.url_rewrite is not None:
            rewrite = self.rewrite(f.url_rewrite.hostname, f.url_rewrite.path, match)
        headers = _header_ops(
            filters["RequestHeaderModifier"].request_header_modifier
            if "RequestHeaderModifier" in filters
            else None,
            filters["ResponseHeaderModifier"].response_header_modifier
            if "ResponseHeaderModifier" in filters
            else None,
        )
        for k in ("ExtensionRef", "CORS"):
            if k in filters:
                self.note(
                    route,
                    (*base, "filters"),
                    f"the {k} filter is not compiled",
                    "remove it, or check its effect on a real gateway",
                )
        mirrors = self.mirrors(route, rule, base)
        if redirect is not None:
            return Route(
                name, match, src, redirect=redirect, headers=headers, rewrite=None, mirrors=()
            )
        clusters, invalid = self.destinations(route, rule, base)
        if clusters is None:
            return None
        if not clusters:
            # conversion.go: no backend with weight > 0 answers 500 (spec: httproute_types.go)
            return Route(name, match, src, direct_response=DirectResponse(500), headers=headers)
        timeout, retry = self.timeouts(rule, clusters)
        hash_policy = self.sink.hash_policy(clusters[0]) if not invalid else None
        return Route(
            name=name,
            match=match,
            source=src,
            clusters=tuple(clusters),
            timeout_s=timeout,
            retry=retry,
            mirrors=mirrors,
            headers=headers,
            rewrite=rewrite,
            hash_policy=hash_policy,
            cluster_not_found_status=INVALID_BACKEND_STATUS,
        )

    def redirect_port(self, port: int | None, scheme: str | None) -> int | None:
        """The redirect port as istiod sets it: the one given, else derived.

        conversion.go ``createRedirectFilter`` derives it from the request (the listener port)
        without a scheme and from the scheme's default with one; route.go ``ApplyRedirect``
        leaves out 80 for http and 443 for https.
        """
        if port is None and scheme is None:
            port = self.port
        effective = scheme or ("https" if self.tls else "http")
        if (port, effective) in ((80, "http"), (443, "https")):
            return None
        return port

    def destinations(
        self, route: HTTPRoute, rule: HTTPRouteRule, base: tuple[str | int, ...]
    ) -> tuple[list[WeightedCluster] | None, bool]:
        """Weighted clusters (None: the rule is dropped), and whether one does not resolve."""
        out: list[WeightedCluster] = []
        invalid = False
        refs = [
            (k, b)
            for k, b in enumerate(rule.backend_refs or [])
            if (b.weight is None or b.weight > 0)
        ]
        for k, ref in refs:
            b = self.api.backend(route, ref)
            if b.reason == "UnsupportedValue":
                self.note(
                    route,
                    (*base, "backendRefs", k),
                    f"{b.message}; istiod rejects the rule, so it is left out",
                    "give the Service's name and a port",
                )
                return None, True
            if ref.filters:
                self.note(
                    route,
                    (*base, "backendRefs", k, "filters"),
                    "filters of a single backendRef are not compiled",
                    "move the header filters to the rule",
                )
            weight = 100 if len(refs) == 1 else b.weight
            if b.reason is not None:
                invalid = True
                out.append(WeightedCluster(UNKNOWN_CLUSTER, weight, "", "", b.port))
                continue
            self.sink.cluster(route, b.host, b.port, "")
            out.append(WeightedCluster(cluster_name(b.host, b.port), weight, b.host, "", b.port))
        return out, invalid

    def timeouts(
        self, rule: HTTPRouteRule, clusters: list[WeightedCluster]
    ) -> tuple[float | None, RetryPolicy | None]:
        """Route timeout and retry policy, through istiod's VirtualService form."""
        retries = None
        if rule.retry is not None:
            # conversion.go: retry on connection errors plus the listed codes, 2 attempts unset
            on = ["connect-failure", "refused-stream", "unavailable", "cancelled"]
            on += [str(c) for c in rule.retry.codes or []]
            attempts = rule.retry.attempts if rule.retry.attempts is not None else 2
            retries = HTTPRetry(
                attempts=attempts,
                retry_on=",".join(on) if attempts else None,
                backoff=_istio_duration(rule.retry.backoff),
            )
        timeout = None
        t = rule.timeouts
        if t is not None and t.request and gateway_seconds(t.request) > 0:
            timeout = gateway_seconds(t.request)
        if t is not None and t.backend_request and gateway_seconds(t.backend_request) > 0:
            per_try = gateway_seconds(t.backend_request)
            if retries is not None:
                retries = retries.model_copy(update={"per_try_timeout": f"{per_try}s"})
            else:
                timeout = per_try  # istiod: without a retry stanza it becomes the route timeout
        http = IstioHTTPRoute(retries=retries)
        consistent = self.sink.hash_policy(clusters[0]) is not None if clusters else False
        retry = self.sink.retry(http, consistent)
        if timeout is None:
            timeout = self.profile.default_route_timeout_s or None
        return timeout, retry

    def rewrite(self, hostname: str | None, path: Any, match: RouteMatch) -> Rewrite | None:
        prefix = regex = None
        if path is not None:
            if path.type == "ReplaceFullPath":
                regex = ("/.*", path.replace_full_path or "")
            else:
                uri = (path.replace_prefix_match or "").rstrip("/") or "/"
                if uri == "/":
                    # route.go: removing the prefix keeps the rest of the path, "/" at least
                    matched = match.path if match.path_kind == "path_separated_prefix" else ""
                    regex = (f"^{re.escape(matched)}(/?)(.*)", r"/\2")
                else:
                    prefix = uri
        if prefix is None and regex is None and not hostname:
            return None
        return Rewrite(prefix=prefix, authority=hostname or None, regex=regex)

    def mirrors(
        self, route: HTTPRoute, rule: HTTPRouteRule, base: tuple[str | int, ...]
    ) -> tuple[Mirror, ...]:
        out = []
        for k, f in enumerate(rule.filters or []):
            if f.type != "RequestMirror" or f.request_mirror is None:
                continue
            m = f.request_mirror
            b = self.api.backend(route, m.backend_ref)
            if b.reason is not None:
                self.note(
                    route,
                    (*base, "filters", k),
                    f"mirror backend does not resolve ({b.message}); istiod leaves it out",
                    "point the mirror at an existing Service and port",
                )
                continue
            if m.fraction is not None:
                pct = 100.0 * m.fraction.numerator / m.fraction.denominator
            elif m.percent is not None:
                pct = float(m.percent)
            else:
                pct = 100.0
            per_million = int(pct * 10_000)
            if per_million == 0:
                continue
            self.sink.cluster(route, b.host, b.port, "")
            out.append(Mirror(cluster_name(b.host, b.port), b.host, "", b.port, per_million))
        return tuple(out)


def _istio_duration(value: str | None) -> str | None:
    if value is None:
        return None
    seconds = gateway_seconds(value)
    return f"{seconds}s" if seconds > 0 else None


def route_match(m: HTTPRouteMatch) -> RouteMatch:
    """The Envoy match istiod builds from one Gateway API match (path defaults filled in)."""
    p = m.path
    kind, path = "prefix", "/"
    if p is not None:
        if p.type == "Exact":
            kind, path = "exact", p.value
        elif p.type == "RegularExpression":
            kind, path = "regex", p.value
        else:
            path = normalized_path(p)
            # route.go: gateway semantics make a PathPrefix other than "/" whole-segment
            kind = "prefix" if path == "/" else "path_separated_prefix"
    headers: dict[str, HeaderMatcher] = {}
    for h in m.headers or []:
        name = h.name.lower()
        if name in headers:
            continue  # the spec: later matches of an equivalent header name are ignored
        sm = StringMatcher("regex" if h.type == "RegularExpression" else "exact", h.value)
        headers[name] = HeaderMatcher(name, sm)
    if m.method is not None:
        headers[":method"] = HeaderMatcher(":method", StringMatcher("exact", m.method))
    params: dict[str, QueryParamMatcher] = {}
    for q in m.query_params or []:
        if q.name in params:
            continue
        sm = StringMatcher("regex" if q.type == "RegularExpression" else "exact", q.value)
        params[q.name] = QueryParamMatcher(q.name, sm)
    return RouteMatch(
        path_kind=kind,
        path=path,
        headers=tuple(sorted(headers.values(), key=lambda h: h.name)),
        query_params=tuple(sorted(params.values(), key=lambda q: q.name)),
    )


def _header_ops(
    request: HTTPHeaderFilter | None, response: HTTPHeaderFilter | None
) -> HeaderOps | None:
    if request is None and response is None:
        return None

    def pairs(items: Any) -> tuple[tuple[str, str], ...]:
        out: dict[str, str] = {}
        for h in items or []:
            out.setdefault(h.name.lower(), h.value)  # conversion.go headerListToMap
        return tuple(sorted(out.items()))

    def removes(f: HTTPHeaderFilter | None) -> tuple[str, ...]:
        return tuple(f.remove or []) if f is not None else ()

    return HeaderOps(
        request_set=pairs(request.set if request else None),
        request_add=pairs(request.add if request else None),
        request_remove=removes(request),
        response_set=pairs(response.set if response else None),
        response_add=pairs(response.add if response else None),
        response_remove=removes(response),
    )
