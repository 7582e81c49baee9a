"""The compiled, Envoy-level route model: what istiod would send to the ingress gateway.

A :class:`RouteTable` is produced by :func:`istiolab.envoy.compile.compile` and consumed twice:
the simulator's router executes it for every request (through :mod:`istiolab.envoy.match`), and
:mod:`istiolab.envoy.render` turns it into Envoy v3 configuration for a real Envoy. Nothing else
decides where a request goes. The classes are plain frozen, slotted dataclasses: cheap to read in
the simulator's hot path and hashable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from istiolab.findings import Finding

MILLION = 1_000_000
UNKNOWN_CLUSTER = "UnknownService"
"""istiod's cluster name for a Gateway API backendRef that does not resolve (never defined)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StringMatcher:
    """Envoy ``StringMatcher``: ``exact``, ``prefix``, ``regex`` (RE2 full match), ``present``."""

    kind: str
    value: str = ""
    ignore_case: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class HeaderMatcher:
    """A header condition; ``invert`` negates it (Istio ``withoutHeaders``).

    Pseudo-headers ``:method``, ``:authority`` and ``:scheme`` carry Istio's method, authority
    and scheme matches, as istiod emits them.
    """

    name: str
    match: StringMatcher
    invert: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class QueryParamMatcher:
    """A query parameter condition."""

    name: str
    match: StringMatcher


@dataclasses.dataclass(frozen=True, slots=True)
class RouteMatch:
    """Envoy ``RouteMatch``: a path condition plus header and query conditions (all must hold).

    Attributes:
        path_kind: ``prefix``, ``exact`` (Envoy ``path``), ``regex`` (``safe_regex``) or
            ``path_separated_prefix`` (whole path segments: the path equals the prefix or
            continues with ``/``; istiod emits it for Gateway API ``PathPrefix`` matches).
        path: The prefix, path or pattern.
        case_sensitive: For prefix and exact (Istio ``ignoreUriCase`` sets it False).
        headers: Header conditions, sorted by name as istiod sorts them.
        query_params: Query parameter conditions.
    """

    path_kind: str = "prefix"
    path: str = "/"
    case_sensitive: bool = True
    headers: tuple[HeaderMatcher, ...] = ()
    query_params: tuple[QueryParamMatcher, ...] = ()

    @property
    def is_catch_all(self) -> bool:
        """Matches every request (prefix ``/`` or regex ``.*`` and nothing else)."""
        return (
            (
                (self.path_kind == "prefix" and self.path == "/")
                or (self.path_kind == "regex" and self.path == ".*")
            )
            and not self.headers
            and not self.query_params
        )


@dataclasses.dataclass(frozen=True, slots=True)
class WeightedCluster:
    """One destination of a route.

    Attributes:
        name: Envoy cluster name, ``outbound|<port>|<subset>|<host>``.
        weight: Relative weight (all destinations of a route share ``total_weight``).
        host: Destination service FQDN.
        subset: Subset name ("" for all endpoints).
        port: Service port.
    """

    name: str
    weight: int
    host: str
    subset: str
    port: int


