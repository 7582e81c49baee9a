"""Findings: what validation says about a config set.

Every problem in user input becomes a :class:`Finding` with a stable code from :data:`CODES`.
Codes are grouped: ``IL0xx`` loading, ``IL1xx`` schema, ``IL2xx`` semantics, ``IL3xx`` legacy
and conversion caveats, ``IL4xx`` scenario files, ``IL6xx`` the Kubernetes Gateway API.
``docs/findings.md`` is generated from :data:`CODES` (``python -m istiolab.findings``) and a
test keeps the two in sync.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any

from istiolab.reprs import HTMLRepr


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``ERROR`` makes ``istiolab lint`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclasses.dataclass(frozen=True)
class Code:
    """A documented finding code."""

    code: str
    severity: Severity
    title: str
    doc: str


def _c(code: str, sev: str, title: str, doc: str) -> Code:
    return Code(code, Severity(sev), title, doc)


CODES: dict[str, Code] = {
    c.code: c
    for c in [
        # -- loading
        _c("IL001", "error", "YAML syntax error", "The file is not valid YAML."),
        _c("IL002", "error", "document is not a mapping", "Each YAML document must be an object."),
        _c(
            "IL003",
            "error",
            "apiVersion or kind missing",
            "Every resource needs `apiVersion` and `kind`.",
        ),
        _c(
            "IL004",
            "warning",
            "unknown kind skipped",
            "istiolab does not model this (apiVersion, kind); it is skipped. "
            "`--strict` makes this an error.",
        ),
        _c("IL005", "error", "cannot read input", "A path given on the command line is missing."),
        _c("IL006", "error", "metadata.name missing", "Every resource needs `metadata.name`."),
        _c(
            "IL007",
            "error",
            "not a regular file",
            "An input is a device, a named pipe (FIFO) or a socket; it is refused before it is "
            "opened. Give regular files, or `-` for a pipe on standard input.",
        ),
        _c(
            "IL008",
            "error",
            "input too large",
            "A file, standard input or text is larger than the limit (8 MiB; see "
            "`docs/limits.md`). Split it, or raise `ISTIOLAB_MAX_FILE_BYTES`.",
        ),
        _c(
            "IL009",
            "error",
            "resource too large",
            "One document, or one item of a `List`, is larger than the limit (6 MiB). "
            "Split it, or raise `ISTIOLAB_MAX_DOCUMENT_BYTES`.",
        ),
        _c(
            "IL010",
            "error",
            "too many YAML nodes",
            "The input has more nodes than the limit (1.5 million) once aliases are expanded, "
            'as in a "billion laughs" document; the rest of the input is not read. Use fewer '
            "aliases, or raise `ISTIOLAB_MAX_NODES`.",
        ),
        _c(
            "IL011",
            "error",
            "nested too deep",
            "Sequences and mappings nest deeper than the limit (100 levels, aliases "
            "expanded). Flatten the structure.",
        ),
        _c(
            "IL012",
            "error",
            "not UTF-8",
            "The input is not valid UTF-8; the finding gives the byte offset. Save it as UTF-8.",
        ),
        _c(
            "IL013",
            "error",
            "YAML tag without JSON form",
            "A tag such as `!!binary`, `!!set`, `!!timestamp`, `!!omap` or a custom `!tag`: "
            "Kubernetes resources are JSON, so only strings, numbers, booleans, null, lists "
            "and maps are accepted. Remove the tag.",
        ),
        _c(
            "IL014",
            "error",
            "duplicate key",
            "A mapping has the same key twice; kubectl rejects it and YAML loaders silently "
            "keep the last. Remove one.",
        ),
        # -- schema
        _c("IL101", "error", "unknown field", "A field that the resource's schema does not have."),
        _c("IL102", "error", "missing required field", "A required field is absent."),
        _c("IL103", "error", "wrong type", "A field has a value of the wrong type."),
        _c("IL104", "error", "bad duration", "Durations are like `250ms`, `1.5s`, `1m` (≥ 1ms)."),
        _c(
            "IL105",
            "error",
            "percentage out of range",
            "Percentages are between 0 and 100.",
        ),
        _c(
            "IL106",
            "error",
            "HTTP status out of range",
            "HTTP status codes are between 200 and 599 (legacy 0.2: 0..600).",
        ),
        _c(
            "IL107",
            "error",
            "regex rejected by RE2",
            "Envoy and Istio use RE2; look-arounds and back-references are not supported.",
        ),
        _c(
            "IL108",
            "error",
            "invalid value",
            "A value outside the allowed set (enum), or a one-of with zero or several members.",
        ),
        _c(
            "IL109",
            "error",
            "invalid header name or value",
            "A header name that is not an RFC 9110 token (it has a space, colon, CR or LF; "
            "matches and hash keys may name the pseudo-headers `:authority`, `:method`, "
            "`:path`, `:scheme`, header operations only `:authority`), or a header value with "
            "CR, LF or NUL. Envoy and Istio refuse both. Also a control character (anything "
            "but tab) in a header operation value, a match value (`exact`, `prefix`) or a "
            "redirect or rewrite field: it would inject a header, or never match.",
        ),
        _c(
            "IL110",
            "error",
            "invalid resource name",
            "`metadata.name` is not an RFC 1123 subdomain (253 characters; a Service: an RFC 1035 "
            "label, 63), or `metadata.namespace` is not an RFC 1123 label (63): lower-case "
            "letters, digits and `-`. The Kubernetes API server refuses it.",
        ),
        _c(
            "IL111",
            "error",
            "regex too large for Envoy",
            "The regex's RE2 program is larger than Envoy's default limit of 100, so Envoy "
            "refuses the config. Simplify it, or raise the runtime key "
            "`re2.max_program_size.error_level`.",
        ),
        # -- semantics
        _c(
            "IL201",
            "error",
            "legacy route weights do not total 100",
            "Istio 0.2 rejects RouteRules whose `route[].weight` do not sum to 100 "
            "(a single route with weight 0 is allowed).",
        ),
        _c(
            "IL202",
            "error",
            "destination weights invalid for the profile",
            "Istio ≤ 1.14 requires weights that total 100; from 1.15 the total must be nonzero.",
        ),
        _c(
            "IL203",
            "error",
            "subset not defined",
            "A route names a subset that no DestinationRule for that host defines.",
        ),
        _c(
            "IL204",
            "warning",
            "subset labels match no Deployment",
            "A subset's labels select no pods of the Deployments given with the config.",
        ),
        _c(
            "IL205",
            "error",
            "duplicate resource",
            "Two resources have the same kind, namespace and name; the later one would replace "
            "the earlier.",
        ),
        _c(
            "IL206",
            "error",
            "host not served by gateway",
            "A VirtualService bound to a Gateway names a host that none of the Gateway's "
            "servers accept, so the gateway never routes it.",
        ),
        _c(
            "IL207",
            "warning",
            "unreachable route after catch-all",
            "An HTTP route after a route that matches every request is never used.",
        ),
        _c(
            "IL208",
            "warning",
            "route shadowed by an earlier route",
            "Every request this route matches is already taken by an earlier route.",
        ),
        _c(
            "IL209",
            "warning",
            "legacy precedence tie",
            "Two RouteRules for one destination share a precedence; Istio 0.2 leaves their "
            "order unspecified (istiolab orders them by name, as Pilot 0.2 did).",
        ),
        _c(
            "IL210",
            "warning",
            "gateway not found",
            "A VirtualService names a Gateway that is not in the config set.",
        ),
        _c(
            "IL211",
            "warning",
            "destination service unknown",
            "A route's destination host is not a Service of the config set (only checked when "
            "Services are given).",
        ),
        _c(
            "IL212",
            "error",
            "ingress backend service unknown",
            "An Ingress backend names a Service that is not in the config set (only checked "
            "when Services are given).",
        ),
        _c(
            "IL213",
            "error",
            "invalid combination",
            "Fields that cannot be used together (for example `redirect` with `route`).",
        ),
        _c(
            "IL214",
            "error",
            "destination port not on the Service",
            "A destination (or mirror) names a port that its Service or ServiceEntry does not "
            "expose, so istiod generates no cluster for it.",
        ),
        _c(
            "IL215",
            "error",
            "destination port required",
            "A destination without a port goes to a Service that exposes several ports; Istio "
            "cannot tell which one is meant.",
        ),
        _c(
            "IL216",
            "warning",
            "gateway selector matches no pod",
            "A Gateway's selector matches the pods of no Deployment of the input, so no gateway "
            "proxy takes its servers (checked when Deployments are given).",
        ),
        _c(
            "IL217",
            "warning",
            "DestinationRule host unknown",
            "A DestinationRule's host is no Service or ServiceEntry of the input (an info when the "
            "input has no Services and no route sends to the host).",
        ),
        _c(
            "IL218",
            "warning",
            "Service targetPort not exposed by its pods",
            "A Service port's targetPort (number or name) is none of the container ports of the "
            "Deployment it selects (checked when the pods declare ports).",
        ),
        _c(
            "IL219",
            "error",
            "conflicting Gateways",
            "Two Gateways on the same selector and port accept the same host; the gateway proxy "
            "keeps one server and drops the other.",
        ),
        _c(
            "IL220",
            "warning",
            "credential shared by Gateways",
            "Several Gateways on one gateway workload serve the same certificate; clients that "
            "reuse an HTTP/2 connection for another host can get 404s.",
        ),
        _c(
            "IL221",
            "warning",
            "gateway port not on the gateway Service",
            "A Gateway server listens on a port that no Service selecting the gateway pods "
            "exposes (as port or targetPort), so it is unreachable through that Service.",
        ),
        _c(
            "IL222",
            "error",
            "invalid Gateway server",
            "A server Istio rejects or misreads: HTTPS or TLS without `tls`, `tls` on plain HTTP, "
            "two ports with one name, a dotted server name, `httpsRedirect` on HTTPS.",
        ),
        _c(
            "IL223",
            "error",
            "wildcard host bound to the mesh",
            "A VirtualService bound to `mesh` (no gateways, or `mesh` listed) has host `*`; Istio "
            "rejects it.",
        ),
        _c(
            "IL224",
            "error",
            "VirtualService without routes",
            "A VirtualService has no `http`, `tls` or `tcp` routes; Istio rejects it.",
        ),
        _c(
            "IL225",
            "warning",
            "host in several VirtualServices",
            "Two VirtualServices name the same host on the same gateway (or the mesh). Istio "
            "merges them on a gateway in creation order, and for the mesh keeps only one.",
        ),
        _c(
            "IL226",
            "warning",
            "single destination with weight below 100",
            "A route with one destination gets all its traffic whatever its weight; a weight "
            "below 100 suggests a missing destination.",
        ),
        _c(
            "IL227",
            "warning",
            "destination repeated",
            "A route lists the same host and subset twice; merge the two weights.",
        ),
        _c(
            "IL228",
            "warning",
            "deprecated form",
            "A deprecated field or form (`fault.delay.percent`, `mirrorPercent`, "
            "`outlierDetection.consecutiveErrors`, a gateway referenced as `name.namespace`).",
        ),
        _c(
            "IL229",
            "error",
            "duplicate subset name",
            "A DestinationRule defines two subsets with one name; Istio rejects it.",
        ),
        _c(
            "IL230",
            "warning",
            "several DestinationRules for one host",
            "Two DestinationRules in one namespace have the same host; istiod merges them: the "
            "oldest one's traffic policy wins and a later subset with a taken name is dropped.",
        ),
        _c(
            "IL231",
            "warning",
            "subset without labels",
            "A subset has no labels, so it selects every endpoint of the host.",
        ),
        _c(
            "IL232",
            "warning",
            "TLS without server verification",
            "A DestinationRule originates TLS (SIMPLE or MUTUAL) without `caCertificates` or "
            "`credentialName`, so the server certificate is not verified.",
        ),
        _c(
            "IL233",
            "warning",
            "TLS settings override mesh mTLS",
            "A DestinationRule for a Service of the mesh sets a TLS mode other than ISTIO_MUTUAL; "
            "it replaces Istio's automatic mTLS, and a STRICT PeerAuthentication then refuses "
            "the traffic.",
        ),
        _c(
            "IL234",
            "info",
            "Service port name not an Istio protocol",
            "A Service port whose name is not `<protocol>[-suffix]` and that has no "
            "`appProtocol`: Istio sniffs the protocol (Istio 0.2 treated it as TCP, so HTTP "
            "routing rules did not apply).",
        ),
        _c(
            "IL235",
            "warning",
            "appProtocol not recognised",
            "A Service port's `appProtocol` is not a protocol Istio knows.",
        ),
        _c(
            "IL236",
            "warning",
            "EnvoyFilter relative patch without priority",
            "A relative operation (INSERT_BEFORE/AFTER, REPLACE, MERGE, REMOVE on a filter) in "
            "an EnvoyFilter without `priority`: whether it applies depends on the order of "
            "other filters.",
        ),
        _c(
            "IL237",
            "error",
            "EnvoyFilter REPLACE not allowed here",
            "REPLACE is only valid for HTTP_FILTER, NETWORK_FILTER and VIRTUAL_HOST.",
        ),
        _c(
            "IL238",
            "error",
            "EnvoyFilter ADD ignored",
            "ADD is ignored when applyTo is ROUTE_CONFIGURATION or HTTP_ROUTE.",
        ),
        _c(
            "IL239",
            "error",
            "EnvoyFilter REMOVE ignored",
            "REMOVE is ignored when applyTo is ROUTE_CONFIGURATION or HTTP_ROUTE.",
        ),
        _c(
            "IL240",
            "warning",
            "EnvoyFilter relative patch with proxyVersion",
            "A relative patch matched on `proxyVersion` without `priority` may stop applying "
            "during an upgrade.",
        ),
        _c(
            "IL241",
            "warning",
            "mesh subsets do not apply at the gateway",
            "A gateway route sends a host to no subset while a mesh VirtualService splits that "
            "host by subset; the mesh rules do not apply to requests through the gateway, so "
            "they reach every version.",
        ),
        # -- legacy and conversion caveats
        _c(
            "IL301",
            "warning",
            "legacy fault percent truncated",
            "Pilot 0.2 truncates fault percentages to an integer: 0.5 becomes 0, i.e. no fault.",
        ),
        _c(
            "IL302",
            "error",
            "exponentialDelay unsupported",
            "Istio never supported `exponentialDelay`; use `fixedDelay`.",
        ),
        _c(
            "IL303",
            "warning",
            "field needs Istio ≥ 0.3",
            "`mirror`, `corsPolicy` and `appendHeaders` were added to RouteRule in Istio 0.3.",
        ),
        _c(
            "IL304",
            "error",
            "Ingress path regex unsupported",
            "Istio's ingress turns only a trailing `.*` into a prefix; other regexes are rejected.",
        ),
        _c(
            "IL305",
            "warning",
            "source match not a runtime match",
            "A RouteRule's `match.source` selects which proxies get the rule; at the ingress it "
            "applies only to the istio-ingress pods. Conversion turns it into `sourceLabels` or "
            "`gateways`.",
        ),
        _c(
            "IL306",
            "warning",
            "dropped in conversion",
            "A legacy feature with no modern equivalent (l4Fault, TCP/UDP match, gRPC abort).",
        ),
        _c(
            "IL307",
            "info",
            "Ingress not for Istio",
            "The Ingress's class is not `istio`; Istio's controller ignores it (STRICT mode).",
        ),
        _c(
            "IL308",
            "info",
            "rate limit modelled approximately",
            "A Mixer quota (memquota) is modelled as a token bucket with the same rate; Mixer's "
            "rolling window and its fail-open on Mixer errors are not modelled.",
        ),
        _c(
            "IL309",
            "warning",
            "EnvoyFilter not understood",
            "Only the local rate limit EnvoyFilter is modelled; this one is kept but ignored.",
        ),
        _c(
            "IL310",
            "error",
            "fault percent below resolution",
            "A fault percentage in (0, 0.0001): below the resolution of Envoy's fault "
            "percentages (0.0001 %), and Istio's validation refuses it (`percentage ... is "
            "neither 0.0, nor in range [0.0001, 100.0]`).",
        ),
        _c(
            "IL311",
            "info",
            "legacy default made explicit",
            "Istio 0.2 had a 15 s route timeout and no default retries; conversion writes them "
            "out unless `--modern-defaults`.",
        ),
        _c(
            "IL312",
            "warning",
            "no effect at the ingress",
            "A field that the ingress ignores (e.g. fault injection through Kubernetes Ingress in "
            "Istio 0.2).",
        ),
        _c(
            "IL313",
            "warning",
            "not compiled",
            "A feature the route compiler does not model (delegate, gRPC abort, TLS/TCP routes); "
            "the simulator and the rendered Envoy config leave it out.",
        ),
        _c(
            "IL314",
            "warning",
            "rate limit not enforced",
            "A local rate limit whose `filter_enabled`/`filter_enforced` is missing or 0 %: "
            "Envoy's default for both is 0 %, so it counts but never rejects.",
        ),
        # -- conversion between VirtualService/Gateway and the Gateway API (convert.gatewayapi)
        _c(
            "IL315",
            "warning",
            "not expressible in the Gateway API",
            "A VirtualService feature the Gateway API standard channel has no field for (fault "
            "injection, CORS, a direct response, a regex rewrite, a match on authority, scheme, "
            "port, source or a missing header, case-insensitive paths, delegation, TLS/TCP "
            "routes); the converted HTTPRoute leaves it out and requests that used it change.",
        ),
        _c(
            "IL316",
            "info",
            "experimental Gateway API field",
            "Retries and mirror percentages exist only in the experimental channel (`retry`, "
            "`percent`); the converted HTTPRoute uses them, so it needs the experimental CRDs.",
        ),
        _c(
            "IL317",
            "warning",
            "string prefix is not a PathPrefix",
            "Istio's `uri.prefix` is a string prefix (`/api` also matches `/apiv2`); Gateway API "
            "`PathPrefix` matches whole path elements. Convert with a `RegularExpression` to keep "
            "the old behaviour, or confirm that no client depends on it.",
        ),
        _c(
            "IL318",
            "warning",
            "precedence changes the route",
            "The Gateway API orders matches by specificity (exact, longest prefix, method, "
            "headers, query), a VirtualService by position: a later route that is more specific "
            "now takes requests an earlier route answered.",
        ),
        _c(
            "IL319",
            "info",
            "subset becomes a Service",
            "Gateway API backends are Services, not DestinationRule subsets: the conversion adds "
            "a Service per subset (the host's selector plus the subset's labels).",
        ),
        _c(
            "IL320",
            "info",
            "mesh route not compiled",
            "A VirtualService for the mesh becomes an HTTPRoute whose parent is the Service "
            "(GAMMA); istiolab compiles gateway routes only, so this one is not verified.",
        ),
        _c(
            "IL321",
            "warning",
            "not expressible in a VirtualService",
            "A Gateway API feature with no VirtualService equivalent (an ExtensionRef or CORS "
            "filter, an unresolved backend); the converted VirtualService leaves it out.",
        ),
        # -- Kubernetes Gateway API (istiolab.config.gatewayapi_checks)
        _c(
            "IL601",
            "error",
            "parent Gateway not found",
            "An HTTPRoute or GRPCRoute `parentRef` names a Gateway that is not in the config "
            "(status `Accepted=False`, reason `NoMatchingParent`); the route serves nothing there.",
        ),
        _c(
            "IL602",
            "error",
            "no listener for sectionName or port",
            "A `parentRef`'s `sectionName` or `port` matches no listener of the Gateway "
            "(`Accepted=False`, `NoMatchingParent`).",
        ),
        _c(
            "IL603",
            "error",
            "route namespace not allowed",
            "The listeners' `allowedRoutes.namespaces` (`Same` by default, `All`, `Selector`) do "
            "not admit the route's namespace (`Accepted=False`, `NotAllowedByListeners`).",
        ),
        _c(
            "IL604",
            "error",
            "no hostname intersection",
            "None of the route's `hostnames` intersects a listener `hostname` (wildcards match "
            "one or more labels, `*.example.com` not `example.com`) "
            "(`Accepted=False`, `NoMatchingListenerHostname`).",
        ),
        _c(
            "IL605",
            "error",
            "route kind not allowed",
            "The listener's protocol or `allowedRoutes.kinds` does not take this route kind "
            "(`Accepted=False`, `NotAllowedByListeners`).",
        ),
        _c(
            "IL606",
            "warning",
            "backend Service not found",
            "A `backendRef` names a Service that is not in the config (checked when the config "
            "has Services): `ResolvedRefs=False`, `BackendNotFound`, and its share of the "
            "requests gets 500.",
        ),
        _c(
            "IL607",
            "warning",
            "backend port not on the Service",
            "A `backendRef` port that the Service does not expose: the cluster has no "
            "endpoints and Envoy answers 503 `UH`.",
        ),
        _c(
            "IL608",
            "error",
            "cross-namespace backendRef without ReferenceGrant",
            "A `backendRef` into another namespace needs a ReferenceGrant there that allows "
            "the route's kind and namespace (`ResolvedRefs=False`, `RefNotPermitted`); its "
            "share gets 500.",
        ),
        _c(
            "IL609",
            "error",
            "invalid backendRef",
            "A `backendRef` of a kind istiod does not route to (`InvalidKind`, 500 for its "
            "share), a Service given by hostname, or a Service without `port` (istiod drops "
            "the rule).",
        ),
        _c(
            "IL610",
            "warning",
            "backend weights sum to 0",
            "A rule whose backendRefs all have weight 0 (or that has none and no redirect): "
            "every request it matches gets 500.",
        ),
        _c(
            "IL611",
            "error",
            "conflicting filters",
            "A rule the API server refuses: a RequestRedirect next to backendRefs, a redirect "
            "and a URLRewrite together, `replacePrefixMatch` without exactly one `PathPrefix` "
            "match, or `backendRequest` longer than `request`.",
        ),
        _c(
            "IL612",
            "warning",
            "match hidden by precedence",
            "Every request a match of a rule would take is taken first by a match with higher "
            "precedence (Exact path, longest prefix, method, headers, query parameters, oldest "
            "route, namespace/name, rule order); the finding names the winning rule.",
        ),
        _c(
            "IL613",
            "info",
            "Gateway API feature not compiled",
            "A Gateway API feature the route compiler does not model (CORS, ExtensionRef, a "
            "redirect's `ReplacePrefixMatch`, per-backend filters, GRPCRoute routing).",
        ),
        _c(
            "IL614",
            "warning",
            "GatewayClass not Istio's",
            "A Gateway whose `gatewayClassName` is neither a GatewayClass of the config nor one "
            "istiod creates (`istio`), or whose class has another controller: istiod does not "
            "program it.",
        ),
        _c(
            "IL615",
            "info",
            "route status",
            "The `status.parents[]` conditions istiod would write for a route "
            "(`Accepted`, `ResolvedRefs`, with the spec's reasons).",
        ),
        _c(
            "IL616",
            "error",
            "duplicate listener",
            "Two listeners of a Gateway with the same port, protocol and hostname, or the "
            "same name; the API server refuses the Gateway (a CEL rule of the CRD, and the "
            "listeners' list key).",
        ),
        # -- the AWS load balancer in front of the gateway (config/aws_checks)
        _c(
            "IL650",
            "warning",
            "LB health check is not the gateway's readiness",
            "The AWS load balancer checks the gateway's traffic port (or another path) instead "
            "of Envoy's readiness endpoint, port 15021 `/healthz/ready`: a draining or "
            "unready gateway pod keeps getting new connections.",
        ),
        _c(
            "IL651",
            "warning",
            "cross-zone off with gateway pods uneven over AZs",
            "An NLB without cross-zone load balancing gives each AZ the same share of "
            "connections whatever its number of gateway pods: pods in a thin AZ carry more.",
        ),
        _c(
            "IL652",
            "warning",
            "instance targets with externalTrafficPolicy Cluster",
            "NLB instance targets send to every node's NodePort and kube-proxy forwards to a "
            "gateway pod, often on another node: an extra hop, and the client IP is lost.",
        ),
        _c(
            "IL653",
            "error",
            "health-check interval not greater than timeout",
            "The ELB API rejects a target group whose health-check timeout is not smaller "
            "than its interval; the controller's reconcile fails and the LB is not changed.",
        ),
        _c(
            "IL654",
            "warning",
            "CLB-only annotation on an NLB",
            "`aws-load-balancer-connection-idle-timeout` sets a Classic ELB's idle timeout; an "
            "NLB ignores it (its TCP idle timeout is a listener attribute).",
        ),
        _c(
            "IL655",
            "warning",
            "AWS annotation value not understood",
            "An AWS load balancer annotation whose value is not of its documented type "
            "(integer, boolean, key=value list); the controller refuses or ignores it.",
        ),
        # -- scenarios
        _c("IL401", "error", "scenario invalid", "A scenario field is invalid."),
        _c(
            "IL402",
            "error",
            "run too large",
            "A scenario or sweep would create more requests, time-series intervals, pods, users "
            "or runs than the limits in docs/limits.md allow (estimated before it starts).",
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A check of another analyzer (istioctl analyze or Kiali) and what istiolab does about it.

    Attributes:
        code: The anchor's code (``IST0101``, ``KIA1104``).
        name: Its name in the anchor (message type or validation id).
        status: ``covered``, ``not applicable`` or ``not covered``.
        ours: istiolab codes that report the same problem (empty unless covered).
        note: Why, when it is not covered or not applicable; what differs, when it is.
    """

    code: str
    name: str
    status: str
    ours: tuple[str, ...] = ()
    note: str = ""


