"""Pairs of configs per check: the broken one gets the finding, the nearly identical one does not.

A broken text marks the line the finding must point at with ``# <-``; the correct text is the
broken one with one replacement. :data:`FAMILIES` lists the test modules, so a meta-test (and
``tests/test_findings.py``) can see which codes have a pair.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import textwrap

import pytest

from istiolab.config import loads
from istiolab.config.validate import validate
from istiolab.findings import CODES, SEE, Finding, Severity

MARK = "# <-"
FAMILIES = (
    "references",
    "gateways",
    "virtualservices",
    "destinationrules",
    "services",
    "envoyfilters",
    "workloads",
)


@dataclasses.dataclass(frozen=True)
class Pair:
    """A broken config, the fix that makes it correct, and the finding the broken one gets."""

    code: str
    bad: str
    old: str
    new: str
    path: str
    value: str
    profile: str | None = None
    severity: Severity | None = None

    @property
    def good(self) -> str:
        assert self.old in self.bad, f"{self.code}: {self.old!r} is not in the broken text"
        return self.bad.replace(self.old, self.new, 1)

    @property
    def line(self) -> int:
        lines = [i for i, t in enumerate(self.bad.splitlines(), 1) if MARK in t]
        assert len(lines) == 1, f"{self.code} needs exactly one {MARK!r} marker"
        return lines[0]


def pair(
    code: str,
    bad: str,
    fix: tuple[str, str],
    path: str,
    value: str,
    *,
    profile: str | None = None,
    severity: Severity | None = None,
    id_: str = "",
) -> pytest.ParameterSet:
    """A :class:`Pair` as a pytest parameter (id: the code, or *id_*)."""
    p = Pair(code, dedent(bad), fix[0], fix[1], path, value, profile, severity)
    return pytest.param(p, id=id_ or code)


def pair_of(param: pytest.ParameterSet) -> Pair:
    """The :class:`Pair` inside a :func:`pair` parameter."""
    p = param.values[0]
    assert isinstance(p, Pair)
    return p


def dedent(text: str) -> str:
    """Each YAML document of *text* dedented on its own (texts are built from indented parts)."""
    docs = re.split(r"(?m)^[ \t]*---[ \t]*$", text)
    return "---".join(textwrap.dedent(d) for d in docs).lstrip("\n")


def lint(text: str, profile: str | None = None) -> list[Finding]:
    """Findings for a YAML text."""
    return validate(loads(dedent(text), file="x.yaml"), profile)


def assert_broken(p: Pair) -> Finding:
    """The broken config gets the finding: code, path, line, value in the message, see."""
    findings = lint(p.bad, p.profile)
    hits = [f for f in findings if f.code == p.code]
    assert hits, f"no {p.code} in {[f.format() for f in findings]}"
    f = next((h for h in hits if h.path == p.path), hits[0])
    assert f.path == p.path, f.format()
    assert f.line == p.line, f.format()
    assert f.file == "x.yaml"
    assert p.value in f.message, f.message
    assert f.severity is (p.severity or CODES[p.code].severity)
    assert f.fix
    assert f.see == SEE[p.code]
    return f


def assert_correct(p: Pair) -> None:
    """The nearly identical correct config does not get the finding (nor any other error)."""
    findings = lint(p.good, p.profile)
    same = [f.format() for f in findings if f.code == p.code]
    assert not same, same
    errors = [f.format() for f in findings if f.severity is Severity.ERROR]
    assert not errors, errors


def covered_codes() -> set[str]:
    """Codes with a pair in the family test modules."""
    out: set[str] = set()
    for name in FAMILIES:
        mod = importlib.import_module(f"analyzer.test_{name}")
        out |= {pair_of(p).code for p in mod.PAIRS}
    # the Gateway API checks (IL6xx) keep their pairs with their feature's tests
    out |= {p.values[0].code for p in importlib.import_module("gatewayapi.test_lint").PAIRS}
    # the AWS load balancer checks (IL65x): one broken/clean test pair each in tests/aws
    out |= importlib.import_module("aws.test_aws_checks").COVERED
    return out
