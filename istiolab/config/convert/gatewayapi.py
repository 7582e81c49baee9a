"""VirtualService/Gateway ↔ Kubernetes Gateway API, with a finding for every loss.

Three conversions, each returning a :class:`GatewayAPIConversion` (the converted config set,
the findings, and which new Services stand for which DestinationRule subsets):

* :func:`to_gateway_api`: Istio Gateways become Gateway API Gateways (class ``istio``, one
  listener per server host); each VirtualService becomes an HTTPRoute (or several, 16 rules
  each) with ``parentRefs`` naming the listeners whose hosts it serves, its hosts as
  ``hostnames``, one rule per HTTP route in the same order, and ReferenceGrants for backends
  in another namespace. What the standard channel cannot say is a finding: fault injection,
  CORS, direct responses, regex rewrites, matches on authority/scheme/port/source (``IL315``);
  retries and mirror percentages, written in the experimental fields (``IL316``); Istio's
  string ``prefix`` against the path-element ``PathPrefix`` (``IL317``); and a later route the
  Gateway API's specificity order puts before an earlier one it overlaps (``IL318``).
* :func:`to_istio`: Gateway API Gateways and HTTPRoutes become Istio Gateways and one
  VirtualService per served hostname, whose ``http`` list is the Gateway API precedence order
  itself (first match wins there), with ``PathPrefix /a`` as the two matches ``exact /a`` and
  ``prefix /a/``; that reproduces the routing exactly. ``IL321`` lists what is left out.
* :func:`istiolab.config.convert.legacy_to_gateway_api`: Istio 0.2 RouteRules and Ingresses
  through :func:`istiolab.config.convert.convert`, then :func:`to_gateway_api`.

Everything else (Services, Deployments, DestinationRules, ...) passes through. The mapping of
fields follows the two APIs' definitions (istio/api ``networking/v1/virtual_service.proto``,
kubernetes-sigs/gateway-api ``apis/v1/httproute_types.go``) and istiod's own reading of the
Gateway API (istio/istio ``pilot/pkg/config/kube/gateway/conversion.go``), which is what makes
the inverse direction exact. :func:`istiolab.envoy.equivalence.check_equivalent` checks a
conversion on requests.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ValidationError

from istiolab.config.base import Resource
from istiolab.config.codecs import RawDocument
from istiolab.config.configset import ConfigSet
from istiolab.config.gatewayapi import V1, V1BETA1, GatewayClass, HTTPHeaderFilter
from istiolab.config.gatewayapi import Gateway as APIGateway
from istiolab.config.gatewayapi import HTTPRoute as APIRoute
from istiolab.config.gatewayapi import HTTPRouteMatch as APIMatch
from istiolab.config.gatewayapi import ReferenceGrant as APIGrant
from istiolab.config.gatewayapi_routing import (
    HTTP_PROTOCOLS,
    GatewayAPI,
    RankedMatch,
    normalized_path,
)
from istiolab.config.hosts import DOMAIN, fqdn, gateway_ref, hosts_intersect
from istiolab.config.k8s import Service
from istiolab.config.model import (
    NETWORKING_VERSIONS,
    DestinationRule,
    EnvoyFilter,
    Gateway,
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from istiolab.config.ratelimit import local_rate_limits
from istiolab.findings import Finding
from istiolab.profiles import get_profile
from istiolab.reprs import HTMLRepr

__all__ = [
    "GatewayAPIConversion",
    "PrefixMode",
    "to_gateway_api",
    "to_istio",
]

PrefixMode = Literal["path", "regex"]
"""How an Istio ``uri.prefix`` is converted: ``path`` (``PathPrefix``, path elements) or
``regex`` (``RegularExpression`` ``<prefix>.*``: the same requests; catch-alls become ``/.*``
too, since istiod ranks regexes after every PathPrefix, longer patterns first)."""

GATEWAY_CLASS = "istio"
MAX_RULES = 16  # httproute_types.go: rules MaxItems=16
_RETRY_ON_DEFAULT = "connect-failure,refused-stream,unavailable,cancelled"
_REDIRECT_CODES = (301, 302, 303, 307, 308)
_WHOLE_PATH = ("/.*", "^/.*$", ".*", "^.*$", "^/.*")


@dataclasses.dataclass(frozen=True)
class GatewayAPIConversion(HTMLRepr):
    """The result of a conversion to or from the Gateway API.

    Attributes:
        config: The converted resources, then every input resource that was not converted.
        findings: What could not be kept exactly (``IL315``-``IL321``), and, for a legacy
            input, the findings of the legacy conversion.
        backends: For each Service the conversion added for a DestinationRule subset, its
            FQDN → (the original host's FQDN, the subset): the same pods under a new name.
    """

    config: ConfigSet
    findings: tuple[Finding, ...]
    backends: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


def _slug(text: str) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower().replace("*", "wildcard")).strip("-")
    return out[:63].strip("-") or "x"


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


# -- VirtualService/Gateway → Gateway API ------------------------------------------------------


def to_gateway_api(config: ConfigSet, *, prefix_mode: PrefixMode = "path") -> GatewayAPIConversion:
    """Convert Istio Gateways and VirtualServices to Gateway API Gateways and HTTPRoutes.

    Args:
        config: A loaded config set (modern Istio resources; legacy ones pass through, see
            :func:`istiolab.config.convert.legacy_to_gateway_api`).
        prefix_mode: ``path`` turns ``uri.prefix`` into ``PathPrefix`` (what users mean, but
            ``/api`` then no longer matches ``/apiv2``: ``IL317``); ``regex`` keeps Istio's
            string prefix as a ``RegularExpression``.

    Returns:
        The converted config set, its findings and the Services added for subsets.

    Example:
        >>> from istiolab.config import loads
        >>> vs = '''
        ... apiVersion: networking.istio.io/v1
        ... kind: VirtualService
        ... metadata: {name: web}
        ... spec:
        ...   hosts: [web.example.com]
        ...   gateways: [gw]
        ...   http: [{route: [{destination: {host: web, port: {number: 80}}}]}]
        ... '''
        >>> [r.key for r in to_gateway_api(loads(vs)).config]
        ['HTTPRoute/default/web']
    """
    return _ToGatewayAPI(config, prefix_mode).run()


@dataclasses.dataclass
class _Built:
    match: dict[str, Any]
    http_index: int
    name: str


class _ToGatewayAPI:
    def __init__(self, config: ConfigSet, prefix_mode: PrefixMode) -> None:
        self.cs = config
        self.prefix_mode = prefix_mode
        self.findings: list[Finding] = []
        self.services = {(s.namespace, s.name): s for s in config.kind(Service)}
        self.drs = {fqdn(d.spec.host, d.namespace): d for d in config.kind(DestinationRule)}
        self.gateways = {(g.namespace, g.name): g for g in config.kind(Gateway)}
        self.listeners: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # what they are built from (for findings), and their documents
        self.grants: dict[tuple[str, str], tuple[Resource, dict[str, Any]]] = {}
        self.subset_services: dict[tuple[str, str], tuple[Resource, dict[str, Any]]] = {}
        self.backends: dict[str, tuple[str, str]] = {}
        self._exact_siblings: set[tuple[str, str]] = set()

    def note(
        self, code: str, res: Resource, path: Sequence[str | int], message: str, fix: str
    ) -> None:
        self.findings.append(self.cs.finding(code, res, path, message, fix))

    def build(self, cls: type[Resource], doc: dict[str, Any], source: Resource) -> Resource | None:
        """*doc* as a *cls*; a value the target schema refuses is a finding, not a crash."""
        try:
            return cls.model_validate(doc)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            self.note(
                "IL315",
                source,
                (),
                f"the converted {cls.KIND} {doc.get('metadata', {}).get('name')!r} is not "
                f"valid Gateway API ({where}: {err['msg'][:200]}); it is left out",
                "change the value so that the Gateway API accepts it, then convert again",
            )
            return None

    def run(self) -> GatewayAPIConversion:
        built: list[Resource | None] = []
        for gw in self.cs.kind(Gateway):
            built.append(self.build(APIGateway, self.gateway(gw), gw))
        for vs in self.cs.kind(VirtualService):
            built.extend(self.build(APIRoute, r, vs) for r in self.virtual_service(vs))
        for source, doc in self.subset_services.values():
            if doc:
                built.append(self.build(Service, doc, source))
        for source, doc in self.grants.values():
            built.append(self.build(APIGrant, doc, source))
        self.rate_limits()
        out = [r for r in built if r is not None]
        resources: list[Resource] = list(out)
        origins: list[RawDocument | None] = [None] * len(out)
        for r, o in zip(self.cs.resources, self.cs.origins, strict=True):
            if not isinstance(r, (Gateway, VirtualService)):
                resources.append(r)
                origins.append(o)
        return GatewayAPIConversion(
            ConfigSet(tuple(resources), tuple(origins)), tuple(self.findings), dict(self.backends)
        )

    def rate_limits(self) -> None:
        """``IL315`` for local rate limits on the gateway pods the Gateways selected.

        istiod deploys a Gateway API Gateway's own pods, labelled
        ``gateway.networking.k8s.io/gateway-name: <name>`` (istio/istio
        ``pilot/pkg/config/kube/gateway/deploymentcontroller.go``), so an EnvoyFilter that
        selects the Istio ingress gateway's labels no longer reaches them.
        """
        selectors = [(g, dict(g.spec.selector)) for g in self.cs.kind(Gateway)]
        for ef in self.cs.kind(EnvoyFilter):
            for spec in local_rate_limits(ef):
                hit = [
                    g
                    for g, sel in selectors
                    if spec.context in ("GATEWAY", "ANY") and spec.selector.items() <= sel.items()
                ]
                if not hit:
                    continue
                names = ", ".join(sorted({g.name for g in hit}))
                self.note(
                    "IL315",
                    ef,
                    ("spec", "configPatches", spec.patch_index),
                    f"this local rate limit applies to the pods of Gateway {names}; a Gateway API "
                    "Gateway gets pods of its own, labelled gateway.networking.k8s.io/"
                    "gateway-name, which the workloadSelector does not select (and istiolab does "
                    "not model rate limits on Gateway API gateways)",
                    "select gateway.networking.k8s.io/gateway-name: <Gateway name> in "
                    "workloadSelector, or use a rate limit policy of your gateway",
                )
                break

    # -- Gateway -------------------------------------------------------------------------------

    def gateway(self, gw: Gateway) -> dict[str, Any]:
        listeners: list[dict[str, Any]] = []
        used: set[str] = set()
        for i, server in enumerate(gw.spec.servers):
            proto = server.port.protocol.upper()
            tls = server.tls
            if tls is not None and tls.https_redirect:
                self.note(
                    "IL315",
                    gw,
                    ("spec", "servers", i, "tls", "httpsRedirect"),
                    "httpsRedirect has no listener field in the Gateway API; it is left out",
                    "add an HTTPRoute on the HTTP listener with a RequestRedirect to https",
                )
            for host in server.hosts:
                ns_part, _, name = host.rpartition("/")
                base = _slug(f"{server.name or proto.lower()}-{server.port.number}")
                lname, n = base, 2
                while lname in used:
                    lname, n = f"{base}-{n}", n + 1
                used.add(lname)
                listener: dict[str, Any] = {
                    "name": lname,
                    "port": server.port.number,
                    "protocol": proto if proto in ("HTTP", "HTTPS", "TLS", "TCP") else "HTTP",
                }
                if name != "*":
                    listener["hostname"] = name
                # Istio Gateways take VirtualServices from every namespace by default;
                # "ns/host" narrows that to one namespace ("." is the Gateway's own).
                if ns_part in ("", "*"):
                    listener["allowedRoutes"] = {"namespaces": {"from": "All"}}
                elif ns_part == ".":
                    listener["allowedRoutes"] = {"namespaces": {"from": "Same"}}
                else:
                    listener["allowedRoutes"] = {
                        "namespaces": {
                            "from": "Selector",
                            "selector": {"matchLabels": {"kubernetes.io/metadata.name": ns_part}},
                        }
                    }
                if proto in ("HTTPS", "TLS") and tls is not None:
                    mode = "Passthrough" if tls.mode == "PASSTHROUGH" else "Terminate"
                    t: dict[str, Any] = {"mode": mode}
                    if tls.credential_name:
                        t["certificateRefs"] = [{"name": tls.credential_name}]
                    listener["tls"] = t
                listeners.append(listener)
        self.listeners[(gw.namespace, gw.name)] = listeners
        return {
            "apiVersion": V1,
            "kind": "Gateway",
            "metadata": _drop_none({"name": gw.name, "namespace": gw.metadata.namespace}),
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
        }

    # -- VirtualService ------------------------------------------------------------------------

    def parent_refs(self, vs: VirtualService) -> list[dict[str, Any]]:
        refs: list[dict[str, Any]] = []
        gws = vs.spec.gateways or ["mesh"]
        for k, ref in enumerate(gws):
            if ref == "mesh":
                self.note(
                    "IL320",
                    vs,
                    ("spec", "gateways", k) if vs.spec.gateways else ("spec", "hosts"),
                    "a mesh VirtualService becomes an HTTPRoute on the Service (GAMMA), which "
                    "istiolab does not compile; its routing is not verified",
                    "check the mesh routes on a cluster, or bind the rules to a gateway",
                )
                for host in vs.spec.hosts:
                    full = fqdn(host, vs.namespace)
                    if full.endswith("." + DOMAIN):
                        name, ns = full.split(".")[:2]
                        refs.append(
                            _drop_none(
                                {
                                    "group": "",
                                    "kind": "Service",
                                    "name": name,
                                    "namespace": ns if ns != vs.namespace else None,
                                }
                            )
                        )
                continue
            ns, name = gateway_ref(ref, vs.namespace)
            listeners = self.listeners.get((ns, name))
            base = _drop_none({"name": name, "namespace": ns if ns != vs.namespace else None})
            if not listeners or len(listeners) == 1:
                refs.append(base)
                continue
            # One parentRef per listener that serves a host of the VirtualService: the
            # servers Istio binds it to.
            for listener in listeners:
                lhost = listener.get("hostname", "*")
                if listener["protocol"] not in HTTP_PROTOCOLS:
                    continue
                if any(hosts_intersect(lhost, h) for h in vs.spec.hosts):
                    refs.append({**base, "sectionName": listener["name"]})
        return refs

    def virtual_service(self, vs: VirtualService) -> list[dict[str, Any]]:
        for field in ("tls", "tcp"):
            if getattr(vs.spec, field):
                self.note(
                    "IL315",
                    vs,
                    ("spec", field),
                    f"{field} routes are not HTTPRoutes; they are left out",
                    f"write a {'TLSRoute' if field == 'tls' else 'TCPRoute'} (experimental)",
                )
        parents = self.parent_refs(vs)
        hostnames = [h for h in vs.spec.hosts if h != "*"]
        rules: list[dict[str, Any]] = []
        built: list[tuple[int, list[dict[str, Any]]]] = []
        for i, http in enumerate(vs.spec.http or []):
            for rule in self.rule(vs, http, i):
                rules.append(rule)
                built.append((i, rule.get("matches") or [{"path": {"type": "PathPrefix"}}]))
        self.precedence(vs, built)
        out = []
        chunks = [rules[k : k + MAX_RULES] for k in range(0, len(rules), MAX_RULES)] or [[]]
        for k, chunk in enumerate(chunks):
            # namespace/name breaks precedence ties between routes: zero-padded suffixes keep
            # the chunks in rule order
            name = vs.name if k == 0 else f"{vs.name}-{k:02d}"
            spec: dict[str, Any] = {"parentRefs": parents, "rules": chunk}
            if hostnames:
                spec["hostnames"] = hostnames
            out.append(
                {
                    "apiVersion": V1,
                    "kind": "HTTPRoute",
                    "metadata": _drop_none({"name": name, "namespace": vs.metadata.namespace}),
                    "spec": spec,
                }
            )
        return out

    def rule(self, vs: VirtualService, http: HTTPRoute, i: int) -> list[dict[str, Any]]:
        base: tuple[str | int, ...] = ("spec", "http", i)
        for field, what in (
            ("fault", "fault injection"),
            ("cors_policy", "a CORS policy"),
            ("delegate", "delegation"),
            ("direct_response", "a direct response"),
        ):
            if getattr(http, field) is not None:
                self.note(
                    "IL315",
                    vs,
                    (*base, _camel(field)),
                    f"{what} has no Gateway API standard field; it is left out, and requests "
                    "that met it now reach the route's backends",
                    "keep this route on a VirtualService, or drop the feature before migrating",
                )
        # "exact /a" next to "prefix /a/" (with the same other conditions) is what PathPrefix
        # /a means: that prefix loses nothing
        self._exact_siblings = {
            (_others(m), m.uri.exact) for m in http.match or [] if m.uri and m.uri.exact
        }
        matches = [self.match(vs, m, (*base, "match", j)) for j, m in enumerate(http.match or [])]
        kept = [m for m in matches if m is not None]
        if http.match and not kept:
            return []  # every match needs a field the Gateway API lacks: the route never fires
        filters: list[dict[str, Any]] = []
        filters += self.header_filters(http)
        backend_refs = self.backend_refs(vs, http, base)
        redirect = self.redirect(vs, http, base)
        if redirect is not None:
            filters.append(redirect)
            backend_refs = []
        filters += self.mirrors(vs, http, base)
        rule: dict[str, Any] = {}
        if http.name:
            rule["name"] = _slug(http.name)
        if backend_refs:
            rule["backendRefs"] = backend_refs
        timeouts = self.timeouts(http)
        if timeouts:
            rule["timeouts"] = timeouts
        retry = self.retry(vs, http, base)
        if retry is not None:
            rule["retry"] = retry
        rewrite = http.rewrite
        rr = rewrite.uri_regex_rewrite if rewrite is not None else None
        if rewrite is not None and rr is not None and rr.match in _WHOLE_PATH and rr.rewrite:
            # a regex that replaces the whole path is ReplaceFullPath
            rewrite = rewrite.model_copy(update={"uri": rr.rewrite, "uri_regex_rewrite": None})
            full_path = True
        else:
            full_path = False
        if rewrite is not None and rewrite.uri_regex_rewrite is not None:
            self.note(
                "IL315",
                vs,
                (*base, "rewrite", "uriRegexRewrite"),
                "a regex URI rewrite has no Gateway API field (URLRewrite takes a full path or "
                "a prefix); it is left out",
                "rewrite with ReplaceFullPath or ReplacePrefixMatch, or keep a VirtualService",
            )
        if rewrite is None or rewrite.uri is None:
            if rewrite is not None and rewrite.authority:
                filters.append(
                    {"type": "URLRewrite", "urlRewrite": {"hostname": rewrite.authority}}
                )
            if filters:
                rule["filters"] = filters
            if kept:
                rule["matches"] = kept
            elif self.prefix_mode == "regex":
                rule["matches"] = [{"path": self.catch_all()}]
            return [rule]
        # A URI rewrite depends on the match: ReplacePrefixMatch needs one PathPrefix match
        # (a CEL rule), ReplaceFullPath stands for an exact or regex match. One rule per match.
        out = []
        for m in kept or [{"path": self.catch_all()}]:
            path = m.get("path", {"type": "PathPrefix", "value": "/"})
            if path["type"] == "PathPrefix" and not full_path:
                mod = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite.uri}
            else:
                mod = {"type": "ReplaceFullPath", "replaceFullPath": rewrite.uri}
            url = _drop_none({"hostname": rewrite.authority, "path": mod})
            out.append(
                {
                    **rule,
                    "matches": [m],
                    "filters": [*filters, {"type": "URLRewrite", "urlRewrite": url}],
                }
            )
        return out

    def match(
        self, vs: VirtualService, m: HTTPMatchRequest, path: tuple[str | int, ...]
    ) -> dict[str, Any] | None:
        for field in (
            "scheme",
            "authority",
            "port",
            "source_labels",
            "gateways",
            "without_headers",
            "source_namespace",
        ):
            if getattr(m, field) is not None:
                self.note(
                    "IL315",
                    vs,
                    (*path, _camel(field)),
                    f"an HTTPRoute match has no {_camel(field)}; this match is left out",
                    "express it with hostnames, listeners or headers, or keep a VirtualService",
                )
                return None
        out: dict[str, Any] = {}
        if m.uri is None and self.prefix_mode == "regex":
            out["path"] = self.catch_all()
        if m.uri is not None:
            sibling = (_others(m), (m.uri.prefix or "").rstrip("/")) in self._exact_siblings
            p = self.path(vs, m.uri, (*path, "uri"), bool(m.ignore_uri_case), sibling)
            if p is None:
                return None
            out["path"] = p
        headers = []
        for name, sm in sorted((m.headers or {}).items()):
            h = self.string(vs, sm, (*path, "headers", name))
            if h is None:
                return None
            headers.append({"name": name, **h})
        if headers:
            out["headers"] = headers
        params = []
        for name, sm in sorted((m.query_params or {}).items()):
            q = self.string(vs, sm, (*path, "queryParams", name))
            if q is None:
                return None
            params.append({"name": name, **q})
        if params:
            out["queryParams"] = params
        if m.method is not None:
            if m.method.exact is None or m.method.exact not in (
                "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
            ):  # fmt: skip
                self.note(
                    "IL315",
                    vs,
                    (*path, "method"),
                    "an HTTPRoute matches one exact standard method; this match is left out",
                    "list one match per method",
                )
                return None
            out["method"] = m.method.exact
        return out

    def path(
        self,
        vs: VirtualService,
        sm: StringMatch,
        where: tuple[str | int, ...],
        ignore_case: bool,
        exact_sibling: bool = False,
    ) -> dict[str, Any] | None:
        if ignore_case:
            self.note(
                "IL315",
                vs,
                (*where[:-1], "ignoreUriCase"),
                "HTTPRoute paths are case-sensitive; ignoreUriCase is left out",
                "add a RegularExpression match with (?i), or list the spellings clients use",
            )
        if sm.exact is not None:
            return {"type": "Exact", "value": sm.exact}
        if sm.regex is not None:
            return {"type": "RegularExpression", "value": sm.regex}
        prefix = sm.prefix or "/"
        if prefix == "/":
            return self.catch_all()
        if prefix.endswith("/") and exact_sibling:
            return {"type": "PathPrefix", "value": prefix}
        if self.prefix_mode == "regex":
            return {"type": "RegularExpression", "value": re.escape(prefix) + ".*"}
        if prefix.endswith("/"):
            lost = f"now also matches {prefix.rstrip('/')!r} itself"
        else:
            lost = f"no longer matches {prefix + 'x'!r} or {prefix + '-v2/'!r}"
        self.note(
            "IL317",
            vs,
            (*where, "prefix"),
            f"Istio's prefix {prefix!r} is a string prefix; PathPrefix matches path elements "
            f"and {lost}",
            f"use RegularExpression {re.escape(prefix) + '.*'!r} (convert --prefix-mode regex) "
            "if clients send such paths",
        )
        return {"type": "PathPrefix", "value": prefix}

    def catch_all(self) -> dict[str, Any]:
        """Every path: ``PathPrefix /``, or with ``prefix_mode="regex"`` the regex ``/.*``.

        istiod ranks RegularExpression paths after every PathPrefix, by pattern length: with
        string prefixes as regexes, a ``PathPrefix /`` catch-all would take their requests.
        """
        if self.prefix_mode == "regex":
            return {"type": "RegularExpression", "value": "/.*"}
        return {"type": "PathPrefix", "value": "/"}

    def string(
        self, vs: VirtualService, sm: StringMatch, where: tuple[str | int, ...]
    ) -> dict[str, Any] | None:
        if sm.exact == "":
            self.note(
                "IL315",
                vs,
                where,
                "a Gateway API match value cannot be empty; this match is left out",
                "match a value, or the header's presence with the regex '.*'",
            )
            return None
        if sm.exact is not None:
            return {"value": sm.exact}
        if sm.regex is not None:
            if sm.regex == "*":  # istiod: a "*" regex is a presence match
                return {"type": "RegularExpression", "value": ".*"}
            return {"type": "RegularExpression", "value": sm.regex}
        if sm.prefix is not None:  # the same requests, as RE2
            return {"type": "RegularExpression", "value": re.escape(sm.prefix) + ".*"}
        return {"type": "RegularExpression", "value": ".*"}  # {}: present with any value

    def header_filters(self, http: HTTPRoute) -> list[dict[str, Any]]:
        out = []
        h = http.headers
        for side, ops in (
            ("request", h.request if h else None),
            ("response", h.response if h else None),
        ):
            if ops is None:
                continue
            mod = _drop_none(
                {
                    "set": [{"name": k, "value": v} for k, v in (ops.set or {}).items()],
                    "add": [{"name": k, "value": v} for k, v in (ops.add or {}).items()],
                    "remove": list(ops.remove or []),
                }
            )
            if mod:
                kind = "RequestHeaderModifier" if side == "request" else "ResponseHeaderModifier"
                field = "requestHeaderModifier" if side == "request" else "responseHeaderModifier"
                out.append({"type": kind, field: mod})
        return out

    def backend(
        self,
        vs: VirtualService,
        host: str,
        subset: str | None,
        port: int | None,
        where: tuple[str | int, ...],
    ) -> dict[str, Any]:
        full = fqdn(host, vs.namespace)
        if not full.endswith("." + DOMAIN) or full.count(".") != 4:
            self.note(
                "IL315",
                vs,
                (*where, "host"),
                f"{host!r} is not a Kubernetes Service; a Gateway API backendRef names a Service "
                "(Istio's kind Hostname is not portable), so it is written as one and will not "
                "resolve",
                "create a Service for it (an ExternalName Service for an external host)",
            )
            return _drop_none({"name": host.split(".")[0], "port": port})
        name, ns = full.split(".")[:2]
        svc = self.services.get((ns, name))
        if port is None and svc is not None and len(svc.spec.ports) == 1:
            port = svc.spec.ports[0].port
        if port is None:
            self.note(
                "IL315",
                vs,
                (*where, "port"),
                f"a backendRef needs a port and {host!r} has no single port to take",
                "give destination.port.number",
            )
        if subset:
            name = self.subset_service(vs, full, name, ns, subset, svc, where)
        if ns != vs.namespace:
            key = (vs.namespace, ns)
            if key not in self.grants:
                self.grants[key] = (
                    vs,
                    {
                        "apiVersion": V1BETA1,
                        "kind": "ReferenceGrant",
                        "metadata": {
                            "name": _slug(f"httproutes-from-{vs.namespace}"),
                            "namespace": ns,
                        },
                        "spec": {
                            "from": [
                                {
                                    "group": "gateway.networking.k8s.io",
                                    "kind": "HTTPRoute",
                                    "namespace": vs.namespace,
                                }
                            ],
                            "to": [{"group": "", "kind": "Service"}],
                        },
                    },
                )
        return _drop_none(
            {"name": name, "namespace": ns if ns != vs.namespace else None, "port": port}
        )

    def subset_service(
        self,
        vs: VirtualService,
        full: str,
        name: str,
        ns: str,
        subset: str,
        svc: Service | None,
        where: tuple[str | int, ...],
    ) -> str:
        new = _slug(f"{name}-{subset}")
        labels: dict[str, str] | None = None
        dr = self.drs.get(full)
        for s in (dr.spec.subsets or []) if dr is not None else []:
            if s.name == subset:
                labels = dict(s.labels or {})
        if (ns, new) not in self.subset_services:
            self.backends[f"{new}.{ns}.{DOMAIN}"] = (full, subset)
            if svc is None or labels is None:
                self.note(
                    "IL319",
                    vs,
                    (*where, "subset"),
                    f"subset {subset!r} of {full} becomes the Service {ns}/{new}, which the "
                    "conversion cannot write (the Service or the subset is not in the input)",
                    f"create the Service {ns}/{new} selecting the subset's pods",
                )
                self.subset_services[(ns, new)] = vs, {}
                return new
            self.note(
                "IL319",
                vs,
                (*where, "subset"),
                f"subset {subset!r} of {full} becomes the Service {ns}/{new} (selector "
                f"{ {**(svc.spec.selector or {}), **labels} }); the subset's traffic policy does "
                "not follow it",
                "move DestinationRule settings of the subset to a DestinationRule for the new host",
            )
            ports = [
                _drop_none({"name": p.name, "port": p.port, "targetPort": p.target_port})
                for p in svc.spec.ports
            ]
            self.subset_services[(ns, new)] = (
                vs,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": _drop_none(
                        {
                            "name": new,
                            "namespace": svc.metadata.namespace,
                            "labels": svc.metadata.labels or None,
                        }
                    ),
                    "spec": {"selector": {**(svc.spec.selector or {}), **labels}, "ports": ports},
                },
            )
        return new

    def backend_refs(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...]
    ) -> list[dict[str, Any]]:
        out = []
        dests = http.route or []
        for k, d in enumerate(dests):
            where = (*base, "route", k, "destination")
            port = d.destination.port.number if d.destination.port else None
            ref = self.backend(vs, d.destination.host, d.destination.subset, port, where)
            if len(dests) > 1:
                ref["weight"] = d.weight or 0
            if d.headers is not None:
                filters = self.header_filters(HTTPRoute(headers=d.headers))
                if filters:
                    ref["filters"] = filters
            out.append(ref)
        return out

    def redirect(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...]
    ) -> dict[str, Any] | None:
        r = http.redirect
        if r is None:
            return None
        code = r.redirect_code or 301
        if code not in _REDIRECT_CODES:
            self.note(
                "IL315",
                vs,
                (*base, "redirect", "redirectCode"),
                f"a RequestRedirect's statusCode is one of {_REDIRECT_CODES}, not {code}; 302 "
                "is written",
                "pick one of the codes the Gateway API allows",
            )
            code = 302
        spec = _drop_none(
            {
                "scheme": r.scheme,
                "hostname": r.authority,
                "port": r.port,
                "statusCode": code,
                "path": {"type": "ReplaceFullPath", "replaceFullPath": r.uri} if r.uri else None,
            }
        )
        return {"type": "RequestRedirect", "requestRedirect": spec}

    def mirrors(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...]
    ) -> list[dict[str, Any]]:
        items: list[tuple[Any, float | None, tuple[str | int, ...]]] = []
        if http.mirror is not None:
            pct = None
            if http.mirror_percentage is not None:
                pct = http.mirror_percentage.value
            elif http.mirror_percent is not None:
                pct = float(http.mirror_percent)
            items.append((http.mirror, pct, (*base, "mirror")))
        for k, m in enumerate(http.mirrors or []):
            pct = m.percentage.value if m.percentage is not None else None
            items.append((m.destination, pct, (*base, "mirrors", k, "destination")))
        out = []
        for dest, pct, where in items:
            port = dest.port.number if dest.port else None
            ref = self.backend(vs, dest.host, dest.subset, port, where)
            spec: dict[str, Any] = {"backendRef": ref}
            if pct is not None and pct < 100:
                self.note(
                    "IL316",
                    vs,
                    where,
                    f"a mirror of {pct:g} % needs the experimental RequestMirror percent field",
                    "install the experimental channel CRDs, or mirror every request",
                )
                if pct == int(pct):
                    spec["percent"] = int(pct)
                else:
                    spec["fraction"] = {"numerator": round(pct * 10_000), "denominator": 1_000_000}
            out.append({"type": "RequestMirror", "requestMirror": spec})
        return out

    def timeouts(self, http: HTTPRoute) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if http.timeout is not None:
            out["request"] = _gep2257(http.timeout)
        r = http.retries
        if (
            r is not None
            and r.per_try_timeout is not None
            and (r.attempts is None or r.attempts > 0)
        ):
            out["backendRequest"] = _gep2257(r.per_try_timeout)
        return out

    def retry(
        self, vs: VirtualService, http: HTTPRoute, base: tuple[str | int, ...]
    ) -> dict[str, Any] | None:
        r = http.retries
        if r is None:
            return None
        conditions = [c.strip() for c in (r.retry_on or "").split(",") if c.strip()]
        codes = [int(c) for c in conditions if c.isdigit()]
        others = [c for c in conditions if not c.isdigit()]
        lost = [c for c in others if c not in _RETRY_ON_DEFAULT.split(",")]
        message = "retries need the experimental HTTPRoute retry field"
        if lost:
            message += (
                f"; istiod retries on {_RETRY_ON_DEFAULT} plus status codes, so {lost} are lost"
            )
        self.note(
            "IL316",
            vs,
            (*base, "retries"),
            message,
            "install the experimental channel CRDs, or accept istiod's default retries",
        )
        return _drop_none(
            {
                "attempts": r.attempts if r.attempts is not None else 2,
                "codes": codes or None,
                "backoff": _gep2257(r.backoff) if r.backoff else None,
            }
        )

    def precedence(self, vs: VirtualService, built: list[tuple[int, list[dict[str, Any]]]]) -> None:
        """``IL318`` for a later route the Gateway API ranks before an earlier one it overlaps."""
        flat = [
            (i, APIMatch.model_validate(m), order)
            for order, (i, m) in enumerate((i, m) for i, ms in built for m in ms)
        ]
        said: set[tuple[int, int]] = set()
        for a_i, a, a_order in flat:
            for b_i, b, b_order in flat:
                if b_order <= a_order or b_i == a_i or (a_i, b_i) in said:
                    continue
                if not (_rank(b) < _rank(a) and _may_overlap(a, b)):
                    continue
                # another match of the same route that still ranks first takes those requests
                if any(
                    x_i == a_i and _rank(x) <= _rank(b) and _covers(x, a, b) for x_i, x, _ in flat
                ):
                    continue
                said.add((a_i, b_i))
                http = vs.spec.http or []
                a_name = http[a_i].name or f"http[{a_i}]"
                b_name = http[b_i].name or f"http[{b_i}]"
                self.note(
                    "IL318",
                    vs,
                    ("spec", "http", b_i),
                    f"route {b_name!r} comes after {a_name!r} in the VirtualService but the "
                    "Gateway API ranks it first (more specific); requests both match now go "
                    f"to {b_name!r}",
                    f"narrow {a_name!r} or {b_name!r} so they do not overlap, or accept the "
                    "new order",
                )


def _rank(m: APIMatch) -> tuple[int, int, int, int, int]:
    p = m.path
    kind = p.type if p is not None else "PathPrefix"
    value = normalized_path(p) if p is not None else "/"
    rank = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}[kind]
    return (
        -rank,
        -len(value),
        0 if m.method is not None else 1,
        -len(m.headers or []),
        -len(m.query_params or []),
    )


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _may_overlap(a: APIMatch, b: APIMatch) -> bool:
    """Whether some request can meet both matches (conservative: True when unsure)."""
    pa = (a.path.type, a.path.value) if a.path is not None else ("PathPrefix", "/")
    pb = (b.path.type, b.path.value) if b.path is not None else ("PathPrefix", "/")
    if "RegularExpression" not in (pa[0], pb[0]):
        if pa[0] == "Exact" and pb[0] == "Exact" and pa[1] != pb[1]:
            return False
        if pa[0] == "Exact" and pb[0] == "PathPrefix" and not _under(pa[1], pb[1]):
            return False
        if pb[0] == "Exact" and pa[0] == "PathPrefix" and not _under(pb[1], pa[1]):
            return False
        if pa[0] == pb[0] == "PathPrefix" and not (_under(pa[1], pb[1]) or _under(pb[1], pa[1])):
            return False
    if a.method and b.method and a.method != b.method:
        return False
    for mine, theirs in ((a.headers, b.headers), (a.query_params, b.query_params)):
        want = {x.name.lower(): x.value for x in mine or [] if x.type == "Exact"}
        for x in theirs or []:
            if x.type == "Exact" and want.get(x.name.lower(), x.value) != x.value:
                return False
    return True


def _covers(x: APIMatch, a: APIMatch, b: APIMatch) -> bool:
    """Whether *x* takes every request that meets both *a* and *b* (conservative: False)."""
    if x.model_dump(exclude={"path"}) != a.model_dump(exclude={"path"}):
        return False
    px = (x.path.type, x.path.value) if x.path is not None else ("PathPrefix", "/")
    pb = (b.path.type, b.path.value) if b.path is not None else ("PathPrefix", "/")
    if px[0] == "Exact":
        return pb == px
    if px[0] == "PathPrefix" and pb[0] in ("Exact", "PathPrefix"):
        return _under(pb[1].rstrip("/") or "/", px[1])
    return False


def _others(m: HTTPMatchRequest) -> str:
    """A match's conditions other than the path, as a comparable key."""
    return repr(sorted(m.model_dump(exclude={"uri", "name"}, exclude_none=True).items()))


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(w.title() for w in rest)


def _gep2257(duration: str) -> str:
    """An Istio duration (``1.5s``, ``100ms``) as a GEP-2257 one (``1500ms``)."""
    from istiolab.units import parse_duration

    return _gep2257_ms(round(parse_duration(duration) * 1000))


def _gep2257_ms(ms: int) -> str:
    """Milliseconds as GEP-2257 (at most 5 digits per unit: ``100000s`` is ``27h46m40s``)."""
    if ms < 100_000:
        return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec, milli = divmod(rest, 1000)
    out = "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s"), (milli, "ms")) if v)
    return out or "0s"


