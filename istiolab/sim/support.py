"""What the simulator does with each field of each routing resource, for ``docs/scenario.md``.

Every field path of every routing model (list items written ``[]``, map values ``*``) gets a
status:

* ``honoured``: the simulated outcome follows the field as Envoy would;
* ``approximated``: the field changes the outcome, in a simpler way (the note says how);
* ``compile-only``: the field reaches the compiled route table and the Envoy config that
  ``envoy-config`` and ``verify`` use, but nothing the simulator measures depends on it;
* ``ignored``: neither the compiler nor the simulator reads it (the note says why).

Statuses were read off the code that consumes each field: ``istiolab/envoy/compile.py`` and
``istiolab/envoy/gatewayapi.py`` (config to route table), ``istiolab/config/ratelimit.py``
(EnvoyFilter local rate limits), and the stages ``sim/stages/router.py`` and ``upstream.py``
with ``envoy/match.py`` and ``envoy/policy.py`` (route table to outcome). A status on a path
covers its subtree unless a child has its own (prefix rules), so the tables stay short.
Descriptions are per model field (``Class.field``) or, when a name means the same everywhere,
per field name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel

from istiolab.config import gatewayapi as gwapi
from istiolab.config import k8s, legacy
from istiolab.config import model as istio
from istiolab.config.base import Resource

__all__ = [
    "KINDS",
    "STATUSES",
    "Support",
    "field_paths",
    "render_support",
    "stale_entries",
    "support",
]

Status = Literal["honoured", "approximated", "ignored", "compile-only"]
STATUSES: tuple[str, ...] = typing.get_args(Status)

KINDS: dict[str, type[Resource]] = {
    "VirtualService": istio.VirtualService,
    "DestinationRule": istio.DestinationRule,
    "Gateway": istio.Gateway,
    "ServiceEntry": istio.ServiceEntry,
    "EnvoyFilter": istio.EnvoyFilter,
    "HTTPRoute (Gateway API)": gwapi.HTTPRoute,
    "GRPCRoute (Gateway API)": gwapi.GRPCRoute,
    "Gateway (Gateway API)": gwapi.Gateway,
    "Ingress (networking.k8s.io/v1)": k8s.IngressV1,
    "Ingress (extensions/v1beta1)": k8s.IngressV1Beta1,
    "RouteRule (Istio 0.2)": legacy.RouteRule,
    "DestinationPolicy (Istio 0.2)": legacy.DestinationPolicy,
}
"""The routing kinds documented, by the title of their table.

