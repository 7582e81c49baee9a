"""References: mirrors, subsets, ports, match gateways, gateway selectors, DestinationRule hosts,
Service target ports; ServiceEntry hosts count as known."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair, pair_of
from istiolab.findings import Severity

SVC = """
---
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports:
  - {name: http, port: 8000, targetPort: 80}
"""
DR = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
"""

PAIRS = [
    pair(
        "IL203",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination: {host: httpbin, subset: v1}
            mirror:
              host: httpbin
              subset: v9  # <-
        """
        + DR,
        ("subset: v9", "subset: v1"),
        "spec.http[0].mirror.subset",
        "subset 'v9' of mirror host 'httpbin'",
        id_="IL203-mirror",
    ),
    pair(
        "IL211",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination: {host: httpbin}
            mirrors:
            - destination:
                host: httpbinn  # <-
        """
        + SVC,
        ("host: httpbinn", "host: httpbin"),
        "spec.http[0].mirrors[0].destination.host",
        "mirror host 'httpbinn'",
        id_="IL211-mirror",
    ),
    pair(
        "IL214",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination:
                host: httpbin
                port:
                  number: 9000  # <-
        """
        + SVC,
        ("number: 9000", "number: 8000"),
        "spec.http[0].route[0].destination.port.number",
        "port 9000 of destination 'httpbin' is not a port of httpbin.default.svc.cluster.local",
    ),
    pair(
        "IL215",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination:
                host: httpbin  # <-
        """
        + SVC.replace("targetPort: 80}", "targetPort: 80}\n  - {name: grpc, port: 9000}"),
        ("host: httpbin  # <-", "host: httpbin\n        port: {number: 8000}"),
        "spec.http[0].route[0].destination.host",
        "exposes several (8000, 9000)",
    ),
    pair(
        "IL210",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          gateways: [mesh]
          http:
          - match:
            - gateways:
              - public-gw  # <-
            route:
            - destination: {host: httpbin}
        """,
        ("- public-gw", "- mesh"),
        "spec.http[0].match[0].gateways[0]",
        "gateway 'public-gw' (default/public-gw) in a match",
        id_="IL210-match",
    ),
    pair(
        "IL216",
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public}
        spec:
          selector:
            istio: ingress-gateway  # <-
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: ["*"]
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
        """,
        ("istio: ingress-gateway", "istio: ingressgateway"),
        "spec.selector.istio",
        "selector {'istio': 'ingress-gateway'} matches the pods of no Deployment",
    ),
    pair(
        "IL217",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: dr}
        spec:
          host: httpbn  # <-
          trafficPolicy:
            loadBalancer: {simple: LEAST_REQUEST}
        """
        + SVC,
        ("host: httpbn", "host: httpbin"),
        "spec.host",
        "host 'httpbn' (httpbn.default.svc.cluster.local) is not a Service or ServiceEntry",
    ),
    pair(
        "IL218",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: httpbin}
        spec:
          selector: {app: httpbin}
          ports:
          - name: http
            port: 8000
            targetPort: 8080  # <-
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: httpbin}
        spec:
          selector: {matchLabels: {app: httpbin}}
          template:
            metadata:
              labels: {app: httpbin}
            spec:
              containers:
              - name: httpbin
                image: kennethreitz/httpbin
                ports:
                - containerPort: 80
        """,
        ("targetPort: 8080", "targetPort: 80"),
        "spec.ports[0].targetPort",
        "targetPort 8080 is not a container port of httpbin (ports: 80)",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


SE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com]
  ports:
  - {number: 443, name: https, protocol: TLS}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [api.example.com]
  http:
  - route:
    - destination: {host: api.example.com}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: SIMPLE, insecureSkipVerify: true}
"""


def test_service_entry_host_is_known_and_modelled() -> None:
    # the false positive of issue #13: IL004 (kind skipped) and IL211 (host unknown)
    findings = lint(SE + SVC)
    assert not [f.format() for f in findings if f.code in ("IL004", "IL211", "IL217")]
    broken = lint(
        SE.replace("destination: {host: api.example.com}", "destination: {host: api.example.org}")
        + SVC
    )
    assert [f.path for f in broken if f.code == "IL211"] == [
        "spec.http[0].route[0].destination.host"
    ]


def test_service_entry_ports_check_destination_ports() -> None:
    text = SE.replace(
        "destination: {host: api.example.com}",
        "destination: {host: api.example.com, port: {number: 80}}",
    )
    assert [f.code for f in lint(text) if f.code == "IL214"] == ["IL214"]


def test_unknown_destination_rule_host_is_info_without_services() -> None:
    dr = DR.replace("host: httpbin", "host: ratings")
    findings = [f for f in lint(dr) if f.code == "IL217"]
    assert [f.severity for f in findings] == [Severity.INFO]
    # a route that goes to the host is enough when there are no Services to compare with
    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
        "spec:\n  hosts: [ratings]\n  http:\n  - route:\n"
        "    - destination: {host: ratings, subset: v1}\n"
    )
    assert not [f for f in lint(vs + dr) if f.code == "IL217"]


def test_target_port_by_name_and_pods_without_declared_ports() -> None:
    base = pair_of(PAIRS[-1]).good
    assert not [
        f
        for f in lint(
            base.replace("targetPort: 80", "targetPort: web").replace(
                "- containerPort: 80", "- containerPort: 80\n          name: web"
            )
        )
        if f.code == "IL218"
    ]
    no_ports = base.replace("targetPort: 80", "targetPort: 8080").split("        ports:")[0]
    assert not [f for f in lint(no_ports) if f.code == "IL218"]


def test_gateway_selector_is_not_checked_without_deployments() -> None:
    gw = pair_of(PAIRS[5]).bad.split("---")[0]
    assert not [f for f in lint(gw) if f.code == "IL216"]


def test_gateway_selector_matches_a_bare_pod() -> None:
    gw = pair_of(PAIRS[5]).good.split("---")[0]
    pod = (
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: ingress-0\n  namespace: istio-system\n"
        "  labels: {istio: ingressgateway}\nspec:\n  containers:\n"
        "  - {name: istio-proxy, image: auto}\n"
    )
    assert not lint(gw + pod)
    broken = [
        f
        for f in lint(gw + pod.replace("istio: ingressgateway", "istio: other"))
        if f.code == "IL216"
    ]
    assert [f.path for f in broken] == ["spec.selector.istio"]


def test_messages_stay_bounded_with_a_huge_host() -> None:
    huge = "a" * 100_000
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
        f"spec:\n  hosts: [httpbin]\n  http:\n  - route:\n    - destination: {{host: {huge}}}\n"
        + SVC
    )
    (f,) = [f for f in lint(text) if f.code == "IL211"]
    assert len(f.message) < 1000
    assert len(f.fix) < 1000
    assert "bytes)" in f.message  # cut, with the full size
