"""Istio 0.2-era resources (``config.istio.io/v1alpha2``).

RouteRule and DestinationPolicy carry every field of the 0.2 API (``proxy/v1/config/*.proto`` at
the commit pinned by Pilot 0.2.12); ``mirror``, ``corsPolicy`` and ``appendHeaders`` (added in
0.3) are accepted and reported. The Mixer objects a 2017 rate limit was written with (``memquota``
handler, ``quota`` instance, ``rule``, ``QuotaSpec``, ``QuotaSpecBinding``) are parsed so the limit
can be read and modelled. Semantics: ``../shared/reference/istio-envoy-aws-facts.md`` §1.

Integers have the range of their proto type: ``int32`` precedence, weights, attempts and circuit
breaker limits (``proxy/v1/config/route_rule.proto``, ``dest_policy.proto``), ``int64`` quota
amounts and charges (``mixer/adapter/memquota/config/config.proto``,
``mixer/v1/config/client/quota.proto``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from istiolab.config.base import (
    Data,
    Duration,
    HeaderMatchName,
    HeaderName,
    HeaderValue,
    Int32,
    Int64,
    IstioModel,
    LegacyHttpStatus,
    NonNegativeInt32,
    NonNegativeInt64,
    Percent,
    Regex,
    Resource,
    one_of,
)

LEGACY_VERSION = "config.istio.io/v1alpha2"


class IstioService(IstioModel):
    """A service reference: ``name`` (+ namespace, domain) or a full ``service`` FQDN."""

    name: str | None = None
    namespace: str | None = None
    domain: str | None = None
    service: str | None = None
    labels: dict[str, str] | None = None

    def fqdn(self, default_namespace: str, domain: str = "svc.cluster.local") -> str:
        """The service's host name as Pilot 0.2 builds it."""
        if self.service:
            return self.service
        ns = self.namespace or default_namespace
        return f"{self.name}.{ns}.{self.domain or domain}"


class LegacyStringMatch(IstioModel):
    """``exact`` | ``prefix`` | ``regex`` (the 0.2 API documents ECMAScript regexes)."""

    exact: str | None = None
    prefix: str | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _one(self) -> LegacyStringMatch:
        one_of(self, ("exact", "prefix", "regex"))
        return self

    @property
    def kind(self) -> str:
        """``exact``, ``prefix`` or ``regex``."""
        return (
            "exact" if self.exact is not None else "prefix" if self.prefix is not None else "regex"
        )

    @property
    def value(self) -> str:
        """The string to match."""
        return self.exact if self.exact is not None else self.prefix or self.regex or ""


class MatchRequest(IstioModel):
    """Request attributes; ``uri``, ``scheme``, ``method`` and ``authority`` are special keys."""

    headers: dict[HeaderMatchName, LegacyStringMatch] | None = None


class L4MatchAttributes(IstioModel):
    """TCP/UDP match ("support is incomplete" in 0.2)."""

    source_subnet: list[str] | None = None
    destination_subnet: list[str] | None = None


class MatchCondition(IstioModel):
    """Where a rule applies: source proxy (config-time), L4 attributes, request headers."""

    source: IstioService | None = None
    tcp: L4MatchAttributes | None = None
    udp: L4MatchAttributes | None = None
    request: MatchRequest | None = None


class DestinationWeight(IstioModel):
    """A weighted destination; ``labels`` pick the version (becomes a subset)."""

    destination: IstioService | None = None
    labels: dict[str, str] | None = None
    weight: int | None = Field(default=None, ge=0, le=100)  # int32


class HTTPRedirectLegacy(IstioModel):
    """302 redirect."""

    uri: str | None = None
    authority: str | None = None


class HTTPRewriteLegacy(IstioModel):
    """Rewrite before forwarding."""

    uri: str | None = None
    authority: str | None = None