_NA_WORKLOAD = "about sidecars or running pods, not about the routing configuration"
_NA_INSTALL = "about the Istio installation or the cluster, not about a configuration"
_NA_GWAPI = (
    "about the Gateway API CRDs or Istio's internal gateways on a cluster, not about the routing "
    "configuration"
)
_NA_AMBIENT = "ambient mode and waypoints are outside ingress routing"
_NA_SECURITY = (
    "security policies (AuthorizationPolicy, PeerAuthentication, RequestAuthentication) are "
    "not modelled"
)
_NA_TELEMETRY = "telemetry resources are not modelled"


def _a(code: str, name: str, ours: str | tuple[str, ...] = (), note: str = "") -> Anchor:
    """An anchor entry: covered when *ours* is given, else the status is read from *note*."""
    codes = (ours,) if isinstance(ours, str) else ours
    if codes:
        status = "covered"
    elif note.startswith("n/a: "):
        status, note = "not applicable", note.removeprefix("n/a: ")
    else:
        status = "not covered"
    return Anchor(code, name, status, codes, note)


# Read from istio/istio pkg/config/analysis/msg/messages.yaml (with the analyzers under
# pkg/config/analysis/analyzers/) and kiali/kiali models/istio_validation.go (checkDescriptors,
# with business/checkers/). Retired istioctl codes are left out.
ANCHORS: tuple[Anchor, ...] = (
    _a(
        "IST0001",
        "InternalError",
        note="n/a: istiolab has no internal-error finding; it never raises on user input",
    ),
    _a("IST0002", "Deprecated", "IL228"),
    _a(
        "IST0101",
        "ReferencedResourceNotFound",
        ("IL203", "IL210", "IL211", "IL212", "IL214", "IL216"),
    ),
    _a("IST0102", "NamespaceNotInjected", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0103", "PodMissingProxy", note=f"n/a: {_NA_WORKLOAD}"),
    _a(
        "IST0106",
        "SchemaValidationError",
        (
            "IL101",
            "IL102",
            "IL103",
            "IL104",
            "IL105",
            "IL106",
            "IL107",
            "IL108",
            "IL109",
            "IL110",
            "IL111",
            "IL213",
            "IL222",
            "IL223",
            "IL224",
            "IL229",
            "IL310",
        ),
    ),
    _a(
        "IST0107",
        "MisplacedAnnotation",
        note="n/a: Istio's workload annotations are not modelled; none changes ingress routing",
    ),
    _a(
        "IST0108",
        "UnknownAnnotation",
        note="n/a: Istio's workload annotations are not modelled; none changes ingress routing",
    ),
    _a("IST0109", "ConflictingMeshGatewayVirtualServiceHosts", "IL225"),
    _a(
        "IST0110",
        "ConflictingSidecarWorkloadSelectors",
        note="n/a: the Sidecar resource is not modelled (ingress routing)",
    ),
    _a(
        "IST0111",
        "MultipleSidecarsWithoutWorkloadSelectors",
        note="n/a: the Sidecar resource is not modelled (ingress routing)",
    ),
    _a("IST0112", "VirtualServiceDestinationPortSelectorRequired", "IL215"),
    _a(
        "IST0116",
        "DeploymentAssociatedToMultipleServices",
        note="protocol clashes between Services of one Deployment: not checked yet (needs "
        "per-pod port protocols)",
    ),
    _a("IST0118", "PortNameIsNotUnderNamingConvention", "IL234"),
    _a("IST0123", "NamespaceMultipleInjectionLabels", note=f"n/a: {_NA_WORKLOAD}"),
    _a(
        "IST0125",
        "InvalidAnnotation",
        note="n/a: Istio's workload annotations are not modelled; none changes ingress routing",
    ),
    _a("IST0126", "UnknownMeshNetworksServiceRegistry", note=f"n/a: {_NA_INSTALL}"),
    _a(
        "IST0127",
        "NoMatchingWorkloadsFound",
        note="n/a: reported for Sidecar and AuthorizationPolicy selectors, which are not "
        "modelled; Gateway selectors are IL216",
    ),
    _a("IST0128", "NoServerCertificateVerificationDestinationLevel", "IL232"),
    _a("IST0129", "NoServerCertificateVerificationPortLevel", "IL232"),
    _a("IST0130", "VirtualServiceUnreachableRule", "IL207"),
    _a("IST0131", "VirtualServiceIneffectiveMatch", "IL208"),
    _a("IST0132", "VirtualServiceHostNotFoundInGateway", "IL206"),
    _a("IST0133", "SchemaWarning", ("IL226", "IL228", "IL231")),
    _a(
        "IST0134",
        "ServiceEntryAddressesRequired",
        note="ServiceEntries are read for their hosts and ports only (mesh egress, not ingress)",
    ),
    _a(
        "IST0135",
        "DeprecatedAnnotation",
        note="n/a: Istio's workload annotations are not modelled; none changes ingress routing",
    ),
    _a(
        "IST0136",
        "AlphaAnnotation",
        note="n/a: Istio's workload annotations are not modelled; none changes ingress routing",
    ),
    _a(
        "IST0137",
        "DeploymentConflictingPorts",
        note="Services that map one targetPort to different ports: not checked yet",
    ),
    _a("IST0138", "GatewayDuplicateCertificate", "IL220"),
    _a("IST0139", "InvalidWebhook", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0140", "IngressRouteRulesNotAffected", "IL241"),
    _a("IST0141", "InsufficientPermissions", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0142", "UnsupportedKubernetesVersion", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0143", "LocalhostListener", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0144", "InvalidApplicationUID", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0145", "ConflictingGateways", "IL219"),
    _a("IST0146", "ImageAutoWithoutInjectionWarning", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0147", "ImageAutoWithoutInjectionError", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0148", "NamespaceInjectionEnabledByDefault", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0149", "JwtClaimBasedRoutingWithoutRequestAuthN", note=f"n/a: {_NA_SECURITY}"),
    _a(
        "IST0150",
        "ExternalNameServiceTypeInvalidPortName",
        note="ExternalName Services are read but their port names are not checked yet",
    ),
    _a("IST0151", "EnvoyFilterUsesRelativeOperation", "IL236"),
    _a("IST0152", "EnvoyFilterUsesReplaceOperationIncorrectly", "IL237"),
    _a("IST0153", "EnvoyFilterUsesAddOperationIncorrectly", "IL238"),
    _a("IST0154", "EnvoyFilterUsesRemoveOperationIncorrectly", "IL239"),
    _a("IST0155", "EnvoyFilterUsesRelativeOperationWithProxyVersion", "IL240"),
    _a("IST0156", "UnsupportedGatewayAPIVersion", note=f"n/a: {_NA_GWAPI}"),
    _a("IST0157", "InvalidTelemetryProvider", note=f"n/a: {_NA_TELEMETRY}"),
    _a("IST0158", "PodsIstioProxyImageMismatchInNamespace", note=f"n/a: {_NA_WORKLOAD}"),
    _a("IST0159", "ConflictingTelemetryWorkloadSelectors", note=f"n/a: {_NA_TELEMETRY}"),
    _a("IST0160", "MultipleTelemetriesWithoutWorkloadSelectors", note=f"n/a: {_NA_TELEMETRY}"),
    _a(
        "IST0161",
        "InvalidGatewayCredential",
        note="Secrets are never read (istiolab does not handle key material)",
    ),
    _a("IST0162", "GatewayPortNotDefinedOnService", "IL221"),
    _a("IST0163", "InvalidExternalControlPlaneConfig", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0164", "ExternalControlPlaneAddressIsNotAHostname", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0165", "ReferencedInternalGateway", note=f"n/a: {_NA_GWAPI}"),
    _a("IST0166", "IneffectiveSelector", note=f"n/a: {_NA_GWAPI}"),
    _a("IST0167", "IneffectivePolicy", note=f"n/a: {_NA_SECURITY}"),
    _a("IST0168", "UnknownUpgradeCompatibility", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0169", "UpdateIncompatibility", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0170", "MultiClusterInconsistentService", note=f"n/a: {_NA_INSTALL}"),
    _a("IST0171", "NegativeConditionStatus", note="n/a: about the status of live objects"),
    _a("IST0172", "FutureUnsupportedGatewayAPIVersion", note=f"n/a: {_NA_GWAPI}"),
    _a("IST0173", "DestinationRuleSubsetNotSelectPods", "IL204"),
    _a("IST0174", "UnknownDestinationRuleHost", "IL217"),
    _a("IST0175", "JwksUriFetchUnrestricted", note=f"n/a: {_NA_SECURITY}"),
    _a("IST0176", "GatewayAPICRDVersionBelowMinimum", note=f"n/a: {_NA_GWAPI}"),
    _a(
        "IST0177",
        "ConflictingServiceEntryProtocol",
        note="ServiceEntries are read for their hosts and ports only (mesh egress, not ingress)",
    ),
    _a("KIA0002", "generic.multimatch.selectorless", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0003", "generic.multimatch.selector", note=f"n/a: {_NA_SECURITY}"),
    _a(
        "KIA0004",
        "generic.selector.workloadnotfound",
        note="n/a: reported for Sidecar and policy selectors, which are not modelled; Gateway "
        "selectors are IL216",
    ),
    _a(
        "KIA0005",
        "generic.exportto.namespacenotfound",
        note="exportTo is kept but not checked yet (the input rarely lists Namespaces)",
    ),
    *(
        _a(code, name, note=f"n/a: {_NA_SECURITY}")
        for code, name in (
            ("KIA0101", "authorizationpolicy.source.namespacenotfound"),
            ("KIA0102", "authorizationpolicy.to.wrongmethod"),
            ("KIA0104", "authorizationpolicy.nodest.matchingregistry"),
            ("KIA0105", "authorizationpolicy.mtls.needstobeenabled"),
            ("KIA0106", "authorizationpolicy.source.principalnotfound"),
            ("KIA0107", "authorizationpolicy.source.principalremote"),
            ("KIA0108", "authorizationpolicy.source.principalforeign"),
        )
    ),
    _a("KIA0109", "authorizationpolicy.ambient.l7nowaypoint", note=f"n/a: {_NA_AMBIENT}"),
    _a("KIA0110", "authorizationpolicy.ambient.l7notargetrefs", note=f"n/a: {_NA_AMBIENT}"),
    _a("KIA0201", "destinationrules.multimatch", "IL230"),
    _a("KIA0202", "destinationrules.nodest.matchingregistry", "IL217"),
    _a("KIA0203", "destinationrules.nodest.subsetlabels", "IL204"),
    _a(
        "KIA0204",
        "destinationrules.trafficpolicy.notlssettings",
        note="a host DestinationRule without tls under a mesh- or namespace-wide one with mTLS: "
        "not checked yet (IL233 reports the opposite: a host rule that replaces mesh mTLS)",
    ),
    _a("KIA0205", "destinationrules.mtls.meshpolicymissing", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0206", "destinationrules.mtls.nspolicymissing", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0207", "destinationrules.mtls.policymtlsenabled", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0208", "destinationrules.mtls.meshpolicymtlsenabled", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0209", "destinationrules.nodest.subsetnolabels", "IL231"),
    _a("KIA0210", "destinationrule.ambient.l7nowaypoint", note=f"n/a: {_NA_AMBIENT}"),
    _a("KIA0211", "destinationrule.ambient.servicenotcaptured", note=f"n/a: {_NA_AMBIENT}"),
    _a("KIA0212", "destinationrule.ambient.notinservicenamespace", note=f"n/a: {_NA_AMBIENT}"),
    _a("KIA0301", "gateways.multimatch", "IL219"),
    _a("KIA0302", "gateways.selector", "IL216"),
    _a("KIA0401", "peerauthentication.mtls.destinationrulemissing", note=f"n/a: {_NA_SECURITY}"),
    _a("KIA0501", "peerauthentications.mtls.destinationrulemissing", note=f"n/a: {_NA_SECURITY}"),
    _a(
        "KIA0505",
        "peerauthentications.mtls.disabledestinationrulemissing",
        note=f"n/a: {_NA_SECURITY}",
    ),
    _a(
        "KIA0506",
        "peerauthentications.mtls.disablemeshdestinationrulemissing",
        note=f"n/a: {_NA_SECURITY}",
    ),
    _a(
        "KIA0601",
        "port.name.mismatch",
        "IL234",
        "Kiali checks Service ports and Gateway server ports; istiolab checks Service ports",
    ),
    _a("KIA0602", "port.appprotocol.mismatch", "IL235"),
    _a("KIA0701", "service.deployment.port.mismatch", "IL218"),
    _a(
        "KIA1004",
        "sidecar.egress.servicenotfound",
        note="n/a: the Sidecar resource is not modelled (ingress routing)",
    ),
    _a(
        "KIA1006",
        "sidecar.global.selector",
        note="n/a: the Sidecar resource is not modelled (ingress routing)",
    ),
    _a(
        "KIA1007",
        "sidecar.outboundtrafficpolicy.mode.ambiguous",
        note="n/a: the Sidecar resource is not modelled (ingress routing)",
    ),
    _a("KIA1101", "virtualservices.nohost.hostnotfound", "IL211"),
    _a("KIA1102", "virtualservices.nogateway", "IL210"),
    _a("KIA1104", "virtualservices.route.singleweight", "IL226"),
    _a("KIA1105", "virtualservices.route.repeatedsubset", "IL227"),
    _a("KIA1106", "virtualservices.singlehost", "IL225"),
    _a("KIA1107", "virtualservices.subsetpresent.subsetnotfound", "IL203"),
    _a("KIA1108", "virtualservices.gateway.oldnomenclature", "IL228"),
    *(
        _a(code, name, note=f"n/a: {_NA_AMBIENT}")
        for code, name in (
            ("KIA1109", "virtualservice.ambient.l7nowaypoint"),
            ("KIA1110", "requestauthentication.ambient.l7nowaypoint"),
            ("KIA1111", "wasmplugin.ambient.l7nowaypoint"),
            ("KIA1112", "telemetry.ambient.l7nowaypoint"),
            ("KIA1113", "virtualservice.ambient.servicenotcaptured"),
            ("KIA1114", "virtualservice.ambient.notinservicenamespace"),
            ("KIA1115", "requestauthentication.ambient.l7notargetrefs"),
            ("KIA1116", "wasmplugin.ambient.l7notargetrefs"),
            ("KIA1117", "telemetry.ambient.l7notargetrefs"),
        )
    ),
    _a(
        "KIA1211",
        "serviceentries.multimatch",
        note="ServiceEntries are read for their hosts and ports only (mesh egress, not ingress)",
    ),
    _a(
        "KIA1212",
        "serviceentries.port.protocol.conflict",
        note="ServiceEntries are read for their hosts and ports only (mesh egress, not ingress)",
    ),
    _a("KIA1301", "workload.authorizationpolicy.needstobecovered", note=f"n/a: {_NA_SECURITY}"),
    *(
        _a(code, name, note=f"n/a: {_NA_AMBIENT}")
        for code, name in (
            ("KIA1311", "workload.ambient.sidecarandlabel"),
            ("KIA1312", "workload.ambient.waypointandnotambient"),
            ("KIA1313", "workload.ambient.waypointnotfound"),
            ("KIA1314", "workload.ambient.podsidecarlabelandambientredirection"),
            ("KIA1315", "workload.ambient.podsidecarinjectandambientlabel"),
            ("KIA1316", "workload.ambient.sidecarinambientnamespace"),
            ("KIA1317", "workload.ambient.authpolicybutnowaypoint"),
        )
    ),
    # kiali business/checkers/k8shttproutes/, k8sgateways/, k8sreferencegrants/
    _a("KIA1401", "k8sroutes.nok8sgateway", ("IL601", "IL603")),
    _a("KIA1402", "k8sroutes.nohost.namenotfound", ("IL606", "IL608")),
    _a(
        "KIA1501",
        "k8sgateways.multimatch.listener",
        note="listeners of different Gateways sharing a port and hostname are not checked",
    ),
    _a("KIA1502", "k8sgateways.multimatch.ip", note="n/a: Gateway addresses are not modelled"),
    _a("KIA1503", "k8sgateways.unique.listener", "IL616"),
    _a("KIA1504", "k8sgateways.gatewayclassnotfound", "IL614"),
    _a(
        "KIA1601",
        "k8sreferencegrants.from.namespacenotfound",
        note="namespaces are often not part of a config set, so a missing one proves nothing",
    ),
    _a("KIA1701", "workloadgroup.template.serviceaccount.notfound", note=f"n/a: {_NA_WORKLOAD}"),
    _a("KIA1702", "workloadgroup.labels.duplicate", note=f"n/a: {_NA_WORKLOAD}"),
)

SEE: dict[str, tuple[str, ...]] = {
    code: tuple(a.code for a in ANCHORS if code in a.ours) for code in CODES
}
"""For each of our codes, the anchor codes that report the same problem (a finding's ``see``)."""


@dataclasses.dataclass(frozen=True)
class Finding(HTMLRepr):
    """One problem found in user input.

    Attributes:
        code: Stable code, a key of :data:`CODES`.
        severity: Error, warning or info.
        resource: ``Kind/namespace/name`` of the resource (or the file when there is none).
        path: Dotted field path inside the resource, e.g. ``spec.http[0].route[1].weight``.
        message: What is wrong, naming the value.
        fix: What to do about it.
        file: Source file, when known.
        line: 1-based line in *file*, when known.
        see: Codes of istioctl analyze (``IST0101``) and Kiali (``KIA1104``) for the same problem.
        caused_by: ``code resource path`` of another finding this one may be a consequence of
            (fix that one first), or None.
        explain: For a finding about routing, a request that shows the problem and the
            ``istiolab explain`` command for it (filled in by :mod:`istiolab.envoy.provenance`).
    """

    code: str
    severity: Severity
    resource: str
    path: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None
    see: tuple[str, ...] = ()
    caused_by: str | None = None
    explain: str | None = None

    @property
    def location(self) -> str:
        """``file:line`` (or what is known of it)."""
        if self.file is None:
            return "-" if self.line is None else f"<input>:{self.line}"
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def format(self) -> str:
        """One-line human rendering."""
        where = f" {self.path}" if self.path else ""
        return (
            f"{self.location}: {self.severity.value} {self.code} {self.resource}{where}: "
            f"{self.message} (fix: {self.fix})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with the documented keys."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "resource": self.resource,
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
            "see": list(self.see),
            "caused_by": self.caused_by,
            "explain": self.explain,
        }


def finding(
    code: str,
    resource: str,
    path: str,
    message: str,
    fix: str,
    *,
    severity: Severity | None = None,
    file: str | None = None,
    line: int | None = None,
    see: tuple[str, ...] | None = None,
) -> Finding:
    """Make a :class:`Finding` with the code's default severity and its anchor codes."""
    return Finding(
        code=code,
        severity=severity or CODES[code].severity,
        resource=resource,
        path=path,
        message=message,
        fix=fix,
        file=file,
        line=line,
        see=SEE.get(code, ()) if see is None else see,
    )


def has_errors(findings: Iterable[Finding]) -> bool:
    """Tell whether any finding is an error."""
    return any(f.severity is Severity.ERROR for f in findings)


def suppress(findings: Iterable[Finding], codes: Iterable[str]) -> list[Finding]:
    """Drop findings whose code is in *codes*."""
    drop = {c.strip().upper() for c in codes if c.strip()}
    return [f for f in findings if f.code not in drop]


def render_docs() -> str:
    """Markdown for ``docs/findings.md``."""
    out = [
        "# Finding codes",
        "",
        "Generated from `istiolab/findings.py` by",
        "`python -m istiolab.findings > docs/findings.md`.",
        "Suppress a code for one resource with the annotation",
        '`istiolab.io/suppress: "IL207,IL209"`, or everywhere with',
        "`istiolab lint --suppress IL207`.",
        "The output formats (table, JSON, SARIF, GitHub annotations), the settings file",
        "(`.istiolab.yaml`: suppressions per path, severity overrides, `--fail-on`) and the",
        "provenance of routing findings are described in",
        "[findings-formats.md](findings-formats.md).",
        "",
        "| code | severity | title | meaning | see |",
        "|---|---|---|---|---|",
    ]
    for c in CODES.values():
        see = ", ".join(SEE.get(c.code, ())) or "-"
        out.append(f"| {c.code} | {c.severity.value} | {c.title} | {c.doc} | {see} |")
    out += [
        "",
        "## istioctl analyze and Kiali",
        "",
        "Every code of `istioctl analyze` (istio/istio `pkg/config/analysis/msg/messages.yaml`)",
        "and of Kiali's validations (kiali/kiali `models/istio_validation.go`), against ours.",
        "A finding's `see` field lists the anchor codes of its row.",
        "",
    ]
    counts = ", ".join(
        f"{status}: {sum(a.status == status for a in ANCHORS)}"
        for status in ("covered", "not applicable", "not covered")
    )
    out += [counts, "", "| anchor | name | status | ours | note |", "|---|---|---|---|---|"]
    for a in ANCHORS:
        ours = ", ".join(a.ours) or "-"
        out.append(f"| {a.code} | `{a.name}` | {a.status} | {ours} | {a.note or '-'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_docs(), end="")
