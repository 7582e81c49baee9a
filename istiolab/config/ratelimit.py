"""Local rate limits as Istio users write them: EnvoyFilters with ``local_ratelimit``.

Istio's docs configure Envoy's local rate limit with an EnvoyFilter that either inserts the
``envoy.filters.http.local_ratelimit`` HTTP filter with a token bucket (``applyTo: HTTP_FILTER``,
one bucket per Envoy) or merges a per-route ``typed_per_filter_config`` (``applyTo: HTTP_ROUTE``).
This module reads both forms into :class:`LocalRateLimitSpec` objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from istiolab.config.model import EnvoyFilter
from istiolab.units import is_duration, parse_duration

FILTER_NAME = "envoy.filters.http.local_ratelimit"
_PER = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


@dataclasses.dataclass(frozen=True)
class LocalRateLimitSpec:
    """A token bucket read from an EnvoyFilter.

    Attributes:
        resource: ``EnvoyFilter/ns/name``.
        patch_index: Index in ``configPatches``.
        scope: ``gateway`` (HTTP_FILTER) or ``route`` (HTTP_ROUTE).
        context: The patch's match context (``GATEWAY``, ``SIDECAR_INBOUND``, ``ANY`` ...).
        selector: The EnvoyFilter's workload selector labels.
        route_name: For route scope, the route name the patch matches (None: any route).
        vhost_name: For route scope, the virtual host name the patch matches.
        max_tokens: Bucket size (and initial fill); None when the filter only enables the
            extension and the bucket comes per route.
        tokens_per_fill: Tokens per refill.
        fill_interval_s: Refill period.
        enabled_per_million: ``filter_enabled`` (Envoy default 0).
        enforced_per_million: ``filter_enforced`` (Envoy default 0).
        status: Response status when limited.
    """

    resource: str
    patch_index: int
    scope: str
    context: str
    selector: dict[str, str]
    route_name: str | None
    vhost_name: str | None
    max_tokens: int | None
    tokens_per_fill: int
    fill_interval_s: float
    enabled_per_million: int
    enforced_per_million: int
    status: int = 429


def _fraction(obj: Any) -> int:
    """A RuntimeFractionalPercent → per million; absent means Envoy's default of 0 %."""
    if not isinstance(obj, dict):
        return 0
    dv = obj.get("default_value", obj.get("defaultValue"))
    if not isinstance(dv, dict):
        return 0
    num = dv.get("numerator", 0)
    den = _PER.get(str(dv.get("denominator", "HUNDRED")), 100)
    try:
        return round(float(num) * 1_000_000 / den)
    except (TypeError, ValueError):
        return 0


def _config_of(typed: Any) -> dict[str, Any] | None:
    """The LocalRateLimit message inside a typed_config (TypedStruct or direct ``@type``)."""
    if not isinstance(typed, dict):
        return None
    value = typed.get("value")
    if isinstance(value, dict) and "LocalRateLimit" in str(typed.get("type_url", "")):
        return value
    if "LocalRateLimit" in str(typed.get("@type", "")):
        return typed
    return None


def _bucket(cfg: dict[str, Any]) -> tuple[int | None, int, float]:
    tb = cfg.get("token_bucket") or cfg.get("tokenBucket")
    if not isinstance(tb, dict):
        return None, 1, 1.0
    interval = tb.get("fill_interval", tb.get("fillInterval", "1s"))
    fill = parse_duration(interval) if isinstance(interval, str) and is_duration(interval) else 1.0
    max_tokens = tb.get("max_tokens", tb.get("maxTokens"))
    per_fill = tb.get("tokens_per_fill", tb.get("tokensPerFill", 1))
    return (
        int(max_tokens) if isinstance(max_tokens, (int, float)) else None,
        int(per_fill) if isinstance(per_fill, (int, float)) else 1,
        fill,
    )


def _status(cfg: dict[str, Any]) -> int:
    st = cfg.get("status")
    if isinstance(st, dict) and isinstance(st.get("code"), (int, str)):
        code = st["code"]
        if isinstance(code, int):
            return code
        names = {"TooManyRequests": 429, "ServiceUnavailable": 503}
        return names.get(code, 429)
    return 429


def local_rate_limits(ef: EnvoyFilter) -> list[LocalRateLimitSpec]:
    """Every local rate limit an EnvoyFilter configures (empty when it configures none)."""
    out: list[LocalRateLimitSpec] = []
    selector: dict[str, str] = {}
    ws = ef.spec.workload_selector or {}
    if isinstance(ws.get("labels"), dict):
        selector = {str(k): str(v) for k, v in ws["labels"].items()}
    for i, patch in enumerate(ef.spec.config_patches):
        value = (patch.patch.value if patch.patch else None) or {}
        match = patch.match or {}
        context = str(match.get("context", "ANY"))
        cfg: dict[str, Any] | None = None
        scope = "gateway"
        route_name = vhost_name = None
        if value.get("name") == FILTER_NAME:
            cfg = _config_of(value.get("typed_config") or value.get("typedConfig"))
        else:
            per_route = value.get("typed_per_filter_config") or value.get("typedPerFilterConfig")
            if isinstance(per_route, dict) and FILTER_NAME in per_route:
                cfg = _config_of(per_route[FILTER_NAME])
                scope = "route"
                rc = match.get("routeConfiguration") or {}
                vh = rc.get("vhost") or {}
                vhost_name = vh.get("name")
                route = vh.get("route") or {}
                route_name = route.get("name")
        if cfg is None:
            continue
        max_tokens, per_fill, interval = _bucket(cfg)
        out.append(
            LocalRateLimitSpec(
                resource=ef.key,
                patch_index=i,
                scope=scope,
                context=context,
                selector=selector,
                route_name=route_name,
                vhost_name=vhost_name,
                max_tokens=max_tokens,
                tokens_per_fill=per_fill,
                fill_interval_s=interval,
                enabled_per_million=_fraction(cfg.get("filter_enabled")),
                enforced_per_million=_fraction(cfg.get("filter_enforced")),
                status=_status(cfg),
            )
        )
    return out
