"""The Istio documentation's own examples lint clean: bookinfo behind the gateway and the
traffic-management tasks (request routing, fault injection, traffic shifting, request timeouts,
circuit breaking, mirroring, ingress and secure gateways). Fixtures: tests/data/lint/istio-docs/."""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.config import load, loads
from istiolab.config.validate import validate

DOCS = Path(__file__).resolve().parents[1] / "data" / "lint" / "istio-docs"
FIXTURES = sorted(DOCS.glob("*.yaml"))


def test_every_task_has_a_fixture() -> None:
    names = {p.stem for p in FIXTURES}
    assert {
        "bookinfo-gateway",
        "request-routing",
        "fault-injection-delay",
        "fault-injection-abort",
        "traffic-shifting",
        "request-timeouts",
        "circuit-breaking",
        "mirroring",
        "ingress-gateways",
        "secure-gateways",
    } <= names


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_istio_docs_example_has_no_findings(path: Path) -> None:
    config = load(path)
    assert len(config) >= 3  # the example was read, not skipped
    assert [f.format() for f in validate(config)] == []


def test_the_examples_exercise_the_checks() -> None:
    # a fixture only proves something if the checks had their inputs: Services, Deployments,
    # gateways, DestinationRules and routes with subsets and ports
    kinds = {r.kind for p in FIXTURES for r in load(p)}
    assert {"Service", "Deployment", "Gateway", "VirtualService", "DestinationRule"} <= kinds
    broken = (
        (DOCS / "bookinfo-gateway.yaml").read_text().replace("number: 9080\n", "number: 9081\n")
    )
    assert "IL214" in {f.code for f in validate(loads(broken, file="bookinfo.yaml"))}
