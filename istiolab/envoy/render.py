"""Render a :class:`~istiolab.envoy.model.RouteTable` as static Envoy v3 configuration.

The output is a bootstrap (listener, HTTP connection manager, routes, clusters) shaped the way
istiod shapes it: fault injection and local rate limits as per-route ``typed_per_filter_config``
over filters in the chain, weighted clusters, retry policies with the ``previous_hosts``
predicate, and circuit breakers and outlier detection on the clusters. Dict keys are emitted in
a fixed order and lists in table order, so the same table always renders to the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from istiolab.envoy.accesslog import file_access_log
from istiolab.envoy.model import (
    ClusterPolicy,
    HeaderMatcher,
    HeaderOps,
    RateLimit,
    Route,
    RouteMatch,
    RouteTable,
    StringMatcher,
)
from istiolab.units import MAX_DURATION_S

HCM = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}
# RouteAction.ClusterNotFoundResponseCode
_NOT_FOUND_CODES = {503: "SERVICE_UNAVAILABLE", 404: "NOT_FOUND", 500: "INTERNAL_SERVER_ERROR"}

Endpoints = Mapping[str, Sequence[tuple[str, int]]]


def duration(seconds: float) -> str:
    """Protobuf JSON duration (``0.25`` → ``"0.25s"``).

    Raises:
        ValueError: For NaN, ±∞ or more than the protobuf maximum: Envoy would refuse the
            config (``"infs"``), so it is never written.
    """
    if not -MAX_DURATION_S <= seconds <= MAX_DURATION_S:  # also NaN
        raise ValueError(f"{seconds} s is not a protobuf duration (at most {MAX_DURATION_S} s)")
    if seconds <= 0:
        return "0s"
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _string_match(m: StringMatcher) -> dict[str, Any]:
    out: dict[str, Any]
    out = {"safe_regex": {"regex": m.value}} if m.kind == "regex" else {m.kind: m.value}
    if m.ignore_case:
        out["ignore_case"] = True
    return out


def _header(h: HeaderMatcher) -> dict[str, Any]:
    out: dict[str, Any] = {"name": h.name}
    if h.match.kind == "present":
        out["present_match"] = True
    else:
        out["string_match"] = _string_match(h.match)
    if h.invert:
        out["invert_match"] = True
        if h.match.kind != "present":
            # As istiod renders withoutHeaders: a missing header counts as "" (without this,
            # Envoy never matches an inverted string matcher when the header is missing).
            out["treat_missing_header_as_empty"] = True
    return out


def _match(m: RouteMatch) -> dict[str, Any]:
    out: dict[str, Any]
    if m.path_kind == "prefix":
        out = {"prefix": m.path}
    elif m.path_kind == "exact":
        out = {"path": m.path}
    elif m.path_kind == "path_separated_prefix":
        out = {"path_separated_prefix": m.path}
    else:
        out = {"safe_regex": {"regex": m.path}}
    if not m.case_sensitive and m.path_kind != "regex":
        out["case_sensitive"] = False
    if m.headers:
        out["headers"] = [_header(h) for h in m.headers]
    if m.query_params:
        qps = []
        for q in m.query_params:
            if q.match.kind == "present":
                qps.append({"name": q.name, "present_match": True})
            else:
                qps.append({"name": q.name, "string_match": _string_match(q.match)})
        out["query_parameters"] = qps
    return out


def _fraction(per_million: int) -> dict[str, Any]:
    return {"numerator": per_million, "denominator": "MILLION"}


def _bucket(rl: RateLimit) -> dict[str, Any]:
    out = _bucket_placeholder()
    out["token_bucket"] = {
        "max_tokens": rl.max_tokens,
        "tokens_per_fill": rl.tokens_per_fill,
        "fill_interval": duration(rl.fill_interval_s),
    }
    out["filter_enabled"] = {
        "runtime_key": "local_rate_limit_enabled",
        "default_value": _fraction(rl.enabled_per_million),
    }
    out["filter_enforced"] = {
        "runtime_key": "local_rate_limit_enforced",
        "default_value": _fraction(rl.enforced_per_million),
    }
    return out


def _header_ops(ops: HeaderOps) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("request", "response"):
        adds = [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in getattr(ops, f"{side}_set")
        ] + [
            {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
            for k, v in getattr(ops, f"{side}_add")
        ]
        if adds:
            out[f"{side}_headers_to_add"] = adds
        removes = list(getattr(ops, f"{side}_remove"))
        if removes:
            out[f"{side}_headers_to_remove"] = removes
    return out


def render_route(r: Route) -> dict[str, Any]:
    """One Envoy route."""
    out: dict[str, Any] = {"name": r.name, "match": _match(r.match)}
    if r.redirect is not None:
        rd = r.redirect
        red: dict[str, Any] = {"response_code": _REDIRECT_CODES.get(rd.code, "MOVED_PERMANENTLY")}
        if rd.prefix is not None:
            red["prefix_rewrite"] = rd.prefix
        elif rd.path is not None:
            red["path_redirect"] = rd.path
        if rd.host:
            red["host_redirect"] = rd.host
        if rd.port:
            red["port_redirect"] = rd.port
        if rd.scheme:
            red["scheme_redirect"] = rd.scheme
        out["redirect"] = red
    elif r.direct_response is not None:
        dr: dict[str, Any] = {"status": r.direct_response.status}
        if r.direct_response.body:
            dr["body"] = {"inline_string": r.direct_response.body}
        out["direct_response"] = dr
    else:
        action: dict[str, Any] = {}
        if len(r.clusters) == 1:
            action["cluster"] = r.clusters[0].name
        else:
            action["weighted_clusters"] = {
                "clusters": [{"name": c.name, "weight": c.weight} for c in r.clusters]
            }
        # istiod always sets the timeout; 0s disables Envoy's 15 s default.
        action["timeout"] = duration(r.timeout_s or 0.0)
        if r.retry is not None:
            rp = r.retry
            policy: dict[str, Any] = {
                "retry_on": ",".join(rp.retry_on),
                "num_retries": rp.num_retries,
            }
            if rp.per_try_timeout_s:
                policy["per_try_timeout"] = duration(rp.per_try_timeout_s)
            if rp.retriable_status_codes:
                policy["retriable_status_codes"] = list(rp.retriable_status_codes)
            if rp.previous_hosts:
                policy["retry_host_predicate"] = [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {"@type": PREVIOUS_HOSTS},
                    }
                ]
            policy["host_selection_retry_max_attempts"] = str(rp.host_selection_retry_max_attempts)
            policy["retry_back_off"] = {
                "base_interval": duration(rp.backoff_base_s),
                "max_interval": duration(rp.backoff_max_s),
            }
            action["retry_policy"] = policy
        if r.mirrors:
            action["request_mirror_policies"] = [
                {
                    "cluster": m.cluster,
                    "runtime_fraction": {"default_value": _fraction(m.per_million)},
                }
                for m in r.mirrors
            ]
        if r.hash_policy is not None:
            kind, name = r.hash_policy
            if kind == "header":
                action["hash_policy"] = [{"header": {"header_name": name}}]
            elif kind == "cookie":
                action["hash_policy"] = [{"cookie": {"name": name}}]
            elif kind == "source_ip":
                action["hash_policy"] = [{"connection_properties": {"source_ip": True}}]
            else:
                action["hash_policy"] = [{"query_parameter": {"name": name}}]
        if r.cluster_not_found_status is not None:
            action["cluster_not_found_response_code"] = _NOT_FOUND_CODES.get(
                r.cluster_not_found_status, "SERVICE_UNAVAILABLE"
            )
        if r.rewrite is not None:
            if r.rewrite.regex is not None:
                pattern, substitution = r.rewrite.regex
                action["regex_rewrite"] = {
                    "pattern": {"regex": pattern},
                    "substitution": substitution,
                }
            if r.rewrite.prefix is not None:
                action["prefix_rewrite"] = r.rewrite.prefix
            if r.rewrite.authority:
                action["host_rewrite_literal"] = r.rewrite.authority
        out["route"] = action
    per_filter: dict[str, Any] = {}
    if r.fault is not None:
        f: dict[str, Any] = {"@type": FAULT}
        if r.fault.delay_s is not None and r.fault.delay_per_million:
            f["delay"] = {
                "fixed_delay": duration(r.fault.delay_s),
                "percentage": _fraction(r.fault.delay_per_million),
            }
        if r.fault.abort_status is not None and r.fault.abort_per_million:
            f["abort"] = {
                "http_status": r.fault.abort_status,
                "percentage": _fraction(r.fault.abort_per_million),
            }
        per_filter["envoy.filters.http.fault"] = f
    if r.rate_limit is not None:
        per_filter["envoy.filters.http.local_ratelimit"] = _bucket(r.rate_limit)
    if per_filter:
        out["typed_per_filter_config"] = per_filter
    if r.headers is not None:
        out.update(_header_ops(r.headers))
    return out


def render_cluster(c: ClusterPolicy, endpoints: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """One static Envoy cluster with the given endpoints."""
    out: dict[str, Any] = {
        "name": c.name,
        "type": "STATIC",
        "connect_timeout": duration(c.connect_timeout_s),
        "lb_policy": c.lb,
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": h, "port_value": p}}
                            }
                        }
                        for h, p in endpoints
                    ]
                }
            ],
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": c.max_connections,
                    "max_pending_requests": c.max_pending_requests,
                    "max_requests": c.max_requests,
                    "max_retries": c.max_retries,
                }
            ]
        },
    }
    if c.max_requests_per_connection:
        out["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS,
                "common_http_protocol_options": {
                    "max_requests_per_connection": c.max_requests_per_connection
                },
                "explicit_http_config": {"http_protocol_options": {}},
            }
        }
    if c.lb == "RING_HASH":
        out["ring_hash_lb_config"] = {"minimum_ring_size": c.ring_size}
    elif c.lb == "MAGLEV":
        out["maglev_lb_config"] = {"table_size": c.ring_size}
    if c.outlier is not None:
        o = c.outlier
        od: dict[str, Any] = {
            "interval": duration(o.interval_s),
            "base_ejection_time": duration(o.base_ejection_s),
            "max_ejection_percent": o.max_ejection_percent,
            "enforcing_success_rate": 0,
        }
        if o.consecutive_5xx:
            od["consecutive_5xx"] = o.consecutive_5xx
            od["enforcing_consecutive_5xx"] = 100
        else:
            od["enforcing_consecutive_5xx"] = 0
        if o.consecutive_gateway_errors:
            od["consecutive_gateway_failure"] = o.consecutive_gateway_errors
            od["enforcing_consecutive_gateway_failure"] = 100
        out["outlier_detection"] = od
        out["common_lb_config"] = {
            "healthy_panic_threshold": {"value": float(o.min_health_percent)}
        }
    if c.slow_start_s > 0 and c.lb in ("ROUND_ROBIN", "LEAST_REQUEST"):
        key = "round_robin_lb_config" if c.lb == "ROUND_ROBIN" else "least_request_lb_config"
        out[key] = {
            "slow_start_config": {
                "slow_start_window": duration(c.slow_start_s),
                "aggression": {
                    "default_value": c.slow_start_aggression,
                    "runtime_key": "slow_start_aggression",
                },
                "min_weight_percent": {"value": c.slow_start_min_percent},
            }
        }
    return out


def render_route_config(table: RouteTable) -> dict[str, Any]:
    """The ``RouteConfiguration`` (virtual hosts and routes)."""
    out: dict[str, Any] = {
        "name": f"http.{table.port}",
        "virtual_hosts": [
            {
                "name": vh.name,
                "domains": list(vh.domains),
                "routes": [render_route(r) for r in vh.routes],
            }
            for vh in table.virtual_hosts
        ],
    }
    if any(r.cluster_not_found_status is not None for r in table.routes()):
        # A static route table must name defined clusters unless told otherwise; istiod's RDS
        # never validates, so a pick of an undefined cluster answers the route's status.
        out["validate_clusters"] = False
    return out


def render(
    table: RouteTable,
    endpoints: Endpoints,
    *,
    listener_port: int = 0,
    listener_address: str = "127.0.0.1",
    access_log_path: str | None = None,
) -> dict[str, Any]:
    """A static Envoy v3 bootstrap serving *table*.

    Args:
        table: The compiled route table.
        endpoints: ``{cluster name: [(address, port), ...]}``; clusters missing here get no
            endpoints (Envoy then answers 503 ``UH``).
        listener_port: Listener port (0 lets the kernel choose).
        listener_address: Listener address; loopback by default.
        access_log_path: Where to write the access log that records response flags (the
            sandbox's format); None for no access log.

    Returns:
        The bootstrap as a dict (``json.dumps`` it for ``envoy -c``).
    """
    routes = table.routes()
    filters: list[dict[str, Any]] = []
    if any(r.fault is not None for r in routes):
        filters.append({"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT}})
    route_limited = any(r.rate_limit is not None for r in routes)
    if table.rate_limit is not None or route_limited:
        base = table.rate_limit
        filters.append(
            {
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": _bucket(base) if base is not None else _bucket_placeholder(),
            }
        )
    filters.append({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}})
    hcm: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": "ingress_http",
        "strip_any_host_port": True,
        "route_config": render_route_config(table),
        "http_filters": filters,
    }
    if access_log_path is not None:
        hcm["access_log"] = [file_access_log(access_log_path)]
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": f"listener_{table.port}",
                    "address": {
                        "socket_address": {"address": listener_address, "port_value": listener_port}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                render_cluster(c, endpoints.get(name, ())) for name, c in table.clusters.items()
            ],
        }
    }


def _bucket_placeholder() -> dict[str, Any]:
    # Only per-route buckets: the filter in the chain carries no bucket of its own.
    return {"@type": RATELIMIT, "stat_prefix": "http_local_rate_limiter"}