class SimpleTimeout(IstioModel):
    """``httpReqTimeout.simpleTimeout``."""

    timeout: Duration | None = None
    override_header_name: HeaderName | None = None


class HTTPTimeout(IstioModel):
    """Request timeout, including retries (0.2 default 15 s)."""

    simple_timeout: SimpleTimeout | None = None
    custom: dict[str, Data] | None = None


class SimpleRetry(IstioModel):
    """``httpReqRetries.simpleRetry``."""

    attempts: NonNegativeInt32  # int32
    per_try_timeout: Duration | None = None
    override_header_name: HeaderName | None = None


class HTTPRetryLegacy(IstioModel):
    """Retries (back-off 25 ms+, chosen by Envoy)."""

    simple_retry: SimpleRetry | None = None
    custom: dict[str, Data] | None = None


class ExponentialDelay(IstioModel):
    """Never supported by Istio."""

    mean_delay: Duration | None = None


class DelayLegacy(IstioModel):
    """Fault delay: ``percent`` is a float 0..100, truncated to int by Pilot 0.2."""

    percent: Percent | None = None
    fixed_delay: Duration | None = None
    exponential_delay: ExponentialDelay | None = None
    override_header_name: HeaderName | None = None

    @model_validator(mode="after")
    def _one(self) -> DelayLegacy:
        one_of(self, ("fixed_delay", "exponential_delay"))
        return self


class AbortLegacy(IstioModel):
    """Fault abort: ``percent`` float, ``httpStatus`` 0..600."""

    percent: Percent | None = None
    http_status: LegacyHttpStatus | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    override_header_name: HeaderName | None = None

    @model_validator(mode="after")
    def _one(self) -> AbortLegacy:
        one_of(self, ("http_status", "grpc_status", "http2_error"))
        return self


class HTTPFaultInjectionLegacy(IstioModel):
    """Delay and abort, independent of one another."""

    delay: DelayLegacy | None = None
    abort: AbortLegacy | None = None


class CorsPolicyLegacy(IstioModel):
    """CORS (Istio ≥ 0.3)."""

    allow_origin: list[str] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[HeaderName] | None = None
    expose_headers: list[HeaderName] | None = None
    max_age: Duration | None = None
    allow_credentials: bool | None = None


class RouteRuleSpec(IstioModel):
    """RouteRule spec (Istio 0.2, plus the 0.3 additions)."""

    destination: IstioService
    precedence: Int32 = 0  # int32
    match: MatchCondition | None = None
    route: list[DestinationWeight] | None = None
    redirect: HTTPRedirectLegacy | None = None
    rewrite: HTTPRewriteLegacy | None = None
    websocket_upgrade: bool | None = None
    http_req_timeout: HTTPTimeout | None = None
    http_req_retries: HTTPRetryLegacy | None = None
    http_fault: HTTPFaultInjectionLegacy | None = None
    l4_fault: dict[str, Data] | None = None
    mirror: IstioService | None = None
    cors_policy: CorsPolicyLegacy | None = None
    append_headers: dict[HeaderName, HeaderValue] | None = None


