"""Messages of issue #13: IL103 suggests the corrected duration, IL202 names the Istio version
once, IL208 names the earlier route and the condition that covers (tested with the
VirtualService pairs)."""

from __future__ import annotations

import pytest

from analyzer.common import lint


@pytest.mark.parametrize(("value", "suggested"), [("5", "'5s'"), ("0.5", "'0.5s'")])
def test_number_given_as_a_duration_suggests_the_string(value: str, suggested: str) -> None:
    text = f"""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {{name: vs}}
    spec:
      hosts: [httpbin]
      http:
      - timeout: {value}
        route:
        - destination: {{host: httpbin}}
    """
    (f,) = [f for f in lint(text) if f.code == "IL103"]
    assert f.path == "spec.http[0].timeout"
    assert f"did you mean {suggested}?" in f.message
    assert suggested in f.fix
    # a number where a string that is not a duration is expected gets no such suggestion
    other = text.replace(f"timeout: {value}", f"name: {value}")
    assert [f.code for f in lint(other)] == ["IL103"]
    assert "did you mean" not in lint(other)[0].message


def test_weight_message_names_the_istio_version_once() -> None:
    text = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs}
    spec:
      hosts: [httpbin]
      http:
      - route:
        - destination: {host: httpbin}
          weight: 50
        - destination: {host: httpbin-canary}
          weight: 40
    """
    (f,) = [f for f in lint(text, "1.14") if f.code == "IL202"]
    assert "Istio 1.14 requires 100" in f.message
    assert "Istio Istio" not in f.message
