"""Lint of the Kubernetes Gateway API resources of a config set (codes ``IL6xx``).

Called from :func:`istiolab.config.validate.validate`. What istiod would write in a route's
``status.parents`` (:mod:`istiolab.config.gatewayapi_routing`) becomes findings: a route that
does not attach (``IL601``-``IL605``), backends that do not resolve (``IL606``-``IL609``), and
the route status itself (``IL615``, info). Beyond istiod's status: the CEL rules of the CRDs
that the API server enforces (``IL611``, kubernetes-sigs/gateway-api ``apis/v1/
httproute_types.go``), weights that leave a rule nothing but 500s (``IL610``), matches no
request can reach because a match of higher precedence takes all of their requests
(``IL612``), the GatewayClass (``IL614``, Kiali ``business/checkers/k8sgateways/
gatewayclass_checker.go``) and duplicate listeners (``IL616``, Kiali ``multi_match_checker.go``
and the ``Conflicted`` listener condition). Kiali's route checks (``business/checkers/
k8shttproutes/no_k8sgateway_checker.go``, ``no_host_checker.go``) are anchors of ``IL601``,
``IL603``, ``IL606`` and ``IL608``.
"""

from __future__ import annotations

import re

from istiolab.config.configset import ConfigSet
from istiolab.config.gatewayapi import (
    Gateway,
    GRPCRoute,
    GRPCRouteRule,
    HTTPPathMatch,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    ReferenceGrant,
    gateway_seconds,
)
from istiolab.config.gatewayapi_routing import (
    ISTIO_CONTROLLER,
    GatewayAPI,
    ParentStatus,
    RankedMatch,
    Route,
    normalized_path,
)
from istiolab.config.k8s import Service
from istiolab.findings import Finding
from istiolab.limits import truncate
from istiolab.regex import check_re2

Path = tuple[str | int, ...]
# the Gateway API Hostname pattern (apis/v1/shared_types.go), as in the CRDs
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def gateway_api_findings(config: ConfigSet) -> list[Finding]:
    """Every Gateway API finding of *config* (none when it has no Gateway API resource).

    Args:
        config: The config set.

    Returns:
        The findings, in resource order.
    """
    if not config.kind((Gateway, HTTPRoute, GRPCRoute, ReferenceGrant)):
        return []
    return _Checks(config).run()


