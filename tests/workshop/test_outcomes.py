"""Intended outcomes: a deny rule's 403, a 429 and a redirect count as what they are."""

from __future__ import annotations

import math

import pytest

from istiolab import lab
from istiolab.sim.engine import simulate
from istiolab.sim.results import OUTCOME_DOCS, OUTCOMES, outcome


@pytest.mark.parametrize(
    ("status", "flag", "expected"),
    [
        (200, "", "served"),
        (200, "DI", "served"),
        (301, "", "redirected"),
        (403, "FI", "denied"),
        (401, "", "denied"),
        (404, "NR", "not_found"),
        (429, "RL", "rate_limited"),
        (400, "FI", "client_error"),
        (503, "UO", "failed"),
        (504, "UT", "failed"),
        (503, "FI", "failed"),
        (0, "DC", "failed"),
    ],
)
def test_outcome_classifies_by_meaning(status: int, flag: str, expected: str) -> None:
    assert outcome(status, flag) == expected


def test_every_outcome_is_documented() -> None:
    assert set(OUTCOME_DOCS) == set(OUTCOMES)


def test_deny_drill_is_denied_not_successful() -> None:
    sc = lab.scenario("deny-route").with_overrides({"run.duration_s": 3.0})
    result = simulate(sc, seed=1)
    t = result.outcome_totals()
    # the plain ratio still says 1.0: the 403s are not 5xx
    assert result.totals()["success_ratio"] == 1.0
    assert t["non_5xx_ratio"] == 1.0
    assert t["denied"] == 1.0
    assert t["served"] == 0.0
    assert t["responses"] == result.totals()["requests"]
    frame = result.outcomes()
    assert list(frame.columns[-4:]) == ["route", "outcome", "requests", "share"]
    assert set(frame["route"]) == {"deny-route", "*"}
    assert len(frame) == 2 * len(OUTCOMES)


def test_outcome_shares_add_up_and_match_the_codes() -> None:
    sc = lab.scenario("rate-limit-100rps").with_overrides({"run.duration_s": 4.0})
    result = simulate(sc, seed=3)
    t = result.outcome_totals()
    assert math.isclose(sum(t[o] for o in OUTCOMES), 1.0)
    codes = result.codes()
    codes = codes[codes["t_s"] >= result.meta["config"]["warmup_s"]]
    limited = codes.loc[codes["status"] == 429, "count"].sum() / codes["count"].sum()
    assert limited > 0
    assert t["rate_limited"] == pytest.approx(limited)
    assert t["non_5xx_ratio"] == pytest.approx(1.0 - t["failed"])
