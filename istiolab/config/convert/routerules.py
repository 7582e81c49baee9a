"""RouteRule → VirtualService routes, as Pilot 0.2's ``proxy/envoy/{route,fault,header}.go``.

Matches and ``match.source``, destinations and weights, redirects and rewrites, faults (with the
percent truncation), retries and timeouts (with 0.2's implicit defaults), the precedence order, the
default route that ends each list, and the mesh VirtualServices built from them.
"""

from __future__ import annotations

import copy
from typing import Any

from istiolab.config.base import Resource
from istiolab.config.convert.names import (
    API_VERSION,
    _dns_label,
    _labels_key,
    _ref,
    _service_fqdn,
    _split_fqdn,
)
from istiolab.config.convert.state import _VS, DestKey, _ConverterState, _Placed, _Route
from istiolab.config.legacy import DestinationPolicy, RouteRule
from istiolab.findings import Severity
from istiolab.profiles import get_profile
from istiolab.units import format_duration


class _RouteRuleConverter(_ConverterState):
    # -- RouteRule → route -----------------------------------------------------------------

    def scope_of(self, rr: RouteRule) -> tuple[str, dict[str, str] | None]:
        src = rr.spec.match.source if rr.spec.match else None
        if src is None:
            return "all", None
        name = src.name or (src.service.split(".")[0] if src.service else "")
        # RouteRules are 0.2 objects: their ingress is 0.2's even when a newer profile is given.
        for prof in (self.profile, get_profile("0.2")):
            pod_labels = dict(prof.gateway_selector)
            if name == prof.ingress_service and (
                not src.labels or src.labels.items() <= pod_labels.items()
            ):
                return "ingress", None
        svc = self.services.get(_service_fqdn(name, src.namespace or rr.namespace))
        selector = dict(svc.spec.selector or {}) if svc else {}
        labels = {**selector, **(src.labels or {})}
        where = ("spec", "match", "source")
        if not labels:
            self.note(
                "IL305",
                rr,
                where,
                f"match.source {name!r} chose the proxies of that service; without its Service's "
                "selector or source labels this cannot be written as sourceLabels, so the rule "
                "is not converted",
                f"add the Service {name!r} to the input, or give match.source.labels",
            )
            return "none", None
        origin = f"the selector of Service {name!r}" if selector else "match.source.labels"
        self.note(
            "IL305",
            rr,
            where,
            f"match.source {name!r} chose which proxies got the rule (Pilot 0.2 matched the "
            f"service name at config time); written as sourceLabels {labels} from {origin}, "
            "which selects pods, not the service",
            "check that these labels select exactly the calling workloads",
        )
        return "source", labels

    def convert_rule(self, rr: RouteRule) -> _Route:
        spec = rr.spec
        scope, source_labels = self.scope_of(rr)
        route = _Route(rr.name, rr, spec.destination.fqdn(rr.namespace), scope)
        route.source_labels = source_labels
        self.convert_match(rr, route)
        if spec.redirect is not None:
            # Pilot 0.2 emitted an Envoy v1 path_redirect/host_redirect: a 302.
            red: dict[str, Any] = {}
            if spec.redirect.uri:
                red["uri"] = spec.redirect.uri
            if spec.redirect.authority:
                red["authority"] = spec.redirect.authority
            red["redirectCode"] = 302
            route.redirect = red
        else:
            self.convert_destinations(rr, route)
        if spec.rewrite is not None and (spec.rewrite.uri or spec.rewrite.authority):
            rw: dict[str, Any] = {}
            if spec.rewrite.uri:
                rw["uri"] = spec.rewrite.uri
            if spec.rewrite.authority:
                rw["authority"] = spec.rewrite.authority
            route.rewrite = rw
        if route.redirect is None:
            route.timeout, route.timeout_default = self.convert_timeout(rr)
            route.retries, route.retries_default = self.convert_retries(rr)
            route.fault = self.convert_fault(rr)
        if spec.websocket_upgrade:
            self.note(
                "IL306",
                rr,
                ("spec", "websocketUpgrade"),
                "websocketUpgrade: true is dropped; modern Istio upgrades WebSocket connections "
                "by default",
                "nothing to do",
                Severity.INFO,
            )
        if spec.l4_fault is not None:
            self.note(
                "IL306",
                rr,
                ("spec", "l4Fault"),
                "l4Fault is dropped: Istio 0.2 never applied TCP faults and modern Istio has none",
                "remove it",
            )
        if spec.mirror is not None:
            route.mirror = spec.mirror.fqdn(rr.namespace)
        if spec.cors_policy is not None:
            cp = spec.cors_policy
            cors: dict[str, Any] = {}
            if cp.allow_origin:
                cors["allowOrigins"] = [{"exact": o} for o in cp.allow_origin]
            for legacy_name, name in (
                ("allow_methods", "allowMethods"),
                ("allow_headers", "allowHeaders"),
                ("expose_headers", "exposeHeaders"),
                ("max_age", "maxAge"),
                ("allow_credentials", "allowCredentials"),
            ):
                value = getattr(cp, legacy_name)
                if value is not None:
                    cors[name] = value
            route.cors = cors or None
        if spec.append_headers:
            route.append_headers = dict(spec.append_headers)
        return route

    def convert_match(self, rr: RouteRule, route: _Route) -> None:
        m = rr.spec.match
        if m is None:
            return
        for l4 in ("tcp", "udp"):
            if getattr(m, l4) is not None:
                self.note(
                    "IL306",
                    rr,
                    ("spec", "match", l4),
                    f"match.{l4} is dropped: Pilot 0.2 ignored L4 conditions for HTTP routes",
                    "remove it",
                )
        headers = m.request.headers if m.request and m.request.headers else {}
        for name in sorted(headers):
            sm = headers[name]
            cond = {sm.kind: sm.value}
            if name == "uri":
                route.uri = (sm.kind, sm.value)
                if sm.kind == "regex" and self.profile.legacy:
                    self.note(
                        "IL306",
                        rr,
                        ("spec", "match", "request", "headers", "uri", "regex"),
                        f"uri regex {sm.value!r} is written as a uri regex match; Pilot 0.2 "
                        "compiled it into a match on a request header named 'uri', which "
                        "requests do not normally carry",
                        "check the route matches what you intend",
                        Severity.INFO,
                    )
            elif name in ("scheme", "method", "authority"):
                route.match[name] = cond
            else:
                route.match.setdefault("headers", {})[name] = cond

    def convert_destinations(self, rr: RouteRule, route: _Route) -> None:
        routes = rr.spec.route or []
        if not routes:
            # Pilot 0.2: no route means all instances of the destination
            route.dests = [(route.host, None, None)]
            return
        for dw in routes:
            host = route.host
            if dw.destination is not None and (dw.destination.name or dw.destination.service):
                host = dw.destination.fqdn(rr.namespace)
            weight = None if len(routes) == 1 else (dw.weight or 0)
            route.dests.append((host, dict(dw.labels) if dw.labels else None, weight))

    def convert_timeout(self, rr: RouteRule) -> tuple[str | None, bool]:
        t = rr.spec.http_req_timeout
        st = t.simple_timeout if t else None
        base = ("spec", "httpReqTimeout")
        if t is not None and t.custom is not None:
            self.note(
                "IL306",
                rr,
                (*base, "custom"),
                "httpReqTimeout.custom is dropped: it has no modern equivalent",
                "use simpleTimeout",
            )
        if st is not None and st.override_header_name:
            self.note(
                "IL306",
                rr,
                (*base, "simpleTimeout", "overrideHeaderName"),
                f"overrideHeaderName {st.override_header_name!r} is dropped; Envoy honours "
                "x-envoy-upstream-rq-timeout-ms by default",
                "send x-envoy-upstream-rq-timeout-ms instead",
            )
        if st is not None and st.timeout:
            return st.timeout, False
        if self.modern or self.profile.default_route_timeout_s is None:
            return None, False
        # 0.2 set no timeout_ms, so Envoy's 15 s route timeout applied.
        return format_duration(self.profile.default_route_timeout_s), True

    def convert_retries(self, rr: RouteRule) -> tuple[dict[str, Any] | None, bool]:
        r = rr.spec.http_req_retries
        sr = r.simple_retry if r else None
        base = ("spec", "httpReqRetries")
        if r is not None and r.custom is not None:
            self.note(
                "IL306",
                rr,
                (*base, "custom"),
                "httpReqRetries.custom is dropped: it has no modern equivalent",
                "use simpleRetry",
            )
        if sr is None:
            if self.modern or self.profile.default_retry is not None:
                return None, False
            # 0.2 had no default retries; modern Istio retries unless told not to.
            return {"attempts": 0}, True
        if sr.override_header_name:
            self.note(
                "IL306",
                rr,
                (*base, "simpleRetry", "overrideHeaderName"),
                f"overrideHeaderName {sr.override_header_name!r} is dropped",
                "send x-envoy-max-retries instead",
            )
        if sr.attempts == 0:
            return {"attempts": 0}, False
        out: dict[str, Any] = {"attempts": sr.attempts}
        if sr.per_try_timeout:
            out["perTryTimeout"] = sr.per_try_timeout
        if not self.modern:
            out["retryOn"] = ",".join(self.profile.retry_on_when_unset)
        return out, False

    def fault_percent(self, rr: RouteRule, pct: float | None, kind: str) -> float | int | None:
        path = ("spec", "httpFault", kind, "percent")
        what = "delay" if kind == "delay" else "abort"
        if pct is None or pct == 0:
            # buildAbortConfig/buildDelayConfig drop a fault whose percent is 0.0 (unset).
            shown = "unset" if pct is None else "0"
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {shown}: Pilot 0.2 treats it as 0 and injects no {what} "
                "(the API doc's 'all requests' was not implemented)",
                "set percent explicitly, e.g. 100",
            )
            return None
        if not self.profile.truncate_fault_percent:
            return pct
        whole = int(pct)
        if whole == 0:
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {pct:g} truncates to 0: Pilot 0.2 injects no {what}",
                "use a whole percentage of at least 1",
            )
            return None
        if whole != pct:
            self.note(
                "IL301",
                rr,
                path,
                f"{kind} percent {pct:g} truncates to {whole} in Pilot 0.2; written as {whole}",
                "use a whole percentage",
            )
        return whole

    def convert_fault(self, rr: RouteRule) -> dict[str, Any] | None:
        f = rr.spec.http_fault
        if f is None:
            return None
        out: dict[str, Any] = {}
        base = ("spec", "httpFault")
        if f.delay is not None:
            d = f.delay
            if d.exponential_delay is not None:
                self.note(
                    "IL302",
                    rr,
                    (*base, "delay", "exponentialDelay"),
                    "exponentialDelay is dropped: Istio never supported it, so Pilot 0.2 "
                    "injected no delay",
                    "use fixedDelay",
                )
            else:
                pct = self.fault_percent(rr, d.percent, "delay")
                if pct is not None:
                    out["delay"] = {"fixedDelay": d.fixed_delay, "percentage": {"value": pct}}
            if d.override_header_name:
                self.note(
                    "IL306",
                    rr,
                    (*base, "delay", "overrideHeaderName"),
                    f"delay overrideHeaderName {d.override_header_name!r} is dropped",
                    "remove it",
                )
        if f.abort is not None:
            a = f.abort
            status = a.http_status
            if status is None:
                which = "grpcStatus" if a.grpc_status is not None else "http2Error"
                self.note(
                    "IL302",
                    rr,
                    (*base, "abort", which),
                    f"abort by {which} is dropped: Pilot 0.2 only injected HTTP statuses",
                    "use httpStatus",
                )
            elif status == 0:
                self.note(
                    "IL301",
                    rr,
                    (*base, "abort", "httpStatus"),
                    "abort httpStatus 0: Pilot 0.2 injects no abort",
                    "set an HTTP status such as 503",
                )
            elif not 200 <= status <= 599:
                self.note(
                    "IL306",
                    rr,
                    (*base, "abort", "httpStatus"),
                    f"abort httpStatus {status} is dropped: modern Istio accepts 200..599",
                    "use a real HTTP status such as 503",
                )
            else:
                pct = self.fault_percent(rr, a.percent, "abort")
                if pct is not None:
                    out["abort"] = {"httpStatus": status, "percentage": {"value": pct}}
            if a.override_header_name:
                self.note(
                    "IL306",
                    rr,
                    (*base, "abort", "overrideHeaderName"),
                    f"abort overrideHeaderName {a.override_header_name!r} is dropped",
                    "remove it",
                )
        return out or None

    def default_route(self, fqdn: str) -> _Route:
        """Pilot 0.2's default route: prefix ``/`` to all instances, the lowest priority."""
        timeout = None
        if not self.modern and self.profile.default_route_timeout_s is not None:
            timeout = format_duration(self.profile.default_route_timeout_s)
        no_retry = not self.modern and self.profile.default_retry is None
        return _Route(
            "default",
            None,
            fqdn,
            "all",
            dests=[(fqdn, None, None)],
            timeout=timeout,
            timeout_default=timeout is not None,
            retries={"attempts": 0} if no_retry else None,
            retries_default=no_retry,
        )

    def route_list(self, fqdn: str, scopes: tuple[str, ...]) -> list[_Route]:
        """Pilot 0.2's ``buildDestinationHTTPRoutes`` for proxies that get rules of *scopes*."""
        out: list[_Route] = []
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.host != fqdn or route.scope not in scopes:
                continue
            out.append(route)
            # A catch-all ends the list for every proxy only when no source limits it.
            if route.catch_all and route.source_labels is None:
                return out
        out.append(self.default_route(fqdn))
        return out

    # -- rendering -------------------------------------------------------------------------

    def render(
        self,
        route: _Route,
        namespace: str,
        *,
        uri: tuple[str, str] | None,
        port: int | None,
        mesh: bool,
    ) -> _Placed:
        source: Resource = route.rule if route.rule is not None else self.first_source(route.host)
        data: dict[str, Any] = {"name": route.name}
        cond: dict[str, Any] = {}
        if uri is not None:
            cond["uri"] = {uri[0]: uri[1]}
        cond.update(copy.deepcopy(route.match))
        if mesh and route.source_labels:
            cond["sourceLabels"] = dict(route.source_labels)
        if cond:
            data["match"] = [cond]
        keys: list[DestKey] = []
        if route.redirect is not None:
            data["redirect"] = dict(route.redirect)
        else:
            dests = []
            for host, labels, weight in route.dests:
                dest: dict[str, Any] = {"host": _ref(host, namespace)}
                if labels:
                    dest["subset"] = self.subset(host, labels, source)
                if port is not None:
                    dest["port"] = {"number": port}
                entry: dict[str, Any] = {"destination": dest}
                if weight is not None:
                    entry["weight"] = weight
                dests.append(entry)
                keys.append((host, port, _labels_key(labels)))
            data["route"] = dests
        if route.rewrite is not None:
            data["rewrite"] = dict(route.rewrite)
        if route.timeout is not None:
            data["timeout"] = route.timeout
        if route.retries is not None:
            data["retries"] = dict(route.retries)
        if route.fault is not None:
            data["fault"] = copy.deepcopy(route.fault)
        if route.mirror is not None:
            data["mirror"] = {"host": _ref(route.mirror, namespace)}
        if route.cors is not None:
            data["corsPolicy"] = copy.deepcopy(route.cors)
        if route.append_headers:
            data["headers"] = {"request": {"add": dict(route.append_headers)}}
        fault_headers = route.fault_headers
        if mesh and route.source_labels:
            # the fault filter existed only on the proxies the rule's source selected
            fault_headers["sourceLabels"] = dict(route.source_labels)
        return _Placed(data, route, tuple(keys), fault_headers)

    def first_source(self, fqdn: str) -> Resource:
        """A resource to attribute a generated object for *fqdn* to (for findings)."""
        for rr in self.rules:
            if self.converted[id(rr)].host == fqdn:
                return rr
        for dp in self.config.kind(DestinationPolicy):
            if dp.spec.destination.fqdn(dp.namespace) == fqdn:
                return dp
        for ing in self.istio_ingresses():
            return ing
        return next(iter(self.config))

    # -- mesh ------------------------------------------------------------------------------

    def build_mesh(self) -> None:
        hosts: list[str] = []
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.scope in ("all", "source") and route.host not in hosts:
                hosts.append(route.host)
        for fqdn in hosts:
            routes = self.route_list(fqdn, ("all", "source"))
            first = next(r.rule for r in routes if r.rule is not None)
            assert first is not None
            ns = self.namespace_of(fqdn, first.namespace)
            parts = _split_fqdn(fqdn)
            name = parts[0] if parts else _dns_label(fqdn)
            vs = _VS(name, ns, [_ref(fqdn, ns)], None, first)
            for route in routes:
                vs.routes.append(self.render(route, ns, uri=route.uri, port=None, mesh=True))
            self.mesh_vss.append(vs)

    # -- output ----------------------------------------------------------------------------

    def virtual_service(self, vs: _VS) -> dict[str, Any]:
        timeouts = sum(1 for p in vs.routes if p.origin.timeout_default)
        retries = sum(1 for p in vs.routes if p.origin.retries_default)
        if timeouts or retries:
            parts = []
            if timeouts:
                default = format_duration(self.profile.default_route_timeout_s or 0.0)
                parts.append(
                    f"timeout: {default} on {timeouts} route(s) (Envoy's route timeout, which "
                    "Istio 0.2 left in place)"
                )
            if retries:
                parts.append(
                    f"retries: {{attempts: 0}} on {retries} route(s) (Istio 0.2 did not retry)"
                )
            self.note(
                "IL311",
                vs.source,
                ("spec",),
                f"VirtualService {vs.namespace}/{vs.name}: wrote {' and '.join(parts)}",
                "keep them to preserve 0.2 behaviour, or convert with --modern-defaults for "
                "modern Istio's defaults (no timeout, 2 retries)",
            )
        spec: dict[str, Any] = {"hosts": list(vs.hosts)}
        if vs.gateways:
            spec["gateways"] = list(vs.gateways)
        spec["http"] = [p.data for p in vs.routes]
        return {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": self.meta(vs.name, vs.namespace),
            "spec": spec,
        }
