"""Gateway API semantics over a config set: attachment, route status, backends, precedence.

What istiod decides before it builds any Envoy route, as data the analyzer, the compiler and
``explain`` share:

* **Attachment** (istio/istio ``pilot/pkg/config/kube/gateway/conversion.go``
  ``referenceAllowed``, ``extractParentReferenceInfo``): a ``parentRef`` names a Gateway (and
  optionally a listener by ``sectionName`` and/or ``port``); the route attaches to a listener
  when the port and section match, the listener's ``allowedRoutes`` allow the route's namespace
  and kind, and a route hostname intersects the listener hostname (wildcards both ways).
* **Status** (``conditions.go`` ``createRouteStatus``): one ``status.parents[]`` entry per
  ``parentRef`` with ``Accepted`` and ``ResolvedRefs``; of the listeners a ``parentRef``
  reaches, the least severe result is reported (accepted, then ``NotAllowedByListeners``, then
  ``NoMatchingListenerHostname``, then ``NoMatchingParent``).
* **Backends** (``conversion.go`` ``buildDestination``): a Service in the route's namespace, or
  in another one when a ReferenceGrant there allows it; reasons ``BackendNotFound``,
  ``RefNotPermitted``, ``InvalidKind``.
* **Precedence** (``conversion.go`` ``sortHTTPRoutes``): every match of every rule of every
  route attached for a hostname, ordered by path kind (Exact, PathPrefix, RegularExpression),
  path length, method, header count, query count; ties keep the input order, which is routes
  by creation time, then ``namespace/name``, then rule and match order.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import TypeVar

from istiolab.config.configset import ConfigSet
from istiolab.config.gatewayapi import (
    GROUP,
    Gateway,
    GatewayClass,
    GRPCRoute,
    HTTPBackendRef,
    HTTPPathMatch,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    Listener,
    Namespace,
    ParentReference,
    ReferenceGrant,
)
from istiolab.config.hosts import DOMAIN, host_matches, hosts_intersect
from istiolab.config.k8s import Service

ISTIO_CONTROLLER = "istio.io/gateway-controller"
# GatewayClasses istiod creates itself (pilot/pkg/config/kube/gatewayclass.go builtinClasses);
# a Gateway may name them without a GatewayClass in the config.
BUILTIN_CLASSES = {
    "istio": ISTIO_CONTROLLER,
    "istio-remote": "istio.io/unmanaged-gateway",
    "istio-waypoint": "istio.io/mesh-controller",
    "istio-east-west": "istio.io/eastwest-controller",
}
# Protocols whose listeners take HTTP routes, and the route kinds istiod supports on them
# (conversion.go generateSupportedKinds).
HTTP_PROTOCOLS = ("HTTP", "HTTPS")
_HTTP_KINDS = (("HTTPRoute", GROUP), ("GRPCRoute", GROUP))

Route = HTTPRoute | GRPCRoute
R = TypeVar("R", HTTPRoute, GRPCRoute)


@dataclasses.dataclass(frozen=True)
class Condition:
    """One condition of a route's ``status.parents[]`` entry.

    Attributes:
        type: ``Accepted`` or ``ResolvedRefs``.
        status: True or False.
        reason: The spec's reason (``Accepted``, ``NotAllowedByListeners``, ``BackendNotFound``…).
        message: What istiod would write.
    """

    type: str
    status: bool
    reason: str
    message: str

    def format(self) -> str:
        """``Accepted=False (NoMatchingParent): sectionName "web" not found``."""
        return f"{self.type}={self.status} ({self.reason}): {self.message}"


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A route attached to one listener, and the hostnames it serves there.

    Attributes:
        route: The route.
        parent_index: Index of the ``parentRef`` in ``spec.parentRefs``.
        gateway: The Gateway.
        listener: The listener.
        hostnames: Virtual host names: each route hostname narrowed to the listener's
            (``*`` when neither has one).
    """

    route: Route
    parent_index: int
    gateway: Gateway
    listener: Listener
    hostnames: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ParentStatus:
    """The would-be ``status.parents[]`` entry of one ``parentRef``.

    Attributes:
        route: The route.
        index: Index in ``spec.parentRefs``.
        ref: The ``parentRef``.
        conditions: ``Accepted`` then ``ResolvedRefs``.
        attachments: The listeners the route attached to through this ``parentRef``.
    """

    route: Route
    index: int
    ref: ParentReference
    conditions: tuple[Condition, ...]
    attachments: tuple[Attachment, ...]

    @property
    def accepted(self) -> Condition:
        """The ``Accepted`` condition."""
        return self.conditions[0]

    @property
    def parent(self) -> str:
        """``namespace/name`` of the Gateway, with ``/section`` or ``:port`` when given."""
        ns = self.ref.namespace or self.route.namespace
        out = f"{ns}/{self.ref.name}"
        if self.ref.section_name:
            out += f"/{self.ref.section_name}"
        if self.ref.port:
            out += f":{self.ref.port}"
        return out


