"""docs/howto-capacity.md answers Q1–Q3 from the docs alone: its scenarios must stay valid.

The how-to's YAML blocks are the scenarios a reader copies (``q1.yaml``, ``q2.yaml``,
``q3.yaml``); every ``--set``/``--knob`` path its commands use must still apply to them. One
short run of each checks that the assumptions paragraph the page promises is printed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from istiolab.cli.app import app
from istiolab.sim.scenario import Scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/howto-capacity.md").read_text()


def _scenarios() -> dict[str, str]:
    """``qN.yaml`` → the YAML block that follows its first mention as a file name."""
    out: dict[str, str] = {}
    for name in ("q1.yaml", "q2.yaml", "q3.yaml"):
        at = DOC.index(f"`{name}`")
        block = re.search(r"```yaml\n(.*?)```", DOC[at:], re.DOTALL)
        assert block is not None, name
        out[name] = block.group(1)
    return out


SCENARIOS = _scenarios()


def _commands() -> list[tuple[str, list[str]]]:
    """Each ``$ istiolab …`` command on a q*.yaml (continuation lines joined), as argv."""
    joined = re.sub(r"\\\n\s*", " ", DOC)
    out = []
    for line in re.findall(r"^\$ istiolab (.*)$", joined, re.MULTILINE):
        if "..." in line:
            continue  # an elided command, shown for one flag
        argv = shlex.split(line)
        files = [a for a in argv if a in SCENARIOS]
        if files:
            out.append((files[0], argv))
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_howto_scenarios_load(name: str) -> None:
    sc = scenario_from_dict(yaml.safe_load(SCENARIOS[name]))
    assert isinstance(sc, Scenario)


@pytest.mark.parametrize(("name", "argv"), _commands(), ids=lambda v: str(v)[:60])
def test_every_set_and_knob_path_of_the_howto_applies(name: str, argv: list[str]) -> None:
    sc = scenario_from_dict(yaml.safe_load(SCENARIOS[name]))
    sets = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--set"]
    for text in sets:
        path, _, value = text.partition("=")
        sc = sc.with_overrides({path: yaml.safe_load(value)})
    knobs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--knob"]
    for knob in knobs:
        path = re.split(r"[:=]", knob, maxsplit=1)[0]
        sc.with_overrides({path: 1})


def test_a_short_q3_run_prints_the_assumptions(tmp_path: Path) -> None:
    path = tmp_path / "q3.yaml"
    path.write_text(SCENARIOS["q3.yaml"])
    res = CliRunner().invoke(
        app, ["simulate", str(path), "--duration", "3", "--set", "run.warmup_s=1"]
    )
    assert res.exit_code == 0, res.output
    assert "Assumptions:" in res.output
    assert "total" in res.output
