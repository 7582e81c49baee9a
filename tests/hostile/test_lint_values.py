"""Hostile values: everything Kubernetes, Istio or Envoy would refuse is an error finding.

Each rule has a refused value and the nearest value the target accepts. For every rule two tests
run: the refused value gets its finding (code, severity error, field path, line, the value named
in the message, a fix), and the nearest valid value leaves the config without any error. A few
rules also go through ``istiolab lint FILE --format json`` (exit 1 on an error finding, 0 on a
clean file).

Ranges are those of the protobuf types: istio.io/api ``networking/v1alpha3/virtual_service.proto``,
``destination_rule.proto``, ``gateway.proto``, ``envoy_filter.proto``; Kubernetes ``core/v1`` and
``apps/v1`` (``types.go``, ports 1..65535 as ``validation.IsValidPortNum``); Istio 0.2
``proxy/v1/config/route_rule.proto``, ``dest_policy.proto``; Mixer ``memquota`` ``config.proto``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from istiolab.config import loads
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile
from istiolab.envoy.render import duration, render
from istiolab.findings import CODES, Finding, Severity
from istiolab.regex import ENVOY_MAX_PROGRAM_SIZE, ENVOY_PROGRAM_SIZE_KEY, program_size
from istiolab.units import MAX_DURATION_S, parse_duration

ISTIOLAB = Path(sys.executable).with_name("istiolab")
TIMEOUT = 120  # seconds for one command
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ISTIOLAB_MAX_")}

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
CEL_MAX_S = "9223372036.854775807"  # int64 nanoseconds, the longest duration CEL parses
# ... and the longest istiod's webhook takes: a whole number of milliseconds (ValidateDuration,
# istio/istio pkg/config/validation/agent/validation.go)
ISTIOD_MAX_S = "9223372036.854"

Doc = dict[str, Any]
Edit = Callable[[Doc], None]


# -- documents ----------------------------------------------------------------------------------


def virtual_service() -> Doc:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {
            "hosts": ["web"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/"}, "headers": {"x-user": {"exact": "a"}}}],
                    "timeout": "1s",
                    "retries": {"attempts": 3},
                    "headers": {"request": {"set": {"x-from": "istiolab"}}},
                    "route": [{"destination": {"host": "web"}, "weight": 100}],
                }
            ],
        },
    }


def destination_rule() -> Doc:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web"},
        "spec": {
            "host": "web",
            "trafficPolicy": {
                "connectionPool": {
                    "tcp": {"maxConnections": 100},
                    "http": {"http1MaxPendingRequests": 10},
                },
                "outlierDetection": {"consecutive5xxErrors": 5},
            },
        },
    }


def redirect() -> Doc:
    doc = virtual_service()
    route = doc["spec"]["http"][0]
    del route["route"], route["retries"], route["timeout"]
    route["redirect"] = {"uri": "/new", "port": 8080}
    return doc


def ring_hash() -> Doc:
    doc = destination_rule()
    doc["spec"]["trafficPolicy"]["loadBalancer"] = {
        "consistentHash": {"httpHeaderName": "x-user", "ringHash": {"minimumRingSize": 1024}}
    }
    return doc


def gateway() -> Doc:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
            ],
        },
    }


def envoy_filter() -> Doc:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "ef"},
        "spec": {
            "priority": 1,
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {"name": "example", "config": {"ratio": 0.5}},
                    },
                }
            ],
        },
    }


def service() -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def deployment() -> Doc:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def node_port_service() -> Doc:
    # a nodePort needs type NodePort (the API server refuses it on a ClusterIP Service); the
    # nearest valid value is the top of the API server's default range, 30000-32767
    doc = service()
    doc["spec"]["type"] = "NodePort"
    doc["spec"]["ports"][0]["nodePort"] = 32767
    return doc


def ingress() -> Doc:
    return {
        "apiVersion": "extensions/v1beta1",
        "kind": "Ingress",
        "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": "istio"}},
        "spec": {"backend": {"serviceName": "web", "servicePort": 80}},
    }


def route_rule() -> Doc:
    return {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "RouteRule",
        "metadata": {"name": "web"},
        "spec": {
            "destination": {"name": "web"},
            "precedence": 1,
            "httpReqRetries": {"simpleRetry": {"attempts": 3}},
            "appendHeaders": {"x-from": "istiolab"},
        },
    }


def destination_policy() -> Doc:
    return {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "DestinationPolicy",
        "metadata": {"name": "web"},
        "spec": {
            "destination": {"name": "web"},
            "circuitBreaker": {"simpleCb": {"maxConnections": 100}},
        },
    }


def memquota() -> Doc:
    return {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "memquota",
        "metadata": {"name": "handler"},
        "spec": {"quotas": [{"name": "requestcount.quota", "maxAmount": 100}]},
    }


# -- the rules ----------------------------------------------------------------------------------


def put(path: str, value: Any) -> Edit:
    """An edit that sets the field at *path* (``spec.http[0].timeout``) to *value*."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest:
            parts.extend(int(i) for i in rest.rstrip("]").split("]["))

    def edit(doc: Doc) -> None:
        node: Any = doc
        for key in parts[:-1]:
            if isinstance(key, str) and key not in node:
                node[key] = {}
            node = node[key]
        node[parts[-1]] = value

    return edit


