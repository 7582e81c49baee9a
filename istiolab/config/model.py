"""Istio networking resources: VirtualService, DestinationRule, Gateway, EnvoyFilter, ServiceEntry.

``networking.istio.io`` ``v1alpha3``, ``v1beta1`` and ``v1`` share one schema (since Istio 1.22
the newer versions are aliases of v1alpha3), so one class serves all three. Field semantics:
``../shared/reference/istio-envoy-aws-facts.md`` §2. HTTP routing is modelled field by field;
TLS and TCP routes are kept as data (the ingress simulator models HTTP).

Integer fields have the range of their type in istio.io/api ``networking/v1alpha3``
(``virtual_service.proto``, ``destination_rule.proto``, ``gateway.proto``, ``envoy_filter.proto``):
``int32`` weights, attempts and pool limits, ``uint32`` ports and ``UInt32Value`` counters,
``uint64`` ring and table sizes; ``double`` percentages are finite, 0..100.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from istiolab.config.base import (
    INT64_MAX,
    Data,
    Duration,
    EnvoyRegex,
    HeaderMatchName,
    HeaderName,
    HeaderValue,
    HttpStatus,
    Int32,
    IstioModel,
    NonNegativeInt32,
    Percent,
    Resource,
    UInt32,
    _duration,
    _range_check,
    _whole_ms,
    duration_nanos,
    one_of,
)

NETWORKING_VERSIONS = (
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
)


# The API server decodes a JSON integer as an int64 before the CRD schema sees it, so a proto
# uint64 above 2^63-1 is refused ('Invalid value: "number"') though the proto would take it
# (k8s.io/apimachinery/pkg/util/json: numbers become int64 or float64).
KubeUInt64 = Annotated[
    int,
    AfterValidator(_range_check(0, INT64_MAX, "uint64 in the proto, read as int64 by Kubernetes")),
]
"""A protobuf ``uint64`` as the Kubernetes API server accepts it: 0..2^63-1."""

CEL_MAX_NANOS = 2**63 - 1
"""The longest duration CEL's ``duration()`` parses: int64 nanoseconds (about 292 years)."""


def _cel_duration(value: str) -> str:
    # Istio's CRDs check these fields with the CEL rule "duration(self) >= duration('1ms')"
    # (istio.io/api kubernetes/customresourcedefinitions.gen.yaml); CEL durations are Go
    # time.Duration, int64 nanoseconds, so a longer protobuf Duration makes the rule fail and
    # the API server refuses the resource. Exact arithmetic: the limit is a whole nanosecond.
    if duration_nanos(value) > CEL_MAX_NANOS:
        raise PydanticCustomError(
            "duration",
            "{value} is longer than the API server accepts: the CRD's CEL rule reads a "
            "duration as int64 nanoseconds, at most 9223372036.854775807s (about 292 years)",
            {"value": repr(value[:60])},
        )
    return value


CelDuration = Annotated[
    str, AfterValidator(_duration), AfterValidator(_cel_duration), AfterValidator(_whole_ms)
]
"""A protobuf Duration in a field the Istio CRDs check with CEL: at most 2^63-1 ns."""


class StringMatch(IstioModel):
    """``exact`` | ``prefix`` | ``regex`` (RE2, full match). Empty means "present" for headers."""

    exact: str | None = None
    prefix: str | None = None
    regex: EnvoyRegex | None = None

    @model_validator(mode="after")
    def _one(self) -> StringMatch:
        one_of(self, ("exact", "prefix", "regex"), required=False)
        return self

    @property
    def kind(self) -> str:
        """``exact``, ``prefix``, ``regex`` or ``present``."""
        for k in ("exact", "prefix", "regex"):
            if getattr(self, k) is not None:
                return k
        return "present"

    @property
    def value(self) -> str:
        """The string to match ("" for a presence check)."""
        return self.exact if self.exact is not None else self.prefix or self.regex or ""