# -- Gateway API → VirtualService/Gateway ------------------------------------------------------


def to_istio(config: ConfigSet) -> GatewayAPIConversion:
    """Convert Gateway API Gateways and HTTPRoutes to Istio Gateways and VirtualServices.

    For clusters without the Gateway API CRDs. Each Gateway of istiod's class becomes an Istio
    Gateway selecting the ingress gateway pods; for every hostname it serves, one
    VirtualService lists the matches of all attached routes in the Gateway API's precedence
    order, so the first match of the VirtualService is the one the Gateway API picks.

    Args:
        config: A loaded config set with Gateway API resources.

    Returns:
        The converted config set and the findings (``IL321``).
    """
    return _ToIstio(config).run()


class _ToIstio:
    def __init__(self, config: ConfigSet) -> None:
        self.cs = config
        self.api = GatewayAPI(config)
        self.findings: list[Finding] = []
        self.selector = dict(get_profile(None).gateway_selector)
        self._said: set[tuple[str, tuple[str | int, ...]]] = set()

    def note(self, res: Resource, path: Sequence[str | int], message: str, fix: str) -> None:
        key = (res.key, tuple(path))
        if key not in self._said:
            self._said.add(key)
            self.findings.append(self.cs.finding("IL321", res, path, message, fix))

    def run(self) -> GatewayAPIConversion:
        out: list[Resource] = []
        gws = self.api.istio_gateways()
        for gw in gws:
            out.extend(self.build(Gateway, self.gateway(gw), gw))
        for gw in gws:
            for v in self.virtual_services(gw):
                out.extend(self.build(VirtualService, v, gw))
        converted = {id(g) for g in gws}
        for r in self.cs.kind(APIRoute):
            if any((p.kind or "Gateway") == "Service" for p in r.spec.parent_refs or []):
                self.note(
                    r,
                    ("spec", "parentRefs"),
                    "a mesh (GAMMA) HTTPRoute is not converted",
                    "write a mesh VirtualService for the Service",
                )
        resources: list[Resource] = list(out)
        origins: list[RawDocument | None] = [None] * len(out)
        for res, o in zip(self.cs.resources, self.cs.origins, strict=True):
            if id(res) in converted or isinstance(res, (APIRoute, APIGrant, GatewayClass)):
                continue
            resources.append(res)
            origins.append(o)
        return GatewayAPIConversion(
            ConfigSet(tuple(resources), tuple(origins)), tuple(self.findings)
        )

    def build(self, cls: type[Resource], doc: dict[str, Any], source: Resource) -> list[Resource]:
        """*doc* as a *cls*, or a finding when Istio's schema refuses a value."""
        try:
            return [cls.model_validate(doc)]
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            self.note(
                source,
                (),
                f"the converted {cls.KIND} {doc.get('metadata', {}).get('name')!r} is not a "
                f"valid Istio resource ({where}: {err['msg'][:200]}); it is left out",
                "change the value so that Istio accepts it, then convert again",
            )
            return []

    def gateway(self, gw: APIGateway) -> dict[str, Any]:
        servers = []
        for listener in gw.spec.listeners:
            proto = listener.protocol.upper()
            server: dict[str, Any] = {
                "port": {"number": listener.port, "name": _slug(listener.name), "protocol": proto},
                "hosts": [listener.hostname or "*"],
            }
            tls = listener.tls
            if tls is not None:
                t: dict[str, Any] = {
                    "mode": "PASSTHROUGH" if tls.mode == "Passthrough" else "SIMPLE"
                }
                if tls.certificate_refs:
                    t["credentialName"] = tls.certificate_refs[0].name
                server["tls"] = t
            servers.append(server)
        return {
            "apiVersion": NETWORKING_VERSIONS[-1],
            "kind": "Gateway",
            "metadata": _drop_none({"name": gw.name, "namespace": gw.metadata.namespace}),
            "spec": {"selector": dict(self.selector), "servers": servers},
        }

    def virtual_services(self, gw: APIGateway) -> list[dict[str, Any]]:
        ports = sorted({x.port for x in gw.spec.listeners if x.protocol.upper() in HTTP_PROTOCOLS})
        by_host: dict[str, list[RankedMatch]] = {}
        for port in ports:
            for host, routes in self.api.virtual_hosts(port, [gw]).items():
                if host not in by_host:
                    by_host[host] = self.api.ranked(routes)
        out = []
        names: set[str] = set()
        for host, ranked in sorted(by_host.items()):
            http = [h for m in ranked for h in self.http(m)]
            contributing = {m.route.key for m in ranked}
            only = ranked[0].route if len(contributing) == 1 and ranked else None
            if only is not None and len(only.spec.hostnames or []) <= 1:
                name = only.name
            else:
                name = _slug(f"{gw.name}-{host}")
            while name in names:
                name += "-x"
            names.add(name)
            ns = gw.namespace
            if only is not None:
                ns = only.namespace
            vs = {
                "apiVersion": NETWORKING_VERSIONS[-1],
                "kind": "VirtualService",
                "metadata": _drop_none(
                    {"name": name, "namespace": ns if ns != "default" else None}
                ),
                "spec": {
                    "hosts": [host],
                    "gateways": [f"{gw.namespace}/{gw.name}" if gw.namespace != ns else gw.name],
                    "http": http,
                },
            }
            out.append(vs)
        return out

    def http(self, m: RankedMatch) -> list[dict[str, Any]]:
        route, rule = m.route, m.rule
        base: tuple[str | int, ...] = ("spec", "rules", m.rule_index)
        name = rule.name or f"{route.name}-{m.rule_index}"
        if len(rule.matches or []) > 1:  # each match is its own entry, in precedence order
            name = f"{name}-{m.match_index}"
        entry: dict[str, Any] = {"name": name}
        filters = {f.type: f for f in rule.filters or []}
        for k, f in enumerate(rule.filters or []):
            if f.type in ("ExtensionRef", "CORS"):
                self.note(
                    route,
                    (*base, "filters", k),
                    f"the {f.type} filter has no VirtualService equivalent here; it is left out",
                    "write a corsPolicy or an EnvoyFilter by hand",
                )
        headers = {}
        if "RequestHeaderModifier" in filters:
            headers["request"] = _ops(filters["RequestHeaderModifier"].request_header_modifier)
        if "ResponseHeaderModifier" in filters:
            headers["response"] = _ops(filters["ResponseHeaderModifier"].response_header_modifier)
        headers = {k: v for k, v in headers.items() if v}
        if headers:
            entry["headers"] = headers
        rr = filters.get("RequestRedirect")
        if rr is not None and rr.request_redirect is not None:
            red = rr.request_redirect
            uri = None
            if red.path is not None:
                if red.path.type == "ReplaceFullPath":
                    uri = red.path.replace_full_path
                else:
                    self.note(
                        route,
                        (*base, "filters"),
                        "a redirect's ReplacePrefixMatch has no VirtualService field; the "
                        "redirect keeps the path",
                        "use ReplaceFullPath",
                    )
            entry["redirect"] = _drop_none(
                {
                    "uri": uri,
                    "authority": red.hostname,
                    "port": red.port,
                    "scheme": red.scheme,
                    "redirectCode": red.status_code or 302,
                }
            )
        else:
            dests = self.destinations(m, base)
            if dests:
                entry["route"] = dests
            else:
                # conversion.go: no backend with weight > 0 answers 500
                entry["directResponse"] = {"status": 500}
            mirrors = []
            for f in rule.filters or []:
                if f.type != "RequestMirror" or f.request_mirror is None:
                    continue
                b = self.api.backend(route, f.request_mirror.backend_ref)
                if b.reason is not None:
                    continue  # istiod leaves an unresolved mirror out as well
                pm: dict[str, Any] = {"destination": _dest(b.host, b.port)}
                fm = f.request_mirror
                if fm.fraction is not None:
                    pm["percentage"] = {
                        "value": 100.0 * fm.fraction.numerator / fm.fraction.denominator
                    }
                elif fm.percent is not None:
                    pm["percentage"] = {"value": float(fm.percent)}
                mirrors.append(pm)
            if mirrors:
                entry["mirrors"] = mirrors
            self.policies(entry, rule)
        matches = _istio_matches(m.match)
        rw = filters.get("URLRewrite")
        rewrite = rw.url_rewrite if rw is not None else None
        if rewrite is None or rewrite.path is None:
            if rewrite is not None and rewrite.hostname:
                entry["rewrite"] = {"authority": rewrite.hostname}
            return [{**entry, "match": matches}]
        out = []
        for k, im in enumerate(matches):
            rw_spec: dict[str, Any] = {}
            if rewrite.hostname:
                rw_spec["authority"] = rewrite.hostname
            if rewrite.path.type == "ReplaceFullPath":
                if im["uri"].keys() == {"exact"}:
                    rw_spec["uri"] = rewrite.path.replace_full_path or "/"
                else:
                    rw_spec["uriRegexRewrite"] = {
                        "match": "/.*",
                        "rewrite": rewrite.path.replace_full_path or "/",
                    }
            else:
                # istiod trims the replacement's trailing "/"; "/a" as two matches: exact "/a"
                # → new; prefix "/a/" → new + "/" (the "/" after the prefix stays, as
                # ReplacePrefixMatch keeps it)
                new = (rewrite.path.replace_prefix_match or "/").rstrip("/")
                if "prefix" in im["uri"] and im["uri"]["prefix"] != "/":
                    new += "/"
                rw_spec["uri"] = new or "/"
            out.append(
                {
                    **entry,
                    "name": f"{name}-{k}" if len(matches) > 1 else name,
                    "match": [im],
                    "rewrite": rw_spec,
                }
            )
        return out

    def destinations(self, m: RankedMatch, base: tuple[str | int, ...]) -> list[dict[str, Any]]:
        route, rule = m.route, m.rule
        refs = [
            (k, b)
            for k, b in enumerate(rule.backend_refs or [])
            if b.weight is None or b.weight > 0
        ]
        out = []
        for k, ref in refs:
            b = self.api.backend(route, ref)
            if b.reason is not None:
                self.note(
                    route,
                    (*base, "backendRefs", k),
                    f"backendRef does not resolve ({b.message}); the Gateway API answers 500 for "
                    "its share, a VirtualService has no such destination, so it is left out",
                    "fix the backendRef",
                )
                continue
            d: dict[str, Any] = {"destination": _dest(b.host, b.port)}
            if len(refs) > 1:
                d["weight"] = b.weight
            if ref.filters:
                hf = {f.type: f for f in ref.filters}
                h = {}
                if "RequestHeaderModifier" in hf:
                    h["request"] = _ops(hf["RequestHeaderModifier"].request_header_modifier)
                if "ResponseHeaderModifier" in hf:
                    h["response"] = _ops(hf["ResponseHeaderModifier"].response_header_modifier)
                if any(h.values()):
                    d["headers"] = {k2: v for k2, v in h.items() if v}
            out.append(d)
        return out

    def policies(self, entry: dict[str, Any], rule: Any) -> None:
        from istiolab.config.gatewayapi import gateway_seconds

        t = rule.timeouts
        timeout = None
        per_try = None
        if t is not None and t.request and gateway_seconds(t.request) > 0:
            timeout = gateway_seconds(t.request)
        if t is not None and t.backend_request and gateway_seconds(t.backend_request) > 0:
            per_try = gateway_seconds(t.backend_request)
        if rule.retry is not None:
            codes = [str(c) for c in rule.retry.codes or []]
            attempts = rule.retry.attempts if rule.retry.attempts is not None else 2
            retries: dict[str, Any] = {"attempts": attempts}
            if attempts:
                retries["retryOn"] = ",".join([_RETRY_ON_DEFAULT, *codes])
            if per_try is not None:
                retries["perTryTimeout"] = _istio_duration(per_try)
            if rule.retry.backoff and gateway_seconds(rule.retry.backoff) > 0:
                retries["backoff"] = _istio_duration(gateway_seconds(rule.retry.backoff))
            entry["retries"] = retries
        elif per_try is not None:
            timeout = per_try  # istiod: without retry, backendRequest is the route timeout
        if timeout is not None:
            entry["timeout"] = _istio_duration(timeout)