def rename_key(path: str, old: str, new: str) -> Edit:
    """An edit that renames the key *old* of the mapping at *path* to *new*."""

    def edit(doc: Doc) -> None:
        node: Any = doc
        for piece in path.split("."):
            name, _, rest = piece.partition("[")
            node = node[name]
            for i in rest.rstrip("]").split("][") if rest else []:
                node = node[int(i)]
        node[new] = node.pop(old)

    return edit


@dataclasses.dataclass(frozen=True)
class Rule:
    """A refused value and the nearest accepted one, for one field."""

    id: str
    make: Callable[[], Doc]
    bad: Edit
    good: Edit
    code: str
    path: str  # the finding's path (prefix, for paths that end in a quoted key)
    shows: str  # what the message must contain: the refused value, as the finding names it


def r(
    id: str,
    make: Callable[[], Doc],
    path: str,
    bad: Any,
    good: Any,
    code: str = "IL108",
    shows: str | None = None,
) -> Rule:
    return Rule(id, make, put(path, bad), put(path, good), code, path, shows or str(bad))


HTTP = "spec.http[0]"
TP = "spec.trafficPolicy"
LONG_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters

RULES: list[Rule] = [
    # -- int32 / uint32 / int64 ranges (IL108)
    r("vs-weight-int32", virtual_service, f"{HTTP}.route[0].weight", 2**31, INT32_MAX),
    r("vs-weight-negative", virtual_service, f"{HTTP}.route[0].weight", -1, 0, shows="-1"),
    r("vs-attempts-int32", virtual_service, f"{HTTP}.retries.attempts", 2**63, INT32_MAX),
    r("vs-match-port", virtual_service, f"{HTTP}.match[0].port", 65536, 65535),
    r("vs-redirect-port-uint32", redirect, f"{HTTP}.redirect.port", 2**32, UINT32_MAX),
    r(
        "dr-max-connections",
        destination_rule,
        f"{TP}.connectionPool.tcp.maxConnections",
        2**31,
        INT32_MAX,
    ),
    r(
        "dr-pending-negative",
        destination_rule,
        f"{TP}.connectionPool.http.http1MaxPendingRequests",
        -1,
        0,
    ),
    r(
        "dr-max-requests",
        destination_rule,
        f"{TP}.connectionPool.http.http2MaxRequests",
        2**31,
        INT32_MAX,
    ),
    r(
        "dr-5xx-uint32",
        destination_rule,
        f"{TP}.outlierDetection.consecutive5xxErrors",
        2**32,
        UINT32_MAX,
    ),
    r(
        "dr-ring-uint64",
        ring_hash,
        f"{TP}.loadBalancer.consistentHash.ringHash.minimumRingSize",
        2**64,
        INT64_MAX,  # a uint64 in the proto, but the API server reads JSON integers as int64
    ),
    r("gw-port", gateway, "spec.servers[0].port.number", 65536, 65535),
    r("ef-priority-int32", envoy_filter, "spec.priority", -(2**31) - 1, -(2**31)),
    r("svc-port", service, "spec.ports[0].port", 65536, 65535),
    r("svc-target-port", service, "spec.ports[0].targetPort", 0, 1, shows="0"),
    r("svc-node-port", node_port_service, "spec.ports[0].nodePort", 65536, 32767),
    r("deploy-replicas-int32", deployment, "spec.replicas", 2**31, INT32_MAX),
    r("ingress-service-port", ingress, "spec.backend.servicePort", 70000, 65535),
    r("rr-precedence-int32", route_rule, "spec.precedence", 2**31, INT32_MAX),
    r(
        "rr-attempts-int32",
        route_rule,
        "spec.httpReqRetries.simpleRetry.attempts",
        2**31,
        INT32_MAX,
    ),
    r(
        "dp-max-connections",
        destination_policy,
        "spec.circuitBreaker.simpleCb.maxConnections",
        2**31,
        INT32_MAX,
    ),
    r("memquota-int64", memquota, "spec.quotas[0].maxAmount", 2**63, INT64_MAX),
    # -- durations (IL104): protobuf Duration, finite, >= 0, <= 315,576,000,000 s, in ns
    r("duration-inf", virtual_service, f"{HTTP}.timeout", "inf", "1ms", "IL104", "'inf'"),
    r("duration-nan", virtual_service, f"{HTTP}.timeout", "nan", "1s", "IL104", "'nan'"),
    r("duration-exponent", virtual_service, f"{HTTP}.timeout", "1e400s", "1s", "IL104"),
    r("duration-negative", virtual_service, f"{HTTP}.timeout", "-1s", "1s", "IL104"),
    r("duration-sub-ms", virtual_service, f"{HTTP}.retries.perTryTimeout", "1.5ms", "2ms", "IL104"),
    r("duration-cel-max-ns", virtual_service, f"{HTTP}.timeout", f"{CEL_MAX_S}s", "1s", "IL104"),
    r(
        "duration-400-digits",
        virtual_service,
        f"{HTTP}.timeout",
        "9" * 400 + "s",
        f"{ISTIOD_MAX_S}s",
        "IL104",
        "9" * 40,
    ),
    r(
        "duration-over-max",
        virtual_service,
        f"{HTTP}.retries.perTryTimeout",
        f"{MAX_DURATION_S + 1}s",
        f"{ISTIOD_MAX_S}s",
        "IL104",
    ),
    # the CRDs' CEL rule reads a duration as int64 nanoseconds: 292 years, not protobuf's 10,000
    r(
        "duration-over-cel-max",
        virtual_service,
        f"{HTTP}.timeout",
        "9223372036.854775808s",
        f"{ISTIOD_MAX_S}s",
        "IL104",
    ),
    r(
        "duration-hours-over-max",
        destination_rule,
        f"{TP}.outlierDetection.interval",
        "87660000.1h",
        "2562047h",
        "IL104",
    ),
    r(
        "duration-finer-than-ns",
        virtual_service,
        f"{HTTP}.timeout",
        "1.0000000001s",
        "1.001s",
        "IL104",
    ),
    r(
        "legacy-duration",
        route_rule,
        "spec.httpReqTimeout.simpleTimeout.timeout",
        "inf",
        "15s",
        "IL104",
        "'inf'",
    ),
    # -- NaN and infinity (IL103 finite number; percentages IL103 too)
    r(
        "percent-nan",
        virtual_service,
        f"{HTTP}.fault.abort",
        {"httpStatus": 503, "percentage": {"value": float("nan")}},
        {"httpStatus": 503, "percentage": {"value": 0.0}},
        "IL103",
        "nan",
    ),
    r(
        "warmup-aggression-inf",
        destination_rule,
        f"{TP}.loadBalancer.warmup",
        {"duration": "10s", "aggression": float("inf")},
        {"duration": "10s", "aggression": 1.7976931348623157e308},
        "IL103",
        "inf",
    ),
    r(
        "warmup-minimum-percent-nan",
        destination_rule,
        f"{TP}.loadBalancer.warmup",
        {"duration": "10s", "minimumPercent": float("nan")},
        {"duration": "10s", "minimumPercent": 0.0},
        "IL103",
        "nan",
    ),
    r(
        "envoyfilter-value-inf",
        envoy_filter,
        "spec.configPatches[0].patch.value.config",
        {"ratio": float("-inf")},
        {"ratio": -1.7976931348623157e308},
        "IL103",
        "-inf",
    ),
    r(
        "service-extra-field-nan",
        service,
        "spec.sessionAffinityConfig",
        {"clientIP": {"timeoutSeconds": float("nan")}},
        {"clientIP": {"timeoutSeconds": 10800}},
        "IL103",
        "nan at clientIP.timeoutSeconds",
    ),
    r(
        "legacy-fault-percent-inf",
        route_rule,
        "spec.httpFault.delay",
        {"percent": float("inf"), "fixedDelay": "1s"},
        {"percent": 100, "fixedDelay": "1s"},
        "IL103",
        "inf",
    ),
    # -- header names and values (IL109)
    Rule(
        "header-match-crlf",
        virtual_service,
        rename_key(f"{HTTP}.match[0].headers", "x-user", "x-user\r\nx-admin: 1"),
        rename_key(f"{HTTP}.match[0].headers", "x-user", "x-user-x-admin"),
        "IL109",
        f"{HTTP}.match[0].headers.",
        r"'\r'",
    ),
    Rule(
        "header-match-pseudo",
        virtual_service,
        rename_key(f"{HTTP}.match[0].headers", "x-user", ":x-user"),
        rename_key(f"{HTTP}.match[0].headers", "x-user", ":path"),
        "IL109",
        f"{HTTP}.match[0].headers.:x-user",
        "':x-user'",
    ),
    Rule(
        "header-set-space",
        virtual_service,
        rename_key(f"{HTTP}.headers.request.set", "x-from", "x from"),
        rename_key(f"{HTTP}.headers.request.set", "x-from", "x-from!"),
        "IL109",
        f"{HTTP}.headers.request.set.",
        "'x from'",
    ),
    Rule(
        "header-set-pseudo",
        virtual_service,
        rename_key(f"{HTTP}.headers.request.set", "x-from", ":path"),
        rename_key(f"{HTTP}.headers.request.set", "x-from", ":authority"),
        "IL109",
        f"{HTTP}.headers.request.set.:path",
        "':path'",
    ),
    r(
        "header-value-crlf",
        virtual_service,
        f"{HTTP}.headers.request.set.x-from",
        "a\r\nx-admin: 1",
        "a x-admin: 1",
        "IL109",
        r"'\r'",
    ),
    r(
        "header-value-nul",
        virtual_service,
        f"{HTTP}.route[0].headers.response.add.x-to",
        "a\x00b",
        "a b",
        "IL109",
        r"'\x00'",
    ),
    r(
        "header-remove-colon",
        virtual_service,
        f"{HTTP}.headers.response.remove",
        ["x:y"],
        ["x-y"],
        "IL109",
        "'x:y'",
    ),
    r(
        "cors-allow-header",
        virtual_service,
        f"{HTTP}.corsPolicy.allowHeaders",
        ["x-a\n"],
        ["x-a"],
        "IL109",
        r"'x-a\n'",
    ),
    r(
        "hash-header-name",
        destination_rule,
        f"{TP}.loadBalancer.consistentHash",
        {"httpHeaderName": "x user"},
        {"httpHeaderName": "x-user"},
        "IL109",
        "'x user'",
    ),
    r(
        "legacy-append-header-value",
        route_rule,
        "spec.appendHeaders.x-from",
        "a\nb",
        "a b",
        "IL109",
        r"'\n'",
    ),
    r(
        "legacy-override-header",
        route_rule,
        "spec.httpReqRetries.simpleRetry.overrideHeaderName",
        "x retry",
        "x-retry",
        "IL109",
        "'x retry'",
    ),
    # -- control characters in values sent or matched as request text (IL109): Envoy's
    # HTTP_HEADER_VALUE rule refuses CR, LF and NUL in what it sends; RFC 9110 allows no other
    # control character but tab in a field value; a match value with one never matches.
    r(
        "header-match-value-crlf",
        virtual_service,
        f"{HTTP}.match[0].headers.x-user.exact",
        "a\r\nx-admin: 1",
        "a x-admin: 1",
        "IL109",
        r"'\r'",
    ),
    r(
        "uri-prefix-lf",
        virtual_service,
        f"{HTTP}.match[0].uri.prefix",
        "/a\nb",
        "/a%0Ab",
        "IL109",
        r"'\n'",
    ),
    r(
        "authority-exact-del",
        virtual_service,
        f"{HTTP}.match[0].authority.exact",
        "web\x7f",
        "web",
        "IL109",
        r"'\x7f'",
    ),
    r(
        "redirect-uri-crlf",
        redirect,
        f"{HTTP}.redirect.uri",
        "/new\r\nset-cookie: a=1",
        "/new",
        "IL109",
        r"'\r'",
    ),
    r(
        "redirect-authority-ctl",
        redirect,
        f"{HTTP}.redirect.authority",
        "web\x01",
        "web",
        "IL109",
        r"'\x01'",
    ),
    r(
        "rewrite-uri-nul",
        virtual_service,
        f"{HTTP}.rewrite.uri",
        "/p\x00",
        "/p",
        "IL109",
        r"'\x00'",
    ),
    r(
        "rewrite-authority-lf",
        virtual_service,
        f"{HTTP}.rewrite.authority",
        "web\nx-admin: 1",
        "web",
        "IL109",
        r"'\n'",
    ),
    r(
        "header-value-vertical-tab",
        virtual_service,
        f"{HTTP}.headers.request.set.x-from",
        "a\x0bb",
        "a\tb",  # tab is the one control character a field value may hold
        "IL109",
        r"'\x0b'",
    ),
    r(
        "legacy-match-header-cr",
        route_rule,
        "spec.match.request.headers.cookie.exact",
        "user=a\r",
        "user=a",
        "IL109",
        r"'\r'",
    ),
    r("legacy-rewrite-uri-crlf", route_rule, "spec.rewrite.uri", "/p\r\n", "/p", "IL109", r"'\r'"),
    # -- names (IL110)
    r("name-uppercase", virtual_service, "metadata.name", "Web_1", "web-1", "IL110", "'Web_1'"),
    r(
        "name-too-long",
        virtual_service,
        "metadata.name",
        LONG_NAME + "d",
        LONG_NAME,
        "IL110",
        "254 characters",
    ),
    r("name-service-dot", service, "metadata.name", "web.v2", "web-v2", "IL110", "'web.v2'"),
    r("name-service-digit", service, "metadata.name", "1web", "web1", "IL110", "'1web'"),
    r("name-service-64", service, "metadata.name", "w" * 64, "w" * 63, "IL110", "64 characters"),
    r(
        "name-deployment-trailing-dash",
        deployment,
        "metadata.name",
        "web-",
        "web.v2",
        "IL110",
        "'web-'",
    ),
    r("namespace-uppercase", deployment, "metadata.namespace", "Shop", "shop", "IL110", "'Shop'"),
    r(
        "namespace-dot",
        virtual_service,
        "metadata.namespace",
        "shop.eu",
        "shop-eu",
        "IL110",
        "'shop.eu'",
    ),
    r(
        "namespace-64",
        virtual_service,
        "metadata.namespace",
        "n" * 64,
        "n" * 63,
        "IL110",
        "64 characters",
    ),
    # -- regexes: RE2 (IL107) and Envoy's program size (IL111)
    r(
        "regex-re2",
        virtual_service,
        f"{HTTP}.match[0].uri",
        {"regex": "/(?=a)"},
        {"regex": "/a"},
        "IL107",
        "(?=a)",
    ),
    r(
        "regex-program-size",
        virtual_service,
        f"{HTTP}.match[0].uri",
        {"regex": "/a{1,50}"},
        {"regex": "/a{1,48}"},
        "IL111",
        "'/a{1,50}'",
    ),
    r(
        "regex-program-size-header",
        virtual_service,
        f"{HTTP}.match[0].headers.x-user",
        {"regex": "(alpha|beta|gamma|delta){1,5}"},
        {"regex": "(alpha|beta|gamma|delta){1,4}"},
        "IL111",
        "(alpha|beta|gamma|delta){1,5}",
    ),
    r(
        "regex-program-size-rewrite",
        virtual_service,
        f"{HTTP}.rewrite",
        {"uriRegexRewrite": {"match": "^/" + "x?" * 60, "rewrite": "/"}},
        {"uriRegexRewrite": {"match": "^/" + "x?" * 40, "rewrite": "/"}},
        "IL111",
        "x?x?",
    ),
]

