"""Gateways: server schema rules, conflicts between Gateways, credentials, the gateway Service.

Anchors: istio/istio ``pkg/config/validation/validation.go`` (``ValidateGateway``,
``validateServer``: TLS on HTTPS/TLS servers only, unique port names, DNS-label names,
``httpsRedirect`` on HTTP only, ``namespace/host`` server hosts), ``pkg/config/analysis/analyzers/
gateway/conflictinggateway.go`` (IST0145), ``gateway/certificate.go`` (IST0138),
``gateway/gateway.go`` (IST0162); kiali/kiali ``business/checkers/gateways/multi_match_checker.go``
(KIA0301).
"""

from __future__ import annotations

import re
from collections import defaultdict

from istiolab.config.checks.context import Context
from istiolab.config.model import Gateway, Server
from istiolab.findings import Severity

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# protocol.Parse in istio/istio pkg/config/protocol/instance.go: IsTLS and IsHTTP
_TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
_HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})


def check(ctx: Context) -> None:
    """Run the Gateway checks."""
    for gw in ctx.gateways:
        schema(ctx, gw)
    conflicts(ctx)
    shared_credentials(ctx)
    if ctx.deployments and ctx.services:
        for gw in ctx.gateways:
            service_ports(ctx, gw)


def schema(ctx: Context, gw: Gateway) -> None:
    """What Istio's validation rejects in a Gateway (``ValidateGateway``, ``validateServer``)."""
    if not _DNS1123_LABEL.fullmatch(gw.name) or len(gw.name) > 63:
        ctx.add(
            "IL222",
            gw,
            ("metadata", "name"),
            f"Gateway name {gw.name!r} is not a DNS label (no dots); Istio rejects it "
            "('invalid gateway name')",
            f"rename it, e.g. {gw.name.replace('.', '-')!r}",
        )
    names: dict[str, int] = {}
    for i, srv in enumerate(gw.spec.servers):
        base = ("spec", "servers", i)
        proto = srv.port.protocol.upper()
        tls = srv.tls
        if proto in _TLS_PROTOCOLS and tls is None:
            ctx.add(
                "IL222",
                gw,
                (*base, "port", "protocol"),
                f"server on port {srv.port.number} is {srv.port.protocol} but has no tls",
                "add tls (e.g. mode: SIMPLE with credentialName), or use protocol HTTP",
            )
        elif tls is not None and proto not in _TLS_PROTOCOLS and not _redirect_only(srv):
            ctx.add(
                "IL222",
                gw,
                (*base, "tls"),
                f"server on port {srv.port.number} is {srv.port.protocol} (plain text) but has "
                "tls settings; Istio rejects them",
                "use protocol HTTPS for TLS, or keep only tls.httpsRedirect on an HTTP server",
            )
        if tls is not None and tls.https_redirect and proto not in _HTTP_PROTOCOLS:
            ctx.add(
                "IL222",
                gw,
                (*base, "tls", "httpsRedirect"),
                f"httpsRedirect on a {srv.port.protocol} server does nothing: it only applies "
                "to plain HTTP servers",
                "remove httpsRedirect here; put it on the port-80 HTTP server",
                severity=Severity.WARNING,
            )
        name = srv.port.name or ""
        if not name:
            # Istio's Gateway CRD lists port.name as required (istio.io/api
            # networking/v1alpha3/gateway.proto: "Label assigned to the port", REQUIRED), and
            # validateServerPort refuses an empty one ("port name must be set")
            ctx.add(
                "IL102",
                gw,
                (*base, "port", "name"),
                f"server on port {srv.port.number} has no port name; Istio's Gateway CRD "
                "requires one, so the API server refuses the Gateway",
                f"name the port, e.g. name: {srv.port.protocol.lower()}-{srv.port.number}",
            )
        elif name in names:
            ctx.add(
                "IL222",
                gw,
                (*base, "port", "name") if srv.port.name else (*base, "port"),
                f"port name {name!r} is also the name of servers[{names[name]}]; Istio requires "
                "unique port names",
                "give each server's port its own name, e.g. 'http' and 'https'",
            )
        else:
            names[name] = i
        for j, host in enumerate(srv.hosts):
            if "/" in host:
                # ValidateNamespaceSlashWildcardHostname: one '/', a namespace before it
                ns, name = host.split("/", 1)
                bad_ns = ns not in (".", "*") and not _DNS1123_LABEL.fullmatch(ns)
                if bad_ns or "/" in name:
                    what = f"{ns!r} is not a namespace" if bad_ns else "it has two '/'"
                    ctx.add(
                        "IL222",
                        gw,
                        (*base, "hosts", j),
                        f"host {host!r}: {what} ('namespace/host', the namespace '.', '*' or a "
                        "DNS label), so the host matches no VirtualService",
                        "write 'namespace/host', e.g. 'prod/*.example.com'",
                    )


def _redirect_only(srv: Server) -> bool:
    """TLS settings that Istio allows on an HTTP server: only ``httpsRedirect``."""
    tls = srv.tls
    if tls is None:
        return True
    extra = {k for k, v in (tls.model_extra or {}).items() if v}
    return bool(tls.https_redirect) and not tls.mode and not tls.credential_name and not extra