@dataclasses.dataclass(frozen=True, slots=True)
class FaultPolicy:
    """Envoy fault filter config of a route; fractions are per million (0.0001 % resolution)."""

    delay_s: float | None = None
    delay_per_million: int = 0
    abort_status: int | None = None
    abort_per_million: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Envoy route retry policy.

    Attributes:
        num_retries: Retries after the first try (at most ``1 + num_retries`` tries).
        retry_on: Envoy ``retry_on`` conditions.
        retriable_status_codes: Codes retried under ``retriable-status-codes``.
        per_try_timeout_s: Timeout of each try (None: bounded by the route timeout only).
        previous_hosts: Re-pick a host not tried before (``previous_hosts`` predicate).
        host_selection_retry_max_attempts: Host re-picks before settling.
        backoff_base_s: Back-off base interval.
        backoff_max_s: Back-off cap.
    """

    num_retries: int
    retry_on: tuple[str, ...]
    retriable_status_codes: tuple[int, ...] = ()
    per_try_timeout_s: float | None = None
    previous_hosts: bool = True
    host_selection_retry_max_attempts: int = 1
    backoff_base_s: float = 0.025
    backoff_max_s: float = 0.25


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """Envoy local rate limit: a token bucket.

    Attributes:
        max_tokens: Bucket size, also the initial fill.
        tokens_per_fill: Tokens added every ``fill_interval_s``.
        fill_interval_s: Refill period.
        status: Status of a limited request (429).
        enabled_per_million: ``filter_enabled`` fraction (Envoy's default is 0 %).
        enforced_per_million: ``filter_enforced`` fraction (Envoy's default is 0 %).
        scope: ``gateway`` (one bucket per Envoy) or ``route`` (a bucket for the route).
        source: The resource it came from.
    """

    max_tokens: int
    tokens_per_fill: int
    fill_interval_s: float
    status: int = 429
    enabled_per_million: int = MILLION
    enforced_per_million: int = MILLION
    scope: str = "gateway"
    source: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Redirect:
    """A redirect response.

    ``prefix`` is Envoy's ``prefix_rewrite`` on a redirect: the route's matched prefix of the
    path is swapped for it (Gateway API ``ReplacePrefixMatch``; istiod emits it from
    ``HTTPRedirect.prefixRewrite``, pilot/pkg/networking/core/route/route.go ApplyRedirect).
    """

    code: int
    path: str | None = None
    host: str | None = None
    port: int | None = None
    scheme: str | None = None
    prefix: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DirectResponse:
    """A fixed response."""

    status: int
    body: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Mirror:
    """A fire-and-forget copy of the request."""

    cluster: str
    host: str
    subset: str
    port: int
    per_million: int = MILLION


@dataclasses.dataclass(frozen=True, slots=True)
class HeaderOps:
    """Header manipulation on the request and response."""

    request_set: tuple[tuple[str, str], ...] = ()
    request_add: tuple[tuple[str, str], ...] = ()
    request_remove: tuple[str, ...] = ()
    response_set: tuple[tuple[str, str], ...] = ()
    response_add: tuple[tuple[str, str], ...] = ()
    response_remove: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Rewrite:
    r"""Path prefix / authority rewrite; ``regex`` is Envoy's ``regex_rewrite``.

    ``regex`` is ``(pattern, substitution)``: the path's RE2 match replaced by the substitution
    (``\N`` for group N). istiod emits it for Gateway API ``ReplaceFullPath`` and for a
    ``ReplacePrefixMatch`` of ``/``.
    """

    prefix: str | None = None
    authority: str | None = None
    regex: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RouteSource:
    """Where a compiled route came from.

    Attributes:
        resource: ``Kind/namespace/name`` of the resource (a RouteRule for legacy input).
        http_index: Index in ``spec.http`` (or the rule's position for legacy).
        match_index: Index in ``match`` (None when the route has no match).
        name: The HTTP route's name, when it has one.
    """

    resource: str
    http_index: int
    match_index: int | None
    name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """One Envoy route: match, action and policies.

    Exactly one of ``clusters`` (non-empty), ``redirect`` and ``direct_response`` is the action.
    """

    name: str
    match: RouteMatch
    source: RouteSource
    clusters: tuple[WeightedCluster, ...] = ()
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    timeout_s: float | None = None
    retry: RetryPolicy | None = None
    fault: FaultPolicy | None = None
    mirrors: tuple[Mirror, ...] = ()
    headers: HeaderOps | None = None
    rewrite: Rewrite | None = None
    rate_limit: RateLimit | None = None
    hash_policy: tuple[str, str] | None = None
    # Envoy's cluster_not_found_response_code: the status for a pick of a cluster the table
    # does not have (istiod sets 500 on Gateway API routes, whose invalid backendRefs become
    # the cluster UNKNOWN_CLUSTER); None keeps Envoy's default (503).
    cluster_not_found_status: int | None = None

    @property
    def total_weight(self) -> int:
        """Sum of the destinations' weights."""
        return sum(c.weight for c in self.clusters)


@dataclasses.dataclass(frozen=True, slots=True)
class VirtualHost:
    """Envoy virtual host: domains and the ordered routes tried for them."""

    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class OutlierPolicy:
    """Envoy outlier detection (consecutive errors; success-rate ejection disabled as in Istio)."""

    consecutive_5xx: int | None = 5
    consecutive_gateway_errors: int | None = None
    interval_s: float = 10.0
    base_ejection_s: float = 30.0
    max_ejection_percent: int = 10
    min_health_percent: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterPolicy:
    """Per-cluster policy from DestinationRules and profile defaults.

    Attributes:
        name: Envoy cluster name.
        host: Service FQDN.
        subset: Subset name ("" for the whole service).
        port: Service port.
        labels: Pod labels the subset selects (empty: every pod of the service).
        lb: ``ROUND_ROBIN``, ``LEAST_REQUEST``, ``RANDOM``, ``RING_HASH`` or ``MAGLEV``.
        max_connections: Circuit-breaker threshold.
        max_pending_requests: Circuit-breaker threshold.
        max_requests: Circuit-breaker threshold.
        max_retries: Circuit-breaker threshold on concurrent retries.
        max_requests_per_connection: 0 = unlimited.
        connect_timeout_s: Upstream connect timeout.
        outlier: Outlier detection, or None.
        ring_size: Ring hash minimum size / Maglev table size.
        slow_start_s: Slow-start window (0 = off).
        slow_start_aggression: Slow-start curve.
        slow_start_min_percent: Slow-start minimum weight percent.
        source: The DestinationRule that set it ("" for defaults).
    """

    name: str
    host: str
    subset: str
    port: int
    labels: tuple[tuple[str, str], ...] = ()
    lb: str = "LEAST_REQUEST"
    max_connections: int = 2**32 - 1
    max_pending_requests: int = 2**32 - 1
    max_requests: int = 2**32 - 1
    max_retries: int = 2**32 - 1
    max_requests_per_connection: int = 0
    connect_timeout_s: float = 10.0
    outlier: OutlierPolicy | None = None
    ring_size: int = 1024
    slow_start_s: float = 0.0
    slow_start_aggression: float = 1.0
    slow_start_min_percent: float = 10.0
    source: str = ""


@dataclasses.dataclass(frozen=True)
class RouteTable:
    """Everything the ingress proxy needs to route: virtual hosts, clusters, rate limit.

    Attributes:
        name: What it was compiled for (``gateway ns/name:port`` or ``mesh``).
        port: Listener port.
        virtual_hosts: In Envoy's domain-selection order is not implied; see ``match``.
        clusters: Cluster policies by name, sorted.
        rate_limit: Listener-wide local rate limit (one bucket per Envoy), or None.
        profile: Istio profile name used.
        findings: Notes from compilation (what could not be represented, and why).
    """

    name: str
    port: int
    virtual_hosts: tuple[VirtualHost, ...]
    clusters: Mapping[str, ClusterPolicy]
    rate_limit: RateLimit | None = None
    profile: str = ""
    findings: tuple[Finding, ...] = ()

    def routes(self) -> list[Route]:
        """Every route of every virtual host, in order."""
        return [r for vh in self.virtual_hosts for r in vh.routes]


def cluster_name(host: str, port: int, subset: str = "") -> str:
    """Istiod's outbound cluster name ``outbound|<port>|<subset>|<host>``."""
    return f"outbound|{port}|{subset}|{host}"
