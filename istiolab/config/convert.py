"""Convert Istio 0.2 configuration to modern Istio (``networking.istio.io/v1``).

Input: RouteRules and DestinationPolicies (``config.istio.io/v1alpha2``), Kubernetes Ingresses of
class ``istio`` and the Mixer objects of a 2017 rate limit (``memquota``, ``quota``, ``rule``,
``QuotaSpec``, ``QuotaSpecBinding``). Output: VirtualServices, DestinationRules, one Gateway per
namespace and local-rate-limit EnvoyFilters, written the way an experienced Istio 1.x user writes
them. Everything else (Services, Deployments, modern resources, Ingresses of other classes) passes
through unchanged.

The conversion keeps Istio 0.2 behaviour: :func:`istiolab.envoy.compile.compile` compiles legacy
input by converting it here first, so this module *is* istiolab's implementation of Pilot 0.2.
The rules it follows (``../shared/reference/istio-envoy-aws-facts.md`` §1.8, §1.9, §2.10, and
Pilot 0.2's ``proxy/envoy/{route,ingress,fault,policy,header}.go`` and
``adapter/config/ingress/conversion.go``):

* RouteRules for one destination are ordered by precedence (descending), then by the key
  ``route-rule/<namespace>/<name>``; one HTTP route per rule; the list stops at the first catch-all
  and otherwise ends with the default route (all instances of the service).
* ``match.source`` is not a request match: it chose which proxies got the rule. Rules whose source
  is the ``istio-ingress`` service apply only at the ingress; rules without a source apply in the
  mesh and at the ingress; rules with another source become ``sourceLabels`` in the mesh.
* Each Ingress path takes the destination's ingress route list and intersects every route with the
  path (Pilot's ``CombinePathPrefix``); all routes of a host are then ordered by ``RoutesByPath``.
* Istio 0.2's implicit behaviour is written out unless ``modern_defaults``: the 15 s Envoy route
  timeout, no retries, retry_on ``5xx,connect-failure,refused-stream``, ROUND_ROBIN, and the outlier
  detection Pilot emitted whenever a circuit breaker was set.

Every part that cannot be kept exactly becomes a finding (IL301, IL302, IL304–IL308, IL311, IL312).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections import defaultdict
from typing import Any

from istiolab.config.base import Resource
from istiolab.config.codecs import RawDocument
from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import DOMAIN
from istiolab.config.k8s import IngressPath, IngressV1, IngressV1Beta1, Service
from istiolab.config.legacy import (
    DestinationPolicy,
    IstioService,
    MemQuota,
    MemQuotaLimit,
    MixerRule,
    QuotaInstance,
    QuotaSpec,
    QuotaSpecBinding,
    RouteRule,
    SimpleCircuitBreakerPolicy,
)
from istiolab.config.model import DestinationRule, EnvoyFilter, Gateway, VirtualService
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile, get_profile
from istiolab.regex import full_match
from istiolab.reprs import HTMLRepr
from istiolab.units import format_duration, parse_duration

API_VERSION = "networking.istio.io/v1"
"""apiVersion of the VirtualServices, DestinationRules and Gateways written."""
ENVOY_FILTER_VERSION = "networking.istio.io/v1alpha3"
"""EnvoyFilter exists only in v1alpha3."""
ISTIO_INGRESS_CLASS = "istio"
"""The ingress class Pilot 0.2 processed (``ingressClass``, STRICT mode)."""
ROOT_NAMESPACE = "istio-system"
"""Where the ingress gateway pods (and their EnvoyFilters) live."""
LEGACY_INGRESS_SECRET = "istio-ingress-certs"
"""The secret Istio 0.2 mounted into the ingress pods and served on port 443."""
RATELIMIT_FILTER = "envoy.filters.http.local_ratelimit"
RATELIMIT_TYPE_URL = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct"

# Go's regexp.QuoteMeta escapes exactly these; Pilot 0.2 calls a path a regex when it has one.
_GO_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_LB = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_CONN": "LEAST_REQUEST", "RANDOM": "RANDOM"}
# Envoy's outlier-detection defaults, which Pilot 0.2 relied on for every simpleCb field left unset
# (``max_ejection_percent`` it set to 10 itself). Modern Istio uses the same values.
_OUTLIER_DEFAULTS: tuple[tuple[str, str, Any], ...] = (
    ("httpConsecutiveErrors", "consecutive5xxErrors", 5),
    ("httpDetectionInterval", "interval", "10s"),
    ("sleepWindow", "baseEjectionTime", "30s"),
    ("httpMaxEjectionPercent", "maxEjectionPercent", 10),
)
_ALL = 100  # percent

DestKey = tuple[str, int | None, tuple[tuple[str, str], ...]]
"""An Envoy cluster as Pilot 0.2 built it: (service FQDN, port, subset labels)."""


@dataclasses.dataclass(frozen=True)
class Conversion(HTMLRepr):
    """The result of :func:`convert`.

    Attributes:
        config: The converted resources: modern VirtualServices, DestinationRules, Gateways and
            EnvoyFilters, then every non-legacy input (Services, Deployments, modern resources,
            Ingresses of other classes) unchanged, with their origins.
        findings: What could not be kept exactly, what was truncated or dropped, and which
            Istio 0.2 defaults were written out.
    """

    config: ConfigSet
    findings: tuple[Finding, ...]



def convert(
    config: ConfigSet,
    profile: IstioProfile | str | None = "0.2",
    *,
    modern_defaults: bool = False,
    gateway_name: str = "istio-ingress",
    gateway_namespace: str | None = None,
) -> Conversion:
    """Convert legacy Istio 0.2 resources to modern VirtualServices, DestinationRules and Gateways.

    Args:
        config: A loaded config set (legacy and other resources mixed).
        profile: The Istio version whose semantics the legacy input has; None means ``0.2``. Its
            ingress service name, ingress pod labels, route timeout, retry and load-balancer
            defaults and fault-percent truncation are used.
        modern_defaults: Do not write out 0.2's implicit behaviour (15 s timeout, no retries,
            retry_on, ROUND_ROBIN, outlier-detection defaults); the result then uses modern
            Istio's defaults, as a hand-written 1.x config would.
        gateway_name: Name of the Gateway created for Istio Ingresses.
        gateway_namespace: Namespace of that Gateway; default: one Gateway in each namespace
            that has Istio Ingresses.

    Returns:
        The converted config set and the conversion findings.

    Example:
        >>> from istiolab.config import loads
        >>> ingress = '''
        ... apiVersion: extensions/v1beta1
        ... kind: Ingress
        ... metadata: {name: web, annotations: {kubernetes.io/ingress.class: istio}}
        ... spec:
        ...   rules:
        ...   - http: {paths: [{path: /.*, backend: {serviceName: web, servicePort: 80}}]}
        ... '''
        >>> [r.key for r in convert(loads(ingress)).config]
        ['Gateway/default/istio-ingress', 'VirtualService/default/web']
    """
    prof = get_profile(profile if profile is not None else "0.2")
    return _Converter(config, prof, modern_defaults, gateway_name, gateway_namespace).run()


# -- Pilot 0.2 algorithms, as pure functions -----------------------------------------------


def is_regular_expression(text: str) -> bool:
    """Pilot 0.2's ``isRegularExpression``: ``len(s) < len(regexp.QuoteMeta(s))``."""
    return any(c in _GO_REGEX_META for c in text)


def ingress_path_match(path: str, path_type: str | None = None) -> tuple[str, str] | None:
    """The URI match Istio's ingress makes of an Ingress path.

    ``pathType`` ``Exact``/``Prefix`` are used as they are. Otherwise Pilot 0.2's rule applies:
    ``""`` is prefix ``/``; a literal followed by ``.*`` is a prefix of the literal (so ``/.*`` is
    prefix ``/``); another regex is unsupported; a literal is an exact match.

    Returns:
        ``("exact", p)`` or ``("prefix", p)``, or None for a regex Istio cannot serve.
    """
    if path_type == "Exact":
        return ("exact", path or "/")
    if path_type == "Prefix":
        return ("prefix", path or "/")
    if path == "":
        return ("prefix", "/")
    if path.endswith(".*") and not is_regular_expression(path[:-2]):
        return ("prefix", path[:-2] or "/")
    if is_regular_expression(path):
        return None
    return ("exact", path)