Ingress and the Istio 0.2 kinds reach the route table through ``istiolab.config.convert``
(Pilot 0.2's semantics); their statuses say what the conversion keeps.
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Support:
    """What the simulator does with one field.

    Attributes:
        path: The field's path under the resource (``spec.http[].timeout``).
        status: ``honoured``, ``approximated``, ``compile-only`` or ``ignored``.
        note: How it is approximated, or why it is ignored ("" when honoured plainly).
        description: What the field means, in one line.
        type: The field's type as a user writes it.
    """

    path: str
    status: str
    note: str
    description: str
    type: str


# -- statuses: "path | status | note", one per line; a path covers its subtree ----------------

_NOTES = {
    "timing": "TLS and certificates do not change timing here",
    "location": "the redirect's status is simulated; its Location is not",
    "headers": "header edits do not change timing or routing downstream",
    "rewrite": "the backend's service time does not depend on the path",
    "cookie": "the simulator's clients send the cookie; Envoy's cookie generation is not modelled",
    "warmup": "slow start is rendered for Envoy but the simulator sends full weight at once",
    "conn_life": "not compiled: connections live for the run",
    "protocol": (
        "not compiled: the simulator and its checks against Envoy use HTTP/1.1 to the pods; "
        "over HTTP/2 many requests share a connection, so maxConnections and "
        "http1MaxPendingRequests would bind differently (not modelled)"
    ),
    "local_origin": "not compiled: local-origin errors count as 5xx",
    "export": "visibility across namespaces is not modelled: every resource is seen",
    "route_name": "names the Envoy route; route-scoped rate limits match it",
    "cors": "not compiled: the simulator sends no preflight requests",
    "ingress_tls": "hosts are served on 443 as Pilot 0.2 did, with the first secret only",
    "ingress_tls_hosts": "0.2 served every host of the Ingress with the one certificate",
    "source": "written as sourceLabels, or as the gateway when it names the ingress (IL305)",
    "l4": "dropped (IL306): Pilot 0.2 ignored L4 conditions of HTTP routes",
    "override": "dropped (IL306): Envoy's x-envoy-* request headers do the same",
}
"""Notes that several fields share, written ``{name}`` in the rules below."""


_RULES: dict[str, str] = {
    "VirtualService": """
spec.hosts | honoured | virtual host domains: which requests the resource takes
spec.gateways | honoured | binds the routes to the gateway being compiled
spec.http | honoured |
spec.http[].name | honoured | {route_name}
spec.http[].match[].name | ignored | a label for stats only
spec.http[].match[].port | honoured | decides whether the block applies to the listener
spec.http[].match[].sourceLabels | honoured | compared with the gateway's selector
spec.http[].match[].gateways | honoured | decides whether the block applies to the gateway
spec.http[].match[].sourceNamespace | ignored | not compiled: gateway clients have none
spec.http[].match[].statPrefix | ignored | names stats only
spec.http[].delegate | ignored | not compiled (IL313): the route is left out; inline it
spec.http[].redirect.uri | compile-only | {location}
spec.http[].redirect.authority | compile-only | {location}
spec.http[].redirect.port | compile-only | {location}
spec.http[].redirect.scheme | compile-only | {location}
spec.http[].redirect.derivePort | ignored | not compiled: the redirect keeps the request's port
spec.http[].directResponse.body | compile-only | the response's status is simulated; its body is not
spec.http[].rewrite | compile-only | {rewrite}
spec.http[].headers | compile-only | {headers}
spec.http[].route[].headers | ignored | not compiled: per-destination header edits
spec.http[].retries.retryRemoteLocalities | ignored | not compiled: localities are not modelled
spec.http[].fault.delay.exponentialDelay | ignored | not compiled (Istio never implemented it)
spec.http[].fault.abort.grpcStatus | ignored | not compiled (IL313): use httpStatus
spec.http[].fault.abort.http2Error | ignored | not compiled (IL313): use httpStatus
spec.http[].corsPolicy | ignored | {cors}
spec.tls | ignored | TLS routes: the simulator models HTTP only
spec.tcp | ignored | TCP routes: the simulator models HTTP only
spec.exportTo | ignored | {export}
""",
    "DestinationRule": """
spec.host | honoured | selects the clusters the policy applies to (first rule for a host wins)
spec.subsets | honoured | subset clusters and their pod labels
spec.trafficPolicy | honoured |
spec.trafficPolicy.port | honoured | portLevelSettings apply to the cluster on this port
@spec.trafficPolicy.loadBalancer
.simple | approximated | PASSTHROUGH runs as ROUND_ROBIN, LEAST_CONN as LEAST_REQUEST
.consistentHash.httpCookie.path | ignored | {cookie}
.consistentHash.httpCookie.ttl | ignored | {cookie}
.consistentHash.maglev | approximated | picked on a hash ring with tableSize points
.localityLbSetting | ignored | not compiled: localities are not modelled
.warmupDurationSecs | compile-only | {warmup}
.warmup | compile-only | {warmup}
@spec.trafficPolicy.connectionPool.tcp
.tcpKeepalive | ignored | not compiled: connections do not idle out in a run
.maxConnectionDuration | ignored | {conn_life}
.idleTimeout | ignored | {conn_life}
@spec.trafficPolicy.connectionPool.http
.maxRequestsPerConnection | compile-only | rendered for Envoy; simulated connections stay open
.idleTimeout | ignored | {conn_life}
.h2UpgradePolicy | ignored | {protocol}
.useClientProtocol | ignored | {protocol}
.maxConcurrentStreams | ignored | not compiled: per-connection stream limits are not modelled
@spec.trafficPolicy.outlierDetection
.splitExternalLocalOriginErrors | ignored | {local_origin}
.consecutiveLocalOriginFailures | ignored | {local_origin}
@spec.trafficPolicy
.tls | ignored | {timing}
.tunnel | ignored | not compiled: tunnelling is for egress
.proxyProtocol | ignored | not compiled: the PROXY header does not change timing here
.retryBudget | ignored | not compiled: retries are limited by maxRetries only
spec.exportTo | ignored | {export}
spec.workloadSelector | ignored | not compiled: the rule applies to the gateway like any other
""",
    "Gateway": """
spec.selector | honoured | which gateway pods take the servers; EnvoyFilters match it
spec.servers | honoured | listeners of the gateway
spec.servers[].port.number | honoured | the listener port routes are compiled for
spec.servers[].port.protocol | honoured | only HTTP, HTTP2, GRPC and HTTPS servers get HTTP routes
spec.servers[].port.name | ignored | a label only
spec.servers[].port.targetPort | ignored | not compiled: the gateway listens on the port number
spec.servers[].hosts | honoured | the hosts the server accepts: virtual host domains
spec.servers[].bind | ignored | not compiled: the gateway listens on every address
spec.servers[].tls | ignored | {timing}
spec.servers[].tls.httpsRedirect | ignored | not compiled: plain HTTP is routed, not redirected
spec.servers[].defaultEndpoint | ignored | not compiled: sidecar ingress only
spec.servers[].name | ignored | a label only
""",
    "ServiceEntry": """
spec | ignored | not compiled: the simulated backends are the scenario's services
""",
    "EnvoyFilter": """
spec.workloadSelector | honoured | which gateways the local rate limit applies to
spec.targetRefs | ignored | not read: use workloadSelector
spec.configPatches | approximated | only local rate limit patches are read; others are ignored
spec.priority | ignored | not read: patches are not ordered; one rate limit per scope applies
""",
    "HTTPRoute (Gateway API)": """
spec.parentRefs | honoured | attachment to Gateways and listeners, as istiod decides it
spec.hostnames | honoured | virtual host domains, intersected with the listener's hostname
spec.rules | honoured |
spec.rules[].name | honoured | {route_name}
spec.rules[].filters[].requestHeaderModifier | compile-only | {headers}
spec.rules[].filters[].responseHeaderModifier | compile-only | {headers}
spec.rules[].filters[].urlRewrite | compile-only | {rewrite}
@spec.rules[].filters[].requestRedirect
.path | compile-only | {location}
.hostname | compile-only | {location}
.port | compile-only | {location}
.scheme | compile-only | {location}
spec.rules[].filters[].extensionRef | ignored | not compiled: implementation-specific filters
spec.rules[].filters[].cors | ignored | {cors}
spec.rules[].backendRefs[].filters | ignored | not compiled: per-backend filters (a finding says so)
spec.rules[].sessionPersistence | ignored | not compiled: istiod does not support it on HTTPRoute
""",
    "GRPCRoute (Gateway API)": """
spec | ignored | not compiled: the simulator sends HTTP/1.1 requests only
""",
    "Gateway (Gateway API)": """
spec.gatewayClassName | honoured | only Gateways of an Istio class take routes
spec.listeners | honoured | listener ports, hostnames and which routes may attach
spec.listeners[].tls | ignored | {timing}
spec.addresses | ignored | not compiled: the address does not change timing here
spec.infrastructure | ignored | not compiled: labels of the generated deployment
""",
    "Ingress (networking.k8s.io/v1)": """
spec.ingressClassName | honoured | only Ingresses of class istio are served
spec.rules | honoured | hosts and paths, with Pilot 0.2's path rule and order
@spec.rules[].http.paths[].backend
.resource | ignored | not converted: only Service backends are served
spec.tls | approximated | {ingress_tls}
spec.tls[].hosts | ignored | {ingress_tls_hosts}
spec.defaultBackend | honoured | the route for requests no path matches
spec.defaultBackend.resource | ignored | not converted: only Service backends are served
""",
    "Ingress (extensions/v1beta1)": """
spec.ingressClassName | honoured | only Ingresses of class istio are served
spec.rules | honoured | hosts and paths, with Pilot 0.2's path rule and order
@spec.rules[].http.paths[].backend
.resource | ignored | not converted: only Service backends are served
spec.tls | approximated | {ingress_tls}
spec.tls[].hosts | ignored | {ingress_tls_hosts}
spec.backend | honoured | the route for requests no path matches
spec.backend.resource | ignored | not converted: only Service backends are served
""",
    "RouteRule (Istio 0.2)": """
spec.destination | honoured | the service whose requests the rule routes
spec.destination.labels | ignored | not converted: the rule covers every pod of the service
spec.precedence | honoured | rules of a destination are tried in this order, highest first
spec.match.source | approximated | {source}
spec.match.tcp | ignored | {l4}
spec.match.udp | ignored | {l4}
spec.match | honoured |
spec.route | honoured |
spec.redirect | honoured | answered with Pilot 0.2's 302
spec.redirect.uri | compile-only | {location}
spec.redirect.authority | compile-only | {location}
spec.rewrite | compile-only | {rewrite}
spec.websocketUpgrade | ignored | dropped (IL306): modern Istio upgrades WebSockets by default
spec.httpReqTimeout | honoured | the route timeout (0.2's 15 s when unset)
@spec.httpReqTimeout
.simpleTimeout.overrideHeaderName | ignored | {override}
.custom | ignored | dropped (IL306): no modern equivalent
spec.httpReqRetries | honoured | retries, with 0.2's none when unset
@spec.httpReqRetries
.simpleRetry.overrideHeaderName | ignored | {override}
.custom | ignored | dropped (IL306): no modern equivalent
spec.httpFault | honoured | delay and abort, percent truncated to whole numbers as 0.2 did
@spec.httpFault
.delay.exponentialDelay | ignored | dropped (IL302): Istio never injected it
.delay.overrideHeaderName | ignored | {override}
.abort.grpcStatus | ignored | dropped (IL302): 0.2 injected HTTP statuses only
.abort.http2Error | ignored | dropped (IL302): 0.2 injected HTTP statuses only
.abort.overrideHeaderName | ignored | {override}
spec.l4Fault | ignored | dropped (IL306): 0.2 never applied TCP faults
spec.mirror | honoured | requests copied to the service; the reply is discarded
spec.mirror.labels | ignored | not converted: the mirror goes to every pod of the service
spec.corsPolicy | ignored | {cors}
spec.appendHeaders | compile-only | {headers}
""",
    "DestinationPolicy (Istio 0.2)": """
spec.destination | honoured | the service (and with labels, the subset) the policy applies to
spec.source | ignored | dropped (IL306): a DestinationRule applies to every caller
spec.loadBalancing | honoured |
spec.circuitBreaker | honoured |
spec.loadBalancing.name | approximated | LEAST_CONN runs as LEAST_REQUEST (power of two choices)
spec.loadBalancing.custom | ignored | dropped (IL306): use name
spec.circuitBreaker.custom | ignored | dropped (IL306): use simpleCb
spec.circuitBreaker.simpleCb | honoured | pool limits and outlier detection, with 0.2's defaults
@spec.circuitBreaker.simpleCb
.httpMaxRequestsPerConnection | compile-only | rendered for Envoy; simulated connections stay open
spec.custom | ignored | dropped (IL306)
""",
}

# Paths that share another path's rules: a subset's or a port's traffic policy is a traffic policy.
_SAME_AS: dict[str, tuple[tuple[str, str], ...]] = {
    "DestinationRule": (
        ("spec.subsets[].trafficPolicy", "spec.trafficPolicy"),
        ("spec.trafficPolicy.portLevelSettings[]", "spec.trafficPolicy"),
    ),
}


def _parse(text: str) -> dict[str, tuple[str, str]]:
    # "@prefix" sets the prefix of the following lines that start with "."
    out: dict[str, tuple[str, str]] = {}
    prefix = ""
    for line in text.strip().splitlines():
        if line.startswith("@"):
            prefix = line[1:]
            continue
        path, status, note = (part.strip() for part in line.split("|", 2))
        path = prefix + path if path.startswith(".") else path
        out[path] = (status, note.format_map(_NOTES))
    return out


_TABLE: dict[str, dict[str, tuple[str, str]]] = {k: _parse(v) for k, v in _RULES.items()}

# -- descriptions: "Class.field" first, then the bare field name ------------------------------

_DESCRIPTIONS: dict[str, str] = {
    # shared names
    "exact": "The value matches exactly.",
    "prefix": "The value starts with this.",
    "regex": "The value fully matches this RE2 regular expression.",
    "name": "Name of the object or item.",
    "namespace": "Namespace (default: the resource's own).",
    "host": "Service host name (short names resolve in the resource's namespace).",
    "subset": "Subset of the host, defined by a DestinationRule.",
    "port": "Port.",
    "number": "Port number.",
    "protocol": "Protocol (HTTP, HTTP2, GRPC, HTTPS, TCP, TLS...).",
    "weight": "Relative share of the traffic.",
    "headers": "Header conditions or edits.",
    "set": "Headers to set, replacing existing values.",
    "add": "Headers to append.",
    "remove": "Header names to remove.",
    "request": "Edits on the request to the backend.",
    "response": "Edits on the response to the client.",
    "percentage": "Share of requests it applies to, 0-100.",
    "percent": "Share of requests it applies to, 0-100 (integer form).",
    "value": "The value.",
    "Percentage.value": "Percent of requests, 0-100 (fractions allowed).",
    "type": "Kind of match or filter.",
    "uri": "Request path.",
    "scheme": "URL scheme (http or https).",
    "method": "HTTP method.",
    "authority": "Host (:authority) header.",
    "timeout": "Time Envoy waits for the whole response, retries included.",
    "labels": "Pod labels that select the endpoints.",
    "hosts": "Host names the resource applies to.",
    "exportTo": "Namespaces the resource is visible in.",
    "workloadSelector": "Labels of the workloads the resource applies to.",
    "tls": "TLS settings.",
    "match": "Conditions on the request.",
    "group": "API group of the referenced object.",
    "kind": "Kind of the referenced object.",
    "hostname": "Host name.",
    "hostnames": "Host names the route serves.",
    "parentRefs": "Gateways (and listeners) the route attaches to.",
    "sectionName": "Listener name within the parent Gateway.",
    "rules": "Routing rules, in order.",
    "matches": "Conditions a request must meet (any one of them).",
    "filters": "Processing steps applied to matched requests.",
    "backendRefs": "Backends the matched requests go to, with weights.",
    "sessionPersistence": "Sticky sessions.",
    "requestHeaderModifier": "Edits on the request headers.",
    "responseHeaderModifier": "Edits on the response headers.",
    "requestMirror": "Copies requests to another backend; the reply is discarded.",
    "extensionRef": "Implementation-specific filter.",
    "backendRef": "The backend that receives mirrored requests.",
    "fraction": "Share of requests mirrored, as numerator/denominator.",
    "numerator": "Numerator of the share.",
    "denominator": "Denominator of the share (default 100).",
    "path": "Request path.",
    "queryParams": "Query parameter conditions.",
    "statusCode": "HTTP status of the redirect.",
    "options": "Implementation-specific TLS options.",
    "mode": "TLS mode.",
    # VirtualService
    "VirtualServiceSpec.gateways": "Gateways the routes apply to (`mesh` for sidecars).",
    "VirtualServiceSpec.http": "HTTP routes, matched in order; the first match wins.",
    "VirtualServiceSpec.tls": "TLS (SNI) routes, kept as written.",
    "VirtualServiceSpec.tcp": "TCP routes, kept as written.",
    "HTTPRoute.name": "Route name (shows in stats and in explanations).",
    "HTTPRoute.match": "Match blocks; any one of them selects the route.",
    "HTTPRoute.route": "Destinations with weights.",
    "HTTPRoute.redirect": "Answer with an HTTP redirect instead of forwarding.",
    "HTTPRoute.directResponse": "Answer with a fixed response instead of forwarding.",
    "HTTPRoute.delegate": "Another VirtualService that holds the routes.",
    "HTTPRoute.rewrite": "Rewrite the path or host before forwarding.",
    "HTTPRoute.retries": "Retry policy.",
    "HTTPRoute.fault": "Fault injection: delays and aborts.",
    "HTTPRoute.mirror": "Copy requests to this destination; the reply is discarded.",
    "HTTPRoute.mirrors": "Several mirror destinations, each with its share.",
    "HTTPRoute.mirrorPercentage": "Share of requests mirrored, 0-100.",
    "HTTPRoute.mirrorPercent": "Share of requests mirrored (deprecated integer form).",
    "HTTPRoute.corsPolicy": "CORS policy.",
    "HTTPRoute.headers": "Header edits on requests and responses.",
    "HTTPMatchRequest.name": "Name of the match block.",
    "HTTPMatchRequest.headers": "Header conditions, by header name.",
    "HTTPMatchRequest.port": "Only on this listener port.",
    "HTTPMatchRequest.sourceLabels": "Only from workloads with these labels.",
    "HTTPMatchRequest.gateways": "Only on these gateways.",
    "HTTPMatchRequest.queryParams": "Query parameter conditions, by name.",
    "HTTPMatchRequest.ignoreUriCase": "Compare the path case-insensitively.",
    "HTTPMatchRequest.withoutHeaders": "Headers that must not match.",
    "HTTPMatchRequest.sourceNamespace": "Only from workloads in this namespace.",
    "HTTPMatchRequest.statPrefix": "Prefix of the route's stats.",
    "HTTPRouteDestination.destination": "Where the traffic goes.",
    "HTTPRouteDestination.headers": "Header edits for this destination only.",
    "Destination.port": "Service port (needed when the service has several).",
    "HTTPRedirect.uri": "Path of the redirect target.",
    "HTTPRedirect.authority": "Host of the redirect target.",
    "HTTPRedirect.port": "Port of the redirect target.",
    "HTTPRedirect.derivePort": "Take the port from the protocol or the request.",
    "HTTPRedirect.redirectCode": "HTTP status of the redirect (default 301).",
    "HTTPDirectResponse.status": "HTTP status of the response.",
    "HTTPDirectResponse.body": "Body of the response.",
    "HTTPBody.string": "Body as text.",
    "HTTPBody.bytes": "Body as base64 bytes.",
    "Delegate.name": "Name of the delegate VirtualService.",
    "HTTPRewrite.uri": "Replace the matched path prefix with this.",
    "HTTPRewrite.authority": "Replace the Host header with this.",
    "HTTPRewrite.uriRegexRewrite": "Rewrite the path with a regex and substitution.",
    "RegexRewrite.match": "RE2 regex on the path.",
    "RegexRewrite.rewrite": "Substitution (\\1 refers to groups).",
    "attempts": "Retries after the first try (0 disables retries).",
    "perTryTimeout": "Time limit of each try.",
    "retryOn": "Conditions that trigger a retry (5xx, gateway-error, connect-failure, codes...).",
    "retryRemoteLocalities": "Retry in other localities.",
    "retryIgnorePreviousHosts": "Avoid hosts already tried.",
    "backoff": "Base interval of the jittered exponential back-off between retries.",
    "Delay.fixedDelay": "Delay added before forwarding.",
    "Delay.exponentialDelay": "Exponentially distributed delay (never implemented by Istio).",
    "Delay.percent": "Share of requests delayed (deprecated integer form).",
    "Abort.httpStatus": "HTTP status of the aborted requests.",
    "Abort.grpcStatus": "gRPC status of the aborted requests.",
    "Abort.http2Error": "HTTP/2 error of the aborted requests.",
    "HTTPFaultInjection.delay": "Delay some requests.",
    "HTTPFaultInjection.abort": "Answer some requests with an error, without forwarding.",
    "HTTPMirrorPolicy.destination": "Where mirrored requests go.",
    "allowOrigins": "Allowed origins.",
    "allowOrigin": "Allowed origins (deprecated form).",
    "allowMethods": "Allowed methods.",
    "allowHeaders": "Allowed request headers.",
    "exposeHeaders": "Response headers the browser may read.",
    "maxAge": "How long a preflight answer may be cached.",
    "allowCredentials": "Allow credentials.",
    "unmatchedPreflights": "What to do with preflights from other origins.",
    # DestinationRule
    "DestinationRuleSpec.trafficPolicy": "Policy of every cluster of the host.",
    "DestinationRuleSpec.subsets": "Named subsets of the host's pods.",
    "Subset.name": "Subset name, used by routes.",
    "Subset.trafficPolicy": "Policy of this subset, over the host's.",
    "trafficPolicy": "Traffic policy.",
    "loadBalancer": "How an endpoint is picked.",
    "connectionPool": "Circuit-breaker limits of the connection pool.",
    "outlierDetection": "Ejection of endpoints that keep failing.",
    "portLevelSettings": "Policies for single ports, over the general one.",
    "tunnel": "Tunnel settings.",
    "proxyProtocol": "PROXY protocol towards the endpoints.",
    "retryBudget": "Retries limited to a share of active requests.",
    "PortTrafficPolicy.port": "The port the policy applies to.",
    "simple": "Algorithm: ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH.",
    "consistentHash": "Pick by a hash of the request (sticky routing).",
    "localityLbSetting": "Locality failover and weights.",
    "warmupDurationSecs": "Slow start of new endpoints (deprecated form).",
    "warmup": "Slow start of new endpoints.",
    "duration": "How long slow start lasts.",
    "minimumPercent": "Weight a new endpoint starts at, in percent.",
    "aggression": "How fast the weight grows (1 is linear).",
    "httpHeaderName": "Hash this request header.",
    "httpCookie": "Hash this cookie.",
    "useSourceIp": "Hash the client's address.",
    "httpQueryParameterName": "Hash this query parameter.",
    "ringHash": "Use a ring hash.",
    "maglev": "Use Maglev.",
    "minimumRingSize": "Smallest number of points on the hash ring.",
    "tableSize": "Size of the Maglev table.",
    "HTTPCookie.name": "Cookie name.",
    "HTTPCookie.path": "Path of the cookie Envoy sets.",
    "HTTPCookie.ttl": "Lifetime of the cookie Envoy sets.",
    "ConnectionPoolSettings.tcp": "TCP limits.",
    "ConnectionPoolSettings.http": "HTTP limits.",
    "maxConnections": "Most connections to the cluster.",
    "connectTimeout": "Time limit of a TCP connect.",
    "tcpKeepalive": "TCP keepalive probes.",
    "maxConnectionDuration": "Longest life of a connection.",
    "idleTimeout": "Close connections idle this long.",
    "http1MaxPendingRequests": "Most requests waiting for a connection (503 UO beyond).",
    "http2MaxRequests": "Most requests in flight to the cluster (503 UO beyond).",
    "maxRequestsPerConnection": "Requests per connection before it is closed (0: no limit).",
    "maxRetries": "Most retries in flight to the cluster.",
    "h2UpgradePolicy": "Upgrade HTTP/1.1 connections to HTTP/2.",
    "useClientProtocol": "Use the client's HTTP version towards the endpoint.",
    "maxConcurrentStreams": "Most streams per HTTP/2 connection.",
    "splitExternalLocalOriginErrors": "Count local-origin errors separately.",
    "consecutiveLocalOriginFailures": "Local-origin failures in a row before ejection.",
    "consecutiveGatewayErrors": "502/503/504 in a row before ejection.",
    "consecutive5xxErrors": "5xx in a row before ejection.",
    "consecutiveErrors": "5xx in a row before ejection (deprecated form).",
    "interval": "How often ejections are evaluated.",
    "baseEjectionTime": "Ejection time, multiplied by the number of ejections.",
    "maxEjectionPercent": "Most endpoints ejected at once, in percent.",
    "minHealthPercent": "Below this share of healthy endpoints, ejection stops.",
    "minRetryConcurrency": "Retries always allowed, whatever the budget.",
    # Gateway (Istio)
    "GatewaySpec.selector": "Labels of the gateway pods that run the servers.",
    "GatewaySpec.servers": "Listeners: port, protocol, hosts, TLS.",
    "Server.port": "The listener's port.",
    "Server.hosts": "Hosts accepted on this server (namespace/host).",
    "Server.bind": "Address the listener binds to.",
    "Server.defaultEndpoint": "Where sidecar ingress sends traffic.",
    "Server.name": "Server name.",
    "GatewayPort.name": "Port name.",
    "targetPort": "Port on the pod the traffic goes to.",
    "httpsRedirect": "Redirect plain HTTP to HTTPS.",
    "credentialName": "Secret holding the certificate.",
    # ServiceEntry
    "ServiceEntrySpec.addresses": "Virtual IPs of the service.",
    "ServiceEntrySpec.ports": "Ports of the service.",
    "location": "Inside or outside the mesh.",
    "resolution": "How endpoints are found (NONE, STATIC, DNS...).",
    "endpoints": "Endpoints of the service.",
    "subjectAltNames": "Names the endpoints' certificates must carry.",
    # EnvoyFilter
    "targetRefs": "Policy attachment targets.",
    "configPatches": "Patches to Envoy's config.",
    "priority": "Order of patches among EnvoyFilters.",
    "applyTo": "What the patch applies to (HTTP_FILTER, ROUTE_CONFIGURATION...).",
    "EnvoyConfigObjectPatch.match": "Which objects the patch applies to.",
    "EnvoyConfigObjectPatch.patch": "The patch.",
    "operation": "Patch operation (INSERT_BEFORE, MERGE...).",
    "EnvoyPatch.value": "Envoy config to insert or merge.",
    "filterClass": "Where the filter goes (AUTHN, AUTHZ, STATS).",
    # Gateway API routes
    "HTTPPathMatch.type": "Exact, PathPrefix or RegularExpression.",
    "HTTPPathMatch.value": "The path.",
    "HTTPHeaderMatch.type": "Exact or RegularExpression.",
    "HTTPHeaderMatch.name": "Header name.",
    "HTTPHeaderMatch.value": "Header value.",
    "HTTPQueryParamMatch.type": "Exact or RegularExpression.",
    "HTTPQueryParamMatch.name": "Query parameter name.",
    "HTTPQueryParamMatch.value": "Query parameter value.",
    "HTTPHeader.name": "Header name.",
    "HTTPHeader.value": "Header value.",
    "HTTPRouteFilter.type": "Which filter this is.",
    "HTTPRouteFilter.requestRedirect": "Answer with a redirect.",
    "HTTPRouteFilter.urlRewrite": "Rewrite the host or path before forwarding.",
    "HTTPRouteFilter.cors": "CORS policy.",
    "HTTPRequestRedirectFilter.path": "Path of the redirect target.",
    "HTTPRequestRedirectFilter.port": "Port of the redirect target.",
    "HTTPRequestRedirectFilter.hostname": "Host of the redirect target.",
    "HTTPURLRewriteFilter.path": "New path.",
    "HTTPURLRewriteFilter.hostname": "New Host header.",
    "replaceFullPath": "Replace the whole path with this.",
    "replacePrefixMatch": "Replace the matched prefix with this.",
    "HTTPRequestMirrorFilter.percent": "Share of requests mirrored, 0-100.",
    "BackendObjectReference.name": "Name of the Service.",
    "BackendObjectReference.port": "Port of the Service.",
    "HTTPBackendRef.name": "Name of the Service.",
    "HTTPBackendRef.port": "Port of the Service.",
    "HTTPBackendRef.weight": "Relative share of the rule's traffic (0 takes none).",
    "HTTPBackendRef.filters": "Filters for this backend only.",
    "GRPCBackendRef.name": "Name of the Service.",
    "GRPCBackendRef.port": "Port of the Service.",
    "GRPCBackendRef.filters": "Filters for this backend only.",
    "ParentReference.name": "Name of the Gateway.",
    "ParentReference.port": "Listener port within the Gateway.",
    "timeouts": "Time limits.",
    "HTTPRouteTimeouts.request": "Time limit of the whole request, retries included.",
    "backendRequest": "Time limit of each request to a backend.",
    "HTTPRouteRule.retry": "Retry policy.",
    "HTTPRouteRule.name": "Rule name.",
    "codes": "HTTP statuses that are retried.",
    "HTTPRouteRetry.attempts": "Most tries after the first (default 2 in Istio).",
    "GRPCMethodMatch.type": "Exact or RegularExpression.",
    "GRPCMethodMatch.service": "gRPC service.",
    "GRPCMethodMatch.method": "gRPC method.",
    "GRPCHeaderMatch.type": "Exact or RegularExpression.",
    "GRPCHeaderMatch.name": "Header name.",
    "GRPCHeaderMatch.value": "Header value.",
    "GRPCRouteFilter.type": "Which filter this is.",
    "GRPCRouteRule.name": "Rule name.",
    # Gateway API Gateway
    "gatewayClassName": "GatewayClass that implements the Gateway.",
    "listeners": "Listeners: port, protocol, host name, TLS, allowed routes.",
    "Listener.name": "Listener name, referenced by sectionName.",
    "Listener.hostname": "Host name the listener accepts (wildcards allowed).",
    "Listener.port": "Listener port.",
    "allowedRoutes": "Which routes may attach.",
    "namespaces": "Namespaces routes may attach from.",
    "from": "All, Same or Selector.",
    "selector": "Label selector of namespaces.",
    "matchLabels": "Labels that must be equal.",
    "matchExpressions": "Label conditions.",
    "key": "Label key.",
    "operator": "In, NotIn, Exists or DoesNotExist.",
    "values": "Label values.",
    "kinds": "Route kinds that may attach.",
    "RouteGroupKind.kind": "Route kind.",
    "certificateRefs": "Secrets holding certificates.",
    "frontendValidation": "Client certificate validation.",
    "addresses": "Addresses requested for the Gateway.",
    "GatewayAddress.type": "Address type (IPAddress, Hostname).",
    "GatewayAddress.value": "The address.",
    "infrastructure": "Labels and annotations of the generated resources.",
    # Kubernetes Ingress
    "IngressServiceBackend.name": "Name of the Service.",
    "IngressServiceBackend.port": "Port of the Service.",
    "ServiceBackendPort.name": "Port name of the Service.",
    "IngressRuleV1.host": "Host the rule serves (none: every host).",
    "IngressRuleV1Beta1.host": "Host the rule serves (none: every host).",
    "IngressTLS.hosts": "Hosts the certificate covers.",
    "HTTPIngressPathV1.path": "Request path (with pathType).",
    "HTTPIngressPathV1Beta1.path": "Request path (Pilot 0.2's rule when pathType is unset).",
    "IstioService.name": "Short name of the service.",
    "ServiceEntryPort.name": "Port name.",
    "SecretObjectReference.name": "Name of the Secret.",
    "LocalObjectReference.name": "Name of the filter object.",
    "HTTPRouteMatch.path": "Path condition.",
    "ingressClassName": "Ingress class; istio's gateway serves class istio.",
    "IngressRuleV1.http": "HTTP paths of the host.",
    "IngressRuleV1Beta1.http": "HTTP paths of the host.",
    "paths": "Paths and their backends.",
    "pathType": "Exact, Prefix or ImplementationSpecific.",
    "backend": "The Service that receives the requests.",
    "IngressSpecV1Beta1.backend": "Backend for requests no rule matches.",
    "defaultBackend": "Backend for requests no rule matches.",
    "IngressBackendV1.service": "The Service, by name and port.",
    "resource": "A non-Service backend (an object reference).",
    "serviceName": "Name of the Service.",
    "servicePort": "Port of the Service, by number or name.",
    "secretName": "Secret holding the certificate.",
    # Istio 0.2 RouteRule and DestinationPolicy
    "RouteRuleSpec.destination": "The service whose requests the rule routes.",
    "DestinationPolicySpec.destination": "The service (labels: its pods) the policy applies to.",
    "IstioService.domain": "DNS domain (default svc.cluster.local).",
    "IstioService.service": "Full host name, instead of name, namespace and domain.",
    "precedence": "Order among the rules of a destination; higher goes first.",
    "MatchCondition.source": "Only requests from this service.",
    "MatchCondition.tcp": "L4 conditions on TCP.",
    "MatchCondition.udp": "L4 conditions on UDP.",
    "sourceSubnet": "Client subnets.",
    "destinationSubnet": "Destination subnets.",
    "RouteRuleSpec.route": "Destinations (by pod labels) with weights.",
    "DestinationWeight.destination": "Another service (default: the rule's destination).",
    "RouteRuleSpec.redirect": "Answer with a redirect instead of forwarding.",
    "RouteRuleSpec.rewrite": "Rewrite the path or host before forwarding.",
    "websocketUpgrade": "Allow WebSocket upgrades.",
    "httpReqTimeout": "Request timeout.",
    "simpleTimeout": "Timeout of the whole request.",
    "overrideHeaderName": "Request header that overrides the value.",
    "custom": "Implementation-specific settings.",
    "httpReqRetries": "Retry policy.",
    "simpleRetry": "Retries and per-try timeout.",
    "httpFault": "Fault injection: delays and aborts.",
    "DelayLegacy.fixedDelay": "Delay added before forwarding.",
    "DelayLegacy.exponentialDelay": "Exponentially distributed delay (never implemented).",
    "meanDelay": "Mean of the exponential delay.",
    "AbortLegacy.httpStatus": "HTTP status of the aborted requests.",
    "AbortLegacy.grpcStatus": "gRPC status of the aborted requests.",
    "AbortLegacy.http2Error": "HTTP/2 error of the aborted requests.",
    "HTTPFaultInjectionLegacy.delay": "Delay some requests.",
    "HTTPFaultInjectionLegacy.abort": "Answer some requests with an error, without forwarding.",
    "l4Fault": "TCP-level faults.",
    "RouteRuleSpec.mirror": "Copy requests to this service; the reply is discarded.",
    "RouteRuleSpec.corsPolicy": "CORS policy.",
    "appendHeaders": "Headers added to the request.",
    "DestinationPolicySpec.source": "Only for requests from this service.",
    "loadBalancing": "How an endpoint is picked.",
    "LoadBalancing.name": "ROUND_ROBIN, LEAST_CONN or RANDOM.",
    "circuitBreaker": "Connection limits and outlier detection.",
    "simpleCb": "Pool limits and ejection settings.",
    "httpMaxPendingRequests": "Most requests waiting for a connection (503 UO beyond).",
    "httpMaxRequests": "Most requests in flight to the cluster (503 UO beyond).",
    "sleepWindow": "Ejection time, multiplied by the number of ejections.",
    "httpConsecutiveErrors": "5xx in a row before ejection.",
    "httpDetectionInterval": "How often ejections are evaluated.",
    "httpMaxRequestsPerConnection": "Requests per connection before it is closed.",
    "httpMaxEjectionPercent": "Most endpoints ejected at once, in percent.",
    "httpMaxRetries": "Most retries in flight to the cluster.",
}


# -- walking the models -------------------------------------------------------------------------

_VALIDATOR_TYPES = {
    "_duration": "duration",
    "_cel_duration": "duration",
    "_gateway_duration": "duration",
    "_percent": "percent (0-100)",
    "_http_status": "HTTP status",
    "_regex": "RE2 regex",
    "_port_or_name": "port number or name",
}


def _user_type(t: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> str:
    """The type as a user writes it in YAML: ``duration``, ``list of string``, ``object``."""
    for meta in metadata:
        name = getattr(getattr(meta, "func", None), "__name__", "")
        if name in _VALIDATOR_TYPES:
            return _VALIDATOR_TYPES[name]
        if "HEADER" in str(meta):
            return "header name" if "NAME" in str(meta) else "string"
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(t)
        return _user_type(base, meta)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return " or ".join(_user_type(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(t))
    if origin is list:
        return "list of " + _user_type(typing.get_args(t)[0])
    if origin is dict:
        value = _user_type(typing.get_args(t)[1])
        return (
            "object (kept as written)" if value.startswith("any") else f"map of string to {value}"
        )
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "object"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(t, "any (kept as written)") if isinstance(t, type) else "any (kept as written)"


def _submodel(t: Any) -> tuple[str, type[BaseModel] | None]:
    """The suffix (``[]`` per list, ``.*`` per map) and the model a field holds, if any."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _submodel(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return _submodel(args[0]) if len(args) == 1 else ("", None)
    if origin is list:
        suffix, sub = _submodel(typing.get_args(t)[0])
        return "[]" + suffix, sub
    if origin is dict:
        suffix, sub = _submodel(typing.get_args(t)[1])
        return (".*" + suffix, sub) if sub is not None else ("", None)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "", t
    return "", None


def _walk(cls: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel], str, str]]:
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        suffix, sub = _submodel(info.annotation)
        path = f"{prefix}.{alias}"
        yield path, cls, alias, _user_type(info.annotation, info.metadata)
        if sub is not None:
            yield from _walk(sub, path + suffix)


def field_paths(kind: str) -> list[tuple[str, str, str]]:
    """Every field path of a routing kind under ``spec``, with its description key and type.

    Returns:
        ``(path, "Class.field", user type)`` in model order.
    """
    spec = KINDS[kind].model_fields["spec"].annotation
    _, model = _submodel(spec)
    assert model is not None
    return [(p, f"{c.__name__}.{a}", t) for p, c, a, t in _walk(model, "spec")]


def _normal(kind: str, path: str) -> str:
    for old, new in _SAME_AS.get(kind, ()):
        if path == old or path.startswith((old + ".", old + "[")):
            path = new + path[len(old) :]
    return path


def _ancestors(path: str) -> Iterator[str]:
    while path:
        yield path
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""


def support(kind: str) -> list[Support]:
    """What the simulator does with each field of *kind* (a key of :data:`KINDS`).

    Raises:
        KeyError: When a field has no status or no description (a new model field).
    """
    rules = _TABLE[kind]
    out = []
    for path, key, type_ in field_paths(kind):
        normal = _normal(kind, path)
        owner = next((a for a in _ancestors(normal) if a in rules), None)
        if owner is None:
            raise KeyError(f"{kind} {path}: no status in istiolab.sim.support")
        status, note = rules[owner]
        if owner != normal:  # the note is said once, on the path that owns the rule
            note = f"as `{owner}`" if note and status != "honoured" else ""
        alias = key.partition(".")[2]
        description = _DESCRIPTIONS.get(key) or _DESCRIPTIONS.get(alias)
        if description is None:
            raise KeyError(f"{kind} {path} ({key}): no description in istiolab.sim.support")
        out.append(Support(path, status, note, description, type_))
    return out


def stale_entries() -> list[str]:
    """Status and description entries that name no field of any routing kind."""
    stale: list[str] = []
    keys: set[str] = set()
    for kind, rules in _TABLE.items():
        fields = field_paths(kind)
        normal = {_normal(kind, p) for p, _, _ in fields} | {"spec"}
        stale += [f"{kind} {p}" for p in rules if p not in normal]
        stale += [f"{kind} {p}: {s}" for p, (s, _) in rules.items() if s not in STATUSES]
        keys |= {k for _, k, _ in fields} | {k.partition(".")[2] for _, k, _ in fields}
    stale += [k for k in _DESCRIPTIONS if k not in keys]
    return stale


def render_support() -> str:
    """The "Routing fields" section of ``docs/scenario.md``: one table per routing kind."""
    out = [
        "## Routing fields: what the simulator honours",
        "",
        "Generated from `istiolab/sim/support.py`. For every field of the routing resources a",
        "scenario's `rules` can hold: **honoured** (the simulated outcome follows it as Envoy",
        "would), **approximated** (it changes the outcome in a simpler way; the note says how),",
        "**compile-only** (it is in the compiled route table and the Envoy config that",
        "`envoy-config` and `verify` check, but nothing the simulator measures depends on it) or",
        "**ignored** (neither compiled nor simulated; the note says why). List items are written",
        "`[]`, map values `*`. A status on a field covers the fields under it unless they have",
        "their own. Kubernetes Ingress and Istio 0.2's RouteRule and DestinationPolicy are",
        "converted (`istiolab convert`, Pilot 0.2's semantics) before they are compiled; their",
        "tables say what the conversion keeps.",
    ]
    for kind in KINDS:
        out += [
            "",
            f"### {kind}",
            "",
            "| field | type | status | description |",
            "|---|---|---|---|",
        ]
        for s in support(kind):
            status = f"{s.status}: {s.note}" if s.note else s.status
            desc = s.description.replace("|", "\\|")
            out.append(f"| `{s.path}` | {s.type} | {status.replace('|', '/')} | {desc} |")
    return "\n".join(out) + "\n"