class PortSelector(IstioModel):
    """A destination port (``uint32 number``, a port: 0..65535)."""

    number: int = Field(ge=0, le=65535)


class Destination(IstioModel):
    """A service host, optional subset and port."""

    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(IstioModel):
    """Header manipulation."""

    set: dict[HeaderName, HeaderValue] | None = None
    add: dict[HeaderName, HeaderValue] | None = None
    remove: list[HeaderName] | None = None


class Headers(IstioModel):
    """Request and response header operations."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPMatchRequest(IstioModel):
    """One match block; all its conditions must hold (AND)."""

    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[HeaderMatchName, StringMatch] | None = None
    port: int | None = Field(default=None, ge=0, le=65535)  # uint32
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    query_params: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: dict[HeaderMatchName, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None


class HTTPRouteDestination(IstioModel):
    """A weighted destination of a route."""

    destination: Destination
    weight: NonNegativeInt32 | None = None  # int32 weight
    headers: Headers | None = None


class HTTPRedirect(IstioModel):
    """A redirect (301 unless ``redirectCode``)."""

    uri: str | None = None
    authority: str | None = None
    port: UInt32 | None = None  # oneof redirect_port { uint32 port }
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: int | None = Field(default=None, ge=300, le=399)


class HTTPBody(IstioModel):
    """Direct response body."""

    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(IstioModel):
    """A fixed response from the proxy."""

    status: HttpStatus
    body: HTTPBody | None = None


class Delegate(IstioModel):
    """Delegate routing to another VirtualService."""

    name: str | None = None
    namespace: str | None = None


class RegexRewrite(IstioModel):
    """Regex path rewrite."""

    match: EnvoyRegex | None = None
    rewrite: str | None = None


class HTTPRewrite(IstioModel):
    """Path and authority rewrite."""

    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(IstioModel):
    """Retry policy. ``attempts`` retries means at most ``1 + attempts`` requests."""

    attempts: NonNegativeInt32 | None = None  # int32 attempts
    per_try_timeout: CelDuration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: CelDuration | None = None


class Percentage(IstioModel):
    """A percentage 0..100 with 0.0001 resolution in Envoy."""

    value: Percent = 0.0


class Delay(IstioModel):
    """Fault delay."""

    fixed_delay: CelDuration | None = None
    exponential_delay: CelDuration | None = None
    percentage: Percentage | None = None
    percent: int | None = Field(default=None, ge=0, le=100)


class Abort(IstioModel):
    """Fault abort."""

    http_status: HttpStatus | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percentage | None = None

    @model_validator(mode="after")
    def _one(self) -> Abort:
        one_of(self, ("http_status", "grpc_status", "http2_error"))
        return self


class HTTPFaultInjection(IstioModel):
    """Delay and abort, drawn independently."""

    delay: Delay | None = None
    abort: Abort | None = None


class HTTPMirrorPolicy(IstioModel):
    """One mirror destination with its share."""

    destination: Destination
    percentage: Percentage | None = None


class CorsPolicy(IstioModel):
    """CORS (kept for round trips; not simulated)."""

    allow_origins: list[StringMatch] | None = None
    allow_origin: list[str] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[HeaderName] | None = None
    expose_headers: list[HeaderName] | None = None
    max_age: CelDuration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: str | None = None


class HTTPRoute(IstioModel):
    """One ordered HTTP route of a VirtualService."""

    name: str | None = None
    match: list[HTTPMatchRequest] | None = None
    route: list[HTTPRouteDestination] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: CelDuration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] | None = None
    mirror_percentage: Percentage | None = None
    mirror_percent: int | None = Field(default=None, ge=0, le=100)
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


class VirtualServiceSpec(IstioModel):
    """VirtualService spec."""

    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] | None = None
    http: list[HTTPRoute] | None = None
    tls: list[dict[str, Data]] | None = None
    tcp: list[dict[str, Data]] | None = None
    export_to: list[str] | None = None


class VirtualService(Resource):
    """``networking.istio.io`` VirtualService."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    KIND: ClassVar[str] = "VirtualService"

    spec: VirtualServiceSpec