def combine_path_prefix(
    ingress: tuple[str, str], route: tuple[str, str] | None
) -> tuple[str, str] | None:
    """Pilot 0.2's ``HTTPRoute.CombinePathPrefix``: a route's URI match narrowed to an Ingress path.

    Args:
        ingress: The Ingress path match, ``("exact" | "prefix", value)``.
        route: The route's URI match (exact or prefix); None means prefix ``/``.

    Returns:
        The match of requests that satisfy both, or None when no request can.
    """
    kind, value = route if route is not None else ("prefix", "/")
    ikind, ivalue = ingress
    if ikind == "prefix" and kind == "prefix":
        # the longer prefix wins when one is a prefix of the other
        if value.startswith(ivalue):
            return (kind, value)
        if ivalue.startswith(value):
            return (ikind, ivalue)
        return None
    if ikind == "exact" and kind == "exact":
        return (kind, value) if value == ivalue else None
    if ikind == "prefix":  # route exact
        return (kind, value) if value.startswith(ivalue) else None
    # ingress exact, route prefix: keep the path when the route's prefix covers it
    return (ikind, ivalue) if ivalue.startswith(value) else None


def routes_by_path_key(uri: tuple[str, str]) -> tuple[int, tuple[int, ...]]:
    """Sort key of Pilot 0.2's ``RoutesByPath``.

    Exact paths come first in ascending order, then prefixes in descending order, so a longer
    prefix sharing a stem comes before the shorter one. A uri regex counts as prefix ``/`` (Pilot
    kept it aside as a header condition).
    """
    kind, value = uri
    if kind == "exact":
        return (0, tuple(ord(c) for c in value))
    if kind != "prefix":
        value = "/"
    # descending: negated code points, and a longer string before its own prefix
    return (1, (*(-ord(c) for c in value), 1))


def subset_name(labels: dict[str, str]) -> str:
    """Subset name for route labels: ``v1`` for ``{version: v1}``, else ``k-v`` pairs joined."""
    if set(labels) == {"version"}:
        return _dns_label(labels["version"])
    return _dns_label("-".join(f"{k}-{v}" for k, v in sorted(labels.items())))


def _dns_label(text: str) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", out)[:63].strip("-") or "x"


def _host_label(host: str) -> str:
    return "wildcard" if host == "*" else _dns_label(host.replace("*", "wildcard"))


# -- intermediate form ---------------------------------------------------------------------


@dataclasses.dataclass
class _Route:
    """One converted RouteRule (or the default route), before it is placed in a VirtualService.

    ``scope`` is ``all`` (no source), ``ingress`` (source is the ingress), ``source`` (another
    source, expressed as ``source_labels``) or ``none`` (source cannot be expressed).
    """

    name: str
    rule: RouteRule | None
    host: str
    scope: str
    uri: tuple[str, str] | None = None
    match: dict[str, Any] = dataclasses.field(default_factory=dict)
    source_labels: dict[str, str] | None = None
    dests: list[tuple[str, dict[str, str] | None, int | None]] = dataclasses.field(
        default_factory=list
    )
    redirect: dict[str, Any] | None = None
    rewrite: dict[str, Any] | None = None
    fault: dict[str, Any] | None = None
    mirror: str | None = None
    cors: dict[str, Any] | None = None
    append_headers: dict[str, str] | None = None
    timeout: str | None = None
    timeout_default: bool = False
    retries: dict[str, Any] | None = None
    retries_default: bool = False

    @property
    def catch_all(self) -> bool:
        """Pilot's ``CatchAll``: no header conditions, no exact path, prefix ``/``."""
        return not self.match and (self.uri is None or self.uri == ("prefix", "/"))

    @property
    def fault_headers(self) -> dict[str, Any]:
        """The header conditions Pilot 0.2 put on this rule's fault filter (all but the path)."""
        out = dict(self.match)
        if self.uri is not None and self.uri[0] == "regex":
            out["uri"] = {"regex": self.uri[1]}  # 0.2 matched a uri regex as a header
        return out


@dataclasses.dataclass
class _Placed:
    """A route rendered into a VirtualService, with what fault propagation needs."""

    data: dict[str, Any]
    origin: _Route
    dests: tuple[DestKey, ...]
    fault_headers: dict[str, Any]


@dataclasses.dataclass
class _VS:
    """A VirtualService being built."""

    name: str
    namespace: str
    hosts: list[str]
    gateways: list[str] | None
    source: Resource
    routes: list[_Placed] = dataclasses.field(default_factory=list)
    tls: bool = False
    ingresses: list[IngressV1Beta1 | IngressV1] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _DR:
    """A DestinationRule being built for one service FQDN."""

    host: str
    source: Resource
    subsets: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    by_labels: dict[tuple[tuple[str, str], ...], str] = dataclasses.field(default_factory=dict)
    top: dict[str, Any] | None = None
    top_source: DestinationPolicy | None = None
    subset_policy: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    outlier_defaults: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Entry:
    """One Istio Ingress path, resolved."""

    ingress: IngressV1Beta1 | IngressV1
    path: IngressPath
    uri: tuple[str, str]
    host: str
    port: int | None
    tls: bool


def _service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.{DOMAIN}"


def _split_fqdn(fqdn: str) -> tuple[str, str] | None:
    """``(name, namespace)`` of a cluster-local service FQDN, else None."""
    suffix = "." + DOMAIN
    if fqdn.endswith(suffix):
        parts = fqdn[: -len(suffix)].split(".")
        if len(parts) == 2:
            return parts[0], parts[1]
    return None


def _ref(fqdn: str, namespace: str) -> str:
    """How a 1.x user names a service from *namespace*: short name there, else the FQDN.

    (``name.namespace`` is not used: istiod takes any host with a dot as fully qualified.)
    """
    parts = _split_fqdn(fqdn)
    if parts is not None and parts[1] == namespace:
        return parts[0]
    return fqdn


def _labels_key(labels: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))


