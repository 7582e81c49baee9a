"""Services: port names Istio reads a protocol from (Istio 0.2: an unnamed port is TCP), and
appProtocol values Istio knows."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair
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
