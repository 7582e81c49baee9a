"""Route a request through a :class:`~istiolab.envoy.model.RouteTable` as Envoy does.

Virtual host by ``Host`` (exact domain, then the longest suffix wildcard, then prefix wildcards,
then ``*``; the port is stripped as with Envoy's ``strip_any_host_port``), then the first route
whose match holds (path without the query string; RE2 full match for regexes; all header and
query conditions), then the weighted pick ``random_value % total_weight`` over the cumulative
weights, exactly as Envoy's router picks a weighted cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from istiolab.envoy.model import (
    HeaderMatcher,
    RateLimit,
    Route,
    RouteMatch,
    RouteTable,
    StringMatcher,
    VirtualHost,
    WeightedCluster,
)
from istiolab.regex import full_match
from istiolab.reprs import HTMLRepr


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request as the router sees it.

    Attributes:
        path: Path, possibly with a query string.
        method: HTTP method.
        host: ``Host``/``:authority`` (a port suffix is ignored).
        headers: Other headers; names are matched case-insensitively.
        scheme: ``http`` or ``https``.
    """

    path: str = "/"
    method: str = "GET"
    host: str = "example.com"
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    scheme: str = "http"

    def header(self, name: str) -> str | None:
        """Value of a header (also ``:method``, ``:authority``, ``:scheme`` and ``:path``)."""
        if name == ":method":
            return self.method
        if name == ":authority" or name == "host":
            return strip_port(self.host)
        if name == ":scheme":
            return self.scheme
        if name == ":path":
            return self.path
        for k, v in self.headers.items():
            if k.lower() == name:
                return v
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What the router decided.

    Attributes:
        route: The matched route, or None.
        virtual_host: The selected virtual host, or None.
        cluster: The picked destination (None without ``random_value`` on a split, or for
            redirects, direct responses and no route).
        status: Local status when the proxy answers itself (404 no route, redirect code,
            direct response), else None.
        flags: ``NR`` when no route matched.
    """

    route: Route | None
    virtual_host: VirtualHost | None
    cluster: WeightedCluster | None
    status: int | None
    flags: str = ""

    @property
    def destinations(self) -> tuple[WeightedCluster, ...]:
        """All destinations of the matched route."""
        return self.route.clusters if self.route is not None else ()


def strip_port(host: str) -> str:
    """``example.com:8080`` → ``example.com`` (IPv6 literals kept)."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    head, sep, tail = host.rpartition(":")
    return head if sep and tail.isdigit() else host


def select_virtual_host(table: RouteTable, host: str) -> VirtualHost | None:
    """Envoy's domain search: exact, longest suffix wildcard, longest prefix wildcard, ``*``."""
    h = strip_port(host).lower()
    best: tuple[int, int, VirtualHost] | None = None
    for vh in table.virtual_hosts:
        for d in vh.domains:
            d = d.lower()
            if d == h:
                rank = (3, len(d))
            elif d.startswith("*") and d != "*" and h.endswith(d[1:]) and len(h) > len(d) - 1:
                rank = (2, len(d))
            elif d.endswith("*") and d != "*" and h.startswith(d[:-1]) and len(h) > len(d) - 1:
                rank = (1, len(d))
            elif d == "*":
                rank = (0, 0)
            else:
                continue
            if best is None or rank > best[:2]:
                best = (*rank, vh)
    return best[2] if best else None


def _string_ok(m: StringMatcher, value: str | None) -> bool:
    if value is None:
        return False
    if m.kind == "present":
        return True
    if m.kind == "exact":
        return value.lower() == m.value.lower() if m.ignore_case else value == m.value
    if m.kind == "prefix":
        return (
            value.lower().startswith(m.value.lower())
            if m.ignore_case
            else value.startswith(m.value)
        )
    if m.kind == "suffix":
        return value.endswith(m.value)
    if m.kind == "regex":
        return full_match(m.value, value)
    return False