_FIX_PATH = {  # where the finding points when it is not the field that was edited
    "percent-nan": f"{HTTP}.fault.abort.percentage.value",
    "warmup-aggression-inf": f"{TP}.loadBalancer.warmup.aggression",
    "warmup-minimum-percent-nan": f"{TP}.loadBalancer.warmup.minimumPercent",
    "envoyfilter-value-inf": "spec.configPatches[0].patch.value.config",
    "service-extra-field-nan": "spec.sessionAffinityConfig",
    "legacy-fault-percent-inf": "spec.httpFault.delay.percent",
    "hash-header-name": f"{TP}.loadBalancer.consistentHash.httpHeaderName",
    "header-remove-colon": f"{HTTP}.headers.response.remove[0]",
    "cors-allow-header": f"{HTTP}.corsPolicy.allowHeaders[0]",
    "regex-re2": f"{HTTP}.match[0].uri.regex",
    "regex-program-size": f"{HTTP}.match[0].uri.regex",
    "regex-program-size-header": f"{HTTP}.match[0].headers.x-user.regex",
    "regex-program-size-rewrite": f"{HTTP}.rewrite.uriRegexRewrite.match",
}


def text_of(rule: Rule, which: str) -> str:
    doc = copy.deepcopy(rule.make())
    (rule.bad if which == "bad" else rule.good)(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=False)


