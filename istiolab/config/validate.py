"""Semantic validation: everything that is wrong with a config set beyond its schema.

``validate(config_set, profile)`` returns the load findings (syntax, schema, unknown kinds) plus
the semantic ones, each with a stable code (see :mod:`istiolab.findings`). It never raises on user
input. Suppression: ``suppress=`` codes, and the ``istiolab.io/suppress`` annotation per resource.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from istiolab.config.aws_checks import aws_findings
from istiolab.config.base import Check, Resource, camel, checked_values
from istiolab.config.checks import FAMILIES, Context
from istiolab.config.checks.context import GatewayHosts
from istiolab.config.configset import ConfigSet
from istiolab.config.convert.ingress import ingress_path_match
from istiolab.config.gatewayapi_checks import gateway_api_findings
from istiolab.config.hosts import fqdn, gateway_ref
from istiolab.config.k8s import IngressV1, IngressV1Beta1, Service
from istiolab.config.legacy import (
    DestinationPolicy,
    MemQuota,
    MixerRule,
    QuotaInstance,
    QuotaSpec,
    QuotaSpecBinding,
    RouteRule,
)
from istiolab.config.model import (
    DestinationRule,
    EnvoyFilter,
    HTTPRoute,
    VirtualService,
)
from istiolab.config.registry import path_str
from istiolab.findings import Finding
from istiolab.limits import truncate
from istiolab.profiles import IstioProfile, get_profile
from istiolab.regex import ENVOY_MAX_PROGRAM_SIZE, ENVOY_PROGRAM_SIZE_KEY, RegexError, program_size

# percent; Envoy FractionalPercent per million. istio/istio pkg/config/validation/validation.go
# validatePercentage refuses a value in (0, 0.0001) ("neither 0.0, nor in range [0.0001, 100.0]")
FAULT_RESOLUTION = 0.0001

# RFC 9110 §5.6.2 token: what a header field name is (no space, colon, CR, LF or NUL).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# HTTP/2 pseudo-headers Envoy's header matchers (and hash policies) see; operations may only set
# :authority, which Istio turns into the host rewrite.
PSEUDO_HEADERS = frozenset({":authority", ":method", ":path", ":scheme"})
_HEADER_VALUE_BAD = re.compile(r"[\r\n\x00]")
# Kubernetes names (k8s.io/apimachinery/pkg/util/validation/validation.go)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL.pattern}(\.{_DNS1123_LABEL.pattern})*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclasses.dataclass(frozen=True)
class _NameRule:
    pattern: re.Pattern[str]
    size: int
    what: str
    chars: str
    example: str


_SUBDOMAIN = _NameRule(
    _DNS1123_SUBDOMAIN,
    253,
    "an RFC 1123 subdomain",
    "lower-case letters, digits, '-' and '.', each part between dots starting and ending with a "
    "letter or digit",
    "'web-api' or 'web.v2'",
)
_LABEL = _NameRule(
    _DNS1123_LABEL,
    63,
    "an RFC 1123 label",
    "lower-case letters, digits and '-', starting and ending with a letter or digit",
    "'shop'",
)
_SERVICE_NAME = _NameRule(
    _DNS1035_LABEL,
    63,
    "an RFC 1035 label",
    "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
    "'web-api'",
)


def validate(
    config: ConfigSet,
    profile: IstioProfile | str | None = None,
    *,
    suppress: Iterable[str] = (),
) -> list[Finding]:
    """Check a config set and return every finding (load findings included), sorted by location.

    Args:
        config: The config set (from :func:`istiolab.config.load`).
        profile: Istio version whose rules apply (default: newest); legacy checks use 0.2 rules.
        suppress: Codes to drop everywhere.

    Returns:
        Findings, sorted by file and line; suppressed codes removed.
    """
    prof = get_profile(profile)
    v = _Validator(config, prof)
    v.run()
    drop = {c.strip().upper() for c in suppress if c.strip()}
    by_key: dict[str, frozenset[str]] = {r.key: r.suppressed for r in config}
    out = [
        f
        for f in (*config.findings, *v.findings)
        if f.code not in drop and f.code not in by_key.get(f.resource, frozenset())
    ]
    out.sort(key=lambda f: (f.file or "", f.line or 0))
    return out


class _Validator:
    def __init__(self, config: ConfigSet, profile: IstioProfile) -> None:
        self.cs = config
        self.profile = profile
        # partial resources (schema errors taken out) are checked too: one pass, every problem
        self.ctx = Context(config, profile)
        self.findings: list[Finding] = self.ctx.findings
        self.services = self.ctx.services
        self.deployments = self.ctx.deployments
        self.drs = self.ctx.drs
        self.gateways = self.ctx.gateways

    def add(
        self, code: str, res: Resource, path: Sequence[str | int], message: str, fix: str
    ) -> None:
        self.ctx.add(code, res, path, message, fix)

    def add_quoted(
        self, code: str, res: Resource, path: Sequence[str | int], message: str, fix: str
    ) -> None:
        """:meth:`add` for a path that may end in a user's key: shown quoted and bounded."""
        f = self.cs.finding(code, res, path, message, fix)
        saved = self.cs.salvaged(res)
        if saved is not None:
            path = saved.document_path(path)
        shown = [p if isinstance(p, int) or _plain_key(p) else _shown(p) for p in path]
        self.findings.append(dataclasses.replace(f, path=path_str(shown)))

    def run(self) -> None:
        self.duplicates()
        for r in self.ctx.resources:
            self.names(r)
            self.values(r)
        for vs in self.ctx.virtual_services:
            self.virtual_service(vs)
        for dr in self.drs:
            self.destination_rule(dr)
        for family in FAMILIES:
            family(self.ctx)
        rules = self.cs.kind(RouteRule)
        for rr in rules:
            self.route_rule(rr)
        self.precedence_ties(rules)
        for dp in self.cs.kind(DestinationPolicy):
            self.destination_policy(dp)
        for ing in self.cs.kind(IngressV1Beta1):
            self.ingress(ing)
        for ing_v1 in self.cs.kind(IngressV1):
            self.ingress(ing_v1)
        for ef in self.cs.kind(EnvoyFilter):
            self.envoy_filter(ef)
        for mq in self.cs.kind((MemQuota, QuotaInstance, MixerRule, QuotaSpec, QuotaSpecBinding)):
            if isinstance(mq, MemQuota):
                self.add(
                    "IL308",
                    mq,
                    ("spec", "quotas"),
                    f"memquota {mq.name!r} is modelled as a token bucket per quota "
                    "(maxAmount tokens refilled every validDuration)",
                    "convert it to a local rate limit EnvoyFilter (istiolab convert) for "
                    "Istio ≥ 1.x",
                )
        for r in self.cs:
            self.header_text(r)
        self.findings.extend(gateway_api_findings(self.cs))  # IL6xx: config/gatewayapi_checks
        self.findings.extend(aws_findings(self.cs))  # IL65x: config/aws_checks

    # -- control characters in request text (IL109) ----------------------------------------
    # Envoy's route proto gives the values it sends (host_redirect, path_redirect,
    # prefix_rewrite, host_rewrite_literal, headers_to_add) the HTTP_HEADER_VALUE rule and
    # refuses CR, LF and NUL (api/envoy/config/route/v3/route_components.proto,
    # api/envoy/config/core/v3/base.proto); RFC 9110 §5.5 allows no other control character
    # but tab in a field value, and a match value with one can never match a request Envoy
    # accepted. The schema-marked header operation values are checked for CR, LF and NUL in
    # values(); this adds the other control characters there, and every match, redirect and
    # rewrite value.

    _HEADER_TEXT_FIELDS = (  # (model class name, its fields)
        ("StringMatch", ("exact", "prefix")),
        ("LegacyStringMatch", ("exact", "prefix")),
        ("HTTPRedirect", ("uri", "authority", "scheme")),
        ("HTTPRedirectLegacy", ("uri", "authority")),
        ("HTTPRewrite", ("uri", "authority")),
        ("HTTPRewriteLegacy", ("uri", "authority")),
        ("RegexRewrite", ("rewrite",)),
        ("HeaderOperations", ("set", "add")),  # marked HeaderValue: CR, LF, NUL done in values()
        ("RouteRuleSpec", ("append_headers",)),  # marked HeaderValue, likewise
    )

    def header_text(self, r: Resource) -> None:
        """IL109 for a control character in a value Envoy sends or matches as request text."""
        for path, value, marked in self._header_text_values((), r):
            bad = re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value)
            if bad is None or (marked and bad.group() in "\r\n\x00"):
                continue  # a marked value's CR, LF or NUL is already reported by values()
            self.add_quoted(
                "IL109",
                r,
                path,
                f"value {_shown(value)} contains {bad.group()!r}: a value Envoy sends or matches "
                "as request text may not contain CR, LF, NUL or another control character "
                "(RFC 9110 field values allow only tab)",
                "remove the control characters (a request never carries them; to send two "
                "headers, write two entries)",
            )

    @classmethod
    def _header_text_values(
        cls, path: tuple[str | int, ...], node: object
    ) -> Iterable[tuple[tuple[str | int, ...], str, bool]]:
        """Every string of a :attr:`_HEADER_TEXT_FIELDS` field under *node*, with its path."""
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from cls._header_text_values((*path, i), item)
        elif isinstance(node, dict):
            for key, item in node.items():
                yield from cls._header_text_values((*path, str(key)), item)
        elif isinstance(node, BaseModel):
            # only the fields that are, or can hold, a listed field are walked
            for name, key, wanted in _text_plan(type(node)):
                value = getattr(node, name)
                if value is None:
                    continue
                where = (*path, key)
                if not wanted:
                    yield from cls._header_text_values(where, value)
                elif isinstance(value, str):
                    yield where, value, False
                elif isinstance(value, dict):
                    for k, item in value.items():
                        if isinstance(item, str):
                            yield (*where, str(k)), item, True

    # -- generic ---------------------------------------------------------------------------

    def duplicates(self) -> None:
        seen: dict[tuple[str, str, str], Resource] = {}
        for r in self.ctx.resources:
            # Ingress versions share a kind (extensions and networking.k8s.io serve one object);
            # so do the networking.istio.io versions. An Istio Gateway and a Gateway API Gateway
            # share the kind but are two objects.
            gateway_api = r.api_version.startswith("gateway.networking.k8s.io/")
            k = (f"{r.kind}.gateway-api" if gateway_api else r.kind, r.namespace, r.name)
            if k in seen:
                first = self.cs.origin(seen[k])
                where = f" (first at {first.file}:{first.line})" if first and first.file else ""
                self.add(
                    "IL205",
                    r,
                    ("metadata", "name"),
                    f"{r.kind} {r.namespace}/{r.name!s} is defined twice{where}",
                    "rename one of them or remove the duplicate",
                )
            else:
                seen[k] = r

    def names(self, r: Resource) -> None:
        """``metadata.name`` and ``metadata.namespace`` as the API server validates them."""
        # Service: NameIsDNS1035Label (core/v1 validation); namespaces: DNS-1123 label; every
        # other kind here (Deployment, Ingress, and custom resources): DNS-1123 subdomain.
        name_rule = _SERVICE_NAME if isinstance(r, Service) else _SUBDOMAIN
        checks = (
            ("name", r.metadata.name, name_rule),
            ("namespace", r.metadata.namespace, _LABEL),
        )
        for key, value, rule in checks:
            problem = _name_problem(value, rule) if value else None
            if problem:
                what = f"{r.kind} name" if key == "name" else "namespace"
                self.add(
                    "IL110",
                    r,
                    ("metadata", key),
                    f"{what} {_shown(value)} is not {rule.what}: {problem}",
                    f"rename it: {rule.chars}, at most {rule.size} characters, e.g. {rule.example}",
                )

    def values(self, r: Resource) -> None:
        """Header names and values, and Envoy's limit on regexes, in every field of *r*."""
        for path, value, check in checked_values(r):
            if check is Check.ENVOY_REGEX:
                self.regex_size(r, path, value)
                continue
            if check is Check.HEADER_VALUE:
                bad = _HEADER_VALUE_BAD.search(value)
                if bad:
                    self.add_quoted(
                        "IL109",
                        r,
                        path,
                        f"header value {_shown(value)} contains {bad.group()!r}: a header value "
                        "may not contain CR, LF or NUL",
                        "remove the control characters (to send two headers, write two entries)",
                    )
                continue
            allowed = PSEUDO_HEADERS if check is Check.HEADER_MATCH_NAME else {":authority"}
            if value in allowed or _TOKEN.fullmatch(value):
                continue
            bad_char = next((c for c in value if not _TOKEN.fullmatch(c)), "")
            what = f"contains {bad_char!r}" if bad_char else "is empty"
            pseudo = ", ".join(sorted(allowed))
            self.add_quoted(
                "IL109",
                r,
                path,
                f"header name {_shown(value)} {what}: a header name is an RFC 9110 token "
                f"(letters, digits and !#$%&'*+-.^_`|~; no space, colon, CR or LF) or {pseudo}",
                "use a header name such as 'x-user-id'",
            )

    def regex_size(self, r: Resource, path: Sequence[str | int], pattern: str) -> None:
        """Envoy refuses a regex whose RE2 program is over its limit (``regex.cc``)."""
        try:
            size = program_size(pattern)
        except RegexError:
            return  # not RE2 at all: the schema already said so (IL107)
        if size > ENVOY_MAX_PROGRAM_SIZE:
            self.add_quoted(
                "IL111",
                r,
                path,
                f"regex {_shown(pattern)} compiles to an RE2 program of size {size}; Envoy "
                f"refuses more than {ENVOY_MAX_PROGRAM_SIZE} (runtime key "
                f"{ENVOY_PROGRAM_SIZE_KEY})",
                "simplify the pattern (fewer alternatives, no large counted repetitions such as "
                f"{{1,100}}), or raise {ENVOY_PROGRAM_SIZE_KEY} in the Envoy runtime",
            )

    def service_known(self, host: str) -> bool:
        return self.ctx.host_known(host)

    # -- modern ----------------------------------------------------------------------------

    def virtual_service(self, vs: VirtualService) -> None:
        spec = vs.spec
        if not spec.hosts:
            self.add("IL102", vs, ("spec", "hosts"), "spec.hosts is empty", "list the hosts")
        bound: list[tuple[str, GatewayHosts]] = []  # (gateway, hosts its servers accept)
        causes: list[Finding] = []  # schema errors of bound Gateways (servers may be missing)
        for gi, ref in enumerate(spec.gateways or []):
            if ref == "mesh":
                bound.append(("mesh", GatewayHosts(["*"])))
                continue
            ns, name = gateway_ref(ref, vs.namespace)
            gw = self.ctx.gateway_by_key.get((ns, name))
            if gw is None:
                self.add(
                    "IL210",
                    vs,
                    ("spec", "gateways", gi),
                    f"gateway {ref!r} ({ns}/{name}) is not in the config set",
                    "add the Gateway, or correct the reference as 'namespace/name'",
                )
                continue
            # namespace-scoped server hosts ('prod/*.example.com') only serve that namespace
            bound.append((f"{ns}/{name}", self.ctx.gateway_hosts(gw, vs.namespace)))
            cause = self.ctx.schema_cause(gw)
            if cause is not None:
                causes.append(cause)
        # A host is served when any bound gateway (or the mesh) accepts it; each gateway only
        # takes the hosts its servers accept.
        for hi, host in enumerate(spec.hosts if bound else []):
            if not any(accepted.accepts(host) for _, accepted in bound):
                names = ", ".join(g for g, _ in bound)
                accepted_all = [p for _, accepted in bound for p in accepted.hosts]
                self.ctx.add(
                    "IL206",
                    vs,
                    ("spec", "hosts", hi),
                    f"host {host!r} is not served by gateway {names}, whose servers "
                    f"accept {truncate(str(accepted_all), 200)} for namespace {vs.namespace!r}",
                    f"add {host!r} to the Gateway's servers[].hosts (as 'namespace/host' to "
                    "scope it) or fix the host",
                    caused_by=causes[0] if causes else None,
                )
        for i, route in enumerate(spec.http or []):
            self.http_route(vs, route, ("spec", "http", i))

    def http_route(self, vs: VirtualService, route: HTTPRoute, base: tuple[str | int, ...]) -> None:
        actions = [
            n for n in ("route", "redirect", "direct_response", "delegate") if getattr(route, n)
        ]
        if not actions:
            self.add(
                "IL102",
                vs,
                base,
                f"http[{base[-1]}] has no route, redirect, directResponse or delegate",
                "add a route with at least one destination",
            )
        elif len(actions) > 1:
            self.add(
                "IL213",
                vs,
                base,
                f"http[{base[-1]}] sets {' and '.join(actions)}; Istio allows only one",
                "keep one of them",
            )
        dests = route.route or []
        if len(dests) > 1:
            weights = [d.weight or 0 for d in dests]
            total = sum(weights)
            if self.profile.weights_must_total_100 and total != 100:
                self.add(
                    "IL202",
                    vs,
                    (*base, "route"),
                    f"destination weights {weights} total {total}; {self.profile.versions} "
                    "requires 100",
                    "make the weights add up to 100",
                )
            elif not self.profile.weights_must_total_100 and total == 0:
                self.add(
                    "IL202",
                    vs,
                    (*base, "route"),
                    f"destination weights {weights} total 0, so no destination gets traffic",
                    "give at least one destination a nonzero weight",
                )
        fault = route.fault
        if fault and fault.delay:
            if fault.delay.exponential_delay:
                self.add(
                    "IL302",
                    vs,
                    (*base, "fault", "delay", "exponentialDelay"),
                    f"exponentialDelay {fault.delay.exponential_delay!r} is not supported by Istio",
                    "use fixedDelay",
                )
            if not fault.delay.fixed_delay and not fault.delay.exponential_delay:
                self.add(
                    "IL102",
                    vs,
                    (*base, "fault", "delay"),
                    "fault.delay has no fixedDelay",
                    "add fixedDelay, e.g. '5s'",
                )
        for kind in ("delay", "abort"):
            part = getattr(fault, kind) if fault else None
            pct = part.percentage.value if part is not None and part.percentage else None
            if pct is not None and 0 < pct < FAULT_RESOLUTION:
                self.add(
                    "IL310",
                    vs,
                    (*base, "fault", kind, "percentage", "value"),
                    f"fault {kind} percentage {pct} is below Envoy's resolution of "
                    f"{FAULT_RESOLUTION}%; Istio refuses it (percentage is neither 0.0, nor in "
                    "range [0.0001, 100.0])",
                    f"use 0 (no fault) or at least {FAULT_RESOLUTION}",
                )

    def destination_rule(self, dr: DestinationRule) -> None:
        if not self.deployments:
            return
        host = fqdn(dr.spec.host, dr.namespace)
        svc = self.ctx.service_by_host.get(host)
        ns = host.split(".")[1] if host.count(".") >= 2 else dr.namespace
        for i, subset in enumerate(dr.spec.subsets or []):
            labels = dict(subset.labels or {})
            if svc is not None and svc.spec.selector:
                labels = {**svc.spec.selector, **labels}
            if not self.ctx.pods_matching(ns, labels):
                self.add(
                    "IL204",
                    dr,
                    ("spec", "subsets", i, "labels"),
                    f"subset {subset.name!r} selects labels {labels}, which no Deployment in "
                    f"namespace {ns!r} gives its pods",
                    "fix the labels, or add the Deployment of that version",
                )

    # -- legacy ----------------------------------------------------------------------------

    def route_rule(self, rr: RouteRule) -> None:
        spec = rr.spec
        routes = spec.route or []
        if spec.destination.labels:
            self.add(
                "IL108",
                rr,
                ("spec", "destination", "labels"),
                f"destination.labels {spec.destination.labels} must be empty in a RouteRule",
                "move the labels to route[].labels",
            )
        if spec.redirect is not None:
            clash = [
                n
                for n, v in (
                    ("route", spec.route),
                    ("rewrite", spec.rewrite),
                    ("httpFault", spec.http_fault),
                    ("websocketUpgrade", spec.websocket_upgrade),
                )
                if v
            ]
            if clash:
                self.add(
                    "IL213",
                    rr,
                    ("spec", "redirect"),
                    f"redirect cannot be combined with {', '.join(clash)} (Pilot 0.2 rejects it)",
                    "drop the redirect or the other fields",
                )
        elif not routes:
            # Pilot 0.2 treats an empty route as 100 % to the destination; fine.
            pass
        if routes and not (len(routes) == 1 and (routes[0].weight or 0) in (0, 100)):
            weights = [r.weight or 0 for r in routes]
            if sum(weights) != 100:
                self.add(
                    "IL201",
                    rr,
                    ("spec", "route"),
                    f"route weights {weights} total {sum(weights)} (must total 100)",
                    "make the weights add up to 100",
                )
        for j, r in enumerate(routes):
            if r.labels and self.deployments:
                host = spec.destination.fqdn(rr.namespace)
                ns = host.split(".")[1] if "." in host else rr.namespace
                svc = next((s for s in self.services if s.fqdn() == host), None)
                labels = {**((svc.spec.selector or {}) if svc else {}), **r.labels}
                if not any(
                    labels.items() <= d.pod_labels.items()
                    for d in self.deployments
                    if d.namespace == ns
                ):
                    self.add(
                        "IL204",
                        rr,
                        ("spec", "route", j, "labels"),
                        f"route labels {labels} match no Deployment's pods in namespace {ns!r}",
                        "fix the labels, or add the Deployment of that version",
                    )
        fault = spec.http_fault
        if fault is not None:
            for kind in ("delay", "abort"):
                part = getattr(fault, kind)
                if part is None:
                    continue
                pct = part.percent
                if pct is not None and pct != int(pct) and self.profile.legacy:
                    self.add(
                        "IL301",
                        rr,
                        ("spec", "httpFault", kind, "percent"),
                        f"percent {pct:g} truncates to {int(pct)} in Pilot 0.2"
                        + (", so no fault is injected" if int(pct) == 0 else ""),
                        "use a whole percentage (Istio ≥ 1.0 keeps fractions)",
                    )
            if fault.delay is not None and fault.delay.exponential_delay is not None:
                self.add(
                    "IL302",
                    rr,
                    ("spec", "httpFault", "delay", "exponentialDelay"),
                    "exponentialDelay is not supported by Istio ('Istio does not support "
                    "exponentialDelay yet')",
                    "use fixedDelay",
                )
            if fault.abort is not None and fault.abort.http_status is None:
                which = "grpcStatus" if fault.abort.grpc_status else "http2Error"
                self.add(
                    "IL302",
                    rr,
                    ("spec", "httpFault", "abort", which),
                    f"abort by {which} is not supported by Istio 0.2",
                    "use httpStatus",
                )
        for name, field in (
            ("mirror", spec.mirror),
            ("corsPolicy", spec.cors_policy),
            ("appendHeaders", spec.append_headers),
        ):
            if field is not None:
                self.add(
                    "IL303",
                    rr,
                    ("spec", name),
                    f"{name} was added to RouteRule in Istio 0.3; Istio 0.2 rejects it",
                    "run Istio ≥ 0.3, or convert to a VirtualService",
                )
        m = spec.match
        if m is not None:
            if (
                m.source is None
                and m.tcp is None
                and m.udp is None
                and not (m.request and m.request.headers)
            ):
                self.add(
                    "IL108",
                    rr,
                    ("spec", "match"),
                    "match is empty ('MatchCondition CANNOT be empty')",
                    "remove match, or add a source or request header",
                )
            for name in ("tcp", "udp"):
                if getattr(m, name) is not None:
                    self.add(
                        "IL306",
                        rr,
                        ("spec", "match", name),
                        f"match.{name} has incomplete support in Istio 0.2 and no HTTP equivalent",
                        "remove it",
                    )
        if spec.l4_fault is not None:
            self.add(
                "IL306",
                rr,
                ("spec", "l4Fault"),
                "l4Fault (TCP terminate/throttle) was never supported in practice",
                "remove it",
            )

    def precedence_ties(self, rules: list[RouteRule]) -> None:
        groups: dict[tuple[str, int, str], list[RouteRule]] = defaultdict(list)
        for rr in rules:
            src = rr.spec.match.source if rr.spec.match and rr.spec.match.source else None
            scope = src.model_dump_json() if src else ""
            groups[(rr.spec.destination.fqdn(rr.namespace), rr.spec.precedence, scope)].append(rr)
        for (host, prec, _), group in groups.items():
            if len(group) < 2:
                continue
            group = sorted(group, key=lambda r: f"route-rule/{r.namespace}/{r.name}")
            names = ", ".join(r.name for r in group)
            for rr in group[1:]:
                self.add(
                    "IL209",
                    rr,
                    ("spec", "precedence"),
                    f"RouteRules {names} for {host} all have precedence {prec}; Istio 0.2 leaves "
                    "their order unspecified (istiolab uses name order)",
                    "give each rule for the same destination a distinct precedence",
                )

    def destination_policy(self, dp: DestinationPolicy) -> None:
        if dp.spec.source is not None:
            self.add(
                "IL306",
                dp,
                ("spec", "source"),
                "DestinationPolicy.source has no equivalent in DestinationRule and is dropped "
                "by conversion",
                "remove source, or scope the policy another way",
            )

    # -- ingress ---------------------------------------------------------------------------

    def ingress(self, ing: IngressV1Beta1 | IngressV1) -> None:
        cls = ing.ingress_class
        if cls != "istio":
            where = (
                ("spec", "ingressClassName")
                if ing.spec.ingress_class_name
                else ("metadata", "annotations")
            )
            self.add(
                "IL307",
                ing,
                where,
                f"ingress class is {cls!r}, not 'istio'; Istio's controller (STRICT mode) "
                "ignores this Ingress",
                "set the annotation kubernetes.io/ingress.class: istio",
            )
            return
        for p in ing.paths():
            field = _field_path(p.field)
            if (
                p.path_type in (None, "ImplementationSpecific")
                and ingress_path_match(p.path, p.path_type) is None
            ):
                self.add(
                    "IL304",
                    ing,
                    (*field, "path"),
                    f"path {p.path!r} is a regex; Istio turns only a trailing '.*' into a "
                    "prefix and rejects other regexes",
                    "use a literal path (exact) or 'literal/.*' (prefix)",
                )
            if self.services:
                host = f"{p.service}.{ing.namespace}.svc.cluster.local"
                if not self.service_known(host):
                    self.add(
                        "IL212",
                        ing,
                        (*field, "backend"),
                        f"backend service {p.service!r} is not a Service in namespace "
                        f"{ing.namespace!r}",
                        "add the Service, or fix serviceName",
                    )

    def envoy_filter(self, ef: EnvoyFilter) -> None:
        for i, patch in enumerate(ef.spec.config_patches):
            value = (patch.patch.value if patch.patch else None) or {}
            per_route = value.get("typed_per_filter_config")
            names = [value.get("name"), *(per_route if isinstance(per_route, dict) else ())]
            if "envoy.filters.http.local_ratelimit" not in names:
                self.add(
                    "IL309",
                    ef,
                    ("spec", "configPatches", i),
                    f"configPatches[{i}] ({patch.apply_to}) is not a local rate limit; istiolab "
                    "keeps it but does not model it",
                    "nothing to do if it does not affect routing; otherwise expect the simulator "
                    "to differ from the cluster",
                )


