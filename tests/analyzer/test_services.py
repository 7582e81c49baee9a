"""Services: port names Istio reads a protocol from (Istio 0.2: an unnamed port is TCP), and
appProtocol values Istio knows."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair
from istiolab.config.checks import services
from istiolab.findings import Severity

SVC = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - port: 8080
    name: web  # <-
"""

PAIRS = [
    pair(
        "IL234",
        SVC,
        ("name: web  # <-", "name: http-web  # <-"),
        "spec.ports[0].name",
        "port name 'web' (8080) does not say its protocol",
    ),
    pair(
        "IL234",
        SVC,
        ("name: web  # <-", "name: http  # <-"),
        "spec.ports[0].name",
        "Istio 0.2 treats it as TCP, so HTTP route rules do not apply",
        profile="0.2",
        severity=Severity.WARNING,
        id_="IL234-istio-0.2",
    ),
    pair(
        "IL235",
        SVC.replace("name: web  # <-", "name: web\n    appProtocol: HTTP1  # <-"),
        ("appProtocol: HTTP1", "appProtocol: http"),
        "spec.ports[0].appProtocol",
        "appProtocol 'HTTP1' is not a protocol Istio knows",
    ),
]


# What the Kubernetes API server refuses in a Service (pkg/apis/core/validation/validation.go)
_K8S_SVC = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 8080
    targetPort: 8080
"""
PAIRS += [
    pair(
        "IL102",
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:  # <-
          selector: {app: web}
        """,
        ("selector: {app: web}", "selector: {app: web}\n  ports: [{name: http, port: 80}]"),
        "spec.ports",
        "Service 'web' has no ports",
        id_="IL102-service-ports",
    ),
    pair(
        "IL108",
        _K8S_SVC.replace("targetPort: 8080", "targetPort: 8080\n    nodePort: 30080  # <-"),
        ("nodePort: 30080", "protocol: TCP"),
        "spec.ports[0].nodePort",
        "nodePort 30080 on a ClusterIP Service",
        id_="IL108-service-node-port",
    ),
    pair(
        "IL108",
        _K8S_SVC.replace("name: http", "name: http_web  # <-"),
        ("name: http_web", "name: http-web"),
        "spec.ports[0].name",
        "port name 'http_web' is not an RFC 1123 label",
        id_="IL108-service-port-name",
    ),
    pair(
        "IL108",
        _K8S_SVC.replace("targetPort: 8080", "targetPort: http-frontend-api  # <-"),
        ("http-frontend-api", "http-frontend"),
        "spec.ports[0].targetPort",
        "targetPort 'http-frontend-api' is not a port number nor a container port name",
        id_="IL108-service-target-port-name",
    ),
    pair(
        "IL108",
        _K8S_SVC.replace("selector: {app: web}", "selector: {app: web/v2}  # <-"),
        ("web/v2", "web-v2"),
        "spec.selector.app",
        "selector value 'web/v2'",
        id_="IL108-service-selector",
    ),
]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("http", None),
        ("http-frontend", None),  # 13 characters
        ("h2", None),
        ("http-frontend-x", None),  # 15
        ("http-frontend-xy", "more than 15"),
        ("8080", "at least one letter"),
        ("-http", "start or end"),
        ("http-", "start or end"),
        ("http--web", "two '-'"),
        ("HTTP", "lower-case"),
        ("http_web", "lower-case"),
    ],
)
def test_target_port_names_are_iana_service_names(name: str, problem: str | None) -> None:
    got = services.iana_service_name_problem(name)
    assert (got is None) if problem is None else (got is not None and problem in got)


def test_kubernetes_rules_that_do_not_apply() -> None:
    # a headless or ExternalName Service may have no ports; a NodePort Service may name its
    # nodePort; one unnamed port is fine; a selector value may be empty
    headless = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: None}\n"
    external = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\n"
        "spec: {type: ExternalName, externalName: example.com}\n"
    )
    node_port = _K8S_SVC.replace("selector:", "type: NodePort\n  selector:").replace(
        "targetPort: 8080", "targetPort: 8080\n    nodePort: 30080"
    )
    empty_value = _K8S_SVC.replace("selector: {app: web}", "selector: {app: web, canary: ''}")
    for text in (headless, external, node_port, empty_value):
        assert [f.format() for f in lint(text) if f.severity is Severity.ERROR] == []


def test_several_ports_each_need_a_unique_name() -> None:
    two = _K8S_SVC + "  - {port: 9090}\n"
    assert [(f.code, f.path) for f in lint(two) if f.severity is Severity.ERROR] == [
        ("IL102", "spec.ports[1].name")
    ]
    same = _K8S_SVC + "  - {name: http, port: 9090}\n"
    found = [f for f in lint(same) if f.severity is Severity.ERROR]
    assert [(f.code, f.path) for f in found] == [("IL108", "spec.ports[1].name")]
    assert "also the name of ports[0]" in found[0].message


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("http", False),
        ("HTTP-api", False),
        ("grpc-web-x", False),
        ("tcp", False),
        ("https-a", False),
        ("httpx", True),
        ("", True),
        ("metrics", True),
    ],
)
def test_port_names(name: str, flagged: bool) -> None:
    text = SVC.replace("name: web  # <-", f"name: {name!r}" if name else "protocol: TCP")
    assert bool([f for f in lint(text) if f.code == "IL234"]) is flagged


def test_udp_ports_and_an_app_protocol_are_not_named_by_convention() -> None:
    assert not lint(SVC.replace("name: web  # <-", "name: dns\n    protocol: UDP"))
    assert not lint(SVC.replace("name: web  # <-", "name: web\n    appProtocol: kubernetes.io/h2c"))


def test_istios_own_services_are_skipped() -> None:
    # util/config.go IsIstioControlPlane: a Service labelled 'istio' is Istio's own
    text = SVC.replace(
        "metadata: {name: web}", "metadata: {name: web, labels: {istio: ingressgateway}}"
    )
    assert not [f for f in lint(text) if f.code == "IL234"]
    assert [f.code for f in lint(SVC)] == ["IL234"]
