"""Input ergonomics: an unquoted distribution in a YAML flow mapping gets a hint to quote it."""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.errors import ConfigError
from istiolab.sim.scenario import load_scenario

SCENARIO = """\
name: flow
run: {{duration_s: 2, warmup_s: 0.5, seed: 1}}
traffic:
- name: clients
  arrival: {{kind: poisson, rate_rps: 50}}
  requests: [{{path: /}}]
services:
- name: web
  versions:
  - {{name: v1, replicas: 2, service_time: {value}}}
"""


def test_unquoted_call_in_flow_style_gets_a_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(SCENARIO.format(value="lognormal(40ms, cv=1)"))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    messages = [f.message for f in info.value.findings if f.path.endswith("service_time")]
    assert len(messages) == 1
    assert "cut at a comma" in messages[0]
    assert "quote it" in messages[0]
    # quoted, the same value loads
    path.write_text(SCENARIO.format(value='"lognormal(40ms, cv=1)"'))
    sc = load_scenario(path)
    assert sc.services[0].versions[0].service_time.kind == "lognormal"


def test_other_bad_values_get_no_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.format(value="forty"))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    text = " ".join(f.message for f in info.value.findings)
    assert "is not a distribution" in text
    assert "cut at a comma" not in text
