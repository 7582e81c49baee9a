"""Honest accounting (#20): unfinished requests, ρ per tier, success latency, warnings.

Every threshold below comes from the queue's closed forms: an M/M/c at offered load ρ = λ/(cμ)
has utilisation ρ (when ρ < 1); at ρ = 1.3 the queue grows by (λ − cμ) per second.
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from typer.testing import CliRunner

from istiolab.analysis.planner import t_quantile
from istiolab.cli.app import app
from istiolab.sim import budget
from istiolab.sim.accounting import WARNING_CODES
from istiolab.sim.engine import simulate
from istiolab.sim.metrics import Metrics
from istiolab.sim.scenario import mmc_scenario

from ._scenarios import crash_scenario

# 4 servers of 10 ms: capacity 400 req/s.
OVERLOAD = {"rate_rps": 520.0, "mean_service_ms": 10.0, "servers": 4}  # ρ = 1.3
HEALTHY = {"rate_rps": 200.0, "mean_service_ms": 10.0, "servers": 4}  # ρ = 0.5


def codes(result: object) -> set[str]:
    return {w["code"] for w in result.warnings}  # type: ignore[attr-defined]


def test_overloaded_run_no_longer_looks_healthy() -> None:
    result = simulate(mmc_scenario(**OVERLOAD, duration_s=20, warmup_s=2), seed=1)  # type: ignore[arg-type]
    totals = result.totals()
    # Every request that completed succeeded: the old summary said "100 % success".
    assert totals["success_ratio"] == 1.0
    # But (520 - 400) × 18 s ≈ 2 160 requests pile up: they are counted, not dropped.
    assert totals["unfinished"] > 1500
    assert totals["unfinished_excess"] > 500
    assert totals["success_ratio_incl_unfinished"] < 0.95
    assert totals["rho"]["backend/svc/v1"] > 0.98
    assert {"unstable", "unfinished"} <= codes(result)
    # The arrivals are all accounted for: completed + unfinished = arrived after warm-up.
    arrived = totals["requests"] + totals["unfinished"]
    assert arrived == pytest.approx(520 * 18, rel=4 * math.sqrt(520 * 18) / (520 * 18))


def test_healthy_run_utilisation_matches_offered_load() -> None:
    """ρ is a time integral: over 8 seeds its mean is λ/(cμ) = 0.5 within a 99.9 % t interval."""
    rhos, unfinished = [], []
    for seed in range(8):
        result = simulate(mmc_scenario(**HEALTHY, duration_s=20, warmup_s=2), seed=seed)  # type: ignore[arg-type]
        totals = result.totals()
        rhos.append(totals["rho"]["backend/svc/v1"])
        unfinished.append(totals["unfinished_excess"])
        assert not {"unstable", "unfinished", "degenerate"} & codes(result)
        assert totals["success_ratio_incl_unfinished"] == 1.0
    half = t_quantile(0.9995, 7) * statistics.stdev(rhos) / math.sqrt(8)
    assert abs(statistics.fmean(rhos) - 0.5) <= half
    # the interval is narrow enough to tell 0.5 from the 0.55 of a 10 % error
    assert half < 0.05
    assert unfinished == [0] * 8


def test_in_flight_limit_refuses_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "SIM_MAX_IN_FLIGHT", 50)
    result = simulate(mmc_scenario(**OVERLOAD, duration_s=10, warmup_s=1), seed=2)  # type: ignore[arg-type]
    totals = result.totals()
    assert totals["rejected"] > 0
    assert totals["unfinished"] >= totals["rejected"]
    assert "in_flight_limit" in codes(result)
    # at most the limit is in flight: the rest were refused, so the queue stays bounded
    assert totals["unfinished"] - totals["rejected"] <= 50


def test_success_latency_leaves_fast_failures_out() -> None:
    m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
    for i in range(100):
        failed = i % 10 == 0  # 10 % fast failures at 1 ms, the rest take 100 ms
        latency = 0.001 if failed else 0.100
        m.record(t_start=i * 0.05, t_end=i * 0.05 + latency, route="r", cluster="c",
                 version="v1", status=503 if failed else 200, flags="", retries=0,
                 upstream_requests=1, ingress_node="n", az="a")  # fmt: skip
    totals = m.result(seed=1, scenario_name="t", params={}).totals()
    assert totals["p50_ms"] == pytest.approx(100, rel=1e-2)
    assert totals["success_p50_ms"] == pytest.approx(100, rel=1e-2)
    # the p10 of all requests is a failure; no successful request is that fast
    assert totals["success_p99_ms"] == pytest.approx(100, rel=1e-2)
    assert totals["success_ratio"] == 0.9


def test_fast_failures_no_longer_improve_the_latency_figure() -> None:
    """Half the tries fail at once: the overall p50 falls, the success p50 does not."""
    result = simulate(crash_scenario(30.0, duration_s=12.0))
    totals = result.totals()
    assert totals["flags"].get("UF", 0) > 100
    assert totals["success_p50_ms"] > totals["p50_ms"]


def test_degenerate_and_short_runs_warn() -> None:
    tiny = mmc_scenario(0.5, 10, 1, duration_s=4, warmup_s=1)
    assert "degenerate" in codes(simulate(tiny, seed=1)) or "short_run" in codes(
        simulate(tiny, seed=1)
    )
    short = mmc_scenario(100, 10, 1, duration_s=3, warmup_s=1)  # ~200 requests
    assert "short_run" in codes(simulate(short, seed=1))
    empty = mmc_scenario(1e-6, 10, 1, duration_s=2, warmup_s=1)
    result = simulate(empty, seed=1)
    assert "degenerate" in codes(result)
    assert all(w["code"] in WARNING_CODES for w in result.warnings)


def test_short_warmup_warns_near_saturation() -> None:
    # ρ = 0.95 on one server of 10 ms: relaxation ≈ W(1-ρ)/(1-√ρ)² ≈ 0.2 s × 0.05 / 6.5e-4 ≈ 15 s
    result = simulate(mmc_scenario(95, 10, 1, duration_s=10, warmup_s=0.1), seed=1)
    assert "short_warmup" in codes(result)


def test_endpoint_delay_changes_a_pod_crash() -> None:
    """A crashed pod stays in Envoy's host set for endpoint_delay_s; without retries the tries
    sent to it fail (503 UF, refused) until then, and only then."""
    quick = simulate(crash_scenario(0.0))
    slow = simulate(crash_scenario(5.0))
    assert quick.totals()["flags"].get("UF", 0) == 0
    uf = slow.codes()
    uf = uf[uf["flag"] == "UF"]
    total_uf = int(uf["count"].sum())
    # 200 req/s for 5 s, and the dead pod gets at least its round share (it answers at once,
    # so least request favours it): between a quarter and all of the 1 000 requests
    assert 250 <= total_uf <= 1000
    assert uf["t_s"].min() >= 5.0
    assert uf["t_s"].max() < 10.0 + 1.0
    assert slow.totals()["success_ratio"] < quick.totals()["success_ratio"]


def test_endpoint_delay_from_the_command_line(tmp_path: object) -> None:
    import yaml

    path = tmp_path / "crash.yaml"  # type: ignore[operator]
    path.write_text(yaml.safe_dump(crash_scenario(0.0).model_dump(mode="json", exclude_unset=True)))
    runner = CliRunner()
    out = {}
    for delay in (0, 5):
        res = runner.invoke(
            app,
            ["simulate", str(path), "-f", "json", "--set", f"services.0.endpoint_delay_s={delay}"],
        )
        assert res.exit_code == 0, res.output
        out[delay] = json.loads(res.stdout)
    assert out[0]["totals"]["flags"].get("UF", 0) == 0
    assert out[5]["totals"]["flags"]["UF"] > 250


def test_simulate_json_carries_the_contract(tmp_path: object) -> None:
    import yaml

    path = tmp_path / "over.yaml"  # type: ignore[operator]
    sc = mmc_scenario(**OVERLOAD, duration_s=10, warmup_s=1)  # type: ignore[arg-type]
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json", exclude_unset=True)))
    res = CliRunner().invoke(app, ["simulate", str(path), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    totals = doc["totals"]
    assert isinstance(totals["unfinished"], int)
    assert totals["unfinished"] > 500
    assert isinstance(totals["rho"], dict)
    assert totals["rho"]["backend/svc/v1"] > 0.98
    assert totals["success_p99_ms"] > 0
    assert {w["code"] for w in doc["warnings"]} >= {"unstable", "unfinished"}
    assert all(set(w) == {"code", "message"} for w in doc["warnings"])
    a = doc["assumptions"]
    assert a["profile"]["default_lb"]
    assert a["costs"]["lb_hop"]["value"] == "0 ms"  # the scenario zeroes it
    table = CliRunner().invoke(app, ["simulate", str(path)])
    assert table.exit_code == 0
    assert "unfinished at the end:" in table.stdout
    assert "utilisation ρ: backend/svc/v1 1.00" in table.stdout
    assert "warning [unstable]" in table.stdout
    assert "Assumptions: Istio profile" in table.stdout


def test_assumptions_name_the_calibration_and_its_source() -> None:
    from istiolab.sim.scenario import load_scenario

    result = simulate(load_scenario("sim/scenarios/seed-httpbin.yaml"), seed=1)
    costs = result.assumptions["costs"]
    assert costs["gateway_cpu_per_request"]["value"] == "0.2 ms"
    assert "0.20 vCPU/1000 rps" in costs["gateway_cpu_per_request"]["source"]
    assert costs["gateway_latency_per_request"]["value"] == "0.11 ms"
    assert costs["lb_hop"]["value"] == "0.3 ms"
    assert costs["cross_az_hop"]["value"] == "0.6 ms"
    assert result.assumptions["connections"]["internet"]["mode"] == "keepalive"
    # saved and loaded with the result
    queues = result.queues()
    assert set(queues["tier"]) >= {"gateway_workers", "backend/httpbin/v1", "lb_targets_max"}
    assert (queues["rho"].between(0, 1)).all()


def test_plots_mark_the_events() -> None:
    from istiolab.lab.plots import latency_over_time, responses_over_time

    result = simulate(crash_scenario(5.0, duration_s=8.0))
    assert result.events == [{"t_s": 5.0, "kind": "pod_crash", "target": "api"}]
    for plot in (latency_over_time, responses_over_time):
        ax = plot(result)
        marks = [ln for ln in ax.get_lines() if np.asarray(ln.get_xdata()).tolist() == [5.0, 5.0]]
        assert len(marks) == 1
        assert any(t.get_text() == "pod_crash api" for t in ax.texts)
    quiet = simulate(crash_scenario(5.0, duration_s=8.0).model_copy(update={"events": []}))
    assert quiet.events == []
    assert not latency_over_time(quiet).texts
