"""The RuleDesigner runs its simulations on the engine it was given."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ipywidgets")

from istiolab import lab
from istiolab.widgets import RuleDesigner


def _engine_of(result: object) -> str:
    meta = json.dumps(result.meta, default=str)  # type: ignore[attr-defined]
    return "fast" if '"engine": "fast"' in meta else "simpy" if '"engine": "simpy"' in meta else "?"


def test_designer_simulates_on_the_chosen_engine() -> None:
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 2, "run.warmup_s": 0.5})
    default = RuleDesigner(lab.rules_of(sc), scenario=sc)
    fast = RuleDesigner(lab.rules_of(sc), scenario=sc, engine="fast")
    assert _engine_of(default.result) == "simpy"
    assert _engine_of(fast.result) == "fast"
    fast.sliders[0].value = 50  # a slider move re-runs on the same engine
    assert _engine_of(fast.result) == "fast"
    assert "weight: 50" in fast.yaml()


def test_designer_rejects_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        RuleDesigner(lab.rules_of(lab.scenario("canary-90-10")), engine="warp")
