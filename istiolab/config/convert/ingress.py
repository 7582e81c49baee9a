"""Istio Ingresses (class ``istio``) → Gateways and gateway VirtualServices.

As Pilot 0.2's ``adapter/config/ingress/conversion.go`` and ``proxy/envoy/ingress.go``: which
paths are served at all, Pilot's path rule (:func:`ingress_path_match`), each path intersected
with the destination's ingress routes (``CombinePathPrefix``), the routes of a host ordered by
``RoutesByPath``, and the one certificate 0.2 served on port 443.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from typing import Any

from istiolab.config.convert.names import (
    API_VERSION,
    ISTIO_INGRESS_CLASS,
    _dns_label,
    _host_label,
    _service_fqdn,
    _split_fqdn,
)
from istiolab.config.convert.routerules import _RouteRuleConverter
from istiolab.config.convert.state import _VS, _Placed, _Route
from istiolab.config.k8s import IngressPath, IngressV1, IngressV1Beta1
from istiolab.findings import Severity
from istiolab.regex import full_match

LEGACY_INGRESS_SECRET = "istio-ingress-certs"
"""The secret Istio 0.2 mounted into the ingress pods and served on port 443."""

# Go's regexp.QuoteMeta escapes exactly these; Pilot 0.2 calls a path a regex when it has one.
_GO_REGEX_META = frozenset("\\.+*?()|[]{}^$")


# -- Pilot 0.2 algorithms, as pure functions -----------------------------------------------


def is_regular_expression(text: str) -> bool:
    """Pilot 0.2's ``isRegularExpression``: ``len(s) < len(regexp.QuoteMeta(s))``."""
    return any(c in _GO_REGEX_META for c in text)


def ingress_path_match(path: str, path_type: str | None = None) -> tuple[str, str] | None:
    """The URI match Istio's ingress makes of an Ingress path.

    ``pathType`` ``Exact``/``Prefix`` are used as they are. Otherwise Pilot 0.2's rule applies:
    ``""`` is prefix ``/``; a literal followed by ``.*`` is a prefix of the literal (so ``/.*`` is
    prefix ``/``); another regex is unsupported; a literal is an exact match.

    Returns:
        ``("exact", p)`` or ``("prefix", p)``, or None for a regex Istio cannot serve.
    """
    if path_type == "Exact":
        return ("exact", path or "/")
    if path_type == "Prefix":
        return ("prefix", path or "/")
    if path == "":
        return ("prefix", "/")
    if path.endswith(".*") and not is_regular_expression(path[:-2]):
        return ("prefix", path[:-2] or "/")
    if is_regular_expression(path):
        return None
    return ("exact", path)


def combine_path_prefix(
    ingress: tuple[str, str], route: tuple[str, str] | None
) -> tuple[str, str] | None:
    """Pilot 0.2's ``HTTPRoute.CombinePathPrefix``: a route's URI match narrowed to an Ingress path.

    Args:
        ingress: The Ingress path match, ``("exact" | "prefix", value)``.
        route: The route's URI match (exact or prefix); None means prefix ``/``.

    Returns:
        The match of requests that satisfy both, or None when no request can.
    """
    kind, value = route if route is not None else ("prefix", "/")
    ikind, ivalue = ingress
    if ikind == "prefix" and kind == "prefix":
        # the longer prefix wins when one is a prefix of the other
        if value.startswith(ivalue):
            return (kind, value)
        if ivalue.startswith(value):
            return (ikind, ivalue)
        return None
    if ikind == "exact" and kind == "exact":
        return (kind, value) if value == ivalue else None
    if ikind == "prefix":  # route exact
        return (kind, value) if value.startswith(ivalue) else None
    # ingress exact, route prefix: keep the path when the route's prefix covers it
    return (ikind, ivalue) if ivalue.startswith(value) else None


def routes_by_path_key(uri: tuple[str, str]) -> tuple[int, tuple[int, ...]]:
    """Sort key of Pilot 0.2's ``RoutesByPath``.

    Exact paths come first in ascending order, then prefixes in descending order, so a longer
    prefix sharing a stem comes before the shorter one. A uri regex counts as prefix ``/`` (Pilot
    kept it aside as a header condition).
    """
    kind, value = uri
    if kind == "exact":
        return (0, tuple(ord(c) for c in value))
    if kind != "prefix":
        value = "/"
    # descending: negated code points, and a longer string before its own prefix
    return (1, (*(-ord(c) for c in value), 1))


@dataclasses.dataclass
class _Entry:
    """One Istio Ingress path, resolved."""

    ingress: IngressV1Beta1 | IngressV1
    path: IngressPath
    uri: tuple[str, str]
    host: str
    port: int | None
    tls: bool


@functools.lru_cache(maxsize=256)
def _field(text: str) -> tuple[str | int, ...]:
    """``spec.rules[0].http.paths[1]`` → ``("spec", "rules", 0, "http", "paths", 1)``."""
    out: list[str | int] = []
    for part in text.split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i.rstrip("]")) for i in idx)
    return tuple(out)


