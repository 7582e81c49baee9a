"""Kubernetes Gateway API resources: GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant.

``gateway.networking.k8s.io`` as the standard channel defines it (kubernetes-sigs/gateway-api
``apis/v1/gateway_types.go``, ``gatewayclass_types.go``, ``httproute_types.go``,
``grpcroute_types.go``, ``shared_types.go``, ``apis/v1beta1/referencegrant_types.go``). The
schema rules that the CRDs state as OpenAPI enums and bounds are pydantic rules here, so they
become the usual schema findings (``IL1xx``); the CEL rules that relate fields to each other
(a redirect next to backendRefs, ``replacePrefixMatch`` without one ``PathPrefix`` match, ...)
are findings of :mod:`istiolab.config.gatewayapi_checks`.

A ``v1`` ``Namespace`` is modelled too (its labels only): ``allowedRoutes.namespaces.from:
Selector`` selects namespaces by label.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from istiolab.config.base import (
    Data,
    HeaderMatchName,
    HeaderName,
    HeaderValue,
    IstioModel,
    Port,
    Resource,
)
from istiolab.units import parse_duration

GROUP = "gateway.networking.k8s.io"
V1 = f"{GROUP}/v1"
V1BETA1 = f"{GROUP}/v1beta1"
V1ALPHA2 = f"{GROUP}/v1alpha2"

# GEP-2257 durations (apis/v1/shared_types.go ``Duration``): 1 to 4 number-unit pairs, units
# h, m, s, ms, numbers of at most 5 digits; "0s" is allowed and means "no timeout".
_GEP2257 = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")


def _gateway_duration(value: str) -> str:
    if not _GEP2257.fullmatch(value):
        raise PydanticCustomError(
            "duration",
            "{value} is not a Gateway API duration (GEP-2257: e.g. '10s', '1h30m', '500ms')",
            {"value": repr(value[:60])},
        )
    return value


GatewayDuration = Annotated[str, AfterValidator(_gateway_duration)]
"""A Gateway API duration (GEP-2257): ``"10s"``, ``"1h30m"``, ``"0s"`` (no timeout)."""


def gateway_seconds(value: str) -> float:
    """A GEP-2257 duration in seconds (``"1m30s"`` → 90.0)."""
    total = 0.0
    for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", value):
        total += parse_duration(f"{number}{unit}")
    return total


# -- references --------------------------------------------------------------------------------


class ParentReference(IstioModel):
    """``parentRefs[]``: the Gateway (and listener) a route wants to attach to."""

    group: str | None = None  # default gateway.networking.k8s.io
    kind: str | None = None  # default Gateway
    namespace: str | None = None  # default: the route's namespace
    name: str
    section_name: str | None = None
    port: Port | None = None


class BackendObjectReference(IstioModel):
    """A backend: a Service by default (``group: ""``, ``kind: Service``)."""

    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    port: Port | None = None


class HTTPHeader(IstioModel):
    """A header name and value, as header filters set or add them."""

    name: HeaderName
    value: HeaderValue


class HTTPHeaderFilter(IstioModel):
    """``RequestHeaderModifier`` / ``ResponseHeaderModifier``: set, add, remove."""

    set: list[HTTPHeader] | None = Field(None, max_length=16)
    add: list[HTTPHeader] | None = Field(None, max_length=16)
    remove: list[HeaderName] | None = Field(None, max_length=16)


class HTTPPathModifier(IstioModel):
    """A path change of a redirect or rewrite."""

    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: str | None = Field(None, max_length=1024)
    replace_prefix_match: str | None = Field(None, max_length=1024)


class HTTPRequestRedirectFilter(IstioModel):
    """``RequestRedirect``: scheme, hostname, path, port, statusCode (default 302)."""

    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    path: HTTPPathModifier | None = None
    port: Port | None = None
    status_code: Literal[301, 302, 303, 307, 308] | None = None


class HTTPURLRewriteFilter(IstioModel):
    """``URLRewrite``: hostname and path."""

    hostname: str | None = None
    path: HTTPPathModifier | None = None


class Fraction(IstioModel):
    """``numerator``/``denominator`` (default 100)."""

    numerator: int = Field(ge=0)
    denominator: int = Field(100, ge=1)


class HTTPRequestMirrorFilter(IstioModel):
    """``RequestMirror``: a backend and, optionally, the share of requests mirrored."""

    backend_ref: BackendObjectReference
    percent: int | None = Field(None, ge=0, le=100)
    fraction: Fraction | None = None


class LocalObjectReference(IstioModel):
    """``extensionRef``: group, kind, name in the route's namespace."""

    group: str
    kind: str
    name: str


FilterType = Literal[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
]


class HTTPRouteFilter(IstioModel):
    """One filter of a rule or backendRef; the field named by ``type`` carries its settings."""

    type: FilterType
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    extension_ref: LocalObjectReference | None = None
    cors: dict[str, Data] | None = None