def findings_of(text: str) -> list[Finding]:
    return validate(loads(text, file="hostile.yaml"))


def errors(findings: list[Finding]) -> list[str]:
    return [f.format() for f in findings if f.severity is Severity.ERROR]


@pytest.mark.parametrize(
    "make",
    [
        virtual_service,
        redirect,
        destination_rule,
        ring_hash,
        gateway,
        envoy_filter,
        service,
        deployment,
        ingress,
        route_rule,
        destination_policy,
        memquota,
    ],
)
def test_the_documents_are_clean(make: Callable[[], Doc]) -> None:
    assert errors(findings_of(yaml.safe_dump(make()))) == []


@pytest.mark.parametrize("rule", RULES, ids=[x.id for x in RULES])
def test_refused_value_is_an_error_finding(rule: Rule) -> None:
    found = findings_of(text_of(rule, "bad"))
    hits = [f for f in found if f.code == rule.code]
    assert hits, [f.format() for f in found]
    f = hits[0]
    assert f.severity is Severity.ERROR
    assert CODES[f.code].severity is Severity.ERROR
    expected_path = _FIX_PATH.get(rule.id, rule.path)
    if rule.path.endswith("."):  # the key is quoted in the path: it holds control characters
        assert f.path.startswith(expected_path), f.path
        assert "\r" not in f.path
        assert "\n" not in f.path
    else:
        assert f.path == expected_path, f.format()
    assert rule.shows in f.message, f.format()
    assert f.fix
    assert f.line is not None
    assert f.line > 1
    assert len(f.message) < 1000