@dataclasses.dataclass(frozen=True)
class Backend:
    """A ``backendRef`` resolved as istiod resolves it.

    Attributes:
        host: Service FQDN ("" when it does not resolve, istiod's ``UnknownService``).
        port: The port asked for (0 when none).
        weight: Its weight (default 1).
        reason: None when it resolves, else ``BackendNotFound``, ``RefNotPermitted``,
            ``InvalidKind`` (the backend's share answers 500) or ``UnsupportedValue`` (a
            rule-level error: no port for a Service, a dotted name).
        message: Why, when it does not resolve.
    """

    host: str
    port: int
    weight: int
    reason: str | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class RankedMatch:
    """One match of one rule of an attached route, with its precedence.

    Attributes:
        route: The route.
        rule_index: Index in ``spec.rules``.
        match_index: Index in ``matches`` (0 for a rule without matches: the API server's
            default match, ``PathPrefix /``).
        rule: The rule.
        match: The match, with the API server's defaults filled in.
        order: Position in the input order (creation time, ``namespace/name``, rule, match).
    """

    route: HTTPRoute
    rule_index: int
    match_index: int
    rule: HTTPRouteRule
    match: HTTPRouteMatch
    order: int

    @property
    def path(self) -> HTTPPathMatch:
        """The path condition (``PathPrefix /`` when unset)."""
        return self.match.path or HTTPPathMatch()

    @property
    def key(self) -> tuple[int, int, int, int, int, int]:
        """The sort key of istiod's ``sortHTTPRoutes`` (smaller first), then the input order."""
        p = self.path
        rank = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}[p.type]
        return (
            -rank,
            -len(normalized_path(p)),
            0 if self.match.method is not None else 1,
            -len(self.match.headers or []),
            -len(self.match.query_params or []),
            self.order,
        )

    @property
    def label(self) -> str:
        """``HTTPRoute/ns/name rules[i].matches[j]`` (with the rule's name when it has one)."""
        name = f" ({self.rule.name})" if self.rule.name else ""
        return f"{self.route.key} rules[{self.rule_index}].matches[{self.match_index}]{name}"

    def precedence_over(self, other: RankedMatch) -> str:
        """Which precedence rule puts this match before *other* (for explanations)."""
        a, b = self.key, other.key
        names = (
            "path kind (Exact, then PathPrefix, then RegularExpression)",
            "longer path",
            "method match",
            "more header matches",
            "more query parameter matches",
        )
        for i, name in enumerate(names):
            if a[i] != b[i]:
                return name
        if self.route is not other.route:
            return "older route (creationTimestamp), then namespace/name"
        return "earlier rule or match in the same route"


def normalized_path(p: HTTPPathMatch) -> str:
    """The path as istiod uses it: a ``PathPrefix`` loses its trailing ``/`` (``/`` stays)."""
    if p.type == "PathPrefix" and p.value != "/":
        return p.value.rstrip("/") or "/"
    return p.value


def default_matches(rule: HTTPRouteRule) -> list[HTTPRouteMatch]:
    """The rule's matches as the API server stores them (none means one ``PathPrefix /``)."""
    return list(rule.matches) if rule.matches else [HTTPRouteMatch(path=HTTPPathMatch())]


def _created(route: Route) -> datetime.datetime:
    # istiod sorts by creationTimestamp; objects without one (files never applied) have Go's
    # zero time, the oldest of all.
    value = (route.metadata.model_extra or {}).get("creationTimestamp")
    if isinstance(value, str):
        try:
            t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            t = None
        if t is not None:
            return t if t.tzinfo else t.replace(tzinfo=datetime.UTC)
    return datetime.datetime.min.replace(tzinfo=datetime.UTC)


