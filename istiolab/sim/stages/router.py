"""The Envoy router stage: executes the compiled :class:`~istiolab.envoy.model.RouteTable`.

Route selection is :func:`istiolab.envoy.match.route` and the weighted pick
:func:`istiolab.envoy.match.pick` — the same code the conformance suite checks against a real
Envoy. This stage adds what happens in time: fault delay then abort (independent draws, as the
fault filter does), the local rate limit (token bucket, 429 ``RL``), mirrors (fire and forget),
redirects and direct responses, and hands the request to the upstream cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import simpy

from istiolab.envoy.match import Request, effective_rate_limit, pick, route
from istiolab.envoy.model import MILLION, RateLimit, Route, RouteTable, VirtualHost
from istiolab.envoy.policy import TokenBucket
from istiolab.sim.request import Outcome, SimRequest
from istiolab.sim.stages.upstream import UpstreamCluster

_CACHE_LIMIT = 65536


class Router:
    """Routes requests of one gateway pod (buckets are per Envoy process)."""

    def __init__(
        self,
        env: simpy.Environment,
        table: RouteTable,
        clusters: dict[str, UpstreamCluster],
        *,
        uniform: Callable[[], float],
        random_value: Callable[[], int],
        backoff_formula: str,
        decision_cache: dict[Any, tuple[Route | None, VirtualHost | None, int | None, str]],
        bucket_mode: str = "continuous",
    ) -> None:
        self.env = env
        self.table = table
        self.clusters = clusters
        self._u = uniform
        self._rv = random_value
        self._formula = backoff_formula
        self._cache = decision_cache
        self._bucket_mode = bucket_mode
        self._gateway_bucket = (
            TokenBucket(table.rate_limit, mode=bucket_mode)
            if table.rate_limit is not None
            else None
        )
        self._route_buckets: dict[str, TokenBucket] = {}

    def decide(self, req: SimRequest) -> tuple[Route | None, VirtualHost | None, int | None, str]:
        """Route selection, cached (it is deterministic given the request's attributes)."""
        key = (req.host, req.path, req.method, tuple(req.headers.items()))
        hit = self._cache.get(key)
        if hit is None:
            d = route(self.table, Request(req.path, req.method, req.host, req.headers))
            hit = (d.route, d.virtual_host, d.status, d.flags)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def _limited(self, r: Route) -> RateLimit | None:
        """The local rate limit that rejects the request now (429 ``RL``), or None."""
        spec = effective_rate_limit(self.table.rate_limit, r)
        if spec is None:
            return None
        if spec.enabled_per_million < MILLION and self._u() * MILLION >= spec.enabled_per_million:
            return None
        if r.rate_limit is None:
            bucket = self._gateway_bucket
        else:
            bucket = self._route_buckets.get(r.name)
            if bucket is None:
                bucket = self._route_buckets[r.name] = TokenBucket(spec, mode=self._bucket_mode)
        assert bucket is not None
        if bucket.take(self.env.now) or self._u() * MILLION >= spec.enforced_per_million:
            return None
        return spec

    def handle(self, req: SimRequest, out: Outcome, *, az: str) -> Generator[Any, Any, None]:
        """Route one request; fills *out* (status, flags, route, cluster, version, retries).

        Local replies leave ``out.pending`` for the caller to wait out.
        """
        upstream = self.dispatch(req, out, az=az)
        if upstream is not None:
            yield from upstream

    def dispatch(
        self, req: SimRequest, out: Outcome, *, az: str
    ) -> Generator[Any, Any, None] | None:
        """The routing decision of :meth:`handle`, made now.

        Returns the upstream cluster's generator to run, or None for a local reply (404, fault
        abort, rate limit, redirect, direct response), whose status is already in *out*. The
        ingress runs the generator itself, so the router adds no frame to every resume of the
        request.
        """
        env = self.env
        r, _vh, status, flags = self.decide(req)
        if r is None:
            out.status = status or 404
            out.flag(flags or "NR")
            return None
        out.route = r.name
        f = r.fault
        if f is not None:
            if f.delay_per_million and self._u() * MILLION < f.delay_per_million:
                out.flag("DI")
                out.pending += f.delay_s or 0.0
            if f.abort_per_million and self._u() * MILLION < f.abort_per_million:
                out.status = f.abort_status or 503
                out.flag("FI")
                return None
        limited = (
            self._limited(r)
            if r.rate_limit is not None or self.table.rate_limit is not None
            else None
        )
        if limited is not None:
            out.status = limited.status
            out.flag("RL")
            return None
        if r.redirect is not None:
            out.status = r.redirect.code
            return None
        if r.direct_response is not None:
            out.status = r.direct_response.status
            return None
        wc = pick(r, self._rv())
        if wc is None:
            out.status = 503
            out.flag("NC")
            return None
        cluster = self.clusters.get(wc.name)
        if cluster is None:
            # A pick of a cluster the gateway does not have (a Gateway API backendRef that does
            # not resolve becomes istiod's UnknownService): Envoy answers a local reply with the
            # route's cluster_not_found_response_code and the NC flag
            # (source/common/router/router.cc, Filter::decodeHeaders).
            out.status = r.cluster_not_found_status or 503
            out.flag("NC")
            return None
        out.cluster = wc.name
        for m in r.mirrors:
            if m.per_million >= MILLION or self._u() * MILLION < m.per_million:
                mirror = self.clusters.get(m.cluster)
                if mirror is not None:
                    env.process(self._mirror(mirror, req, az))
        key = hash_key(r.hash_policy, req.headers, req.path, req.source_ip)
        return cluster.handle(
            req,
            r,
            out,
            from_az=az,
            hash_key=key,
            backoff=self._u,
            backoff_formula=self._formula,
        )

    def _mirror(
        self, cluster: UpstreamCluster, req: SimRequest, az: str
    ) -> Generator[Any, Any, None]:
        pod = cluster.pick(None, worker=req.worker)
        if pod is not None:
            yield from cluster.attempt(pod, req, az)


def hash_key(
    policy: tuple[str, str] | None, headers: Mapping[str, str], path: str, source_ip: int
) -> str | None:
    """The consistent-hash key of a request under a route's hash *policy*, or None.

    Envoy's ``Http::HashPolicyImpl`` (``source/common/http/hash_policy.cc``): a header's
    value, a cookie's value, the source IP or a query parameter; None when the request has no
    such value (the load balancer then picks as if there were no hash policy).

    Args:
        policy: ``(kind, name)`` of the route's hash policy (``header``, ``cookie``,
            ``source_ip`` or ``query``), or None.
        headers: The request's headers, names in lower case.
        path: Its path, with the query string.
        source_ip: Its client address id.
    """
    if policy is None:
        return None
    kind, name = policy
    if kind == "header":
        return headers.get(name)
    if kind == "cookie":
        for part in headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None
    if kind == "source_ip":
        return str(source_ip)
    from urllib.parse import parse_qsl

    return dict(parse_qsl(path.partition("?")[2])).get(name)