_TEXT_FIELDS = dict(_Validator._HEADER_TEXT_FIELDS)


@functools.cache
def _text_plan(cls: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """Fields of *cls* that are listed text fields (True) or can hold one (False)."""
    wanted = _TEXT_FIELDS.get(cls.__name__, ())
    out = []
    for name, field in cls.model_fields.items():
        annotation: Any = field.annotation
        if name in wanted:
            out.append((name, field.alias or camel(name), True))
        elif _holds_text_model(annotation):
            out.append((name, field.alias or camel(name), False))
    return tuple(out)


@functools.cache
def _holds_text_model(tp: Any) -> bool:
    """Whether a value of type *tp* can hold a model with a listed text field."""
    origin = typing.get_origin(tp)
    if origin is not None:
        return any(_holds_text_model(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp.__name__ in _TEXT_FIELDS:
            return True
        if tp.__name__ in _VISITING:
            return False
        _VISITING.add(tp.__name__)
        try:
            annotations: list[Any] = [f.annotation for f in tp.model_fields.values()]
            return any(_holds_text_model(a) for a in annotations)
        finally:
            _VISITING.discard(tp.__name__)
    return False


_VISITING: set[str] = set()


def _shown(value: object, limit: int = 60) -> str:
    """``repr`` of *value* for a message, cut to *limit* characters (with the full length)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}…({len(value)} characters)"
    return repr(value)


def _plain_key(key: str) -> bool:
    """Whether a key can stand in a finding's path as it is (short, printable, no space)."""
    return 0 < len(key) <= 60 and key.isprintable() and " " not in key


def _name_problem(name: str, rule: _NameRule) -> str | None:
    """What is wrong with a Kubernetes name, or None."""
    if len(name) > rule.size:
        return f"{len(name)} characters, more than {rule.size}"
    if not rule.pattern.fullmatch(name):
        return f"it may only have {rule.chars}"
    return None


def _field_path(text: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def _name(route: HTTPRoute) -> str:
    return f" ({route.name!r})" if route.name else ""
