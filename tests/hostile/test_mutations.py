"""Hypothesis mutations of valid configs and scenarios: a coded finding or a one-line error.

The bundled examples and conformance configs, and the bundled scenarios, are mutated with the
strategies of :mod:`tests.hostile.mutations` (byte flips, type swaps, huge numbers, deep
nesting, control characters). Whatever comes out:

* a config is loaded, validated and, when it has no error, compiled, rendered for Envoy and
  routed (``explain``): every finding has a catalogued code, names the file and stays short;
  nothing raises but :class:`~istiolab.errors.ConfigError` (findings again);
* through the command line (``lint``, ``explain``), the exit code is 0, 1 or 2, never 70 (an
  internal error), with no traceback, and an exit 2 ends in one ``istiolab: `` line;
* a scenario file is read and checked against the simulation budget: a Scenario, or a
  ConfigError whose findings are coded.

Example counts are bounded (``derandomize``: the same examples on every run) so the suite stays
fast; ``deadline=None`` because the machine may be busy.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from istiolab.config import codecs, loads
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile as compile_table
from istiolab.envoy.match import Request, explain
from istiolab.envoy.render import render
from istiolab.errors import CompileError, ConfigError
from istiolab.findings import CODES, Finding, Severity

from .mutations import mutated_data, mutated_text

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((REPO / "examples").rglob("*.yaml")) + sorted(
    p
    for p in (REPO / "tests" / "conformance" / "configs").glob("*.yaml")
    if not p.name.endswith(".cases.yaml")
)
SCENARIO_FILES = sorted((REPO / "sim" / "scenarios").glob("*.yaml"))


def bounded(examples: int) -> settings:
    """Settings of these tests: *examples* examples, the same ones every run, no deadline."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _documents(path: Path) -> list[Any]:
    return [doc.data for doc in codecs.loads(codecs.read_text(path), str(path))]


CONFIGS = [(p.name, _documents(p)) for p in CONFIG_FILES]


def assert_coded(findings: Sequence[Finding], file: str) -> None:
    for f in findings:
        assert f.code in CODES, f
        assert f.file in (file, None), f
        assert f.message
        assert f.fix
        assert len(f.message) < 2000, (f.code, len(f.message))
        assert "\n" not in f.path
        json.dumps(f.to_dict())


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    """One bundled config with one field of one document set to a hostile value, as YAML."""
    _, docs = draw(st.sampled_from(CONFIGS))
    at = draw(st.integers(0, len(docs) - 1))
    docs = [*docs[:at], draw(mutated_data(docs[at])), *docs[at + 1 :]]
    try:
        return codecs.dumps(docs)
    except ValueError:  # an integer of more digits than Python prints: as the text says it
        return codecs.dumps(docs[:at] + docs[at + 1 :]) + "---\nx: " + "9" * 5000 + "\n"


@bounded(150)
@given(text=mutated_config())
def test_mutated_configs_compile_render_and_route_or_give_findings(text: str) -> None:
    config = loads(text, file="m.yaml")
    findings = validate(config)
    assert_coded(findings, "m.yaml")
    if any(f.severity is Severity.ERROR for f in findings):
        event("refused with findings")
        return
    try:
        table = compile_table(config)
    except ConfigError as err:
        assert_coded(err.findings, "m.yaml")
        event("compile refused it")
        return
    except CompileError as err:  # no gateway or port to compile for: a one-line usage error
        problem = str(err)
        event("nothing to compile for")
    else:
        problem = ""
    if problem:
        assert "\n" not in problem
        assert len(problem) < 1000
        return
    event("compiled, rendered and routed")
    json.dumps(render(table, {name: [] for name in table.clusters}))
    host = next((d for vh in table.virtual_hosts for d in vh.domains if "*" not in d), "example")
    explain(table, Request(path="/", host=host))


@bounded(40)
@given(
    raw=st.sampled_from(CONFIG_FILES).flatmap(lambda p: mutated_text(p.read_text())),
    command=st.sampled_from(["lint", "explain"]),
)
def test_mutated_config_files_on_the_command_line(raw: bytes, command: str) -> None:
    from istiolab.cli.app import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_bytes(raw)
        argv = [command, str(path)] + (["--path", "/"] if command == "explain" else [])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text[-3000:]
    assert code in (0, 1, 2), text[-3000:]  # 70 would be an internal error
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if code == 2:
        assert lines
        assert lines[-1].startswith("istiolab: "), text[-3000:]
    assert len(text) < 200_000


@bounded(150)
@given(raw=st.sampled_from(SCENARIO_FILES).flatmap(lambda p: mutated_text(p.read_text())))
def test_mutated_scenario_files_give_findings_never_a_crash(raw: bytes) -> None:
    from istiolab.sim import budget
    from istiolab.sim.scenario import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_bytes(raw)
        findings: Sequence[Finding] = ()
        try:
            budget.check(load_scenario(path))
            event("a valid scenario")
        except ConfigError as err:
            findings = err.findings
            assert findings
            event(f"refused: {sorted({f.code for f in findings})}")
        assert_coded(findings, str(path))
