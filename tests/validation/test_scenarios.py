"""The validation scenarios stay runnable on their own (workshops run them from the CLI) and
each names the test that checks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from istiolab.sim.scenario import load_scenario

from ._harness import ROOT, SCENARIOS

FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_every_truth_has_a_scenario() -> None:
    truths = {int(p.name.split("-")[0]) for p in FILES}
    # 1–16 except 7's Little's law (checked on every run) all have a file.
    assert truths == set(range(1, 17))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_loads_and_names_its_test(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name == f"validation-{path.stem}"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^# Test: (tests/validation/\S+?\.py)::(\w+)", text, re.M)
    assert m, f"{path.name} does not name its test ('# Test: file::name')"
    test_file = ROOT / m.group(1)
    assert re.search(rf"^def {m.group(2)}", test_file.read_text(encoding="utf-8"), re.M), m.group(0)
