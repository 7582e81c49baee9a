"""The scenario ``nlb-cross-zone-off-uneven`` (gateway pods 1/2/3 over three AZs) shows what
IL651 says: with cross-zone off each AZ gets a third, split over its pods; with it on, a sixth
each. One run of 10 simulated seconds each (about 6 000 requests), fixed seed.
"""

from __future__ import annotations

import pytest

from istiolab import lab
from istiolab.sim.engine import simulate
from istiolab.sim.results import Result

# per-pod shares are counts of ~6 000 requests: binomial sd <= 0.0065; NLB flows make them
# lumpier, so 0.03 (over 4 sd) leaves room without letting a wrong split (0.17 vs 0.33) pass
TOL = 0.03


@pytest.fixture(scope="module")
def runs() -> tuple[Result, Result]:
    sc = lab.scenario("nlb-cross-zone-off-uneven")
    return simulate(sc, seed=1), simulate(sc.with_overrides({"aws.cross_zone": True}), seed=1)


def test_cross_zone_off_gives_each_az_a_third(runs: tuple[Result, Result]) -> None:
    off, _ = runs
    ing = off.ingress()
    want = {"us-east-1a": 1 / 3, "us-east-1b": 1 / 6, "us-east-1c": 1 / 9}
    assert len(ing) == 6
    for _, row in ing.iterrows():
        assert row["share"] == pytest.approx(want[row["az"]], abs=TOL), row["ingress_node"]
    per_az = ing.groupby("az")["share"].sum()
    assert per_az.to_dict() == pytest.approx(dict.fromkeys(want, 1 / 3), abs=TOL)


def test_cross_zone_on_evens_the_pods(runs: tuple[Result, Result]) -> None:
    _, on = runs
    ing = on.ingress()
    assert ing["share"].tolist() == pytest.approx([1 / 6] * 6, abs=TOL)