class _Checks:
    def __init__(self, config: ConfigSet) -> None:
        self.cs = config
        self.api = GatewayAPI(config)
        self.out: list[Finding] = []

    def add(self, code: str, res: Gateway | Route, path: Path, message: str, fix: str) -> None:
        self.out.append(self.cs.finding(code, res, path, message, fix))

    def run(self) -> list[Finding]:
        for gw in self.api.gateways:
            self.gateway(gw)
        routes: list[Route] = [*self.api.http_routes, *self.api.grpc_routes]
        for route in routes:
            self.parents(route)
            self.backends(route)
        for http in self.api.http_routes:
            for i, rule in enumerate(http.spec.rules or []):
                self.rule(http, i, rule)
        self.precedence()
        for grpc in self.api.grpc_routes:
            if self.api.attachments(grpc):
                self.add(
                    "IL613",
                    grpc,
                    ("spec", "rules"),
                    "GRPCRoute is linted but not compiled: explain, verify and the simulator "
                    "do not route it",
                    "check its routing on a real gateway",
                )
        return self.out

    # -- gateways ------------------------------------------------------------------------------

    def gateway(self, gw: Gateway) -> None:
        name = gw.spec.gateway_class_name
        controller = self.api.controller(gw)
        if controller is None:
            self.add(
                "IL614",
                gw,
                ("spec", "gatewayClassName"),
                f"GatewayClass {truncate(name)!r} is not in the config and is not one istiod "
                "creates; istiod does not program this Gateway",
                "use gatewayClassName: istio, or add the GatewayClass",
            )
        elif controller != ISTIO_CONTROLLER:
            self.add(
                "IL614",
                gw,
                ("spec", "gatewayClassName"),
                f"GatewayClass {truncate(name)!r} has controller {truncate(controller)!r}, "
                f"not {ISTIO_CONTROLLER!r}; istiod does not program this Gateway",
                "use a class whose controllerName is istio.io/gateway-controller",
            )
        seen_names: dict[str, int] = {}
        seen_keys: dict[tuple[int, str, str], int] = {}
        for i, listener in enumerate(gw.spec.listeners):
            key = (listener.port, listener.protocol.upper(), (listener.hostname or "").lower())
            if listener.name in seen_names:
                self.add(
                    "IL616",
                    gw,
                    ("spec", "listeners", i, "name"),
                    f"listener name {truncate(listener.name)!r} is also listeners"
                    f"[{seen_names[listener.name]}]; the API server refuses the Gateway "
                    "(listeners are keyed by name)",
                    "give each listener its own name",
                )
            elif key in seen_keys:
                self.add(
                    "IL616",
                    gw,
                    ("spec", "listeners", i),
                    f"listener {truncate(listener.name)!r} has the same port {listener.port}, "
                    f"protocol and hostname {listener.hostname or '*'!r} as listeners"
                    f"[{seen_keys[key]}]; the API server refuses the Gateway (CEL rule "
                    "'Combination of port, protocol and hostname must be unique for each "
                    "listener')",
                    "give one of them another hostname or port, or merge them",
                )
            seen_names.setdefault(listener.name, i)
            seen_keys.setdefault(key, i)
            if listener.hostname is not None:
                self.hostname(gw, ("spec", "listeners", i, "hostname"), listener.hostname)

    def hostname(self, res: Gateway | Route, path: Path, name: str) -> None:
        """IL108 for a hostname outside the CRDs' pattern (RFC 1123, optional leading ``*.``)."""
        # apis/v1/shared_types.go Hostname: +kubebuilder:validation:Pattern, MinLength=1,
        # MaxLength=253; the API server refuses the resource
        if 0 < len(name) <= 253 and _HOSTNAME.fullmatch(name):
            return
        problem = (
            f"{len(name)} characters, more than 253"
            if len(name) > 253
            else "it may only have lower-case letters, digits, '-' and '.', each label starting "
            "and ending with a letter or digit, and '*.' only at the start"
        )
        self.add(
            "IL108",
            res,
            path,
            f"hostname {truncate(name)!r} is not a Gateway API hostname: {problem}; the API "
            "server refuses it",
            "write a DNS name such as 'shop.example.com' or '*.example.com' (no port, no IP, "
            "lower case)",
        )

    # -- attachment ----------------------------------------------------------------------------

    def parents(self, route: Route) -> None:
        for j, host in enumerate(route.spec.hostnames or []):
            self.hostname(route, ("spec", "hostnames", j), host)
        if not route.spec.parent_refs:
            self.add(
                "IL601",
                route,
                ("spec",),
                f"{route.kind} has no parentRefs, so it attaches to no Gateway",
                "add parentRefs: [{name: <gateway>}]",
            )
            return
        for p in self.api.parents(route):
            self.status(route, p)
            acc = p.accepted
            if acc.status:
                continue
            base: Path = ("spec", "parentRefs", p.index)
            gw = self.api.find_gateway(p.ref, route.namespace)
            reason = f" (Accepted=False, {acc.reason})"
            if gw is None:
                known = ", ".join(f"{g.namespace}/{g.name}" for g in self.api.gateways) or "none"
                self.add(
                    "IL601",
                    route,
                    (*base, "name"),
                    f"{acc.message}{reason}; Gateways in the config: {truncate(known)}",
                    "name an existing Gateway (and its namespace when it is not the route's)",
                )
            elif acc.reason == "NoMatchingParent":
                field = "sectionName" if p.ref.section_name else "port"
                names = ", ".join(
                    f"{listener.name}:{listener.port}" for listener in gw.spec.listeners
                )
                self.add(
                    "IL602",
                    route,
                    (*base, field),
                    f"{acc.message}{reason}; listeners of {gw.namespace}/{gw.name}: "
                    f"{truncate(names)}",
                    "use a listener's name as sectionName (and its port)",
                )
            elif acc.reason == "NoMatchingListenerHostname":
                self.add(
                    "IL604",
                    route,
                    ("spec", "hostnames") if route.spec.hostnames else base,
                    f"{acc.message}{reason}; route hostnames: "
                    f"{truncate(', '.join(route.spec.hostnames or ['*']))}",
                    "use hostnames within the listener's hostname (wildcards match one or more "
                    "labels), or attach to another listener",
                )
            elif "kind" in acc.message and "not allowed" in acc.message:
                self.add(
                    "IL605",
                    route,
                    base,
                    f"{acc.message}{reason}",
                    "add the kind to the listener's allowedRoutes.kinds, or attach to an HTTP "
                    "or HTTPS listener",
                )
            else:
                self.add(
                    "IL603",
                    route,
                    base,
                    f"{acc.message}{reason}",
                    "allow the namespace in the listener's allowedRoutes.namespaces (from: All, "
                    "or a Selector that matches it), or move the route to the Gateway's "
                    "namespace",
                )

    def status(self, route: Route, p: ParentStatus) -> None:
        self.out.append(status_finding(self.cs, p))

    # -- backends ------------------------------------------------------------------------------

    def backends(self, route: Route) -> None:
        rules: list[HTTPRouteRule | GRPCRouteRule] = list(route.spec.rules or [])
        for i, rule in enumerate(rules):
            refs: list[tuple[Path, object]] = [
                (("spec", "rules", i, "backendRefs", k), b)
                for k, b in enumerate(rule.backend_refs or [])
            ]
            for k, f in enumerate(rule.filters or []):
                mirror = getattr(f, "request_mirror", None)
                if mirror is not None:
                    path: Path = ("spec", "rules", i, "filters", k, "requestMirror", "backendRef")
                    refs.append((path, mirror.backend_ref))
            for path, ref in refs:
                self.backend(route, path, ref)

    def backend(self, route: Route, path: Path, ref: object) -> None:
        b = self.api.backend(route, ref)
        name = truncate(str(getattr(ref, "name", "")))
        if b.reason is None and not b.message:
            return
        if b.reason is None:
            self.add(
                "IL607",
                route,
                (*path, "port"),
                f"{b.message}: the cluster has no endpoints (503 UH)",
                "use one of the Service's ports",
            )
        elif b.reason == "BackendNotFound":
            services = sorted(f"{s.namespace}/{s.name}" for s in self.cs.kind(Service))
            self.add(
                "IL606",
                route,
                (*path, "name"),
                f"Service {name!r} not found: {b.message} (ResolvedRefs=False, BackendNotFound); "
                f"its share of requests gets 500; Services: {truncate(', '.join(services))}",
                "name an existing Service (in the route's namespace unless namespace is set)",
            )
        elif b.reason == "RefNotPermitted":
            self.add(
                "IL608",
                route,
                (*path, "namespace"),
                f"{b.message} (ResolvedRefs=False, RefNotPermitted); its share gets 500",
                f"add a ReferenceGrant in namespace {getattr(ref, 'namespace', '')!r} with "
                f"from: [{{group: gateway.networking.k8s.io, kind: {route.kind}, namespace: "
                f"{route.namespace}}}] and to: [{{group: '', kind: Service}}]",
            )
        else:
            self.add(
                "IL609",
                route,
                path,
                f"backendRef {name!r}: {b.message} ({b.reason})",
                "refer to a Service by its name, with a port",
            )

    # -- rules ----------------------------------------------------------------------------------

    def rule(self, route: HTTPRoute, i: int, rule: HTTPRouteRule) -> None:
        base: Path = ("spec", "rules", i)
        filters = rule.filters or []
        types = [f.type for f in filters]
        redirect = "RequestRedirect" in types
        for ft in sorted({x for x in types if types.count(x) > 1 and x != "RequestMirror"}):
            self.add(
                "IL611",
                route,
                (*base, "filters"),
                f"filter {ft} appears {types.count(ft)} times; the API server refuses a repeat",
                "keep one of them",
            )
        if redirect and rule.backend_refs:
            self.add(
                "IL611",
                route,
                (*base, "backendRefs"),
                "RequestRedirect filter must not be used together with backendRefs (the API "
                "server refuses the route)",
                "remove the backendRefs (a redirect answers itself) or the redirect",
            )
        if redirect and "URLRewrite" in types:
            self.add(
                "IL611",
                route,
                (*base, "filters"),
                "a rule may have a RequestRedirect or a URLRewrite filter, not both",
                "keep one of them",
            )
        for k, f in enumerate(filters):
            holder = f.request_redirect or f.url_rewrite
            p = holder.path if holder is not None else None
            if p is None or p.type != "ReplacePrefixMatch":
                continue
            matches = rule.matches or []
            one_prefix = (
                len(matches) == 1
                and matches[0].path is not None
                and matches[0].path.type == "PathPrefix"
            )
            if not one_prefix:
                self.add(
                    "IL611",
                    route,
                    (*base, "filters", k),
                    f"{f.type} with path.replacePrefixMatch needs exactly one PathPrefix match; "
                    f"the rule has {len(matches)} matches",
                    "split the rule: one PathPrefix match per rule",
                )
        t = rule.timeouts
        if t is not None and t.request and t.backend_request:
            req, backend = gateway_seconds(t.request), gateway_seconds(t.backend_request)
            if req > 0 and backend > req:
                self.add(
                    "IL611",
                    route,
                    (*base, "timeouts", "backendRequest"),
                    f"backendRequest timeout {t.backend_request} is longer than the request "
                    f"timeout {t.request}",
                    "make backendRequest at most the request timeout",
                )
        if not redirect:
            weights = [1 if b.weight is None else b.weight for b in rule.backend_refs or []]
            if sum(weights) == 0:
                what = "all its backendRefs have weight 0" if weights else "it has no backendRefs"
                self.add(
                    "IL610",
                    route,
                    (*base, "backendRefs") if weights else base,
                    f"{what}: every request it matches gets 500",
                    "give a backendRef a weight above 0, or add one",
                )
        for j, m in enumerate(rule.matches or []):
            self.match(route, (*base, "matches", j), m)

    def match(self, route: HTTPRoute, path: Path, m: HTTPRouteMatch) -> None:
        p = m.path
        if p is not None:
            if p.type == "RegularExpression":
                self.regex(route, (*path, "path", "value"), p.value)
            elif not p.value.startswith("/"):
                self.add(
                    "IL108",
                    route,
                    (*path, "path", "value"),
                    f"{truncate(p.value)!r} is not allowed here: an {p.type} path must start "
                    "with '/'",
                    "start the path with '/'",
                )
        for k, h in enumerate(m.headers or []):
            if h.type == "RegularExpression":
                self.regex(route, (*path, "headers", k, "value"), h.value)
        for k, q in enumerate(m.query_params or []):
            if q.type == "RegularExpression":
                self.regex(route, (*path, "queryParams", k, "value"), q.value)

    def regex(self, route: HTTPRoute, path: Path, pattern: str) -> None:
        problem = check_re2(pattern)
        if problem is not None:
            self.add(
                "IL107",
                route,
                path,
                f"{truncate(pattern)!r} is not an RE2 regex: {problem}",
                "rewrite the pattern for RE2: no look-around, no back-references",
            )

    # -- precedence ----------------------------------------------------------------------------

    def precedence(self) -> None:
        done: set[tuple[int, int, int]] = set()
        gateways = self.api.istio_gateways()
        ports = sorted({listener.port for g in gateways for listener in g.spec.listeners})
        for port in ports:
            for host, routes in sorted(self.api.virtual_hosts(port, gateways).items()):
                ranked = self.api.ranked(routes)
                for k, m in enumerate(ranked):
                    key = (id(m.route), m.rule_index, m.match_index)
                    if key in done:
                        continue
                    winner = next((e for e in ranked[:k] if covers(e, m)), None)
                    if winner is None:
                        continue
                    done.add(key)
                    path: Path = ("spec", "rules", m.rule_index)
                    if m.route.spec.rules and m.route.spec.rules[m.rule_index].matches:
                        path = (*path, "matches", m.match_index)
                    self.add(
                        "IL612",
                        m.route,
                        path,
                        f"on {host}:{port} every request this match takes goes to "
                        f"{winner.label} first ({winner.precedence_over(m)})",
                        "make this match more specific (a longer path, a method, headers) or "
                        "remove it",
                    )


