"""The workshop's drills written as Gateway API rules simulate as the Istio ones do."""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.sim.engine import simulate
from istiolab.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "sim" / "scenarios" / "gateway-api" / "drills.yaml"


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_redirect_cookie_ab_canary_and_mirror_through_an_httproute(engine: str) -> None:
    result = simulate(load_scenario(SCENARIO), seed=3, engine=engine)
    codes = result.codes()
    by_status = codes.groupby("status")["count"].sum()
    total = int(by_status.sum())
    # one request in five is /old/page: a 301 from the redirect rule, no backend
    assert abs(by_status[301] / total - 0.2) < 0.03
    assert set(by_status.index) == {200, 301}
    summary = result.summary()
    per_cluster = summary.groupby("cluster")["requests"].sum()
    v1 = per_cluster["outbound|80||web-v1.default.svc.cluster.local"]
    v2 = per_cluster["outbound|80||web-v2.default.svc.cluster.local"]
    # the cookie rule sends its fifth to v2; the rest splits 90/10: v2 = 0.2 + 0.6 * 0.1
    assert abs(v2 / (v1 + v2) - (0.2 + 0.06) / 0.8) < 0.03
    # the mirror copies every request of the canary rule (3/5 of all) to v2, fire and forget:
    # v2's pods serve 0.6 λ more, so their utilisation grows by (0.2 + 0.06 + 0.6) / 0.26
    plain = load_scenario(SCENARIO).with_overrides({"rules.HTTPRoute/web.rules[2].filters": []})
    with_mirror = result.totals()["rho"]["backend/web-v2/v2"]
    without = simulate(plain, seed=3, engine=engine).totals()["rho"]["backend/web-v2/v2"]
    assert abs(with_mirror / without - 0.86 / 0.26) < 0.35