# -- DestinationRule ------------------------------------------------------------------------

LbSimple = Literal[
    "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
]


class HTTPCookie(IstioModel):
    """Cookie for consistent hashing."""

    name: str
    path: str | None = None
    ttl: Duration | None = None


class RingHash(IstioModel):
    """Ring hash settings."""

    minimum_ring_size: KubeUInt64 | None = Field(default=None, ge=1)  # uint64


class Maglev(IstioModel):
    """Maglev settings."""

    table_size: KubeUInt64 | None = Field(default=None, ge=1)  # uint64


class ConsistentHashLB(IstioModel):
    """Session affinity by header, cookie, source IP or query parameter."""

    http_header_name: HeaderMatchName | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: Maglev | None = None
    minimum_ring_size: KubeUInt64 | None = Field(default=None, ge=1)  # uint64, deprecated

    @model_validator(mode="after")
    def _one(self) -> ConsistentHashLB:
        one_of(
            self, ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name")
        )
        one_of(self, ("ring_hash", "maglev"), required=False)
        return self


class WarmupConfiguration(IstioModel):
    """Slow start (Envoy ``slow_start_config``)."""

    duration: CelDuration
    minimum_percent: float | None = Field(default=None, ge=0, le=100)
    aggression: float | None = Field(default=None, ge=1)


class LoadBalancerSettings(IstioModel):
    """Cluster load balancing."""

    simple: LbSimple | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: dict[str, Data] | None = None
    warmup_duration_secs: CelDuration | None = None
    warmup: WarmupConfiguration | None = None

    @model_validator(mode="after")
    def _one(self) -> LoadBalancerSettings:
        one_of(self, ("simple", "consistent_hash"), required=False)
        return self


class TCPSettings(IstioModel):
    """TCP connection pool."""

    max_connections: NonNegativeInt32 | None = None  # int32
    connect_timeout: CelDuration | None = None
    tcp_keepalive: dict[str, Data] | None = None
    max_connection_duration: CelDuration | None = None
    idle_timeout: CelDuration | None = None


class HTTPSettings(IstioModel):
    """HTTP connection pool (circuit-breaker thresholds)."""

    # int32 each
    http1_max_pending_requests: NonNegativeInt32 | None = None
    http2_max_requests: NonNegativeInt32 | None = None
    max_requests_per_connection: NonNegativeInt32 | None = None
    max_retries: NonNegativeInt32 | None = None
    idle_timeout: CelDuration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: NonNegativeInt32 | None = None  # int32


class ConnectionPoolSettings(IstioModel):
    """Connection pool."""

    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(IstioModel):
    """Passive health checking (ejection of failing hosts)."""

    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: UInt32 | None = None  # UInt32Value
    consecutive_gateway_errors: UInt32 | None = None  # UInt32Value
    consecutive_5xx_errors: UInt32 | None = None  # UInt32Value
    consecutive_errors: NonNegativeInt32 | None = None  # int32, deprecated
    interval: CelDuration | None = None
    base_ejection_time: CelDuration | None = None
    max_ejection_percent: int | None = Field(default=None, ge=0, le=100)  # int32
    min_health_percent: int | None = Field(default=None, ge=0, le=100)  # int32


class RetryBudget(IstioModel):
    """Retry budget."""

    percent: Percentage | None = None
    min_retry_concurrency: UInt32 | None = None  # uint32


class PortTrafficPolicy(IstioModel):
    """Policy for one port."""

    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: dict[str, Data] | None = None