def _merge_match(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """AND of two HTTPMatchRequest dicts, or None when one field would need two conditions."""
    out = copy.deepcopy(a)
    for key, value in b.items():
        if key == "headers":
            headers = out.setdefault("headers", {})
            for name, cond in value.items():
                if name in headers and headers[name] != cond:
                    return None
                headers[name] = cond
        elif key in out and out[key] != value:
            return None
        else:
            out[key] = value
    return out


# -- the converter -------------------------------------------------------------------------


class _Converter:
    def __init__(
        self,
        config: ConfigSet,
        profile: IstioProfile,
        modern_defaults: bool,
        gateway_name: str,
        gateway_namespace: str | None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.modern = modern_defaults
        self.gateway_name = gateway_name
        self.gateway_namespace = gateway_namespace
        # the modern ingress gateway's pod labels come from the newest profile
        self.gateway_selector = dict(get_profile(None).gateway_selector)
        self.findings: list[Finding] = []
        self.services = {s.fqdn(): s for s in config.kind(Service)}
        self.explicit_ns = self._explicit_namespaces()
        self.converted: dict[int, _Route] = {}
        self.drs: dict[str, _DR] = {}
        self.ingress_vss: list[_VS] = []
        self.mesh_vss: list[_VS] = []
        self.ingress_lists: dict[str, list[_Route]] = {}
        # RouteRules in Pilot 0.2's SortRouteRules order
        self.rules = sorted(
            config.kind(RouteRule),
            key=lambda r: (-r.spec.precedence, f"route-rule/{r.namespace}/{r.name}"),
        )

    # -- helpers ---------------------------------------------------------------------------

    def note(
        self,
        code: str,
        resource: Resource,
        path: tuple[str | int, ...],
        message: str,
        fix: str,
        severity: Severity | None = None,
    ) -> None:
        f = self.config.finding(code, resource, path, message, fix)
        if severity is not None:
            f = dataclasses.replace(f, severity=severity)
        self.findings.append(f)

    def _explicit_namespaces(self) -> set[str]:
        """Namespaces the input names explicitly; output in another one omits ``namespace``."""
        out = {r.metadata.namespace for r in self.config if r.metadata.namespace}
        for rr in self.config.kind(RouteRule):
            out.update(s.namespace for s in _services_of(rr) if s.namespace)
        for dp in self.config.kind(DestinationPolicy):
            if dp.spec.destination.namespace:
                out.add(dp.spec.destination.namespace)
        if self.gateway_namespace:
            out.add(self.gateway_namespace)
        out.add(ROOT_NAMESPACE)
        return {ns for ns in out if ns}

    def meta(self, name: str, namespace: str) -> dict[str, str]:
        if namespace in self.explicit_ns:
            return {"name": name, "namespace": namespace}
        return {"name": name}

    def namespace_of(self, fqdn: str, fallback: str) -> str:
        parts = _split_fqdn(fqdn)
        return parts[1] if parts else fallback

    def dr_for(self, fqdn: str, source: Resource) -> _DR:
        if fqdn not in self.drs:
            self.drs[fqdn] = _DR(fqdn, source)
        return self.drs[fqdn]

    def subset(self, fqdn: str, labels: dict[str, str], source: Resource) -> str:
        dr = self.dr_for(fqdn, source)
        key = _labels_key(labels)
        if key not in dr.by_labels:
            base = name = subset_name(labels)
            n = 2
            while name in dr.subsets:
                name = f"{base}-{n}"
                n += 1
            dr.by_labels[key] = name
            dr.subsets[name] = dict(labels)
        return dr.by_labels[key]

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> Conversion:
        for rr in self.rules:
            self.converted[id(rr)] = self.convert_rule(rr)
        entries = self.ingress_entries()
        self.build_ingress(entries)
        self.build_mesh()
        self.unused_ingress_rules(entries)
        self.name_ingress_routes()
        self.propagate_faults()
        self.destination_policies()
        filters = self.rate_limits()
        gateways = self.gateways()
        return self.assemble(gateways, filters)

    # -- RouteRule → route -----------------------------------------------------------------

    def scope_of(self, rr: RouteRule) -> tuple[str, dict[str, str] | None]:
        src = rr.spec.match.source if rr.spec.match else None
        if src is None:
            return "all", None
        name = src.name or (src.service.split(".")[0] if src.service else "")
        # RouteRules are 0.2 objects: their ingress is 0.2's even when a newer profile is given.
        for prof in (self.profile, get_profile("0.2")):
            pod_labels = dict(prof.gateway_selector)
            if name == prof.ingress_service and (
                not src.labels or src.labels.items() <= pod_labels.items()
            ):
                return "ingress", None
        svc = self.services.get(_service_fqdn(name, src.namespace or rr.namespace))
        selector = dict(svc.spec.selector or {}) if svc else {}
        labels = {**selector, **(src.labels or {})}
        where = ("spec", "match", "source")
        if not labels:
            self.note(
                "IL305",
                rr,
                where,
                f"match.source {name!r} chose the proxies of that service; without its Service's "
                "selector or source labels this cannot be written as sourceLabels, so the rule "
                "is not converted",
                f"add the Service {name!r} to the input, or give match.source.labels",
            )
            return "none", None
        origin = f"the selector of Service {name!r}" if selector else "match.source.labels"
        self.note(
            "IL305",
            rr,
            where,
            f"match.source {name!r} chose which proxies got the rule (Pilot 0.2 matched the "
            f"service name at config time); written as sourceLabels {labels} from {origin}, "
            "which selects pods, not the service",
            "check that these labels select exactly the calling workloads",
        )
        return "source", labels

    def convert_rule(self, rr: RouteRule) -> _Route:
        spec = rr.spec
        scope, source_labels = self.scope_of(rr)
        route = _Route(rr.name, rr, spec.destination.fqdn(rr.namespace), scope)
        route.source_labels = source_labels
        self.convert_match(rr, route)
        if spec.redirect is not None:
            # Pilot 0.2 emitted an Envoy v1 path_redirect/host_redirect: a 302.
            red: dict[str, Any] = {}
            if spec.redirect.uri:
                red["uri"] = spec.redirect.uri
            if spec.redirect.authority:
                red["authority"] = spec.redirect.authority
            red["redirectCode"] = 302
            route.redirect = red
        else:
            self.convert_destinations(rr, route)
        if spec.rewrite is not None and (spec.rewrite.uri or spec.rewrite.authority):
            rw: dict[str, Any] = {}
            if spec.rewrite.uri:
                rw["uri"] = spec.rewrite.uri
            if spec.rewrite.authority:
                rw["authority"] = spec.rewrite.authority
            route.rewrite = rw
        if route.redirect is None:
            route.timeout, route.timeout_default = self.convert_timeout(rr)
            route.retries, route.retries_default = self.convert_retries(rr)
            route.fault = self.convert_fault(rr)
        if spec.websocket_upgrade:
            self.note(
                "IL306",
                rr,
                ("spec", "websocketUpgrade"),
                "websocketUpgrade: true is dropped; modern Istio upgrades WebSocket connections "
                "by default",
                "nothing to do",
                Severity.INFO,
            )
        if spec.l4_fault is not None:
            self.note(
                "IL306",
                rr,
                ("spec", "l4Fault"),
                "l4Fault is dropped: Istio 0.2 never applied TCP faults and modern Istio has none",
                "remove it",
            )
        if spec.mirror is not None:
            route.mirror = spec.mirror.fqdn(rr.namespace)
        if spec.cors_policy is not None:
            cp = spec.cors_policy
            cors: dict[str, Any] = {}
            if cp.allow_origin:
                cors["allowOrigins"] = [{"exact": o} for o in cp.allow_origin]
            for legacy_name, name in (
                ("allow_methods", "allowMethods"),
                ("allow_headers", "allowHeaders"),
                ("expose_headers", "exposeHeaders"),
                ("max_age", "maxAge"),
                ("allow_credentials", "allowCredentials"),
            ):
                value = getattr(cp, legacy_name)
                if value is not None:
                    cors[name] = value
            route.cors = cors or None
        if spec.append_headers:
            route.append_headers = dict(spec.append_headers)
        return route

    def convert_match(self, rr: RouteRule, route: _Route) -> None:
        m = rr.spec.match
        if m is None:
            return
        for l4 in ("tcp", "udp"):
            if getattr(m, l4) is not None:
                self.note(
                    "IL306",
                    rr,
                    ("spec", "match", l4),
                    f"match.{l4} is dropped: Pilot 0.2 ignored L4 conditions for HTTP routes",
                    "remove it",
                )
        headers = m.request.headers if m.request and m.request.headers else {}
        for name in sorted(headers):
            sm = headers[name]
            cond = {sm.kind: sm.value}
            if name == "uri":
                route.uri = (sm.kind, sm.value)
                if sm.kind == "regex" and self.profile.legacy:
                    self.note(
                        "IL306",
                        rr,
                        ("spec", "match", "request", "headers", "uri", "regex"),
                        f"uri regex {sm.value!r} is written as a uri regex match; Pilot 0.2 "
                        "compiled it into a match on a request header named 'uri', which "
                        "requests do not normally carry",
                        "check the route matches what you intend",
                        Severity.INFO,
                    )
            elif name in ("scheme", "method", "authority"):
                route.match[name] = cond
            else:
                route.match.setdefault("headers", {})[name] = cond

    def convert_destinations(self, rr: RouteRule, route: _Route) -> None:
        routes = rr.spec.route or []
        if not routes:
            # Pilot 0.2: no route means all instances of the destination
            route.dests = [(route.host, None, None)]
            return
        for dw in routes:
            host = route.host
            if dw.destination is not None and (dw.destination.name or dw.destination.service):
                host = dw.destination.fqdn(rr.namespace)
            weight = None if len(routes) == 1 else (dw.weight or 0)
            route.dests.append((host, dict(dw.labels) if dw.labels else None, weight))

    def convert_timeout(self, rr: RouteRule) -> tuple[str | None, bool]:
        t = rr.spec.http_req_timeout
        st = t.simple_timeout if t else None
        base = ("spec", "httpReqTimeout")
        if t is not None and t.custom is not None:
            self.note(
                "IL306",
                rr,
                (*base, "custom"),
                "httpReqTimeout.custom is dropped: it has no modern equivalent",
                "use simpleTimeout",
            )
        if st is not None and st.override_header_name:
            self.note(
                "IL306",
                rr,
                (*base, "simpleTimeout", "overrideHeaderName"),
                f"overrideHeaderName {st.override_header_name!r} is dropped; Envoy honours "
                "x-envoy-upstream-rq-timeout-ms by default",
                "send x-envoy-upstream-rq-timeout-ms instead",
            )
        if st is not None and st.timeout:
            return st.timeout, False
        if self.modern or self.profile.default_route_timeout_s is None:
            return None, False
        # 0.2 set no timeout_ms, so Envoy's 15 s route timeout applied.
        return format_duration(self.profile.default_route_timeout_s), True

    def convert_retries(self, rr: RouteRule) -> tuple[dict[str, Any] | None, bool]:
        r = rr.spec.http_req_retries
        sr = r.simple_retry if r else None
        base = ("spec", "httpReqRetries")
        if r is not None and r.custom is not None:
            self.note(
                "IL306",
                rr,
                (*base, "custom"),
                "httpReqRetries.custom is dropped: it has no modern equivalent",
                "use simpleRetry",
            )
        if sr is None:
            if self.modern or self.profile.default_retry is not None:
                return None, False
            # 0.2 had no default retries; modern Istio retries unless told not to.
            return {"attempts": 0}, True
        if sr.override_header_name:
            self.note(
                "IL306",
                rr,
                (*base, "simpleRetry", "overrideHeaderName"),
                f"overrideHeaderName {sr.override_header_name!r} is dropped",
                "send x-envoy-max-retries instead",
            )
        if sr.attempts == 0:
            return {"attempts": 0}, False
        out: dict[str, Any] = {"attempts": sr.attempts}
        if sr.per_try_timeout:
            out["perTryTimeout"] = sr.per_try_timeout
        if not self.modern:
            out["retryOn"] = ",".join(self.profile.retry_on_when_unset)
        return out, False

    def fault_percent(self, rr: RouteRule, pct: float | None, kind: str) -> float | int | None:
        path = ("spec", "httpFault", kind, "percent")
        what = "delay" if kind == "delay" else "abort"
        if pct is None or pct == 0:
            # buildAbortConfig/buildDelayConfig drop a fault whose percent is 0.0 (unset).
            shown = "unset" if pct is None else "0"
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {shown}: Pilot 0.2 treats it as 0 and injects no {what} "
                "(the API doc's 'all requests' was not implemented)",
                "set percent explicitly, e.g. 100",
            )
            return None
        if not self.profile.truncate_fault_percent:
            return pct
        whole = int(pct)
        if whole == 0:
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {pct:g} truncates to 0: Pilot 0.2 injects no {what}",
                "use a whole percentage of at least 1",
            )
            return None
        if whole != pct:
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {pct:g} truncates to {whole} in Pilot 0.2; written as {whole}",
                "use a whole percentage",
            )
        return whole

    def convert_fault(self, rr: RouteRule) -> dict[str, Any] | None:
        f = rr.spec.http_fault
        if f is None:
            return None
        out: dict[str, Any] = {}
        base = ("spec", "httpFault")
        if f.delay is not None:
            d = f.delay
            if d.exponential_delay is not None:
                self.note(
                    "IL302",
                    rr,
                    (*base, "delay", "exponentialDelay"),
                    "exponentialDelay is dropped: Istio never supported it, so Pilot 0.2 "
                    "injected no delay",
                    "use fixedDelay",
                )
            else:
                pct = self.fault_percent(rr, d.percent, "delay")
                if pct is not None:
                    out["delay"] = {"fixedDelay": d.fixed_delay, "percentage": {"value": pct}}
            if d.override_header_name:
                self.note(
                    "IL306",
                    rr,
                    (*base, "delay", "overrideHeaderName"),
                    f"delay overrideHeaderName {d.override_header_name!r} is dropped",
                    "remove it",
                )
        if f.abort is not None:
            a = f.abort
            status = a.http_status
            if status is None:
                which = "grpcStatus" if a.grpc_status is not None else "http2Error"
                self.note(
                    "IL302",
                    rr,
                    (*base, "abort", which),
                    f"abort by {which} is dropped: Pilot 0.2 only injected HTTP statuses",
                    "use httpStatus",
                )
            elif status == 0:
                self.note(
                    "IL301",
                    rr,
                    (*base, "abort", "httpStatus"),
                    "abort httpStatus 0: Pilot 0.2 injects no abort",
                    "set an HTTP status such as 503",
                )
            elif not 200 <= status <= 599:
                self.note(
                    "IL306",
                    rr,
                    (*base, "abort", "httpStatus"),
                    f"abort httpStatus {status} is dropped: modern Istio accepts 200..599",
                    "use a real HTTP status such as 503",
                )
            else:
                pct = self.fault_percent(rr, a.percent, "abort")
                if pct is not None:
                    out["abort"] = {"httpStatus": status, "percentage": {"value": pct}}
            if a.override_header_name:
                self.note(
                    "IL306",
                    rr,
                    (*base, "abort", "overrideHeaderName"),
                    f"abort overrideHeaderName {a.override_header_name!r} is dropped",
                    "remove it",
                )
        return out or None

    def default_route(self, fqdn: str) -> _Route:
        """Pilot 0.2's default route: prefix ``/`` to all instances, the lowest priority."""
        timeout = None
        if not self.modern and self.profile.default_route_timeout_s is not None:
            timeout = format_duration(self.profile.default_route_timeout_s)
        no_retry = not self.modern and self.profile.default_retry is None
        return _Route(
            "default",
            None,
            fqdn,
            "all",
            dests=[(fqdn, None, None)],
            timeout=timeout,
            timeout_default=timeout is not None,
            retries={"attempts": 0} if no_retry else None,
            retries_default=no_retry,
        )

    def route_list(self, fqdn: str, scopes: tuple[str, ...]) -> list[_Route]:
        """Pilot 0.2's ``buildDestinationHTTPRoutes`` for proxies that get rules of *scopes*."""
        out: list[_Route] = []
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.host != fqdn or route.scope not in scopes:
                continue
            out.append(route)
            # A catch-all ends the list for every proxy only when no source limits it.
            if route.catch_all and route.source_labels is None:
                return out
        out.append(self.default_route(fqdn))
        return out

    # -- rendering -------------------------------------------------------------------------

    def render(
        self,
        route: _Route,
        namespace: str,
        *,
        uri: tuple[str, str] | None,
        port: int | None,
        mesh: bool,
    ) -> _Placed:
        source: Resource = route.rule if route.rule is not None else self.first_source(route.host)
        data: dict[str, Any] = {"name": route.name}
        cond: dict[str, Any] = {}
        if uri is not None:
            cond["uri"] = {uri[0]: uri[1]}
        cond.update(copy.deepcopy(route.match))
        if mesh and route.source_labels:
            cond["sourceLabels"] = dict(route.source_labels)
        if cond:
            data["match"] = [cond]
        keys: list[DestKey] = []
        if route.redirect is not None:
            data["redirect"] = dict(route.redirect)
        else:
            dests = []
            for host, labels, weight in route.dests:
                dest: dict[str, Any] = {"host": _ref(host, namespace)}
                if labels:
                    dest["subset"] = self.subset(host, labels, source)
                if port is not None:
                    dest["port"] = {"number": port}
                entry: dict[str, Any] = {"destination": dest}
                if weight is not None:
                    entry["weight"] = weight
                dests.append(entry)
                keys.append((host, port, _labels_key(labels)))
            data["route"] = dests
        if route.rewrite is not None:
            data["rewrite"] = dict(route.rewrite)
        if route.timeout is not None:
            data["timeout"] = route.timeout
        if route.retries is not None:
            data["retries"] = dict(route.retries)
        if route.fault is not None:
            data["fault"] = copy.deepcopy(route.fault)
        if route.mirror is not None:
            data["mirror"] = {"host": _ref(route.mirror, namespace)}
        if route.cors is not None:
            data["corsPolicy"] = copy.deepcopy(route.cors)
        if route.append_headers:
            data["headers"] = {"request": {"add": dict(route.append_headers)}}
        fault_headers = route.fault_headers
        if mesh and route.source_labels:
            # the fault filter existed only on the proxies the rule's source selected
            fault_headers["sourceLabels"] = dict(route.source_labels)
        return _Placed(data, route, tuple(keys), fault_headers)

    def first_source(self, fqdn: str) -> Resource:
        """A resource to attribute a generated object for *fqdn* to (for findings)."""
        for rr in self.rules:
            if self.converted[id(rr)].host == fqdn:
                return rr
        for dp in self.config.kind(DestinationPolicy):
            if dp.spec.destination.fqdn(dp.namespace) == fqdn:
                return dp
        for ing in self.istio_ingresses():
            return ing
        return next(iter(self.config))

    # -- mesh ------------------------------------------------------------------------------

    def build_mesh(self) -> None:
        hosts: list[str] = []
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.scope in ("all", "source") and route.host not in hosts:
                hosts.append(route.host)
        for fqdn in hosts:
            routes = self.route_list(fqdn, ("all", "source"))
            first = next(r.rule for r in routes if r.rule is not None)
            assert first is not None
            ns = self.namespace_of(fqdn, first.namespace)
            parts = _split_fqdn(fqdn)
            name = parts[0] if parts else _dns_label(fqdn)
            vs = _VS(name, ns, [_ref(fqdn, ns)], None, first)
            for route in routes:
                vs.routes.append(self.render(route, ns, uri=route.uri, port=None, mesh=True))
            self.mesh_vss.append(vs)

    # -- ingress ---------------------------------------------------------------------------

    def istio_ingresses(self) -> list[IngressV1Beta1 | IngressV1]:
        return [i for i in self.ingresses() if i.ingress_class == ISTIO_INGRESS_CLASS]

    def ingresses(self) -> list[IngressV1Beta1 | IngressV1]:
        return [r for r in self.config if isinstance(r, (IngressV1Beta1, IngressV1))]

    def ingress_entries(self) -> list[_Entry]:
        out: list[_Entry] = []
        for ing in sorted(self.ingresses(), key=lambda i: (i.namespace, i.name)):
            cls = ing.ingress_class
            if cls != ISTIO_INGRESS_CLASS:
                self.note(
                    "IL307",
                    ing,
                    ("metadata", "annotations"),
                    f"ingress class {cls!r} is not 'istio': Istio's ingress controller (STRICT "
                    "mode) ignores this Ingress; it is kept unchanged",
                    "set the annotation kubernetes.io/ingress.class: istio if Istio should "
                    "serve it",
                )
                continue
            tls = bool(ing.spec.tls)
            if tls:
                self.note_tls(ing)
            for p in ing.paths():
                field = _field(p.field)
                uri = ingress_path_match(p.path, p.path_type)
                if uri is None:
                    self.note(
                        "IL304",
                        ing,
                        (*field, "path"),
                        f"path {p.path!r} is a regex: Istio's ingress turns only a trailing "
                        "'.*' after a literal into a prefix and rejected this path, so it is "
                        "skipped",
                        "use a literal path (exact match) or 'literal/.*' (prefix)",
                    )
                    continue
                fqdn = _service_fqdn(p.service, ing.namespace)
                served, port = self.ingress_port(ing, p, fqdn, field)
                if served:
                    out.append(_Entry(ing, p, uri, p.host or "*", port, tls))
        return out

    def note_tls(self, ing: IngressV1Beta1 | IngressV1) -> None:
        tls = ing.spec.tls or []
        secret = tls[0].secret_name or LEGACY_INGRESS_SECRET
        self.note(
            "IL306",
            ing,
            ("spec", "tls"),
            f"Istio 0.2 served every host of this Ingress on port 443 only, with the one "
            f"certificate of secret {LEGACY_INGRESS_SECRET!r} mounted in the ingress pods "
            f"(no SNI); the Gateway serves them on 443 with credentialName {secret!r}",
            f"create the TLS secret {secret!r} in the gateway pods' namespace",
            Severity.INFO,
        )
        for k in range(1, len(tls)):
            self.note(
                "IL306",
                ing,
                ("spec", "tls", k),
                f"tls[{k}] (secret {tls[k].secret_name!r}) is dropped: Istio 0.2 used only the "
                "first TLS entry",
                "serve one certificate per Gateway server if you need several",
            )

    def ingress_port(
        self,
        ing: IngressV1Beta1 | IngressV1,
        p: IngressPath,
        fqdn: str,
        field: tuple[str | int, ...],
    ) -> tuple[bool, int | None]:
        """``(served, port number)`` of an Ingress path; not served when Pilot 0.2 skipped it."""
        svc = self.services.get(fqdn)
        number = p.port if isinstance(p.port, int) else None
        if svc is None:
            return True, number
        port = next(
            (sp for sp in svc.spec.ports if (sp.port == number if number else sp.name == p.port)),
            None,
        )
        if port is None:
            self.note(
                "IL312",
                ing,
                (*field, "backend"),
                f"Service {p.service!r} has no port {p.port!r}: Pilot 0.2 skipped this path",
                "use a port of the Service",
            )
            return False, None
        # Pilot 0.2 took the protocol from the port name and served only HTTP-family ports.
        prefix = (port.name or "").split("-", 1)[0].lower()
        if prefix not in ("http", "http2", "grpc"):
            self.note(
                "IL312",
                ing,
                (*field, "backend"),
                f"port {port.port} of Service {p.service!r} is named {port.name!r}, which Istio "
                "0.2 took as TCP; its ingress served only HTTP ports and skipped this path",
                "name the Service port 'http' (or 'http-<suffix>')",
            )
            return False, None
        return True, port.port

    def ingress_list(self, fqdn: str) -> list[_Route]:
        if fqdn not in self.ingress_lists:
            self.ingress_lists[fqdn] = self.route_list(fqdn, ("all", "ingress"))
        return self.ingress_lists[fqdn]

    def build_ingress(self, entries: list[_Entry]) -> None:
        by_host: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
        for e in entries:
            by_host[(e.ingress.namespace, e.host)].append(e)
        hosts_of: dict[str, set[str]] = defaultdict(set)
        for e in entries:
            hosts_of[e.ingress.key].add(e.host)
        for (ns, host), group in by_host.items():
            first = group[0].ingress
            name = first.name
            if len(hosts_of[first.key]) > 1:
                name = f"{first.name}-{_host_label(host)}"
            gw_ns = self.gateway_namespace or ns
            ref = self.gateway_name if gw_ns == ns else f"{gw_ns}/{self.gateway_name}"
            vs = _VS(name, ns, [host], [ref], first, tls=any(e.tls for e in group))
            for e in group:
                if e.ingress not in vs.ingresses:
                    vs.ingresses.append(e.ingress)
            placed: list[tuple[tuple[str, str], _Placed]] = []
            for e in group:
                for route in self.ingress_list(_service_fqdn(e.path.service, ns)):
                    uri = self.combine(route, e)
                    if uri is None:
                        continue
                    placed.append((uri, self.render(route, ns, uri=uri, port=e.port, mesh=False)))
            # Pilot 0.2 sorted each virtual host's routes with RoutesByPath; Go's sort.Sort is
            # insertion sort (stable) below 12 routes, and Python's sort is stable.
            placed.sort(key=lambda item: routes_by_path_key(item[0]))
            vs.routes = [p for _, p in placed]
            if vs.routes:
                self.ingress_vss.append(vs)

    def combine(self, route: _Route, e: _Entry) -> tuple[str, str] | None:
        """The route's URI narrowed to the Ingress path, as Pilot 0.2's ``CombinePathPrefix``."""
        if route.uri is not None and route.uri[0] == "regex":
            # 0.2 kept a uri regex aside as a header condition and the route's prefix '/'.
            regex = route.uri[1]
            if e.uri == ("prefix", "/"):
                return ("regex", regex)
            if e.uri[0] == "exact":
                return e.uri if full_match(regex, e.uri[1]) else None
            assert route.rule is not None
            self.note(
                "IL306",
                route.rule,
                ("spec", "match", "request", "headers", "uri"),
                f"uri regex {regex!r} combined with Ingress {e.ingress.name!r} prefix "
                f"{e.uri[1]!r} cannot be written as one match; the route is dropped there",
                "use a uri prefix in the RouteRule",
            )
            return None
        return combine_path_prefix(e.uri, route.uri)

    def unused_ingress_rules(self, entries: list[_Entry]) -> None:
        served = {_service_fqdn(e.path.service, e.ingress.namespace) for e in entries}
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.scope == "ingress" and route.host not in served:
                self.note(
                    "IL312",
                    rr,
                    ("spec", "match", "source"),
                    f"the rule applies only at the ingress (source "
                    f"{self.profile.ingress_service!r}) but no Istio Ingress routes to "
                    f"{route.host}, so it has no effect and is not converted",
                    "add an Ingress with kubernetes.io/ingress.class: istio for this service, "
                    "or remove match.source",
                )

    def name_ingress_routes(self) -> None:
        """Make each route name stand for one service across the gateway.

        Route names are RouteRule names (``default`` for the default route) so that ``explain``
        can name the rule; a name shared by routes to different services (two ``default`` routes)
        gets the service name appended, and the namespace too when that is still ambiguous.
        """
        by_name: dict[str, set[str]] = defaultdict(set)
        for vs in self.ingress_vss:
            for p in vs.routes:
                by_name[p.data["name"]].add(p.origin.host)
        for vs in self.ingress_vss:
            for p in vs.routes:
                hosts = by_name[p.data["name"]]
                if len(hosts) < 2:
                    continue
                parts = _split_fqdn(p.origin.host) or (_dns_label(p.origin.host), "")
                same_short = [h for h in hosts if (_split_fqdn(h) or ("", ""))[0] == parts[0]]
                suffix = parts[0] if len(same_short) < 2 else "-".join(x for x in parts if x)
                p.data["name"] = f"{p.data['name']}-{suffix}"

    def propagate_faults(self) -> None:
        """Apply Pilot 0.2's per-cluster fault filters to the other routes they also hit.

        Pilot 0.2 did not put a fault on its route: it added an Envoy fault filter per upstream
        cluster of the rule, matching only the rule's header conditions. The filter then fired
        for every request to that cluster on the listener, whichever route chose it.
        """
        for group in (
            [r for vs in self.ingress_vss if not vs.tls for r in vs.routes],
            [r for vs in self.ingress_vss if vs.tls for r in vs.routes],
        ):
            self.propagate(group, self.ingress_vss)
        for vs in self.mesh_vss:
            self.propagate(vs.routes, [vs])

    def propagate(self, group: list[_Placed], vss: list[_VS]) -> None:
        filters = [
            (key, p.fault_headers, p.data["fault"], p)
            for p in group
            if "fault" in p.data
            for key in p.dests
        ]
        if not filters:
            return
        inserts: dict[int, _Placed] = {}
        reported: set[tuple[str, str]] = set()
        for q in group:
            foreign = [f for f in filters if f[3] is not q and f[0] in q.dests]
            if not foreign:
                continue
            src = foreign[0][3].origin
            rule = src.rule
            assert rule is not None
            key = (src.name, q.data["name"])
            simple = (
                len(foreign) == 1
                and len(q.dests) == 1
                and "fault" not in q.data
                and "redirect" not in q.data
            )
            merged = (
                _merge_match((q.data.get("match") or [{}])[0], foreign[0][1]) if simple else None
            )
            if simple and not foreign[0][1]:
                q.data["fault"] = copy.deepcopy(foreign[0][2])
                msg = f"route {q.data['name']!r} also gets the fault of rule {src.name!r}"
            elif merged is not None:
                extra = copy.deepcopy(q.data)
                extra["match"] = [merged]
                extra["fault"] = copy.deepcopy(foreign[0][2])
                inserts[id(q)] = _Placed(extra, q.origin, q.dests, q.fault_headers)
                msg = (
                    f"a copy of route {q.data['name']!r} that also requires the fault's header "
                    f"conditions gets the fault of rule {src.name!r}"
                )
            else:
                msg = (
                    f"route {q.data['name']!r} cannot carry it (several fault filters, weighted "
                    "destinations or a fault of its own), so those requests get no such fault "
                    "after conversion"
                )
            if key in reported:
                continue
            reported.add(key)
            self.note(
                "IL306",
                rule,
                ("spec", "httpFault"),
                f"Pilot 0.2 attached this fault to the upstream cluster, so it also hit requests "
                f"that route {q.data['name']!r} sends to the same cluster; {msg}",
                "give the fault its own destination (a subset), or accept the difference",
            )
        if not inserts:
            return
        for vs in vss:
            out: list[_Placed] = []
            for p in vs.routes:
                if id(p) in inserts:
                    out.append(inserts[id(p)])
                out.append(p)
            vs.routes = out

    # -- DestinationPolicy -----------------------------------------------------------------

    def destination_policies(self) -> None:
        policies = sorted(
            self.config.kind(DestinationPolicy),
            key=lambda p: f"destination-policy/{p.namespace}/{p.name}",
        )
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], DestinationPolicy] = {}
        for dp in policies:
            spec = dp.spec
            fqdn = spec.destination.fqdn(dp.namespace)
            labels = dict(spec.destination.labels or {})
            key = (fqdn, _labels_key(labels))
            if key in seen:
                # Pilot 0.2 applied only the policy with the lexicographically smallest key.
                self.note(
                    "IL306",
                    dp,
                    ("spec", "destination"),
                    f"ignored: DestinationPolicy {seen[key].name!r} has the same destination and "
                    "labels and a smaller key, and Pilot 0.2 applied only that one",
                    "merge the two policies",
                )
                continue
            seen[key] = dp
            if spec.source is not None:
                self.note(
                    "IL306",
                    dp,
                    ("spec", "source"),
                    "source is dropped: a DestinationRule applies to every caller",
                    "remove source, or accept that the policy applies to all callers",
                )
            if spec.custom is not None:
                self.note("IL306", dp, ("spec", "custom"), "custom is dropped", "remove it")
            dr = self.dr_for(fqdn, dp)
            policy = self.traffic_policy(dp, dr)
            if labels:
                dr.subset_policy[self.subset(fqdn, labels, dp)] = policy
            else:
                dr.top = policy
                dr.top_source = dp

    def traffic_policy(self, dp: DestinationPolicy, dr: _DR) -> dict[str, Any]:
        spec = dp.spec
        out: dict[str, Any] = {}
        lb = spec.load_balancing
        if lb is not None:
            if lb.name is not None:
                out["loadBalancer"] = {"simple": _LB[lb.name]}
            if lb.custom is not None:
                self.note(
                    "IL306",
                    dp,
                    ("spec", "loadBalancing", "custom"),
                    "loadBalancing.custom is dropped",
                    "use loadBalancing.name",
                )
        cb = spec.circuit_breaker
        if cb is not None and cb.custom is not None:
            self.note(
                "IL306",
                dp,
                ("spec", "circuitBreaker", "custom"),
                "circuitBreaker.custom is dropped",
                "use simpleCb",
            )
        if cb is not None and cb.simple_cb is not None:
            self.circuit_breaker(dp, cb.simple_cb, out, dr)
        return out

    def circuit_breaker(
        self, dp: DestinationPolicy, cb: SimpleCircuitBreakerPolicy, out: dict[str, Any], dr: _DR
    ) -> None:
        # Pilot 0.2 set each threshold only when it was > 0 (0 meant Envoy's default).
        tcp: dict[str, Any] = {}
        http: dict[str, Any] = {}
        if cb.max_connections:
            tcp["maxConnections"] = cb.max_connections
        if cb.http_max_pending_requests:
            http["http1MaxPendingRequests"] = cb.http_max_pending_requests
        if cb.http_max_requests:
            http["http2MaxRequests"] = cb.http_max_requests
        if cb.http_max_requests_per_connection:
            http["maxRequestsPerConnection"] = cb.http_max_requests_per_connection
        if cb.http_max_retries:
            http["maxRetries"] = cb.http_max_retries
        pool: dict[str, Any] = {}
        if tcp:
            pool["tcp"] = tcp
        if http:
            pool["http"] = http
        if pool:
            out["connectionPool"] = pool
        # Pilot 0.2 emitted outlier detection whenever simpleCb was present.
        outlier: dict[str, Any] = {}
        for legacy_name, name, default in _OUTLIER_DEFAULTS:
            attr = re.sub(r"(?<!^)([A-Z])", r"_\1", legacy_name).lower()
            value = getattr(cb, attr)
            if isinstance(value, str) and parse_duration(value) < 1.0:
                # 0.2 used a duration only when its whole seconds were > 0.
                self.note(
                    "IL306",
                    dp,
                    ("spec", "circuitBreaker", "simpleCb", legacy_name),
                    f"{legacy_name} {value} is under 1s, which Pilot 0.2 ignored (Envoy's "
                    f"{default} applied); written as {default}",
                    "use at least 1s",
                )
                value = None
            if value:
                outlier[name] = value
            elif not self.modern:
                outlier[name] = default
                dr.outlier_defaults.append(f"{name} {default}")
        if outlier:
            out["outlierDetection"] = outlier

    # -- Mixer quota → local rate limit -----------------------------------------------------

    def rate_limits(self) -> list[dict[str, Any]]:
        memquotas = self.config.kind(MemQuota)
        out: list[dict[str, Any]] = []
        names: set[str] = set()
        specs = {(s.namespace, s.name): s for s in self.config.kind(QuotaSpec)}
        rules = self.config.kind(MixerRule)
        handlers = {mq.name for mq in memquotas}
        for rule in rules:
            if not any(a.handler.split(".")[0] in handlers for a in rule.spec.actions):
                self.note(
                    "IL306",
                    rule,
                    ("spec", "actions"),
                    "Mixer rule dropped: only memquota rate limits are converted (Mixer was "
                    "removed in Istio 1.8)",
                    "use Istio telemetry or an EnvoyFilter for what this rule did",
                    Severity.INFO,
                )
        for mq in memquotas:
            used = any(a.handler.split(".")[0] == mq.name for r in rules for a in r.spec.actions)
            conditional = [
                r.name
                for r in rules
                if r.spec.match and any(a.handler.split(".")[0] == mq.name for a in r.spec.actions)
            ]
            for i, q in enumerate(mq.spec.quotas):
                path: tuple[str | int, ...] = ("spec", "quotas", i)
                if not used:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"no Mixer rule uses handler {mq.name!r}, so quota {q.name!r} limited "
                        "nothing and is not converted",
                        "add a rule with this handler, or remove the memquota",
                    )
                    continue
                if q.valid_duration is None:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"quota {q.name!r} has no validDuration: an allocation quota, not a "
                        "rate; not converted",
                        "give validDuration to make it a rate limit",
                    )
                    continue
                targets = self.quota_targets(q, specs)
                if not targets:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"no QuotaSpecBinding charges quota {q.name!r}, so it limited nothing "
                        "and is not converted",
                        "bind a QuotaSpec that charges it to a service",
                    )
                    continue
                for svc, ns, charge in targets:
                    ef = self.rate_limit(mq, path, q, svc, ns, charge, conditional)
                    if ef is None:
                        continue
                    base = name = ef["metadata"]["name"]
                    n = 2
                    while name in names:
                        name = f"{base}-{n}"
                        n += 1
                    names.add(name)
                    ef["metadata"]["name"] = name
                    out.append(ef)
        return out

    def quota_targets(
        self, q: MemQuotaLimit, specs: dict[tuple[str, str], QuotaSpec]
    ) -> list[tuple[str, str, int]]:
        """``(service, namespace, charge)`` for every service a QuotaSpecBinding charges *q* to."""
        instance = q.name.split(".")[0]
        out: list[tuple[str, str, int]] = []
        for binding in self.config.kind(QuotaSpecBinding):
            for ref in binding.spec.quota_specs:
                spec = specs.get((ref.namespace or binding.namespace, ref.name))
                if spec is None:
                    continue
                charge = next(
                    (
                        qr.charge
                        for rule in spec.spec.rules
                        for qr in rule.quotas
                        if qr.quota.split(".")[0] == instance
                    ),
                    None,
                )
                if charge is None:
                    continue
                for svc in binding.spec.services:
                    out.append((svc.name, svc.namespace or binding.namespace, max(charge, 1)))
        return out

    def rate_limit(
        self,
        mq: MemQuota,
        path: tuple[str | int, ...],
        q: MemQuotaLimit,
        svc: str,
        ns: str,
        charge: int,
        conditional: list[str],
    ) -> dict[str, Any] | None:
        amount, window = q.max_amount, q.valid_duration
        assert window is not None
        ignored: list[str] = []
        for ov in q.overrides or []:
            if ov.dimensions == {"destination": svc}:
                amount, window = ov.max_amount, ov.valid_duration or window
                break
            if ov.dimensions.get("destination") in (None, svc):
                ignored.append(str(ov.dimensions))
        tokens = amount // charge
        fqdn = _service_fqdn(svc, ns)
        ingress_routes = [p for vs in self.ingress_vss for p in vs.routes]
        to_svc = [p for p in ingress_routes if any(k[0] == fqdn for k in p.dests)]
        others = [p for p in ingress_routes if any(k[0] != fqdn for k in p.dests)]
        notes: list[str] = []
        if ingress_routes and not to_svc:
            self.note(
                "IL308",
                mq,
                path,
                f"quota {q.name!r} limited calls to {svc!r}, but no Istio Ingress route reaches "
                f"{svc!r}; the limit applied only inside the mesh, which the gateway does not "
                "see, so it is not converted",
                "route the service through the Ingress, or limit it on its sidecars",
            )
            return None
        bucket = {
            "stat_prefix": "http_local_rate_limiter",
            "token_bucket": {
                "max_tokens": tokens,
                "tokens_per_fill": tokens,
                "fill_interval": window,
            },
            "filter_enabled": _fraction("local_rate_limit_enabled"),
            "filter_enforced": _fraction("local_rate_limit_enforced"),
        }
        http_filter: dict[str, Any] = {
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": "GATEWAY",
                "listener": {
                    "filterChain": {
                        "filter": {"name": "envoy.filters.network.http_connection_manager"}
                    }
                },
            },
            "patch": {
                "operation": "INSERT_BEFORE",
                "value": {"name": RATELIMIT_FILTER, "typed_config": _typed(bucket)},
            },
        }
        patches: list[dict[str, Any]] = [http_filter]
        if others and to_svc:
            # The gateway also serves other services: one bucket per route to this service
            # (Istio docs' per-route form); the HTTP filter is then only switched on.
            http_filter["patch"]["value"]["typed_config"] = _typed(
                {"stat_prefix": "http_local_rate_limiter"}
            )
            route_names = sorted({p.data["name"] for p in to_svc})
            for name in route_names:
                patches.append(
                    {
                        "applyTo": "HTTP_ROUTE",
                        "match": {
                            "context": "GATEWAY",
                            "routeConfiguration": {"vhost": {"route": {"name": name}}},
                        },
                        "patch": {
                            "operation": "MERGE",
                            "value": {
                                "typed_per_filter_config": {RATELIMIT_FILTER: _typed(bucket)}
                            },
                        },
                    }
                )
            if len(route_names) > 1:
                notes.append(
                    f"each of the {len(route_names)} gateway routes to {svc!r} gets its own "
                    "bucket, so together they pass more"
                )
            if any(any(k[0] != fqdn for k in p.dests) for p in to_svc):
                notes.append("a route that also sends to other services is limited as a whole")
        elif not ingress_routes:
            notes.append(
                "the bucket counts every request through the gateway, which is exact only if "
                f"the gateway serves nothing but {svc!r}"
            )
        if charge > 1:
            notes.append(f"charge {charge} per request gives {tokens} requests per window")
        if ignored:
            notes.append(f"overrides with other dimensions are ignored: {', '.join(ignored)}")
        if conditional:
            notes.append(f"the match of Mixer rule(s) {', '.join(conditional)} is ignored")
        self.note(
            "IL308",
            mq,
            path,
            f"quota {q.name!r}: {amount} requests per {window} to {svc!r}, counted by Mixer for "
            f"the whole cluster, becomes a token bucket of {tokens} tokens refilled every "
            f"{window} on each ingress gateway pod; Mixer's rolling window, its fail-open and the "
            "limit on calls inside the mesh are not kept"
            + ("; " + "; ".join(notes) if notes else ""),
            "with N gateway pods, divide max_tokens by N for the same total, or use Envoy's "
            "global rate limit service",
        )
        return {
            "apiVersion": ENVOY_FILTER_VERSION,
            "kind": "EnvoyFilter",
            "metadata": {"name": f"ratelimit-{_dns_label(svc)}", "namespace": ROOT_NAMESPACE},
            "spec": {
                "workloadSelector": {"labels": dict(self.gateway_selector)},
                "configPatches": patches,
            },
        }

    # -- Gateway ---------------------------------------------------------------------------

    def gateways(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        groups: dict[str, list[_VS]] = defaultdict(list)
        for vs in self.ingress_vss:
            groups[self.gateway_namespace or vs.namespace].append(vs)
        for gw_ns in sorted(groups):
            http_hosts: list[str] = []
            tls_hosts: list[str] = []
            for vs in groups[gw_ns]:
                target = tls_hosts if vs.tls else http_hosts
                for h in vs.hosts:
                    if h not in target:
                        target.append(h)
            servers: list[dict[str, Any]] = []
            if http_hosts:
                servers.append(
                    {
                        "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                        "hosts": ["*"] if "*" in http_hosts else http_hosts,
                    }
                )
            if tls_hosts:
                servers.append(
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": ["*"] if "*" in tls_hosts else tls_hosts,
                        "tls": {"mode": "SIMPLE", "credentialName": self.secret(groups[gw_ns])},
                    }
                )
            out.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "Gateway",
                    "metadata": self.meta(self.gateway_name, gw_ns),
                    "spec": {"selector": dict(self.gateway_selector), "servers": servers},
                }
            )
        return out

    def secret(self, vss: list[_VS]) -> str:
        """The certificate of a gateway: Pilot 0.2 served the smallest ``secret.namespace``."""
        secrets = sorted(
            (tls[0].secret_name or LEGACY_INGRESS_SECRET, ing.namespace)
            for vs in vss
            for ing in vs.ingresses
            for tls in [ing.spec.tls or []]
            if tls
        )
        return min(secrets, key=lambda s: f"{s[0]}.{s[1]}")[0] if secrets else LEGACY_INGRESS_SECRET

    # -- output ----------------------------------------------------------------------------

    def virtual_service(self, vs: _VS) -> dict[str, Any]:
        timeouts = sum(1 for p in vs.routes if p.origin.timeout_default)
        retries = sum(1 for p in vs.routes if p.origin.retries_default)
        if timeouts or retries:
            parts = []
            if timeouts:
                default = format_duration(self.profile.default_route_timeout_s or 0.0)
                parts.append(
                    f"timeout: {default} on {timeouts} route(s) (Envoy's route timeout, which "
                    "Istio 0.2 left in place)"
                )
            if retries:
                parts.append(
                    f"retries: {{attempts: 0}} on {retries} route(s) (Istio 0.2 did not retry)"
                )
            self.note(
                "IL311",
                vs.source,
                ("spec",),
                f"VirtualService {vs.namespace}/{vs.name}: wrote {' and '.join(parts)}",
                "keep them to preserve 0.2 behaviour, or convert with --modern-defaults for "
                "modern Istio's defaults (no timeout, 2 retries)",
            )
        spec: dict[str, Any] = {"hosts": list(vs.hosts)}
        if vs.gateways:
            spec["gateways"] = list(vs.gateways)
        spec["http"] = [p.data for p in vs.routes]
        return {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": self.meta(vs.name, vs.namespace),
            "spec": spec,
        }

    def destination_rule(self, dr: _DR) -> dict[str, Any]:
        parts = _split_fqdn(dr.host)
        ns = parts[1] if parts else dr.source.namespace
        name = parts[0] if parts else _dns_label(dr.host)
        default_lb = self.profile.default_lb
        top = copy.deepcopy(dr.top) if dr.top else {}
        written: list[str] = []
        if not self.modern and "loadBalancer" not in top:
            top = {"loadBalancer": {"simple": default_lb}, **top}
            written.append(f"loadBalancer.simple {default_lb} (0.2's default load balancer)")
        if dr.outlier_defaults:
            written.append(
                f"outlierDetection {', '.join(dr.outlier_defaults)} (Envoy's defaults, which "
                "Pilot 0.2 relied on whenever simpleCb was set)"
            )
        if written:
            self.note(
                "IL311",
                dr.source,
                ("spec",),
                f"DestinationRule {ns}/{name}: wrote {' and '.join(written)}",
                "keep them to preserve 0.2 behaviour, or convert with --modern-defaults for "
                "modern Istio's defaults",
            )
        subsets = []
        inherited: set[str] = set()
        top_lb = (dr.top or {}).get("loadBalancer", {}).get("simple")
        for sname in sorted(dr.subsets):
            subset: dict[str, Any] = {"name": sname, "labels": dict(dr.subsets[sname])}
            own = copy.deepcopy(dr.subset_policy.get(sname, {}))
            # A 0.2 policy applied only to the cluster with exactly its labels; modern subsets
            # inherit the host-level policy, so a subset keeps 0.2's default load balancer.
            if (
                not self.modern
                and top_lb is not None
                and top_lb != default_lb
                and "loadBalancer" not in own
            ):
                own = {"loadBalancer": {"simple": default_lb}, **own}
            for k in ("connectionPool", "outlierDetection"):
                if dr.top and k in dr.top and k not in own:
                    inherited.add(k)
            if own:
                subset["trafficPolicy"] = own
            subsets.append(subset)
        if inherited and dr.top_source is not None:
            self.note(
                "IL306",
                dr.top_source,
                ("spec", "circuitBreaker"),
                f"in Istio 0.2 this policy applied only to traffic sent to all instances of "
                f"{name}, not to the subsets {', '.join(sorted(dr.subsets))}; modern subsets "
                f"inherit its {' and '.join(sorted(inherited))}",
                "repeat the settings you want per subset, or accept the wider effect",
            )
        spec: dict[str, Any] = {"host": _ref(dr.host, ns)}
        if top:
            spec["trafficPolicy"] = top
        if subsets:
            spec["subsets"] = subsets
        return {
            "apiVersion": API_VERSION,
            "kind": "DestinationRule",
            "metadata": self.meta(name, ns),
            "spec": spec,
        }

    def is_converted(self, r: Resource) -> bool:
        if isinstance(r, (RouteRule, DestinationPolicy)):
            return True
        if isinstance(r, (IngressV1Beta1, IngressV1)):
            return r.ingress_class == ISTIO_INGRESS_CLASS
        return isinstance(r, (MemQuota, QuotaInstance, MixerRule, QuotaSpec, QuotaSpecBinding))

    def assemble(self, gateways: list[dict[str, Any]], filters: list[dict[str, Any]]) -> Conversion:
        resources: list[Resource] = []
        origins: list[RawDocument | None] = []

        def add(resource: Resource, origin: RawDocument | None = None) -> None:
            resources.append(resource)
            origins.append(origin)

        for gw in gateways:
            add(Gateway.model_validate(gw))
        # A gateway VirtualService named after its Ingress must not replace the mesh one named
        # after the service (or a VirtualService given in the input).
        taken = {(r.namespace, r.name) for r in self.config.kind(VirtualService)}
        taken |= {(v.namespace, v.name) for v in self.mesh_vss}
        for vs in sorted(self.ingress_vss, key=lambda v: (v.namespace, v.name)):
            base = vs.name
            n = 1
            while (vs.namespace, vs.name) in taken:
                vs.name = f"{base}-ingress" if n == 1 else f"{base}-ingress-{n}"
                n += 1
            taken.add((vs.namespace, vs.name))
        ingress = sorted(self.ingress_vss, key=lambda v: (v.namespace, v.name))
        mesh = sorted(self.mesh_vss, key=lambda v: (v.namespace, v.name))
        for vs in [*ingress, *mesh]:
            add(VirtualService.model_validate(self.virtual_service(vs)))
        drs = sorted(self.drs.values(), key=lambda d: (self.namespace_of(d.host, ""), d.host))
        for dr in drs:
            add(DestinationRule.model_validate(self.destination_rule(dr)))
        for ef in filters:
            add(EnvoyFilter.model_validate(ef))
        for r, o in zip(self.config.resources, self.config.origins, strict=True):
            if not self.is_converted(r):
                add(r, o)
        return Conversion(ConfigSet(tuple(resources), tuple(origins)), tuple(self.findings))


def _services_of(rr: RouteRule) -> list[IstioService]:
    spec = rr.spec
    out = [spec.destination]
    if spec.match and spec.match.source:
        out.append(spec.match.source)
    out.extend(d.destination for d in spec.route or [] if d.destination)
    if spec.mirror:
        out.append(spec.mirror)
    return out


@functools.lru_cache(maxsize=256)
def _field(text: str) -> tuple[str | int, ...]:
    """``spec.rules[0].http.paths[1]`` → ``("spec", "rules", 0, "http", "paths", 1)``."""
    out: list[str | int] = []
    for part in text.split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i.rstrip("]")) for i in idx)
    return tuple(out)


def _fraction(runtime_key: str) -> dict[str, Any]:
    return {
        "runtime_key": runtime_key,
        "default_value": {"numerator": _ALL, "denominator": "HUNDRED"},
    }


def _typed(value: dict[str, Any]) -> dict[str, Any]:
    return {"@type": TYPED_STRUCT, "type_url": RATELIMIT_TYPE_URL, "value": value}
