"""``--set rules.Kind/name.field``: one field of a routing resource changed for a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.cli.app import main
from istiolab.errors import ConfigError
from istiolab.sim.engine import build_table, simulate
from istiolab.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
STORM = ROOT / "sim" / "scenarios" / "retry-storm.yaml"
DENY = ROOT / "sim" / "scenarios" / "deny-route.yaml"


def test_an_inline_virtual_service_field_is_overridden_and_changes_the_run() -> None:
    base = load_scenario(STORM)
    off = base.with_overrides({"rules.VirtualService/api.http[0].retries.attempts": 0})
    table, _ = build_table(off)
    (route,) = [r for vh in table.virtual_hosts for r in vh.routes]
    assert route.retry is None or route.retry.num_retries == 0
    table, _ = build_table(base)
    (route,) = [r for vh in table.virtual_hosts for r in vh.routes]
    assert route.retry is not None
    assert route.retry.num_retries == 3
    # the run sees it: no retries, so exactly one upstream try per request
    short = {"run.duration_s": 4.0, "run.warmup_s": 0.0}
    tries_off = simulate(off.with_overrides(short), seed=3).totals()
    tries_on = simulate(base.with_overrides(short), seed=3).totals()
    assert tries_off["retries"] == 0
    assert tries_on["retries"] > 0


def test_the_same_key_works_by_name_and_with_spec_and_dots() -> None:
    base = load_scenario(STORM)
    for key in (
        "rules.VirtualService/api.spec.http[0].retries.attempts",
        "rules.VirtualService/default/api.http.0.retries.attempts",
        "rules.VirtualService/api.http.api.retries.attempts",
    ):
        table, _ = build_table(base.with_overrides({key: 1}))
        (route,) = [r for vh in table.virtual_hosts for r in vh.routes]
        assert route.retry is not None, key
        assert route.retry.num_retries == 1, key


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("rules.VirtualService/nope.http[0].timeout", "no VirtualService named 'nope'"),
        ("rules.VirtualService/api.http[5].timeout", "no list item '5'"),
        ("rules.VirtualService/api.tcp[0].route", "not a list"),
    ],
)
def test_an_override_of_nothing_is_an_il401_naming_the_key(key: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_table(load_scenario(STORM).with_overrides({key: "1s"}))
    (f,) = err.value.findings
    assert f.code == "IL401"
    assert f.path == "rules.set." + key.removeprefix("rules.")
    assert says in f.message


def test_an_overridden_value_is_validated_like_a_written_one() -> None:
    key = "rules.VirtualService/api.http[0].timeout"
    with pytest.raises(ConfigError) as err:
        build_table(load_scenario(STORM).with_overrides({key: "soon"}))
    assert any("timeout" in f.path for f in err.value.findings)


def test_a_resource_in_a_rule_file_is_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    # deny-route.yaml routes with the seed's files: the RouteRule aborts 100 % with 403; set to
    # 0 % from the command line, every request is served.
    base = load_scenario(DENY).with_overrides({"run.duration_s": 3.0, "run.warmup_s": 0.0})
    key = "rules.RouteRule/deny-route.httpFault.abort.percent"
    denied = simulate(base, seed=1).codes()
    served = simulate(base.with_overrides({key: 0}), seed=1).codes()
    assert set(denied["status"]) == {403}
    assert set(served["status"]) == {200}
    code = main(["simulate", str(DENY), "--set", "run.duration_s=3", "--set", f"{key}=0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "200" in out
    assert "403" not in out.split("status codes")[-1]