def _istio_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _dest(host: str, port: int) -> dict[str, Any]:
    return {"host": host, "port": {"number": port}}


def _ops(f: HTTPHeaderFilter | None) -> dict[str, Any]:
    if f is None:
        return {}
    out: dict[str, Any] = {}
    for field in ("set", "add"):
        items: dict[str, str] = {}
        for h in getattr(f, field) or []:
            items.setdefault(h.name.lower(), h.value)  # conversion.go: the first name wins
        if items:
            out[field] = items
    if f.remove:
        out["remove"] = list(f.remove)
    return out


def _string(type_: str, value: str) -> dict[str, str]:
    return {"regex": value} if type_ == "RegularExpression" else {"exact": value}


def _istio_matches(m: APIMatch) -> list[dict[str, Any]]:
    """One Gateway API match as Istio matches: a ``PathPrefix`` other than ``/`` is two."""
    common: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    for h in m.headers or []:
        headers.setdefault(h.name.lower(), _string(h.type, h.value))
    if headers:
        common["headers"] = headers
    params: dict[str, Any] = {}
    for q in m.query_params or []:
        params.setdefault(q.name, _string(q.type, q.value))
    if params:
        common["queryParams"] = params
    if m.method is not None:
        common["method"] = {"exact": m.method}
    p = m.path
    if p is None or p.type == "PathPrefix":
        value = normalized_path(p) if p is not None else "/"
        if value == "/":
            return [{"uri": {"prefix": "/"}, **common}]
        return [{"uri": {"exact": value}, **common}, {"uri": {"prefix": value + "/"}, **common}]
    if p.type == "Exact":
        return [{"uri": {"exact": p.value}, **common}]
    return [{"uri": {"regex": p.value}, **common}]