class TrafficPolicy(IstioModel):
    """Traffic policy of a host or subset."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: dict[str, Data] | None = None
    port_level_settings: list[PortTrafficPolicy] | None = None
    tunnel: dict[str, Data] | None = None
    proxy_protocol: dict[str, Data] | None = None
    retry_budget: RetryBudget | None = None


class Subset(IstioModel):
    """A named subset of a service's endpoints, by labels."""

    name: str
    labels: dict[str, str] | None = None
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(IstioModel):
    """DestinationRule spec."""

    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] | None = None
    export_to: list[str] | None = None
    workload_selector: dict[str, Data] | None = None


class DestinationRule(Resource):
    """``networking.istio.io`` DestinationRule."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    KIND: ClassVar[str] = "DestinationRule"

    spec: DestinationRuleSpec


# -- Gateway --------------------------------------------------------------------------------


class GatewayPort(IstioModel):
    """A port a gateway server listens on."""

    number: int = Field(ge=1, le=65535)
    protocol: str
    name: str | None = None
    target_port: int | None = Field(default=None, ge=1, le=65535)


class ServerTLSSettings(IstioModel):
    """TLS settings of a gateway server (kept, not simulated)."""

    model_config = ConfigDict(extra="allow")

    https_redirect: bool | None = None
    mode: (
        Literal[
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ]
        | None
    ) = None
    credential_name: str | None = None


class Server(IstioModel):
    """One gateway server: a port and the hosts it accepts."""

    port: GatewayPort
    hosts: list[str]
    bind: str | None = None
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


class GatewaySpec(IstioModel):
    """Gateway spec."""

    selector: dict[str, str] = Field(default_factory=dict)
    servers: list[Server] = Field(default_factory=list)


class Gateway(Resource):
    """``networking.istio.io`` Gateway."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    KIND: ClassVar[str] = "Gateway"

    spec: GatewaySpec


# -- EnvoyFilter ----------------------------------------------------------------------------


class EnvoyPatch(IstioModel):
    """The patch of a config patch (its value is raw Envoy config)."""

    operation: str | None = None
    value: dict[str, Data] | None = None
    filter_class: str | None = None


class EnvoyConfigObjectPatch(IstioModel):
    """One config patch."""

    apply_to: str | None = None
    match: dict[str, Data] | None = None
    patch: EnvoyPatch | None = None


class EnvoyFilterSpec(IstioModel):
    """EnvoyFilter spec."""

    workload_selector: dict[str, Data] | None = None
    target_refs: list[dict[str, Data]] | None = None
    config_patches: list[EnvoyConfigObjectPatch] = Field(default_factory=list)
    priority: Int32 | None = None  # int32


class EnvoyFilter(Resource):
    """``networking.istio.io/v1alpha3`` EnvoyFilter (only the local rate limit is modelled)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("networking.istio.io/v1alpha3",)
    KIND: ClassVar[str] = "EnvoyFilter"

    spec: EnvoyFilterSpec


# -- ServiceEntry ---------------------------------------------------------------------------


class ServiceEntryPort(IstioModel):
    """A port of a ServiceEntry."""

    number: int = Field(ge=1, le=65535)  # uint32, a port
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = Field(default=None, ge=0, le=65535)


class ServiceEntrySpec(IstioModel):
    """ServiceEntry spec: the hosts and ports it adds to the registry; the rest is kept as data."""

    hosts: list[str] = Field(default_factory=list)
    addresses: list[str] | None = None
    ports: list[ServiceEntryPort] | None = None
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: list[dict[str, Data]] | None = None
    workload_selector: dict[str, Data] | None = None
    export_to: list[str] | None = None
    subject_alt_names: list[str] | None = None


class ServiceEntry(Resource):
    """``networking.istio.io`` ServiceEntry: hosts outside (or beside) the Kubernetes Services.

    Read so that routes to its hosts are not reported as unknown; it is not compiled.
    """

    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    KIND: ClassVar[str] = "ServiceEntry"

    spec: ServiceEntrySpec