@pytest.mark.parametrize("rule", RULES, ids=[x.id for x in RULES])
def test_nearest_valid_value_is_clean(rule: Rule) -> None:
    assert errors(findings_of(text_of(rule, "good"))) == []


# -- the messages that name a limit ---------------------------------------------------------------


def test_int32_message_names_the_limit_and_the_type() -> None:
    rule = next(x for x in RULES if x.id == "vs-weight-int32")
    f = next(f for f in findings_of(text_of(rule, "bad")) if f.code == "IL108")
    assert "2147483648" in f.message
    assert "2147483647" in f.message
    assert "int32" in f.message
    assert "2147483647" in f.fix


def test_program_size_finding_names_the_limit_and_the_runtime_key() -> None:
    assert program_size("/a{1,50}") > ENVOY_MAX_PROGRAM_SIZE >= program_size("/a{1,48}")
    rule = next(x for x in RULES if x.id == "regex-program-size")
    f = next(f for f in findings_of(text_of(rule, "bad")) if f.code == "IL111")
    assert f"size {program_size('/a{1,50}')}" in f.message
    assert str(ENVOY_MAX_PROGRAM_SIZE) in f.message
    assert ENVOY_PROGRAM_SIZE_KEY == "re2.max_program_size.error_level"
    assert ENVOY_PROGRAM_SIZE_KEY in f.message
    assert ENVOY_PROGRAM_SIZE_KEY in f.fix