class HTTPPathMatch(IstioModel):
    """``path``: type (default ``PathPrefix``) and value (default ``/``)."""

    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field("/", max_length=1024)


class HTTPHeaderMatch(IstioModel):
    """A header condition: name (case-insensitive) and value, ``Exact`` or RE2."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: HeaderMatchName
    value: str = Field(min_length=1, max_length=4096)


class HTTPQueryParamMatch(IstioModel):
    """A query parameter condition (name case-sensitive), ``Exact`` or RE2."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(min_length=1, max_length=1024)


HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


class HTTPRouteMatch(IstioModel):
    """One match: path, headers, query parameters and method, all of which must hold."""

    path: HTTPPathMatch | None = None
    headers: list[HTTPHeaderMatch] | None = Field(None, max_length=16)
    query_params: list[HTTPQueryParamMatch] | None = Field(None, max_length=16)
    method: HTTPMethod | None = None


class HTTPBackendRef(BackendObjectReference):
    """A weighted backend of a rule, with filters of its own."""

    weight: int | None = Field(None, ge=0, le=1_000_000)
    filters: list[HTTPRouteFilter] | None = Field(None, max_length=16)


class HTTPRouteTimeouts(IstioModel):
    """``request`` (the whole request) and ``backendRequest`` (each try to a backend)."""

    request: GatewayDuration | None = None
    backend_request: GatewayDuration | None = None


class HTTPRouteRetry(IstioModel):
    """``retry`` (extended support): codes, attempts, backoff."""

    codes: list[Annotated[int, Field(ge=400, le=599)]] | None = None
    attempts: int | None = Field(None, ge=0)
    backoff: GatewayDuration | None = None


class HTTPRouteRule(IstioModel):
    """A rule: matches (any of), filters, weighted backends, timeouts."""

    name: str | None = None
    matches: list[HTTPRouteMatch] | None = Field(None, max_length=64)
    filters: list[HTTPRouteFilter] | None = Field(None, max_length=16)
    backend_refs: list[HTTPBackendRef] | None = Field(None, max_length=16)
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    session_persistence: dict[str, Data] | None = None


class HTTPRouteSpec(IstioModel):
    """HTTPRoute spec."""

    parent_refs: list[ParentReference] | None = Field(None, max_length=32)
    hostnames: list[str] | None = Field(None, max_length=16)
    rules: list[HTTPRouteRule] | None = Field(None, max_length=16)


class HTTPRoute(Resource):
    """``gateway.networking.k8s.io`` HTTPRoute."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (V1, V1BETA1)
    KIND: ClassVar[str] = "HTTPRoute"

    spec: HTTPRouteSpec = Field(default_factory=HTTPRouteSpec)

    @property
    def created(self) -> str:
        """``metadata.creationTimestamp`` as written ("" when unset: newest of all)."""
        value = (self.metadata.model_extra or {}).get("creationTimestamp")
        return str(value) if value is not None else ""


# -- GRPCRoute (parsed and linted; not compiled) ---------------------------------------------


class GRPCMethodMatch(IstioModel):
    """``method``: service and method, ``Exact`` or RE2."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    service: str | None = None
    method: str | None = None


class GRPCHeaderMatch(IstioModel):
    """A gRPC metadata condition."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: HeaderMatchName
    value: str = Field(min_length=1, max_length=4096)


class GRPCRouteMatch(IstioModel):
    """One gRPC match."""

    method: GRPCMethodMatch | None = None
    headers: list[GRPCHeaderMatch] | None = Field(None, max_length=16)


class GRPCRouteFilter(IstioModel):
    """A gRPC filter (header modifiers and mirror)."""

    type: Literal[
        "RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"
    ]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    extension_ref: LocalObjectReference | None = None


class GRPCBackendRef(BackendObjectReference):
    """A weighted gRPC backend."""

    weight: int | None = Field(None, ge=0, le=1_000_000)
    filters: list[GRPCRouteFilter] | None = Field(None, max_length=16)


class GRPCRouteRule(IstioModel):
    """A gRPC rule."""

    name: str | None = None
    matches: list[GRPCRouteMatch] | None = Field(None, max_length=64)
    filters: list[GRPCRouteFilter] | None = Field(None, max_length=16)
    backend_refs: list[GRPCBackendRef] | None = Field(None, max_length=16)
    session_persistence: dict[str, Data] | None = None


class GRPCRouteSpec(IstioModel):
    """GRPCRoute spec."""

    parent_refs: list[ParentReference] | None = Field(None, max_length=32)
    hostnames: list[str] | None = Field(None, max_length=16)
    rules: list[GRPCRouteRule] | None = Field(None, max_length=16)


class GRPCRoute(Resource):
    """``gateway.networking.k8s.io`` GRPCRoute: parsed and linted, not compiled."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (V1, V1ALPHA2)
    KIND: ClassVar[str] = "GRPCRoute"

    spec: GRPCRouteSpec = Field(default_factory=GRPCRouteSpec)


