"""Gateways: server schema rules, namespace-scoped hosts, conflicts, shared credentials, and the
ports of the gateway Service."""

from __future__ import annotations

import textwrap

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair, pair_of
from istiolab.findings import Severity


def more(text: str) -> str:
    """More servers for :data:`GW` (indented under its ``servers:``)."""
    return textwrap.indent(textwrap.dedent(text).lstrip("\n"), "  ")


GW = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
"""
HTTPS_SERVER = """
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
"""
GATEWAY_PODS = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata:
      labels: {istio: ingressgateway}
    spec:
      containers: [{name: istio-proxy, image: istio/proxyv2}]
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"""

PAIRS = [
    pair(
        "IL222",
        GW
        + more(
            """
            - port:
                number: 443
                name: https
                protocol: HTTPS  # <-
              hosts: ["*.example.com"]
            """
        ),
        (
            "protocol: HTTPS  # <-",
            "protocol: HTTPS  # <-\n    tls: {mode: SIMPLE, credentialName: c}",
        ),
        "spec.servers[1].port.protocol",
        "is HTTPS but has no tls",
    ),
    pair(
        "IL222",
        GW.replace(
            'hosts: ["*.example.com"]',
            'hosts: ["*.example.com"]\n    tls:  # <-\n      mode: SIMPLE\n      credentialName: c',
        ),
        ("protocol: HTTP}", "protocol: HTTPS}"),
        "spec.servers[0].tls",
        "is HTTP (plain text) but has tls settings",
        id_="IL222-tls-on-http",
    ),
    pair(
        "IL222",
        GW
        + more(
            """
            - port:
                number: 8080
                name: http  # <-
                protocol: HTTP
              hosts: ["*.example.com"]
            """
        ),
        ("name: http  # <-", "name: http-alt  # <-"),
        "spec.servers[1].port.name",
        "port name 'http' is also the name of servers[0]",
        id_="IL222-port-names",
    ),
    pair(
        "IL222",
        GW.replace("metadata: {name: public}", "metadata:\n  name: public.gw  # <-"),
        ("name: public.gw", "name: public-gw"),
        "metadata.name",
        "Gateway name 'public.gw' is not a DNS label",
        id_="IL222-dotted-name",
    ),
    pair(
        "IL222",
        GW
        + more(
            """
            - port: {number: 443, name: https, protocol: HTTPS}
              hosts: ["*.example.com"]
              tls:
                mode: SIMPLE
                credentialName: c
                httpsRedirect: true  # <-
            """
        ),
        ("httpsRedirect: true", "minProtocolVersion: TLSV1_2"),
        "spec.servers[1].tls.httpsRedirect",
        "httpsRedirect on a HTTPS server does nothing",
        severity=Severity.WARNING,
        id_="IL222-redirect-on-https",
    ),
    pair(
        "IL222",
        GW.replace('hosts: ["*.example.com"]', 'hosts:\n    - "prod/staging/*.example.com"  # <-'),
        ("prod/staging/*.example.com", "prod/*.example.com"),
        "spec.servers[0].hosts[0]",
        "'prod/staging/*.example.com': it has two '/'",
        id_="IL222-host-namespace",
    ),
    pair(
        "IL206",
        GW.replace('hosts: ["*.example.com"]', 'hosts: ["prod/*.example.com"]')
        + """
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: staging}
        spec:
          hosts:
          - web.example.com  # <-
          gateways: [default/public]
          http:
          - route:
            - destination: {host: web}
        """,
        ("namespace: staging", "namespace: prod"),
        "spec.hosts[0]",
        "for namespace 'staging'",
        id_="IL206-namespace-scope",
    ),
    pair(
        "IL219",
        GW
        + """
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: shop}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts:
            - "*.example.com"  # <-
        """,
        ('- "*.example.com"  # <-', '- "shop.example.org"  # <-'),
        "spec.servers[0].hosts[0]",
        "is also served by Gateway default/public (servers[0])",
    ),
    pair(
        "IL220",
        GW
        + HTTPS_SERVER
        + """
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: shop}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 443, name: https, protocol: HTTPS}
            hosts: ["shop.example.org"]
            tls:
              mode: SIMPLE
              credentialName: example-cert  # <-
        """,
        ("credentialName: example-cert  # <-", "credentialName: shop-cert  # <-"),
        "spec.servers[0].tls.credentialName",
        "certificate 'example-cert' is also served by Gateway default/public",
    ),
    pair(
        "IL221",
        GW
        + more(
            """
            - port:
                number: 9443  # <-
                name: https
                protocol: HTTPS
              hosts: ["*.example.com"]
              tls: {mode: SIMPLE, credentialName: c}
            """
        )
        + GATEWAY_PODS,
        ("number: 9443", "number: 443"),
        "spec.servers[1].port.number",
        "port 9443 is not a port or targetPort of the Services",
    ),
]


PAIRS += [
    # Istio's Gateway CRD requires port.name; the API server refuses a server without one
    pair(
        "IL102",
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 80, protocol: HTTP}  # <-
            hosts: ["*"]
        """,
        ("{number: 80, protocol: HTTP}", "{number: 80, name: http, protocol: HTTP}"),
        "spec.servers[0].port.name",
        "server on port 80 has no port name",
        id_="IL102-gateway-port-name",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


def test_conflict_needs_the_same_selector_and_port() -> None:
    text = pair_of(PAIRS[7]).bad
    assert [f.code for f in lint(text) if f.code == "IL219"] == ["IL219"]
    other_selector = text.replace(
        "metadata: {name: shop}\nspec:\n  selector: {istio: ingressgateway}",
        "metadata: {name: shop}\nspec:\n  selector: {istio: internal-gateway}",
    )
    assert other_selector != text
    assert not [f for f in lint(other_selector) if f.code == "IL219"]
    assert not [
        f
        for f in lint(
            text.replace(
                "- port: {number: 80, name: http, protocol: HTTP}\n    hosts:\n",
                "- port: {number: 8080, name: http, protocol: HTTP}\n    hosts:\n",
            )
        )
        if f.code == "IL219"
    ]


def test_gateway_service_port_is_checked_only_with_the_service() -> None:
    bad = pair_of(PAIRS[-1]).bad
    without_service = bad.split("---\napiVersion: v1\nkind: Service")[0]
    assert not [f for f in lint(without_service) if f.code == "IL221"]
    # port 80 is the Service's port; 8080 its targetPort: both are the gateway's ports
    assert not [
        f
        for f in lint(GW.replace("number: 80,", "number: 8080,") + GATEWAY_PODS)
        if f.code == "IL221"
    ]


def test_namespace_scoped_host_in_the_gateways_own_namespace() -> None:
    text = pair_of(PAIRS[6]).bad.replace('"prod/*.example.com"', '"./*.example.com"')
    assert [f.code for f in lint(text) if f.code == "IL206"] == ["IL206"]
    assert not [
        f
        for f in lint(text.replace("namespace: staging", "namespace: default"))
        if f.code == "IL206"
    ]
