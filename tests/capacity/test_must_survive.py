"""Planning for N-1 (#20): ``plan --must-survive EVENT`` and windowed objectives.

Pods serve 200 req/s each (2 servers of 10 ms) and are spread over two zones, the load is
500 req/s. The base scenario needs ρ = 500 / (200 r) well below 1: r = 3 (ρ = 0.83) meets a
success p99 of 150 ms. Losing zone ``a`` takes its ⌈r/2⌉ pods: the survivors must carry 500 req/s
alone, which takes 3 pods left (ρ = 0.83), so r = 6; r = 5 leaves 2 (ρ = 1.25, the queue grows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from istiolab.analysis.compare import aggregate
from istiolab.analysis.planner import SLO, SLONotMetError, Survive, plan
from istiolab.analysis.sweep import METRICS, sweep
from istiolab.cli.app import app
from istiolab.errors import ConfigError
from istiolab.sim.scenario import Scenario, dump_scenario, mmc_scenario, scenario_from_dict

from ._scenarios import ZERO_NET, crash_scenario, rules

REPL = "services.0.versions.0.replicas"


def two_zones() -> Scenario:
    return scenario_from_dict(
        {
            "name": "n1",
            "run": {"duration_s": 12.0, "warmup_s": 2.0, "seed": 5},
            "rules": rules({"attempts": 0}),
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 500}}],
            "aws": {**ZERO_NET, "health_check": {"interval_s": 1.0, "unhealthy_threshold": 1}},
            "ingress": {
                "azs": ["a", "b"],
                "nodes_per_az": 1,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "api",
                    "endpoint_delay_s": 0.0,
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 2,
                            "concurrency": 2,
                            "service_time": "exp(10ms)",
                        }
                    ],
                }
            ],
        }
    )


def test_must_survive_an_az_loss_raises_the_answer() -> None:
    base = plan(two_zones(), REPL, "success_p99_ms<=150", seeds=2, executor="serial",
                progress=False)  # fmt: skip
    assert base.value == 3
    assert "variant" not in base.checks.columns  # the plain plan's layout is unchanged
    n1 = plan(two_zones(), REPL, "success_p99_ms<=150", seeds=2, executor="serial",
              progress=False, must_survive=["az_loss:a"])  # fmt: skip
    assert n1.value == 6
    assert n1.must_survive == ("az_loss:a",)
    checks = n1.checks.set_index(["value", "variant"])
    # the base meets at 4 and 5, the zone loss does not: that is what raised the answer
    for r in (4, 5):
        assert checks.loc[(r, "base"), "ok"]
        assert not checks.loc[(r, "az_loss:a"), "ok"]
        assert not checks.loc[(r, "base"), "meets"]
    assert checks.loc[(6, "az_loss:a"), "ok"]
    assert checks.loc[(6, "base"), "meets"]
    # the evidence has both variants on the same seeds
    runs = n1.evidence[n1.evidence[REPL] == 6]
    assert sorted(runs["variant"]) == ["az_loss:a", "az_loss:a", "base", "base"]
    assert set(runs[runs["variant"] == "base"]["seed"]) == set(
        runs[runs["variant"] == "az_loss:a"]["seed"]
    )
    assert "az_loss:a: success_p99_ms<=150" in n1.describe()


def test_survive_parse() -> None:
    assert Survive.parse("az_loss:us-east-1a").event == {"kind": "az_loss", "az": "us-east-1a"}
    assert Survive.parse("node_loss").event == {"kind": "node_loss"}
    crash = Survive.parse("pod_crash:api/v1:2@30s")
    assert crash.event == {"kind": "pod_crash", "service": "api", "version": "v1", "count": 2}
    assert crash.at_s == 30.0
    burst = Survive.parse({"kind": "error_burst", "probability": 0.2, "at_s": 4})
    assert (burst.name, burst.at_s) == ("error_burst", 4.0)
    assert Survive.parse("error_burst:api/v2:0.2:5").event == {
        "kind": "error_burst",
        "service": "api",
        "version": "v2",
        "probability": 0.2,
        "duration_s": 5.0,
    }
    assert Survive.parse("error_burst:0.3").event == {"kind": "error_burst", "probability": 0.3}
    for bad in ("az_los:a", "pod_crash:api:0", "az_loss:a@x", "error_burst:api:x"):
        with pytest.raises(ValueError, match=r"must-survive|positive|error_burst\["):
            Survive.parse(bad)


def test_variant_event_time_and_checks() -> None:
    sc = two_zones()
    variant, at = Survive.parse("az_loss").variant(sc)
    assert at == 7.0  # the middle of [2 s, 12 s]
    assert [(e.kind, e.az, e.at_s) for e in variant.events] == [("az_loss", "a", 7.0)]
    with pytest.raises(ConfigError, match="outside the run"):
        Survive.parse("az_loss:a@40").variant(sc)
    with pytest.raises(ConfigError, match="no ingress node 'ingress-a-1'"):
        Survive.parse("node_loss:ingress-a-1").variant(sc)  # one node per zone: ingress-a-0
    assert Survive.parse("node_loss:ingress-b-0").variant(sc)[0].events[0].node == "ingress-b-0"
    with pytest.raises(ConfigError):  # no such zone: refused before any run
        plan(sc, REPL, "p99_ms<=100", seeds=2, executor="serial", must_survive=["az_loss:z"])
    assert SLO.parse("window_p999_ms<=300").metric == "window_p999_ms"


def test_time_to_recover_objective_is_timed_from_the_added_event() -> None:
    """A pod crash at 6 s with endpoint_delay_s = 3 and no retries: the tries sent to the dead
    pod fail for 3 s, so windows meet a 1 % error objective again 3 s after the crash with two
    pods or more (no error objective is given: the window objective is 1 %); with one pod
    nothing is left and the run never recovers. The base has no event: its recovery objective
    is not checked."""
    sc = crash_scenario(3.0, duration_s=10.0).with_overrides({"events": []})
    with pytest.raises(SLONotMetError) as err:
        plan(sc, REPL, "time_to_recover_s<=2.5", seeds=2,
             executor="serial", progress=False, must_survive=["pod_crash:api@6"],
             high=4)  # fmt: skip
    rows = err.value.evidence[err.value.evidence["variant"] == "pod_crash:api@6"]
    assert set(rows["time_to_recover_s"]) == {3.0}
    result = plan(sc, REPL, "time_to_recover_s<=3.5", seeds=2,
                  executor="serial", progress=False, must_survive=["pod_crash:api@6"],
                  start=1, high=4)  # fmt: skip
    assert result.value == 2
    found = {(r["value"], r["variant"], r["metric"]): r for r in result.checks.to_dict("records")}
    assert found[(1, "pod_crash:api@6", "time_to_recover_s")]["mean"] == float("inf")
    base = found[(2, "base", "time_to_recover_s")]
    assert base["ok"]
    assert base["note"] == "no event to recover from"


def test_sweep_rows_and_points_carry_windows_and_high_rho() -> None:
    names = [m for m, _ in METRICS]
    for name in ("window_p99_ms_max", "window_error_rate_max", "time_to_recover_s"):
        assert name in names
    sc = mmc_scenario(360, 10, 4, duration_s=6, warmup_s=1, seed=1, name="hot")
    frame = sweep(sc, {"services.0.versions.0.concurrency": [4, 8]}, seeds=2, executor="serial",
                  progress=False)  # fmt: skip
    assert (frame["window_p99_ms_max"] >= frame["p99_ms"] * 0.5).all()
    points = aggregate(frame)
    warned = points.groupby("services.0.versions.0.concurrency")["warnings"].first()
    assert "high_rho" in warned[4]  # ρ = 0.9
    assert "high_rho" not in warned[8]  # ρ = 0.45


def test_cli_plan_must_survive(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(dump_scenario(two_zones()))
    res = CliRunner().invoke(
        app,
        [
            "plan", str(path), "--knob", f"{REPL}=4..8", "--slo", "success_p99_ms<=150",
            "--must-survive", "az_loss:a", "-k", "2", "-e", "serial", "-q", "-f", "json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["value"] == 6
    assert doc["must_survive"] == ["az_loss:a"]
    assert {c["variant"] for c in doc["checks"]} == {"base", "az_loss:a"}
    bad = CliRunner().invoke(
        app, ["plan", str(path), "--knob", REPL, "--slo", "p99_ms<=1", "--must-survive", "x:y"]
    )
    assert bad.exit_code == 2
    assert "cannot parse must-survive event" in bad.output
    plot = CliRunner().invoke(
        app,
        ["plan", str(path), "--knob", REPL, "--slo", "p99_ms<=1", "--must-survive", "az_loss:a",
         "--plot", str(tmp_path / "p.png")],
    )  # fmt: skip
    assert plot.exit_code == 2