# -- Gateway and GatewayClass --------------------------------------------------------------


class LabelSelectorRequirement(IstioModel):
    """``matchExpressions[]``."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(IstioModel):
    """A Kubernetes label selector."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether *labels* satisfy every label and expression of the selector."""
        for k, v in (self.match_labels or {}).items():
            if labels.get(k) != v:
                return False
        for e in self.match_expressions or []:
            have = k_in = e.key in labels
            value = labels.get(e.key)
            if e.operator == "In" and not (k_in and value in (e.values or [])):
                return False
            if e.operator == "NotIn" and have and value in (e.values or []):
                return False
            if e.operator == "Exists" and not have:
                return False
            if e.operator == "DoesNotExist" and have:
                return False
        return True


class RouteNamespaces(IstioModel):
    """``allowedRoutes.namespaces``: ``Same`` (default), ``All`` or ``Selector``."""

    from_: Literal["All", "Same", "Selector"] = Field("Same", alias="from")
    selector: LabelSelector | None = None


class RouteGroupKind(IstioModel):
    """A route kind a listener allows."""

    group: str | None = None
    kind: str


class AllowedRoutes(IstioModel):
    """Which routes may attach to a listener."""

    namespaces: RouteNamespaces | None = None
    kinds: list[RouteGroupKind] | None = Field(None, max_length=8)


class SecretObjectReference(IstioModel):
    """A certificate reference."""

    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None


class GatewayTLSConfig(IstioModel):
    """Listener TLS: ``Terminate`` (default) or ``Passthrough``, and certificates."""

    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificate_refs: list[SecretObjectReference] | None = Field(None, max_length=64)
    options: dict[str, str] | None = None
    frontend_validation: dict[str, Data] | None = None


class Listener(IstioModel):
    """A listener: name, port, protocol, hostname, TLS and the routes it allows."""

    name: str
    hostname: str | None = None
    port: Port
    protocol: str
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes | None = None


class GatewayAddress(IstioModel):
    """``addresses[]``."""

    type: str | None = None
    value: str


class GatewaySpec(IstioModel):
    """Gateway spec."""

    model_config = ConfigDict(extra="allow")

    gateway_class_name: str
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] | None = None
    infrastructure: dict[str, Data] | None = None


class Gateway(Resource):
    """``gateway.networking.k8s.io`` Gateway (not Istio's ``networking.istio.io`` Gateway)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (V1, V1BETA1)
    KIND: ClassVar[str] = "Gateway"

    spec: GatewaySpec


class GatewayClassSpec(IstioModel):
    """GatewayClass spec."""

    controller_name: str
    parameters_ref: dict[str, Data] | None = None
    description: str | None = None


class GatewayClass(Resource):
    """``gateway.networking.k8s.io`` GatewayClass (cluster-scoped)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (V1, V1BETA1)
    KIND: ClassVar[str] = "GatewayClass"

    spec: GatewayClassSpec


# -- ReferenceGrant ------------------------------------------------------------------------


class ReferenceGrantFrom(IstioModel):
    """Who may refer: group, kind, namespace."""

    group: str
    kind: str
    namespace: str


class ReferenceGrantTo(IstioModel):
    """What may be referred to: group, kind, and optionally one name."""

    group: str
    kind: str
    name: str | None = None


class ReferenceGrantSpec(IstioModel):
    """ReferenceGrant spec."""

    from_: list[ReferenceGrantFrom] = Field(alias="from", min_length=1, max_length=16)
    to: list[ReferenceGrantTo] = Field(min_length=1, max_length=16)


class ReferenceGrant(Resource):
    """``gateway.networking.k8s.io`` ReferenceGrant: allows references into its namespace."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (V1BETA1, V1ALPHA2, V1)
    KIND: ClassVar[str] = "ReferenceGrant"

    spec: ReferenceGrantSpec


# -- Namespace (for allowedRoutes selectors) ------------------------------------------------


class Namespace(Resource):
    """Kubernetes ``v1`` Namespace: its labels are what ``from: Selector`` selects on."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    KIND: ClassVar[str] = "Namespace"

    spec: dict[str, Data] | None = None

    @property
    def labels(self) -> dict[str, str]:
        """Its labels, with ``kubernetes.io/metadata.name`` as the API server adds it."""
        return {**self.metadata.labels, "kubernetes.io/metadata.name": self.name}


GATEWAY_API_KINDS: tuple[type[Resource], ...] = (
    GatewayClass,
    Gateway,
    HTTPRoute,
    GRPCRoute,
    ReferenceGrant,
    Namespace,
)
"""The classes this module adds to the registry."""