def route_order(routes: Iterable[R]) -> list[R]:
    """Routes in istiod's order: creation time, then namespace, then name."""
    return sorted(routes, key=lambda r: (_created(r), r.namespace, r.name))


def listener_hostnames(listener: Listener, route_hostnames: Sequence[str]) -> list[str]:
    """The virtual host names of a route on a listener (spec: hostname intersection).

    A route hostname within the listener's stays; a wildcard route hostname that covers the
    listener's gives the listener's; no route hostnames give the listener's (or ``*``).
    """
    lh = listener.hostname
    if not route_hostnames:
        return [lh or "*"]
    out: list[str] = []
    for h in route_hostnames:
        if not lh or host_matches(lh, h):
            out.append(h)
        elif host_matches(h, lh):
            out.append(lh)
    return list(dict.fromkeys(out))


class GatewayAPI:
    """The Gateway API resources of a config set and what istiod makes of them.

    Args:
        config: The config set.
    """

    def __init__(self, config: ConfigSet) -> None:
        self.config = config
        self.gateways = config.kind(Gateway)
        self.classes = {c.name: c for c in config.kind(GatewayClass)}
        self.http_routes = route_order(config.kind(HTTPRoute))
        self.grpc_routes = route_order(config.kind(GRPCRoute))
        self.grants = config.kind(ReferenceGrant)
        self.namespaces = {n.name: n for n in config.kind(Namespace)}
        self.services = {(s.namespace, s.name): s for s in config.kind(Service)}
        self._status: dict[int, list[ParentStatus]] = {}

    # -- gateways -----------------------------------------------------------------------------

    def controller(self, gw: Gateway) -> str | None:
        """The controller of the Gateway's class (None when the class is unknown)."""
        cls = self.classes.get(gw.spec.gateway_class_name)
        if cls is not None:
            return cls.spec.controller_name
        return BUILTIN_CLASSES.get(gw.spec.gateway_class_name)

    def istio_gateways(self) -> list[Gateway]:
        """Gateways istiod programs (class controller ``istio.io/gateway-controller``)."""
        return [g for g in self.gateways if self.controller(g) == ISTIO_CONTROLLER]

    def find_gateway(self, ref: ParentReference, route_ns: str) -> Gateway | None:
        """The Gateway a ``parentRef`` names (None for other kinds or when it is missing)."""
        if (ref.group or GROUP) != GROUP or (ref.kind or "Gateway") != "Gateway":
            return None
        ns = ref.namespace or route_ns
        return next((g for g in self.gateways if g.namespace == ns and g.name == ref.name), None)

    def namespace_allowed(self, gw: Gateway, listener: Listener, route_ns: str) -> bool:
        """Whether the listener's ``allowedRoutes.namespaces`` admit *route_ns*."""
        ar = listener.allowed_routes
        rn = ar.namespaces if ar is not None else None
        frm = rn.from_ if rn is not None else "Same"
        if frm == "All":
            return True
        if frm == "Same":
            return route_ns == gw.namespace
        if rn is None or rn.selector is None:
            return False
        ns = self.namespaces.get(route_ns)
        # conversion.go toNamespaceSet: the API server's kubernetes.io/metadata.name label
        labels = ns.labels if ns is not None else {"kubernetes.io/metadata.name": route_ns}
        return rn.selector.matches(labels)

    @staticmethod
    def kind_allowed(listener: Listener, kind: str) -> bool:
        """Whether the listener takes routes of *kind* (its ``allowedRoutes.kinds``)."""
        if listener.protocol.upper() not in HTTP_PROTOCOLS:
            return False
        supported = {k for k, _ in _HTTP_KINDS}
        kinds = listener.allowed_routes.kinds if listener.allowed_routes else None
        if not kinds:
            return kind in supported
        return any(k.kind == kind and (k.group or GROUP) == GROUP for k in kinds) and (
            kind in supported
        )

    # -- attachment and status ---------------------------------------------------------------

    def parents(self, route: Route) -> list[ParentStatus]:
        """The would-be ``status.parents`` of *route*, one entry per ``parentRef``."""
        cached = self._status.get(id(route))
        if cached is not None:
            return cached
        out = [self._parent(route, i, ref) for i, ref in enumerate(route.spec.parent_refs or [])]
        self._status[id(route)] = out
        return out

    def _parent(self, route: Route, index: int, ref: ParentReference) -> ParentStatus:
        refs = self.resolved_refs(route)
        gw = self.find_gateway(ref, route.namespace)
        if gw is None:
            what = f"{ref.kind or 'Gateway'} {ref.namespace or route.namespace}/{ref.name}"
            msg = (
                f"parent {what} is not modelled"
                if (ref.group or GROUP) != GROUP or (ref.kind or "Gateway") != "Gateway"
                else f"gateway {ref.namespace or route.namespace}/{ref.name} not found"
            )
            cond = Condition("Accepted", False, "NoMatchingParent", msg)
            return ParentStatus(route, index, ref, (cond, refs), ())
        # least severe first (conditions.go rankParentError)
        rank = {"NotAllowedByListeners": 1, "NoMatchingListenerHostname": 2, "NoMatchingParent": 3}
        attached: list[Attachment] = []
        errors: list[tuple[int, str, str]] = []
        for listener in gw.spec.listeners:
            reason, message, hostnames = self._listener_result(route, ref, gw, listener)
            if reason is None:
                attached.append(Attachment(route, index, gw, listener, tuple(hostnames)))
            else:
                errors.append((rank[reason], reason, message))
        if attached:
            n = len(attached)
            msg = "Route was valid" + (f", bound to {n} parents" if n > 1 else "")
            cond = Condition("Accepted", True, "Accepted", msg)
        else:
            best = min(e[0] for e in errors)
            msgs = "; ".join(dict.fromkeys(m for r, _, m in errors if r == best))
            reason = next(r for k, r, _ in errors if k == best)
            cond = Condition("Accepted", False, reason, msgs)
        return ParentStatus(route, index, ref, (cond, refs), tuple(attached))

    def _listener_result(
        self, route: Route, ref: ParentReference, gw: Gateway, listener: Listener
    ) -> tuple[str | None, str, list[str]]:
        # the order of referenceAllowed: port, sectionName, hostnames (with namespaces), kind
        if ref.port is not None and ref.port != listener.port:
            return "NoMatchingParent", f"port {ref.port} not found", []
        if ref.section_name and ref.section_name != listener.name:
            return "NoMatchingParent", f"sectionName {ref.section_name!r} not found", []
        hostnames = list(route.spec.hostnames or [])
        listener_host = listener.hostname or "*"
        host_ok = any(hosts_intersect(listener_host, h) for h in hostnames or ["*"])
        ns_ok = self.namespace_allowed(gw, listener, route.namespace)
        if not host_ok:
            return (
                "NoMatchingListenerHostname",
                f"no hostnames matched parent hostname {listener.hostname or '*'!r}",
                [],
            )
        if not ns_ok:
            return (
                "NotAllowedByListeners",
                f"hostnames matched parent hostname {listener.hostname or '*'!r}, but "
                f"namespace {route.namespace!r} is not allowed by the parent",
                [],
            )
        if not self.kind_allowed(listener, route.kind):
            return "NotAllowedByListeners", f"kind {route.kind} is not allowed", []
        served = [
            h for h in listener_hostnames(listener, hostnames) if self._isolated(gw, listener, h)
        ]
        return None, "", served

    @staticmethod
    def _isolated(gw: Gateway, listener: Listener, host: str) -> bool:
        """Whether a wildcard (or hostless) listener serves *host* (``hostnameAllowedByIsolation``).

        A hostname that a more specific listener of the same port and protocol owns is not
        served by a wildcard (or hostless) listener.
        """
        ours = listener.hostname or ""
        if ours and not ours.startswith("*"):
            return True
        for other in gw.spec.listeners:
            if other is listener or other.port != listener.port:
                continue
            if other.protocol != listener.protocol or not other.hostname:
                continue
            if len(ours) > len(other.hostname):
                continue
            if host_matches(other.hostname, host) and host != "*":
                return False
        return True

    def attachments(self, route: Route) -> list[Attachment]:
        """Every listener *route* attached to."""
        return [a for p in self.parents(route) for a in p.attachments]

    # -- backends ------------------------------------------------------------------------------

    def grant_allows(self, from_kind: str, from_ns: str, to_ns: str, to_name: str) -> bool:
        """Whether a ReferenceGrant in *to_ns* lets *from_kind* in *from_ns* use Service *to_name*.

        The rules of ``apis/v1beta1/referencegrant_types.go``: the grant lives in the target
        namespace, names the referring group, kind and namespace, and the target kind (and name).
        """
        for g in self.grants:
            if g.namespace != to_ns:
                continue
            frm = any(
                f.group == GROUP and f.kind == from_kind and f.namespace == from_ns
                for f in g.spec.from_
            )
            to = any(
                t.group in ("", "core")
                and t.kind == "Service"
                and (t.name is None or t.name == to_name)
                for t in g.spec.to
            )
            if frm and to:
                return True
        return False

    def backend(self, route: Route, ref: HTTPBackendRef | object) -> Backend:
        """Resolve one ``backendRef`` (or mirror ``backendRef``) of *route* as istiod does."""
        group = getattr(ref, "group", None) or ""
        kind = getattr(ref, "kind", None) or "Service"
        name: str = getattr(ref, "name", "")
        port: int = getattr(ref, "port", None) or 0
        weight = getattr(ref, "weight", None)
        w = 1 if weight is None else int(weight)
        ns = getattr(ref, "namespace", None) or route.namespace
        if (group, kind) not in (("", "Service"), ("core", "Service")):
            return Backend(
                "",
                port,
                w,
                "InvalidKind",
                f"referencing unsupported backendRef: group {group!r} kind {kind!r}",
            )
        if ns != route.namespace and not self.grant_allows(route.kind, route.namespace, ns, name):
            return Backend(
                "",
                port,
                w,
                "RefNotPermitted",
                f"backendRef {name}/{ns} not accessible to a {route.kind} in namespace "
                f"{route.namespace!r} (missing a ReferenceGrant?)",
            )
        if "." in name:
            return Backend(
                "",
                port,
                w,
                "UnsupportedValue",
                "service name invalid; the name of the Service must be used, not the hostname",
            )
        host = f"{name}.{ns}.{DOMAIN}"
        if not port:
            return Backend(host, 0, w, "UnsupportedValue", "port is required in backendRef")
        if self.services and (ns, name) not in self.services:
            return Backend("", port, w, "BackendNotFound", f"backend({host}) not found")
        svc = self.services.get((ns, name))
        if svc is not None and svc.spec.ports and port not in {p.port for p in svc.spec.ports}:
            # istiod only checks the Service; a port it does not have gets no endpoints (503)
            return Backend(host, port, w, None, f"Service {ns}/{name} has no port {port}")
        return Backend(host, port, w)

    def resolved_refs(self, route: Route) -> Condition:
        """The ``ResolvedRefs`` condition: the first backend that does not resolve, if any."""
        for rule in route.spec.rules or []:
            refs: list[object] = list(rule.backend_refs or [])
            for f in rule.filters or []:
                if f.type == "RequestMirror" and f.request_mirror is not None:
                    refs.append(f.request_mirror.backend_ref)
            for ref in refs:
                b = self.backend(route, ref)
                if b.reason is not None:
                    return Condition("ResolvedRefs", False, b.reason, b.message)
        return Condition("ResolvedRefs", True, "ResolvedRefs", "All references resolved")

    # -- precedence ----------------------------------------------------------------------------

    def ranked(self, attached: Iterable[HTTPRoute]) -> list[RankedMatch]:
        """Every match of every rule of *attached* routes, in precedence order (best first)."""
        out: list[RankedMatch] = []
        n = 0
        for route in route_order(attached):
            for i, rule in enumerate(route.spec.rules or []):
                for j, m in enumerate(default_matches(rule)):
                    out.append(RankedMatch(route, i, j, rule, m, n))
                    n += 1
        out.sort(key=lambda r: r.key)
        return out

    def virtual_hosts(self, port: int, gateways: Sequence[Gateway]) -> dict[str, list[HTTPRoute]]:
        """For each hostname served on *port* of *gateways*, the HTTPRoutes attached there."""
        out: dict[str, list[HTTPRoute]] = {}
        names = {(g.namespace, g.name) for g in gateways}
        for route in self.http_routes:
            for a in self.attachments(route):
                if (a.gateway.namespace, a.gateway.name) not in names or a.listener.port != port:
                    continue
                for h in a.hostnames:
                    have = out.setdefault(h, [])
                    if all(r is not route for r in have):  # by identity: equal copies are two
                        have.append(route)
        return out