class _IngressConverter(_RouteRuleConverter):
    # -- ingress ---------------------------------------------------------------------------

    def ingress_entries(self) -> list[_Entry]:
        out: list[_Entry] = []
        for ing in sorted(self.ingresses(), key=lambda i: (i.namespace, i.name)):
            cls = ing.ingress_class
            if cls != ISTIO_INGRESS_CLASS:
                self.note(
                    "IL307",
                    ing,
                    ("metadata", "annotations"),
                    f"ingress class {cls!r} is not 'istio': Istio's ingress controller (STRICT "
                    "mode) ignores this Ingress; it is kept unchanged",
                    "set the annotation kubernetes.io/ingress.class: istio if Istio should "
                    "serve it",
                )
                continue
            tls = bool(ing.spec.tls)
            if tls:
                self.note_tls(ing)
            for p in ing.paths():
                field = _field(p.field)
                uri = ingress_path_match(p.path, p.path_type)
                if uri is None:
                    self.note(
                        "IL304",
                        ing,
                        (*field, "path"),
                        f"path {p.path!r} is a regex: Istio's ingress turns only a trailing "
                        "'.*' after a literal into a prefix and rejected this path, so it is "
                        "skipped",
                        "use a literal path (exact match) or 'literal/.*' (prefix)",
                    )
                    continue
                fqdn = _service_fqdn(p.service, ing.namespace)
                served, port = self.ingress_port(ing, p, fqdn, field)
                if served:
                    out.append(_Entry(ing, p, uri, p.host or "*", port, tls))
        return out

    def note_tls(self, ing: IngressV1Beta1 | IngressV1) -> None:
        tls = ing.spec.tls or []
        secret = tls[0].secret_name or LEGACY_INGRESS_SECRET
        self.note(
            "IL306",
            ing,
            ("spec", "tls"),
            f"Istio 0.2 served every host of this Ingress on port 443 only, with the one "
            f"certificate of secret {LEGACY_INGRESS_SECRET!r} mounted in the ingress pods "
            f"(no SNI); the Gateway serves them on 443 with credentialName {secret!r}",
            f"create the TLS secret {secret!r} in the gateway pods' namespace",
            Severity.INFO,
        )
        for k in range(1, len(tls)):
            self.note(
                "IL306",
                ing,
                ("spec", "tls", k),
                f"tls[{k}] (secret {tls[k].secret_name!r}) is dropped: Istio 0.2 used only the "
                "first TLS entry",
                "serve one certificate per Gateway server if you need several",
            )

    def ingress_port(
        self,
        ing: IngressV1Beta1 | IngressV1,
        p: IngressPath,
        fqdn: str,
        field: tuple[str | int, ...],
    ) -> tuple[bool, int | None]:
        """``(served, port number)`` of an Ingress path; not served when Pilot 0.2 skipped it."""
        svc = self.services.get(fqdn)
        number = p.port if isinstance(p.port, int) else None
        if svc is None:
            return True, number
        port = next(
            (sp for sp in svc.spec.ports if (sp.port == number if number else sp.name == p.port)),
            None,
        )
        if port is None:
            self.note(
                "IL312",
                ing,
                (*field, "backend"),
                f"Service {p.service!r} has no port {p.port!r}: Pilot 0.2 skipped this path",
                "use a port of the Service",
            )
            return False, None
        # Pilot 0.2 took the protocol from the port name and served only HTTP-family ports.
        prefix = (port.name or "").split("-", 1)[0].lower()
        if prefix not in ("http", "http2", "grpc"):
            self.note(
                "IL312",
                ing,
                (*field, "backend"),
                f"port {port.port} of Service {p.service!r} is named {port.name!r}, which Istio "
                "0.2 took as TCP; its ingress served only HTTP ports and skipped this path",
                "name the Service port 'http' (or 'http-<suffix>')",
            )
            return False, None
        return True, port.port

    def ingress_list(self, fqdn: str) -> list[_Route]:
        if fqdn not in self.ingress_lists:
            self.ingress_lists[fqdn] = self.route_list(fqdn, ("all", "ingress"))
        return self.ingress_lists[fqdn]

    def build_ingress(self, entries: list[_Entry]) -> None:
        by_host: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
        for e in entries:
            by_host[(e.ingress.namespace, e.host)].append(e)
        hosts_of: dict[str, set[str]] = defaultdict(set)
        for e in entries:
            hosts_of[e.ingress.key].add(e.host)
        for (ns, host), group in by_host.items():
            first = group[0].ingress
            name = first.name
            if len(hosts_of[first.key]) > 1:
                name = f"{first.name}-{_host_label(host)}"
            gw_ns = self.gateway_namespace or ns
            ref = self.gateway_name if gw_ns == ns else f"{gw_ns}/{self.gateway_name}"
            vs = _VS(name, ns, [host], [ref], first, tls=any(e.tls for e in group))
            for e in group:
                if e.ingress not in vs.ingresses:
                    vs.ingresses.append(e.ingress)
            placed: list[tuple[tuple[str, str], _Placed]] = []
            for e in group:
                for route in self.ingress_list(_service_fqdn(e.path.service, ns)):
                    uri = self.combine(route, e)
                    if uri is None:
                        continue
                    placed.append((uri, self.render(route, ns, uri=uri, port=e.port, mesh=False)))
            # Pilot 0.2 sorted each virtual host's routes with RoutesByPath; Go's sort.Sort is
            # insertion sort (stable) below 12 routes, and Python's sort is stable.
            placed.sort(key=lambda item: routes_by_path_key(item[0]))
            vs.routes = [p for _, p in placed]
            if vs.routes:
                self.ingress_vss.append(vs)

    def combine(self, route: _Route, e: _Entry) -> tuple[str, str] | None:
        """The route's URI narrowed to the Ingress path, as Pilot 0.2's ``CombinePathPrefix``."""
        if route.uri is not None and route.uri[0] == "regex":
            # 0.2 kept a uri regex aside as a header condition and the route's prefix '/'.
            regex = route.uri[1]
            if e.uri == ("prefix", "/"):
                return ("regex", regex)
            if e.uri[0] == "exact":
                return e.uri if full_match(regex, e.uri[1]) else None
            assert route.rule is not None
            self.note(
                "IL306",
                route.rule,
                ("spec", "match", "request", "headers", "uri"),
                f"uri regex {regex!r} combined with Ingress {e.ingress.name!r} prefix "
                f"{e.uri[1]!r} cannot be written as one match; the route is dropped there",
                "use a uri prefix in the RouteRule",
            )
            return None
        return combine_path_prefix(e.uri, route.uri)

    def unused_ingress_rules(self, entries: list[_Entry]) -> None:
        served = {_service_fqdn(e.path.service, e.ingress.namespace) for e in entries}
        for rr in self.rules:
            route = self.converted[id(rr)]
            if route.scope == "ingress" and route.host not in served:
                self.note(
                    "IL312",
                    rr,
                    ("spec", "match", "source"),
                    f"the rule applies only at the ingress (source "
                    f"{self.profile.ingress_service!r}) but no Istio Ingress routes to "
                    f"{route.host}, so it has no effect and is not converted",
                    "add an Ingress with kubernetes.io/ingress.class: istio for this service, "
                    "or remove match.source",
                )

    def name_ingress_routes(self) -> None:
        """Make each route name stand for one service across the gateway.

        Route names are RouteRule names (``default`` for the default route) so that ``explain``
        can name the rule; a name shared by routes to different services (two ``default`` routes)
        gets the service name appended, and the namespace too when that is still ambiguous.
        """
        by_name: dict[str, set[str]] = defaultdict(set)
        for vs in self.ingress_vss:
            for p in vs.routes:
                by_name[p.data["name"]].add(p.origin.host)
        for vs in self.ingress_vss:
            for p in vs.routes:
                hosts = by_name[p.data["name"]]
                if len(hosts) < 2:
                    continue
                parts = _split_fqdn(p.origin.host) or (_dns_label(p.origin.host), "")
                same_short = [h for h in hosts if (_split_fqdn(h) or ("", ""))[0] == parts[0]]
                suffix = parts[0] if len(same_short) < 2 else "-".join(x for x in parts if x)
                p.data["name"] = f"{p.data['name']}-{suffix}"

    # -- Gateway ---------------------------------------------------------------------------

    def gateways(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        groups: dict[str, list[_VS]] = defaultdict(list)
        for vs in self.ingress_vss:
            groups[self.gateway_namespace or vs.namespace].append(vs)
        for gw_ns in sorted(groups):
            http_hosts: list[str] = []
            tls_hosts: list[str] = []
            for vs in groups[gw_ns]:
                target = tls_hosts if vs.tls else http_hosts
                for h in vs.hosts:
                    if h not in target:
                        target.append(h)
            servers: list[dict[str, Any]] = []
            if http_hosts:
                servers.append(
                    {
                        "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                        "hosts": ["*"] if "*" in http_hosts else http_hosts,
                    }
                )
            if tls_hosts:
                servers.append(
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": ["*"] if "*" in tls_hosts else tls_hosts,
                        "tls": {"mode": "SIMPLE", "credentialName": self.secret(groups[gw_ns])},
                    }
                )
            out.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "Gateway",
                    "metadata": self.meta(self.gateway_name, gw_ns),
                    "spec": {"selector": dict(self.gateway_selector), "servers": servers},
                }
            )
        return out

    def secret(self, vss: list[_VS]) -> str:
        """The certificate of a gateway: Pilot 0.2 served the smallest ``secret.namespace``."""
        secrets = sorted(
            (tls[0].secret_name or LEGACY_INGRESS_SECRET, ing.namespace)
            for vs in vss
            for ing in vs.ingresses
            for tls in [ing.spec.tls or []]
            if tls
        )
        return min(secrets, key=lambda s: f"{s[0]}.{s[1]}")[0] if secrets else LEGACY_INGRESS_SECRET