class RouteRule(Resource):
    """``config.istio.io/v1alpha2`` RouteRule."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "RouteRule"

    spec: RouteRuleSpec


class LoadBalancing(IstioModel):
    """``ROUND_ROBIN`` (default) | ``LEAST_CONN`` | ``RANDOM``."""

    name: Literal["ROUND_ROBIN", "LEAST_CONN", "RANDOM"] | None = None
    custom: dict[str, Data] | None = None


class SimpleCircuitBreakerPolicy(IstioModel):
    """``circuitBreaker.simpleCb``."""

    max_connections: NonNegativeInt32 | None = None  # int32 each
    http_max_pending_requests: NonNegativeInt32 | None = None
    http_max_requests: NonNegativeInt32 | None = None
    sleep_window: Duration | None = None
    http_consecutive_errors: NonNegativeInt32 | None = None
    http_detection_interval: Duration | None = None
    http_max_requests_per_connection: NonNegativeInt32 | None = None
    http_max_ejection_percent: int | None = Field(default=None, ge=0, le=100)
    http_max_retries: NonNegativeInt32 | None = None


class CircuitBreaker(IstioModel):
    """Circuit breaker and outlier detection."""

    simple_cb: SimpleCircuitBreakerPolicy | None = None
    custom: dict[str, Data] | None = None


class DestinationPolicySpec(IstioModel):
    """DestinationPolicy spec."""

    destination: IstioService
    source: IstioService | None = None
    load_balancing: LoadBalancing | None = None
    circuit_breaker: CircuitBreaker | None = None
    custom: dict[str, Data] | None = None


class DestinationPolicy(Resource):
    """``config.istio.io/v1alpha2`` DestinationPolicy."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "DestinationPolicy"

    spec: DestinationPolicySpec


# -- Mixer quota (2017-style rate limits) ---------------------------------------------------


class QuotaOverride(IstioModel):
    """A per-dimension override of a memquota limit."""

    dimensions: dict[str, str] = Field(default_factory=dict)
    max_amount: NonNegativeInt64  # int64
    valid_duration: Duration | None = None


class MemQuotaLimit(IstioModel):
    """One quota of a memquota handler."""

    name: str
    max_amount: NonNegativeInt64  # int64
    valid_duration: Duration | None = None
    overrides: list[QuotaOverride] | None = None


class MemQuotaSpec(IstioModel):
    """memquota handler params."""

    quotas: list[MemQuotaLimit] = Field(default_factory=list)
    min_deduplication_duration: Duration | None = None


class MemQuota(Resource):
    """Mixer ``memquota`` handler."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "memquota"

    spec: MemQuotaSpec


class QuotaInstanceSpec(IstioModel):
    """Mixer ``quota`` instance: the dimensions counted."""

    dimensions: dict[str, str] = Field(default_factory=dict)


class QuotaInstance(Resource):
    """Mixer ``quota`` instance."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "quota"

    spec: QuotaInstanceSpec


class MixerAction(IstioModel):
    """A rule action: a handler and its instances."""

    handler: str
    instances: list[str] = Field(default_factory=list)
    name: str | None = None


class MixerRuleSpec(IstioModel):
    """Mixer ``rule``."""

    match: str | None = None
    actions: list[MixerAction] = Field(default_factory=list)
    request_header_operations: list[dict[str, Data]] | None = None
    response_header_operations: list[dict[str, Data]] | None = None
    sampling: dict[str, Data] | None = None


class MixerRule(Resource):
    """Mixer ``rule``."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "rule"

    spec: MixerRuleSpec


class QuotaRef(IstioModel):
    """A quota charged per request."""

    quota: str
    charge: Int64 = 1  # int64


class QuotaRule(IstioModel):
    """When to charge which quotas."""

    match: list[dict[str, Data]] | None = None
    quotas: list[QuotaRef] = Field(default_factory=list)


class QuotaSpecSpec(IstioModel):
    """QuotaSpec spec."""

    rules: list[QuotaRule] = Field(default_factory=list)


class QuotaSpec(Resource):
    """Mixer client ``QuotaSpec``."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "QuotaSpec"

    spec: QuotaSpecSpec


class NamedRef(IstioModel):
    """A ``{name, namespace}`` reference."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None


class QuotaSpecBindingSpec(IstioModel):
    """QuotaSpecBinding spec: which services are charged which QuotaSpecs."""

    quota_specs: list[NamedRef] = Field(default_factory=list)
    services: list[NamedRef] = Field(default_factory=list)


class QuotaSpecBinding(Resource):
    """Mixer client ``QuotaSpecBinding``."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (LEGACY_VERSION,)
    KIND: ClassVar[str] = "QuotaSpecBinding"

    spec: QuotaSpecBindingSpec
