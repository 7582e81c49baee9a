"""Lint of Gateway API configs: for each IL6xx code a broken config gets the finding (code,
path, line, value) and a nearly identical correct one does not (tests/analyzer's pairs)."""

from __future__ import annotations

import pytest

from gatewayapi._util import Pair, assert_broken, assert_correct, lint, pair
from istiolab.findings import Severity


def gateway(
    listener: str = "{name: http, port: 80, protocol: HTTP, hostname: '*.example.com', "
    "allowedRoutes: {namespaces: {from: All}}}",
    extra: str = "",
    cls: str = "istio",
) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: {cls}
  listeners:
  - {listener}
{extra}---
apiVersion: v1
kind: Service
metadata: {{name: v1, namespace: apps}}
spec: {{ports: [{{port: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: shared, namespace: other}}
spec: {{ports: [{{port: 8080}}]}}
"""


def route(
    parent: str = "- {name: gw, namespace: infra}",
    hosts: str = "[shop.example.com]",
    rules: str = "- backendRefs:\n    - {name: v1, port: 8080}",
    kind: str = "HTTPRoute",
    annotations: str = "{team: shop}",
) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: {kind}
metadata:
  name: r
  namespace: apps
  annotations: {annotations}
spec:
  parentRefs:
  {parent}
  hostnames: {hosts}
  rules:
  {rules}
"""


GRANT = """---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
"""

PAIRS = [
    pair(
        "IL601",
        gateway() + route(parent="- {name: gone, namespace: infra}  # <-"),
        ("name: gone", "name: gw"),
        "spec.parentRefs[0].name",
        "infra/gone",
    ),
    pair(
        "IL602",
        gateway() + route(parent="- {name: gw, namespace: infra, sectionName: web}  # <-"),
        ("sectionName: web", "sectionName: http"),
        "spec.parentRefs[0].sectionName",
        "'web'",
    ),
    pair(
        "IL603",
        gateway("{name: http, port: 80, protocol: HTTP}")
        + route(parent="- {name: gw, namespace: infra}  # <-"),
        ("protocol: HTTP}", "protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}"),
        "spec.parentRefs[0]",
        "namespace 'apps' is not allowed",
    ),
    pair(
        "IL604",
        gateway() + route(hosts="[shop.example.org]  # <-"),
        ("shop.example.org", "shop.example.com"),
        "spec.hostnames",
        "'*.example.com'",
    ),
    pair(
        "IL605",
        gateway(
            "{name: http, port: 80, protocol: HTTP, hostname: '*.example.com', allowedRoutes: "
            "{namespaces: {from: All}, kinds: [{kind: GRPCRoute}]}}"
        )
        + route(parent="- {name: gw, namespace: infra}  # <-"),
        ("kind: GRPCRoute", "kind: HTTPRoute"),
        "spec.parentRefs[0]",
        "kind HTTPRoute is not allowed",
    ),
    pair(
        "IL606",
        gateway() + route(rules="- backendRefs:\n    - {name: v9, port: 8080}  # <-"),
        ("name: v9", "name: v1"),
        "spec.rules[0].backendRefs[0].name",
        "'v9'",
    ),
    pair(
        "IL607",
        gateway() + route(rules="- backendRefs:\n    - {name: v1, port: 9090}  # <-"),
        ("port: 9090", "port: 8080"),
        "spec.rules[0].backendRefs[0].port",
        "no port 9090",
    ),
    pair(
        "IL608",
        gateway()
        + GRANT
        + route(rules="- backendRefs:\n    - {name: shared, namespace: other, port: 8080}  # <-"),
        ("kind: GRPCRoute", "kind: HTTPRoute"),
        "spec.rules[0].backendRefs[0].namespace",
        "missing a ReferenceGrant",
    ),
    pair(
        "IL609",
        gateway()
        + route(
            rules="- backendRefs:\n"
            "    - {group: example.com, kind: Bucket, name: v1, port: 8080}  # <-"
        ),
        ("group: example.com, kind: Bucket, ", ""),
        "spec.rules[0].backendRefs[0]",
        "InvalidKind",
    ),
    pair(
        "IL610",
        gateway() + route(rules="- backendRefs:  # <-\n    - {name: v1, port: 8080, weight: 0}"),
        ("weight: 0", "weight: 1"),
        "spec.rules[0].backendRefs",
        "weight 0",
    ),
    pair(
        "IL611",
        gateway()
        + route(
            rules="- filters:\n"
            "    - {type: RequestRedirect, requestRedirect: {hostname: www.example.com}}\n"
            "    backendRefs:  # <-\n"
            "    - {name: v1, port: 8080}"
        ),
        ("    backendRefs:  # <-\n    - {name: v1, port: 8080}\n", ""),
        "spec.rules[0].backendRefs",
        "RequestRedirect filter must not be used together with backendRefs",
    ),
    pair(
        "IL612",
        gateway()
        + route(
            rules="- matches: [{path: {value: /api}}]\n"
            "    backendRefs: [{name: v1, port: 8080}]\n"
            "  - matches:\n"
            "    - {path: {value: /api/}}  # <-\n"
            "    backendRefs: [{name: v1, port: 8080}]"
        ),
        ("/api/}", "/api/v2}"),
        "spec.rules[1].matches[0]",
        "rules[0].matches[0]",
    ),
    pair(
        "IL613",
        gateway()
        + route(
            kind="GRPCRoute", rules="- backendRefs:  # <-\n    - {name: v1, port: 8080}"
        ).replace("  rules:\n  - backendRefs:  # <-", "  rules:  # <-\n  - backendRefs:"),
        ("kind: GRPCRoute", "kind: HTTPRoute"),
        "spec.rules",
        "GRPCRoute is linted but not compiled",
    ),
    pair(
        "IL614",
        gateway(cls="nginx  # <-") + route(),
        ("nginx", "istio"),
        "spec.gatewayClassName",
        "'nginx'",
    ),
    pair(
        "IL615",
        gateway() + route(parent="- {name: gw, namespace: infra}  # <-"),
        ("{team: shop}", "{istiolab.io/suppress: IL615}"),
        "spec.parentRefs[0]",
        "Accepted=True (Accepted)",
    ),
    pair(
        "IL616",
        gateway(
            extra="  - {name: again, port: 80, protocol: HTTP, hostname: '*.example.com'}  # <-\n"
        )
        + route(),
        ("name: again, port: 80", "name: again, port: 81"),
        "spec.listeners[1]",
        "same port 80",
    ),
    # the CRDs' Hostname pattern (RFC 1123, an optional leading '*.'): the API server refuses
    pytest.param(
        *pair(
            "IL108",
            gateway() + route(hosts="[Shop.example.com:8080]  # <-"),
            ("[Shop.example.com:8080]", "[shop.example.com]"),
            "spec.hostnames[0]",
            "hostname 'Shop.example.com:8080' is not a Gateway API hostname",
        ).values,
        id="IL108-route-hostname",
    ),
    pytest.param(
        *pair(
            "IL108",
            gateway(
                listener="{name: http, port: 80, protocol: HTTP, hostname: 'shop.*.com', "
                "allowedRoutes: {namespaces: {from: All}}}  # <-"
            )
            + route(hosts="[shop.example.com]"),
            ("hostname: 'shop.*.com'", "hostname: '*.example.com'"),
            "spec.listeners[0].hostname",
            "hostname 'shop.*.com' is not a Gateway API hostname",
        ).values,
        id="IL108-listener-hostname",
    ),
]


def test_duplicate_listeners_are_an_error_the_api_server_refuses() -> None:
    # the CRD's CEL rule 'Combination of port, protocol and hostname must be unique for each
    # listener' (apis/v1/gateway_types.go) refuses the Gateway: not a warning
    text = gateway(extra="  - {name: again, port: 80, protocol: HTTP, hostname: '*.example.com'}\n")
    hits = [f for f in lint(text + route()) if f.code == "IL616"]
    assert [f.severity for f in hits] == [Severity.ERROR]
    assert "API server refuses" in hits[0].message


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("shop.example.com", True),
        ("*.example.com", True),
        ("a", True),
        ("x" * 63 + "." + "y" * 63, True),
        ("Shop.example.com", False),
        ("*", False),
        ("shop.*.example.com", False),
        ("-shop.example.com", False),
        ("shop.example.com.", False),
        ("10.0.0.1:80", False),
        ("", False),
        ("a" * 254, False),
    ],
)
def test_route_hostnames_follow_the_crd_pattern(host: str, ok: bool) -> None:
    text = gateway(
        listener="{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}"
    ) + route(hosts=f"[{host!r}]")
    hits = [f for f in lint(text) if f.code == "IL108" and f.path == "spec.hostnames[0]"]
    assert not hits if ok else hits


@pytest.mark.parametrize("p", PAIRS)
def test_broken(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct(p: Pair) -> None:
    assert_correct(p)


def test_hidden_match_names_the_winning_rule_and_why() -> None:
    rules = (
        "- matches: [{path: {value: /api}, headers: [{name: a, value: b}]}]\n"
        "    backendRefs: [{name: v1, port: 8080}]"
    )
    first = route(rules=rules)
    second = route(rules=rules).replace("name: r\n", "name: s\n")
    (f,) = [f for f in lint(gateway() + first + second) if f.code == "IL612"]
    assert f.resource == "HTTPRoute/apps/s"
    assert "goes to HTTPRoute/apps/r rules[0].matches[0] first" in f.message
    assert "namespace/name" in f.message
    # a more specific match is not hidden: an Exact path, a longer prefix, one more header
    for change in ("{type: Exact, value: /api}", "{value: /api/v2}"):
        text = gateway() + first + second.replace("{value: /api}", change)
        assert [f for f in lint(text) if f.code == "IL612"] == []
    more = second.replace("[{name: a, value: b}]", "[{name: a, value: b}, {name: c, value: d}]")
    assert [f for f in lint(gateway() + first + more) if f.code == "IL612"] == []


def test_status_is_info_and_lists_the_listener() -> None:
    (f,) = [f for f in lint(gateway() + route()) if f.code == "IL615"]
    assert f.severity is Severity.INFO
    assert "attached to http:80 ['shop.example.com']" in f.message
    assert "ResolvedRefs=True" in f.message


def test_regex_values_are_checked_for_re2() -> None:
    text = gateway() + route(
        rules="- matches: [{headers: [{type: RegularExpression, name: x, value: '(?=a)'}]}]\n"
        "    backendRefs: [{name: v1, port: 8080}]"
    )
    (f,) = [f for f in lint(text) if f.code == "IL107"]
    assert f.path == "spec.rules[0].matches[0].headers[0].value"
