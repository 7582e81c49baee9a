"""Do two route tables answer the same requests the same way? The check behind ``convert``.

A conversion (VirtualService ↔ HTTPRoute, legacy → either) is right when every request gets
the same answer before and after. :func:`check_equivalent` routes a set of requests through
both compiled tables with :func:`istiolab.envoy.match.route` and compares what a client and a
backend would see:

* the local answer: no route (404), a redirect (code and ``Location``), a direct response, a
  fault abort of every request;
* otherwise the destinations and their shares of the traffic (by Service host, subset and
  port; a Service the conversion added for a subset counts as that subset), the path and
  authority the backend receives after rewrites, the request header changes, the mirrors,
  partial faults, the local rate limit the request meets, the route timeout and the number of
  retries.

The requests are those :func:`istiolab.envoy.verify.generate.generate_cases` makes for every
route of either table, plus, for each, the paths next to it where Istio's string prefix and
the Gateway API's path-element prefix part ways (``/api`` → ``/apix``, ``/api/``, ``/api/x``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from istiolab.envoy.match import Decision, Request, effective_rate_limit, route
from istiolab.envoy.model import MILLION, RateLimit, Route, RouteTable
from istiolab.envoy.verify.generate import generate_cases
from istiolab.envoy.verify.outcomes import route_location

__all__ = ["Disagreement", "answer", "check_equivalent", "probe_requests"]

_MAX_CROSS = 48  # paths × header sets tried per host, each way: at most 48² requests


@dataclasses.dataclass(frozen=True)
class Disagreement:
    """One request the two tables answer differently.

    Attributes:
        request: The request.
        before: The first table's answer, as text.
        after: The second table's answer, as text.
        before_route: ``Kind/ns/name http[i]`` of the route that answered before (None: none).
        after_route: The same for the second table.
        aspects: Which parts differ (``answer``, ``backends``, ``rewrite``, ``headers``,
            ``mirrors``, ``fault``, ``rate_limit``, ``timeout``, ``retries``).
    """

    request: Request
    before: str
    after: str
    before_route: str | None
    after_route: str | None
    aspects: tuple[str, ...]

    def __str__(self) -> str:
        r = self.request
        hdrs = "".join(f" -H '{k}: {v}'" for k, v in r.headers.items())
        return (
            f"{r.method} http://{r.host}{r.path}{hdrs}: {', '.join(self.aspects)} differ\n"
            f"  before ({self.before_route or 'no route'}): {self.before}\n"
            f"  after  ({self.after_route or 'no route'}): {self.after}"
        )


def _source(r: Route | None) -> str | None:
    if r is None:
        return None
    return f"{r.source.resource} http[{r.source.http_index}]"


def _rewritten(r: Route, request: Request) -> tuple[str, str]:
    """The path and authority the backend receives."""
    path, sep, query = request.path.partition("?")
    host = request.host
    rw = r.rewrite
    if rw is not None:
        if rw.regex is not None:
            pattern, sub = rw.regex
            # Envoy's regex_rewrite: every match replaced, \N is group N
            path = re.sub(pattern, re.sub(r"\\(\d)", r"\\g<\1>", sub), path)
        elif rw.prefix is not None:
            m = r.match
            if m.path_kind in ("prefix", "path_separated_prefix"):
                matched = m.path if path.startswith(m.path) else ""
                path = rw.prefix + path[len(matched) :]
            else:  # exact and regex matches: prefix_rewrite replaces the whole path
                path = rw.prefix
        if rw.authority:
            host = rw.authority
    return path + sep + query, host


def answer(
    table: RouteTable,
    request: Request,
    backends: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[dict[str, Any], Decision]:
    """What *table* does with *request*, as a comparable dict, and the router's decision.

    Args:
        table: A compiled route table.
        request: The request.
        backends: Service FQDN → (host FQDN, subset) for Services that stand for a subset.
    """
    backends = backends or {}
    d = route(table, request)
    r = d.route
    if r is None:
        return {"answer": "404 no route"}, d
    if r.redirect is not None:
        return {"answer": f"{r.redirect.code} -> {route_location(r, request)}"}, d
    if r.direct_response is not None:
        return {"answer": f"{r.direct_response.status} direct response"}, d
    f = r.fault
    if f is not None and f.abort_status is not None and f.abort_per_million >= MILLION:
        return {"answer": f"{f.abort_status} fault abort"}, d

    def dest(host: str, subset: str, port: int) -> str:
        h, s = backends.get(host, (host, subset))
        return f"{h}:{port}" + (f" subset {s}" if s else "")

    total = sum(c.weight for c in r.clusters) or 1
    shares: dict[str, Fraction] = {}
    for c in r.clusters:
        key = (
            dest(c.host, c.subset, c.port)
            if c.name in table.clusters or r.cluster_not_found_status is None
            else f"{r.cluster_not_found_status} unresolved backend"
        )
        shares[key] = shares.get(key, Fraction(0)) + Fraction(c.weight, total)
    if len(r.clusters) == 1:
        shares = {k: Fraction(1) for k in shares}
    path, authority = _rewritten(r, request)
    h = r.headers
    headers = None
    if h is not None:
        headers = (
            tuple(sorted((k.lower(), v) for k, v in h.request_set)),
            tuple(sorted((k.lower(), v) for k, v in h.request_add)),
            tuple(sorted(k.lower() for k in h.request_remove)),
            tuple(sorted((k.lower(), v) for k, v in h.response_set)),
            tuple(sorted((k.lower(), v) for k, v in h.response_add)),
            tuple(sorted(k.lower() for k in h.response_remove)),
        )
        if not any(headers):
            headers = None
    fault = None
    if f is not None and (f.abort_per_million or f.delay_per_million):
        fault = (f.abort_status, f.abort_per_million, f.delay_s, f.delay_per_million)
    return {
        "answer": "forwarded",
        "backends": tuple(sorted((k, str(v)) for k, v in shares.items())),
        "rewrite": (path, authority),
        "headers": headers,
        "mirrors": tuple(
            sorted((dest(m.host, m.subset, m.port), m.per_million) for m in r.mirrors)
        ),
        "fault": fault,
        "rate_limit": _bucket(effective_rate_limit(table.rate_limit, r)),
        "timeout": r.timeout_s,
        "retries": r.retry.num_retries if r.retry is not None else 0,
    }, d


def _bucket(rl: RateLimit | None) -> tuple[Any, ...] | None:
    if rl is None:
        return None
    return (rl.max_tokens, rl.tokens_per_fill, rl.fill_interval_s, rl.status, rl.scope)


def _describe(a: dict[str, Any]) -> str:
    if a["answer"] != "forwarded":
        return str(a["answer"])
    parts = [", ".join(f"{k} ({v})" for k, v in a["backends"])]
    path, host = a["rewrite"]
    parts.append(f"as {host}{path}")
    for k in ("headers", "mirrors", "fault", "rate_limit"):
        if a[k]:
            parts.append(f"{k} {a[k]}")
    parts.append(f"timeout {a['timeout']}")
    parts.append(f"retries {a['retries']}")
    return "; ".join(parts)


def probe_requests(tables: Sequence[RouteTable]) -> list[Request]:
    """Requests for every route of *tables*, and the paths where prefix semantics part ways."""
    seen: dict[tuple[Any, ...], Request] = {}

    def add(req: Request) -> None:
        key = (req.path, req.method, req.host, tuple(sorted(req.headers.items())), req.scheme)
        seen.setdefault(key, req)

    for t in tables:
        # per host: every route's path with every route's headers, so that a route that
        # another one overtakes (headers against a longer path) is met with both
        paths: dict[str, dict[str, None]] = {}
        conditions: dict[str, dict[tuple[Any, ...], Request]] = {}
        for case in generate_cases(t):
            req = case.request
            add(req)
            paths.setdefault(req.host, {})[req.path] = None
            key = (req.method, tuple(sorted(req.headers.items())))
            conditions.setdefault(req.host, {}).setdefault(key, req)
            path, sep, query = req.path.partition("?")
            stem = path.rstrip("/") or "/"
            for p in dict.fromkeys((stem, stem + "/", stem + "x", stem + "/x", stem + "-v2/x")):
                add(dataclasses.replace(req, path=p + sep + query))
        for host, ps in paths.items():
            for p in list(ps)[:_MAX_CROSS]:
                for other in list(conditions[host].values())[:_MAX_CROSS]:
                    add(dataclasses.replace(other, path=p))
    return list(seen.values())


def check_equivalent(
    before: RouteTable,
    after: RouteTable,
    *,
    backends: Mapping[str, tuple[str, str]] | None = None,
    requests: Sequence[Request] | None = None,
) -> list[Disagreement]:
    """The requests that *before* and *after* answer differently (empty: equivalent).

    Args:
        before: The table of the input (say, VirtualServices).
        after: The table of the conversion (say, HTTPRoutes).
        backends: Service FQDN → (host FQDN, subset) for Services the conversion added for
            DestinationRule subsets (``GatewayAPIConversion.backends``), so that they count
            as the subset they stand for.
        requests: The requests to try; default :func:`probe_requests` of both tables.

    Returns:
        One :class:`Disagreement` per request answered differently, in request order.

    Example:
        >>> from istiolab.config import loads
        >>> from istiolab.envoy.compile import compile
        >>> t = compile(loads('''
        ... apiVersion: networking.istio.io/v1
        ... kind: VirtualService
        ... metadata: {name: a}
        ... spec: {hosts: [a], http: [{route: [{destination: {host: a, port: {number: 80}}}]}]}
        ... '''))
        >>> check_equivalent(t, t)
        []
    """
    reqs = list(requests) if requests is not None else probe_requests([before, after])
    out = []
    for req in reqs:
        a, da = answer(before, req, backends)
        b, db = answer(after, req, backends)
        if a == b:
            continue
        if a["answer"] != b["answer"]:
            aspects: tuple[str, ...] = ("answer",)
        else:
            aspects = tuple(k for k in a if a.get(k) != b.get(k))
        out.append(
            Disagreement(
                req, _describe(a), _describe(b), _source(da.route), _source(db.route), aspects
            )
        )
    return out