def test_long_values_are_truncated_in_messages() -> None:
    doc = virtual_service()
    put(f"{HTTP}.headers.request.set.x-from", "v" * 100_000 + "\r\n")(doc)
    put("metadata.name", "N" * 100_000)(doc)
    found = findings_of(yaml.safe_dump(doc))
    for code in ("IL109", "IL110"):
        f = next(f for f in found if f.code == code)
        assert len(f.message) < 1000, f.message
        assert "characters" in f.message


# -- durations never render as "infs" ----------------------------------------------------------


def test_render_refuses_non_finite_durations() -> None:
    for seconds in (float("inf"), float("nan"), float(MAX_DURATION_S) * 2):
        with pytest.raises(ValueError, match="not a protobuf duration"):
            duration(seconds)
    assert duration(float(MAX_DURATION_S)) == f"{MAX_DURATION_S}s"


def test_longest_duration_renders_finite() -> None:
    doc = virtual_service()
    put(f"{HTTP}.timeout", "2562047h")(doc)  # about the longest the CRD's CEL rule accepts
    table = compile(loads(yaml.safe_dump(doc)))
    text = json.dumps(render(table, {"outbound|80||web.default.svc.cluster.local": []}))
    assert "inf" not in text
    assert "nan" not in text.lower().replace("nanos", "")
    assert '"9223369200s"' in text