def _segments_cover(prefix: str, path: str) -> bool:
    """Whether the whole-segment prefix *prefix* takes every path that starts with *path*."""
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _path_covers(a: HTTPPathMatch, b: HTTPPathMatch) -> bool:
    pa, pb = normalized_path(a), normalized_path(b)
    if a.type == "PathPrefix":
        if b.type in ("Exact", "PathPrefix"):
            return _segments_cover(pa, pb)
        return pa == "/"
    if a.type == "Exact":
        return b.type == "Exact" and pa == pb
    return b.type == "RegularExpression" and pa == pb


def covers(a: RankedMatch, b: RankedMatch) -> bool:
    """Whether every request *b* matches also matches *a* (conservative: False when unsure)."""
    if not _path_covers(a.path, b.path):
        return False
    if a.match.method is not None and a.match.method != b.match.method:
        return False
    hb = {(h.name.lower(), h.type, h.value) for h in b.match.headers or []}
    if any((h.name.lower(), h.type, h.value) not in hb for h in a.match.headers or []):
        return False
    qb = {(q.name, q.type, q.value) for q in b.match.query_params or []}
    return all((q.name, q.type, q.value) in qb for q in a.match.query_params or [])


def status_finding(config: ConfigSet, p: ParentStatus) -> Finding:
    """The ``IL615`` info finding of one ``status.parents[]`` entry (its conditions as text)."""
    text = "; ".join(c.format() for c in p.conditions)
    where = "".join(
        f" {a.listener.name}:{a.listener.port} {list(a.hostnames)}" for a in p.attachments
    )
    return config.finding(
        "IL615",
        p.route,
        ("spec", "parentRefs", p.index),
        f"status.parents[{p.index}] {truncate(p.parent)}: {text}"
        + (f"; attached to{where}" if where else ""),
        "nothing to do: this is what istiod would report",
    )