def _host(h: str) -> str:
    return h.split("/", 1)[1] if "/" in h else h


def conflicts(ctx: Context) -> None:
    """Two Gateways, one selector and port, the same host and bind (IST0145, KIA0301)."""
    # conflictinggateway.go keys gateways by "selector~port" and compares hosts with bind
    # (model.CheckDuplicates); an index on (selector, port, bind, host) finds the same pairs.
    first: dict[tuple[tuple[tuple[str, str], ...], int, str, str], tuple[Gateway, int]] = {}
    for gw in ctx.gateways:
        sel = tuple(sorted(gw.spec.selector.items()))
        for i, srv in enumerate(gw.spec.servers):
            for j, h in enumerate(srv.hosts):
                key = (sel, srv.port.number, srv.bind or "", _host(h))
                seen = first.setdefault(key, (gw, i))
                other = seen[0]
                if other is gw:
                    continue
                ctx.add(
                    "IL219",
                    gw,
                    ("spec", "servers", i, "hosts", j),
                    f"host {h!r} on port {srv.port.number} is also served by Gateway "
                    f"{other.namespace}/{other.name} (servers[{seen[1]}]) on the same selector "
                    f"{dict(sel)}; the gateway proxy keeps only one of the two servers",
                    "serve the host from one Gateway, or give the Gateways different selectors "
                    "or ports",
                )


def shared_credentials(ctx: Context) -> None:
    """One certificate served by several Gateways on one workload (IST0138)."""
    # certificate.go: same credentialName (or the same serverCertificate and privateKey files)
    # in Gateways whose selectors overlap (one is a subset of the other).
    by_cert: dict[tuple[str, ...], list[tuple[Gateway, int]]] = defaultdict(list)
    for gw in ctx.gateways:
        for i, srv in enumerate(gw.spec.servers):
            tls = srv.tls
            if tls is None:
                continue
            extra = tls.model_extra or {}
            if tls.credential_name:
                key: tuple[str, ...] = ("credential", tls.credential_name)
            elif extra.get("serverCertificate") and extra.get("privateKey"):
                key = ("files", str(extra["serverCertificate"]), str(extra["privateKey"]))
            else:
                continue
            by_cert[key].append((gw, i))
    for key, uses in by_cert.items():
        # the Gateways that share a selector are compared once, not pair by pair
        by_selector: dict[tuple[tuple[str, str], ...], list[Gateway]] = defaultdict(list)
        seen: set[int] = set()
        for gw, _ in uses:
            if id(gw) not in seen:
                seen.add(id(gw))
                by_selector[tuple(sorted(gw.spec.selector.items()))].append(gw)
        names: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for sel in by_selector:
            mine = set(sel)
            names[sel] = sorted(
                f"{o.namespace}/{o.name}"
                for other, gws in by_selector.items()
                if mine <= set(other) or set(other) <= mine
                for o in gws
            )
        for gw, i in uses:
            me = f"{gw.namespace}/{gw.name}"
            others = [n for n in names[tuple(sorted(gw.spec.selector.items()))] if n != me]
            if others:
                field = "credentialName" if key[0] == "credential" else "serverCertificate"
                shown_others = ", ".join(others[:5]) + (
                    f" and {len(others) - 5} more" if len(others) > 5 else ""
                )
                ctx.add(
                    "IL220",
                    gw,
                    ("spec", "servers", i, "tls", field),
                    f"certificate {key[1]!r} is also served by Gateway {shown_others} on "
                    "the same gateway workload; a client that reuses an HTTP/2 connection for "
                    "the other host can get 404",
                    "serve both hosts from one Gateway server, or give each its own certificate",
                )


def service_ports(ctx: Context, gw: Gateway) -> None:
    """Each server port is a port (or targetPort) of a Service that selects the gateway pods."""
    # gateway.go IngressGatewayPortAnalyzer: TCP ports of the Services selecting the pods the
    # Gateway selects; a server port must be a targetPort (or a port) of one of them.
    selector = gw.spec.selector
    if not selector:
        return
    pods = ctx.pods_matching(None, selector)
    if not pods:
        return  # IL216 says so
    ports: set[int] = set()
    selecting = 0
    for d in pods:
        for svc in ctx.services:
            sel = svc.spec.selector
            if svc.namespace != d.namespace or not sel or not sel.items() <= d.pod_labels.items():
                continue
            selecting += 1
            for p in svc.spec.ports:
                if (p.protocol or "TCP").upper() != "TCP":
                    continue
                ports.add(p.port)
                if isinstance(p.target_port, int):
                    ports.add(p.target_port)
    if not selecting:
        return  # the gateway Service is not in the input
    for i, srv in enumerate(gw.spec.servers):
        if srv.port.number not in ports:
            ctx.add(
                "IL221",
                gw,
                ("spec", "servers", i, "port", "number"),
                f"port {srv.port.number} is not a port or targetPort of the Services that "
                f"select the gateway pods {selector} (they expose {sorted(ports)})",
                "add the port to the gateway Service, or use one it exposes (e.g. 8080 behind "
                "port 80)",
            )