def test_parse_duration_is_exact_and_bounded() -> None:
    assert parse_duration("87660000h") == MAX_DURATION_S
    for text in ("9" * 400 + "s", "1e400s", "inf", "-1s", "1.0000000001s"):
        with pytest.raises(ValueError):
            parse_duration(text)


# -- through the command line --------------------------------------------------------------------


def lint(path: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [str(ISTIOLAB), "lint", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


CLI_RULES = [
    "vs-weight-int32",
    "duration-400-digits",
    "percent-nan",
    "header-match-crlf",
    "name-service-digit",
    "regex-program-size",
]


def test_cli_reports_each_refused_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    rules = [x for x in RULES if x.id in CLI_RULES]
    bad.write_text("---\n".join(text_of(x, "bad") for x in rules))
    rc, found = lint(bad)
    assert rc == 1
    for rule in rules:
        hits = [f for f in found if f["code"] == rule.code and rule.shows in f["message"]]
        assert hits, (rule.id, found)
        f = hits[0]
        assert f["severity"] == "error"
        assert f["file"] == str(bad)
        assert f["line"] is not None
        assert f["path"].startswith(_FIX_PATH.get(rule.id, rule.path))
        assert f["fix"]


def test_cli_nearest_valid_values_exit_0(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    rules = [x for x in RULES if x.id in CLI_RULES]
    # one document per kind and name: the edits of one kind go into one document
    vs = virtual_service()
    for rule in rules:
        if rule.make is virtual_service:
            rule.good(vs)
    svc = service()
    put("metadata.name", "web1")(svc)
    good.write_text(yaml.safe_dump(vs) + "---\n" + yaml.safe_dump(svc))
    rc, found = lint(good)
    assert rc == 0, found
    assert [f for f in found if f["severity"] == "error"] == []


CRLF_RULES = ["header-match-value-crlf", "redirect-uri-crlf", "rewrite-uri-nul"]


@pytest.mark.parametrize(
    "argv",
    [
        ["lint"],
        ["explain", "--path", "/", "--host", "web"],
        ["envoy-config"],
        ["verify"],
        ["convert"],
    ],
    ids=["lint", "explain", "envoy-config", "verify", "convert"],
)
def test_control_characters_in_request_text_stop_every_config_command(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A header injection through a redirect, a rewrite or a match never reaches Envoy: every
    # command that reads routing config reports IL109 and exits 1 (before Envoy is looked for).
    from istiolab.cli.app import main

    vs = redirect()
    for rule_id in CRLF_RULES:
        next(x for x in RULES if x.id == rule_id).bad(vs)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(vs))
    code = main([argv[0], str(bad), *argv[1:]])
    out, err = capsys.readouterr()
    text = out + err  # lint prints its report on stdout, the other commands on stderr
    assert code == 1, text
    assert "Traceback" not in text
    paths = {f"{HTTP}.match[0].headers.x-user.exact", f"{HTTP}.redirect.uri"}
    paths.add(f"{HTTP}.rewrite.uri")
    for path in paths:
        assert f"IL109  VirtualService/default/web  {path}\n" in text, text
    assert "\r" not in text  # the value is quoted, never written raw
