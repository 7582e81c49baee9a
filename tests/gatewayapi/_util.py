"""Shared fixtures of the Gateway API tests: a Gateway, Services, and compiled tables."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from istiolab.config import loads
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Decision, Request, route
from istiolab.envoy.model import RouteTable
from istiolab.findings import CODES, SEE, Finding, Severity

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces: {from: All}
"""

SERVICES = "".join(
    f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 8080}}]
"""
    for ns, name in (
        ("apps", "v1"),
        ("apps", "v2"),
        ("apps", "v3"),
        ("apps", "mirror"),
        ("other", "shared"),
    )
)


def route_doc(rules: str, *, name: str = "r", namespace: str = "apps", extra: str = "") -> str:
    """An HTTPRoute on gateway infra/gw with *rules* (YAML indented as under ``rules:``)."""
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
    meta = textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") if extra else ""
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: {namespace}
{meta}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: [example.com]
  rules:
{body}
"""


def compiled(*docs: str, gateway: str = GATEWAY, profile: str | None = None) -> RouteTable:
    """The route table of the gateway, the Services and *docs*."""
    text = textwrap.dedent(gateway) + SERVICES + "".join(docs)
    return compile(loads(text, file="x.yaml"), profile)


def send(
    table: RouteTable,
    path: str,
    *,
    host: str = "example.com",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    random_value: int | None = None,
) -> Decision:
    """Route one request through *table*."""
    return route(table, Request(path, method, host, headers or {}), random_value)


def picked(d: Decision) -> str:
    """Where a decision sends the request: ``rN`` (rule N), or the status."""
    if d.route is None:
        return str(d.status)
    if d.status is not None:
        return f"{d.route.source.http_index}:{d.status}"
    return f"rule{d.route.source.http_index}"


# -- lint pairs (the shape of tests/analyzer's pairs, kept here so this package stands alone) --

MARK = "# <-"


@dataclasses.dataclass(frozen=True)
class Pair:
    """A broken config, the replacement that fixes it, and the finding the broken one gets."""

    code: str
    bad: str
    old: str
    new: str
    path: str
    value: str

    @property
    def good(self) -> str:
        assert self.old in self.bad, f"{self.code}: {self.old!r} is not in the broken text"
        return self.bad.replace(self.old, self.new, 1)

    @property
    def line(self) -> int:
        lines = [i for i, t in enumerate(self.bad.splitlines(), 1) if MARK in t]
        assert len(lines) == 1, f"{self.code} needs exactly one {MARK!r} marker"
        return lines[0]


def pair(code: str, bad: str, fix: tuple[str, str], path: str, value: str) -> pytest.ParameterSet:
    """A :class:`Pair` as a pytest parameter with the code as its id."""
    text = textwrap.dedent(bad).lstrip("\n")
    return pytest.param(Pair(code, text, fix[0], fix[1], path, value), id=code)


def lint(text: str) -> list[Finding]:
    """Findings for a YAML text."""
    return validate(loads(textwrap.dedent(text).lstrip("\n"), file="x.yaml"))


def assert_broken(p: Pair) -> Finding:
    """The broken config gets the finding: code, path, line, value, severity, see."""
    hits = [f for f in lint(p.bad) if f.code == p.code]
    assert hits, f"no {p.code} in {[f.format() for f in lint(p.bad)]}"
    f = next((h for h in hits if h.path == p.path), hits[0])
    assert f.path == p.path, f.format()
    assert f.line == p.line, f.format()
    assert f.file == "x.yaml"
    assert p.value in f.message, f.message
    assert f.severity is CODES[p.code].severity
    assert f.fix
    assert f.see == SEE[p.code]
    return f


def assert_correct(p: Pair) -> None:
    """The nearly identical correct config gets neither the finding nor any error."""
    findings = lint(p.good)
    assert not [f.format() for f in findings if f.code == p.code]
    assert not [f.format() for f in findings if f.severity is Severity.ERROR]
