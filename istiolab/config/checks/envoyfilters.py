"""EnvoyFilters: patch operations Istio ignores, and relative patches without a priority.

Anchor: istio/istio ``pkg/config/analysis/analyzers/envoyfilter/envoyfilter.go``
(``EnvoyPatchAnalyzer``: IST0151 relative operation without priority, IST0152 REPLACE outside
HTTP_FILTER/NETWORK_FILTER/VIRTUAL_HOST, IST0153 ADD and IST0154 REMOVE on ROUTE_CONFIGURATION or
HTTP_ROUTE, IST0155 relative operation with ``proxyVersion``).
"""

from __future__ import annotations

from istiolab.config.checks.context import Context
from istiolab.config.model import EnvoyFilter

_ROUTE_LEVEL = frozenset({"ROUTE_CONFIGURATION", "HTTP_ROUTE"})
_REPLACEABLE = frozenset({"HTTP_FILTER", "NETWORK_FILTER", "VIRTUAL_HOST"})
_RELATIVE = frozenset({"INSERT_BEFORE", "INSERT_AFTER", "REPLACE", "REMOVE"})
# Filters istiod puts in every listener it builds: a patch relative to one of them always finds
# it, whatever other EnvoyFilters do, so the order IST0151 warns about does not matter (the
# Istio docs' local rate limit example inserts before the router this way).
_BUILT_IN = frozenset(
    {"envoy.filters.http.router", "envoy.filters.network.http_connection_manager"}
)


def _anchor(match: dict[str, object] | None) -> str | None:
    """The filter a patch is relative to (``listener.filterChain.filter[.subFilter].name``)."""
    listener = (match or {}).get("listener")
    chain = listener.get("filterChain") if isinstance(listener, dict) else None
    filt = chain.get("filter") if isinstance(chain, dict) else None
    if not isinstance(filt, dict):
        return None
    sub = filt.get("subFilter")
    name = sub.get("name") if isinstance(sub, dict) else filt.get("name")
    return name if isinstance(name, str) else None


def check(ctx: Context) -> None:
    """Run the EnvoyFilter checks."""
    for ef in ctx.envoy_filters:
        patches(ctx, ef)


def patches(ctx: Context, ef: EnvoyFilter) -> None:
    """Each config patch's operation against its applyTo."""
    for i, cp in enumerate(ef.spec.config_patches):
        op = (cp.patch.operation or "") if cp.patch else ""
        apply_to = cp.apply_to or ""
        base = ("spec", "configPatches", i)
        if op == "ADD" and apply_to in _ROUTE_LEVEL:
            ctx.add(
                "IL238",
                ef,
                (*base, "patch", "operation"),
                f"ADD on {apply_to} is ignored by Istio",
                "use MERGE to change the route configuration, or apply the patch elsewhere",
            )
            continue
        if op == "REMOVE" and apply_to in _ROUTE_LEVEL:
            ctx.add(
                "IL239",
                ef,
                (*base, "patch", "operation"),
                f"REMOVE on {apply_to} is ignored by Istio",
                "remove the route in the VirtualService instead",
            )
            continue
        if op == "REPLACE" and apply_to not in _REPLACEABLE:
            ctx.add(
                "IL237",
                ef,
                (*base, "patch", "operation"),
                f"REPLACE on {apply_to or 'nothing'} is not allowed (only HTTP_FILTER, "
                "NETWORK_FILTER and VIRTUAL_HOST)",
                "use MERGE, or REPLACE a filter",
            )
            continue
        if op not in _RELATIVE or ef.spec.priority is not None:
            continue
        if op.startswith("INSERT_") and _anchor(cp.match) in _BUILT_IN:
            continue
        proxy = (cp.match or {}).get("proxy")
        if isinstance(proxy, dict) and proxy.get("proxyVersion"):
            ctx.add(
                "IL240",
                ef,
                (*base, "match", "proxy", "proxyVersion"),
                f"{op} matched on proxyVersion {proxy['proxyVersion']!r} without a priority may "
                "stop applying during an upgrade",
                "set spec.priority, or use INSERT_FIRST or ADD",
            )
        else:
            ctx.add(
                "IL236",
                ef,
                (*base, "patch", "operation"),
                f"{op} is relative to another filter and this EnvoyFilter has no priority; "
                "whether it applies depends on the order of other EnvoyFilters",
                "set spec.priority, or use INSERT_FIRST or ADD",
            )