def _header_value(h: HeaderMatcher, request: Request) -> str | None:
    value = request.header(h.name)
    if value is None and h.invert and h.match.kind != "present":
        # istiod sets treat_missing_header_as_empty on withoutHeaders matchers (except presence
        # checks): a missing header is matched as "" before the inversion.
        return ""
    return value


def _header_ok(h: HeaderMatcher, request: Request) -> bool:
    ok = _string_ok(h.match, _header_value(h, request))
    return not ok if h.invert else ok


def _path_ok(m: RouteMatch, path: str) -> bool:
    if m.path_kind == "prefix":
        return (
            path.startswith(m.path) if m.case_sensitive else path.lower().startswith(m.path.lower())
        )
    if m.path_kind == "exact":
        return path == m.path if m.case_sensitive else path.lower() == m.path.lower()
    if m.path_kind == "regex":
        return full_match(m.path, path)
    if m.path_kind == "path_separated_prefix":
        # Envoy: the path is the prefix, or the prefix followed by "/" (route_components.proto)
        p, prefix = (path, m.path) if m.case_sensitive else (path.lower(), m.path.lower())
        return p == prefix or p.startswith(prefix.rstrip("/") + "/")
    return False


def failed_condition(m: RouteMatch, request: Request) -> str | None:
    """The first condition of *m* that *request* fails, as text; None when it matches."""
    path, _, query = request.path.partition("?")
    if not _path_ok(m, path):
        how = {
            "prefix": "prefix",
            "exact": "path",
            "regex": "regex",
            "path_separated_prefix": "path-separated prefix",
        }[m.path_kind]
        case = "" if m.case_sensitive else " (case-insensitive)"
        return f"path {path!r} does not match {how} {m.path!r}{case}"
    for h in m.headers:
        if not _header_ok(h, request):
            got = request.header(h.name)
            want = "present" if h.match.kind == "present" else f"{h.match.kind} {h.match.value!r}"
            if h.invert:
                return f"header {h.name} = {got!r} is {want}, which this route excludes"
            return f"header {h.name} = {got!r} is not {want}"
    if m.query_params:
        params = dict(parse_qsl(query, keep_blank_values=True))
        for q in m.query_params:
            if not _string_ok(q.match, params.get(q.name)):
                want = (
                    "present" if q.match.kind == "present" else f"{q.match.kind} {q.match.value!r}"
                )
                return f"query parameter {q.name} = {params.get(q.name)!r} is not {want}"
    return None


def matches(m: RouteMatch, request: Request) -> bool:
    """Whether *request* satisfies every condition of *m*."""
    return failed_condition(m, request) is None


def effective_rate_limit(gateway: RateLimit | None, route: Route | None) -> RateLimit | None:
    """The local rate limit a request meets: Envoy's most specific per-filter config wins.

    A route's own ``typed_per_filter_config`` bucket *replaces* the listener-level (gateway)
    one for that route; it is not applied in addition. Requests with no route, or on a route
    without its own bucket, meet the gateway's bucket.
    """
    if route is not None and route.rate_limit is not None:
        return route.rate_limit
    return gateway


def pick(route: Route, random_value: int) -> WeightedCluster | None:
    """Envoy's weighted-cluster pick: ``random_value % total_weight`` against cumulative weights."""
    clusters = route.clusters
    if not clusters:
        return None
    if len(clusters) == 1:
        return clusters[0]
    total = route.total_weight
    if total <= 0:
        return None
    selected = random_value % total
    acc = 0
    for c in clusters:
        acc += c.weight
        if selected < acc:
            return c
    return clusters[-1]  # pragma: no cover - selected < total always lands above


def route(table: RouteTable, request: Request, random_value: int | None = None) -> Decision:
    """Route *request* through *table* with Envoy's semantics.

    Args:
        table: The compiled route table.
        request: The request.
        random_value: Envoy's per-request random value for weighted clusters; with None a
            split route leaves ``cluster`` unset (``destinations`` lists them all).

    Returns:
        The decision.
    """
    vh = select_virtual_host(table, request.host)
    if vh is None:
        return Decision(None, None, None, 404, "NR")
    for r in vh.routes:
        if matches(r.match, request):
            if r.redirect is not None:
                return Decision(r, vh, None, r.redirect.code)
            if r.direct_response is not None:
                return Decision(r, vh, None, r.direct_response.status)
            if len(r.clusters) == 1:
                return _picked(table, r, vh, r.clusters[0])
            chosen = pick(r, random_value) if random_value is not None else None
            return _picked(table, r, vh, chosen)
    return Decision(None, vh, None, 404, "NR")


