"""Input ergonomics (#20): bare numbers taken as milliseconds, and degenerate runs explained."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from istiolab.cli.app import app
from istiolab.sim.dists import bare_numbers
from istiolab.sim.scenario import scenario_from_dict

SCENARIO = """\
name: bare
run: {duration_s: 3, warmup_s: 1}
traffic: [{name: c, arrival: {kind: poisson, rate_rps: 50}}]
services:
  - name: api
    versions:
      - {name: v1, replicas: 2, concurrency: 8, service_time: 40}
      - name: v2
        replicas: 1
        service_time: "uniform(1, 3ms)"
      - {name: v3, replicas: 1, service_time: "lognormal(20ms, cv=1)"}
      - {name: v4, replicas: 1, service_time: {kind: exponential, mean_ms: 5}}
      - {name: v5, replicas: 1, service_time: 0}
"""


def run(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    res = CliRunner().invoke(app, ["simulate", str(path), *args])
    return res.exit_code, res.stdout, res.stderr


def test_bare_numbers_are_found_where_written() -> None:
    import yaml

    raw = yaml.safe_load(SCENARIO)
    sc = scenario_from_dict(raw)
    assert bare_numbers(sc, raw) == [
        ("services.api.versions.v1.service_time", "40"),
        ("services.api.versions.v2.service_time", "1"),  # 3ms names its unit; cv is a ratio
    ]


def test_simulate_warns_once_and_lists_the_warning_in_json(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, SCENARIO, "-f", "json")
    assert code == 0, err
    lines = [x for x in err.splitlines() if "[bare_ms]" in x]
    assert lines == [
        "warning [bare_ms]: services.api.versions.v1.service_time: 40 taken as 40 ms; write "
        "40ms (or 0.04s if seconds were meant)",
        "warning [bare_ms]: services.api.versions.v2.service_time: 1 taken as 1 ms; write 1ms "
        "(or 0.001s if seconds were meant)",
    ]
    doc = json.loads(out)
    assert [w["code"] for w in doc["warnings"]][:2] == ["bare_ms", "bare_ms"]
    # the totals carry the worst window (no event: no recovery to time)
    assert doc["totals"]["window_p99_ms_max"] > 0
    assert doc["totals"]["time_to_recover_s"] != doc["totals"]["time_to_recover_s"]  # NaN
    # an override written with its unit clears the warning; one written bare raises it
    code, _, err = run(
        tmp_path, SCENARIO, "--set", "services.api.versions.v1.service_time=40ms",
        "--set", "services.api.versions.v3.service_time=7",
    )  # fmt: skip
    assert code == 0
    assert "services.api.versions.v1.service_time" not in err
    assert "services.api.versions.v3.service_time: 7 taken as 7 ms" in err


def test_a_service_time_in_seconds_makes_a_degenerate_run_that_says_why(tmp_path: Path) -> None:
    text = """\
name: slow
run: {duration_s: 4, warmup_s: 1}
traffic: [{name: c, arrival: {kind: poisson, rate_rps: 50}}]
services:
  - name: api
    versions: [{name: v1, replicas: 1, service_time: "lognormal(40s, cv=1)"}]
"""
    code, out, _ = run(tmp_path, text)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("warning [degenerate]"))
    assert "longer than the 3 s measured window" in line
    assert "services.api.versions.v1.service_time = lognormal(40000ms, cv=1.0) (mean 40 s)" in line
    assert "nan" not in out  # figures without requests print as '-'
    code, out, _ = run(tmp_path, text, "-f", "json")
    doc = json.loads(out)
    degenerate = [w for w in doc["warnings"] if w["code"] == "degenerate"]
    assert "(mean 40 s)" in degenerate[0]["message"]


def test_sweep_and_plan_warn_before_their_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    sweep = CliRunner().invoke(app, ["sweep", str(path), "-q", "-e", "serial"])
    assert sweep.exit_code == 0, sweep.output
    assert sweep.stderr.count("[bare_ms]") == 2
    plan = CliRunner().invoke(
        app,
        [
            "plan", str(path), "--knob", "services.0.versions.0.replicas=2..3",
            "--slo", "rps>=1", "-k", "2", "-e", "serial", "-q",
            "--set", "services.api.versions.v2.service_time=2ms",
        ],
    )  # fmt: skip
    assert plan.exit_code == 0, plan.output
    assert plan.stderr.count("[bare_ms]") == 1  # the --set wrote v2's time with its unit