def _picked(
    table: RouteTable, r: Route, vh: VirtualHost, chosen: WeightedCluster | None
) -> Decision:
    """The decision for a picked cluster: a local status when the table has no such cluster."""
    missing = chosen is not None and chosen.name not in table.clusters
    if missing and r.cluster_not_found_status is not None:
        return Decision(r, vh, None, r.cluster_not_found_status, "NC")
    return Decision(r, vh, chosen, None)


@dataclasses.dataclass(frozen=True)
class TraceStep:
    """One route considered by :func:`explain`."""

    route: Route
    matched: bool
    failed_condition: str | None


@dataclasses.dataclass(frozen=True)
class Explanation(HTMLRepr):
    """Why a request goes where it goes."""

    request: Request
    decision: Decision
    virtual_host: VirtualHost | None
    trace: tuple[TraceStep, ...]
    gateway_rate_limit: RateLimit | None = None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of ``istiolab explain --format json``."""
        r = self.decision.route
        fault = retry = timeout = rate = None
        if r is not None:
            if r.fault is not None:
                fault = {
                    "delay_s": r.fault.delay_s,
                    "delay_percent": r.fault.delay_per_million / 10_000,
                    "abort_status": r.fault.abort_status,
                    "abort_percent": r.fault.abort_per_million / 10_000,
                }
            if r.retry is not None:
                retry = {
                    "num_retries": r.retry.num_retries,
                    "retry_on": list(r.retry.retry_on),
                    "retriable_status_codes": list(r.retry.retriable_status_codes),
                    "per_try_timeout_s": r.retry.per_try_timeout_s,
                    "previous_hosts": r.retry.previous_hosts,
                }
            timeout = r.timeout_s
        rl = effective_rate_limit(self.gateway_rate_limit, r)
        if rl is not None:
            rate = {
                "max_tokens": rl.max_tokens,
                "tokens_per_fill": rl.tokens_per_fill,
                "fill_interval_s": rl.fill_interval_s,
                "scope": rl.scope,
            }
        total = r.total_weight if r is not None else 0
        return {
            "route": None
            if r is None
            else {
                "resource": r.source.resource,
                "http_index": r.source.http_index,
                "match_index": r.source.match_index,
                "name": r.source.name,
            },
            "virtual_host": self.virtual_host.name if self.virtual_host else None,
            "status": self.decision.status,
            "flags": self.decision.flags,
            "destinations": [
                {
                    "cluster": c.name,
                    "host": c.host,
                    "subset": c.subset or None,
                    "port": c.port,
                    "weight": c.weight,
                    "percent": round(100.0 * c.weight / total, 4) if total else None,
                }
                for c in (r.clusters if r is not None else ())
            ],
            "redirect": None if r is None or r.redirect is None else dataclasses.asdict(r.redirect),
            "fault": fault,
            "retries": retry,
            "timeout": timeout,
            "rate_limit": rate,
            "trace": [
                {
                    "route": s.route.name,
                    "matched": s.matched,
                    "failed_condition": s.failed_condition,
                }
                for s in self.trace
            ],
        }


def explain(table: RouteTable, request: Request) -> Explanation:
    """List the selected virtual host's routes in order: matched, or the first failed condition.

    Routes after the first match are not listed (Envoy never looks at them).
    """
    decision = route(table, request)
    vh = decision.virtual_host
    steps: list[TraceStep] = []
    if vh is not None:
        for r in vh.routes:
            why = failed_condition(r.match, request)
            steps.append(TraceStep(r, why is None, why))
            if why is None:
                break
    return Explanation(request, decision, vh, tuple(steps), table.rate_limit)
