"""``istiolab lint`` and ``istiolab explain`` with ``--context``/``--kubeconfig``/``-n``: files over
live through the command line, and explain's refusal of control characters.

The in-memory cluster stands behind the CLI (``_connect`` replaced); one test goes through a
real kubeconfig to a KMock server.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from kube import _seed as seed
from kube._kmock import KMockServer
from typer.testing import CliRunner

import istiolab.cli.config as cli_config
from istiolab.config import codecs
from istiolab.kube import InMemoryCluster
from istiolab.kube.live import LIVE


def _cluster() -> InMemoryCluster:
    c = InMemoryCluster(context="prod", namespace="shop")
    c.seed(seed.gateway())
    c.seed(seed.destination_rule())
    c.seed(seed.virtual_service(90, 10))
    web = next(
        o for o in seed.topology() if o["kind"] == "Service" and o["metadata"]["name"] == "web"
    )
    c.seed(web)
    stale = copy.deepcopy(seed.virtual_service())
    stale["metadata"]["name"] = "stale"
    stale["spec"]["hosts"] = ["old.example.com"]
    stale["spec"]["gateways"] = ["istio-system/gone"]
    c.seed(stale)
    return c


def _run(monkeypatch: pytest.MonkeyPatch, c: InMemoryCluster | None, args: list[str]) -> Any:
    from istiolab.cli.app import app

    if c is not None:
        monkeypatch.setattr(cli_config, "_connect", lambda *a: c)
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    return result


def _change(tmp_path: Path, v1: int = 0, v2: int = 100) -> str:
    path = tmp_path / "change.yaml"
    path.write_text(
        codecs.dumps([seed.virtual_service(v1, v2), seed.destination_rule()]), encoding="utf-8"
    )
    return str(path)


def test_lint_over_live_reports_no_duplicate_and_marks_live_findings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file's VirtualService replaces the live one; the live-only route's IL210 is at <live>."""
    res = _run(
        monkeypatch, _cluster(), ["lint", _change(tmp_path), "--context", "prod", "-f", "json"]
    )
    doc = json.loads(res.stdout)
    codes = {(f["code"], f["resource"], f["file"], f["line"]) for f in doc["findings"]}
    assert not any(c == "IL205" for c, *_ in codes)
    assert ("IL210", "VirtualService/shop/stale", LIVE, None) in codes
    # the file's route binds to the live Gateway: no IL210 for it
    assert not any(c == "IL210" and r == "VirtualService/shop/web" for c, r, *_ in codes)
    assert "2 replaced by a file" in res.stderr
    assert res.exit_code == 0  # warnings only


def test_lint_without_the_cluster_misses_the_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same file alone: its Gateway is not there (IL210 at the file)."""
    res = _run(monkeypatch, None, ["lint", _change(tmp_path), "-f", "json"])
    found = json.loads(res.stdout)["findings"]
    assert [(f["code"], f["resource"]) for f in found if f["code"] == "IL210"] == [
        ("IL210", "VirtualService/shop/web")
    ]


def test_sarif_and_github_give_no_file_location_for_live_findings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A live object has no file: SARIF gives a logical location only, GitHub no file=."""
    change = _change(tmp_path)
    sarif = json.loads(
        _run(monkeypatch, _cluster(), ["lint", change, "-n", "shop", "-f", "sarif"]).stdout
    )
    live = [
        r
        for r in sarif["runs"][0]["results"]
        if r["properties"]["resource"] == "VirtualService/shop/stale"
    ]
    assert live
    assert all("physicalLocation" not in loc for r in live for loc in r["locations"])
    gh = _run(monkeypatch, _cluster(), ["lint", change, "-n", "shop", "-f", "github"]).stdout
    line = next(x for x in gh.splitlines() if "VirtualService/shop/stale" in x)
    assert "file=" not in line


def test_explain_over_live_routes_through_the_live_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file's weights (0/100) through the cluster's Gateway; alone, a 404 and IL210."""
    change = _change(tmp_path)
    args = ["explain", change, "--host", "shop.example.com", "--path", "/", "-f", "json"]
    res = _run(monkeypatch, _cluster(), [*args, "--context", "prod"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["route"]["resource"] == "VirtualService/shop/web"
    weights = {d["cluster"]: d["percent"] for d in data["destinations"]}
    assert [p for c, p in weights.items() if "v2" in c] == [100.0]
    alone = _run(monkeypatch, None, args)
    assert alone.exit_code == 0
    assert json.loads(alone.stdout)["route"] is None
    assert "IL210" in alone.stderr
    assert "istio-system/web-gateway" in alone.stderr


def test_explain_names_a_gateway_in_neither(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Over live, a route for the host whose Gateway is nowhere: IL210 on stderr, no route."""
    change = _change(tmp_path)
    args = ["explain", change, "--host", "old.example.com", "--path", "/", "--context", "prod"]
    res = _run(monkeypatch, _cluster(), args)
    assert "route     none" in res.stdout
    assert "IL210" in res.stderr
    assert "VirtualService/shop/stale" in res.stderr


def test_an_unreachable_cluster_is_one_line_exit_2(tmp_path: Path) -> None:
    """A kubeconfig that does not exist: exit 2, one line, no traceback."""
    from istiolab.cli.app import app

    missing = tmp_path / "nope.yaml"
    res = CliRunner().invoke(app, ["lint", _change(tmp_path), "--kubeconfig", str(missing)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_lint_over_a_kmock_cluster_through_a_kubeconfig(tmp_path: Path) -> None:
    """The real client, a kubeconfig and context: the live Gateway and DestinationRule count."""
    from istiolab.cli.app import app

    with KMockServer() as server:
        for obj in (seed.gateway(), seed.destination_rule(), seed.virtual_service()):
            server.seed(obj)
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        args = ["lint", _change(tmp_path), "--kubeconfig", str(kubeconfig), "--context", "kmock"]
        res = CliRunner().invoke(app, [*args, "-f", "json"])
    assert "Traceback" not in res.output
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)["findings"]
    assert not [f for f in found if f["code"] in ("IL205", "IL210")]
    assert "1 live object(s) kept, 2 replaced by a file" in res.stderr


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00", "\x1b", "\x7f"])
@pytest.mark.parametrize("option", ["-H", "--path", "--host", "-X"])
def test_explain_refuses_control_characters(tmp_path: Path, option: str, bad: str) -> None:
    """CR, LF, NUL, other C0 and DEL in a request option: one line, exit 2."""
    from istiolab.cli.app import app

    value = {
        "-H": f"x-a: b{bad}c",
        "--path": f"/a{bad}b",
        "--host": f"a{bad}.com",
        "-X": f"GE{bad}T",
    }
    args = ["explain", _change(tmp_path), "--path", "/", option, value[option]]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "control character" in res.stderr
    assert option in res.stderr


def test_explain_allows_a_tab_in_a_header(tmp_path: Path) -> None:
    """Tab is the one C0 character a header value may hold: explain answers (exit 0)."""
    from istiolab.cli.app import app

    args = ["explain", _change(tmp_path), "--host", "shop.example.com", "--path", "/"]
    res = CliRunner().invoke(app, [*args, "-H", "x-a: b\tc", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "control character" not in res.stderr
    assert "route" in json.loads(res.stdout)


def test_a_routing_finding_over_live_suggests_explain_over_the_same_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The explain command of a finding made over live repeats --context and -n: without them
    it would route the file alone, which lacks the live Gateway the finding depends on."""
    vs = seed.virtual_service(90, 10)
    catch_all = {"route": [{"destination": {"host": "web", "subset": "v1"}}]}
    vs["spec"]["http"] = [
        catch_all,
        {"match": [{"uri": {"prefix": "/beta"}}], **copy.deepcopy(catch_all)},
    ]
    path = tmp_path / "shadow.yaml"
    path.write_text(codecs.dumps([vs, seed.destination_rule()]), encoding="utf-8")
    res = _run(
        monkeypatch,
        _cluster(),
        ["lint", str(path), "--context", "prod", "-n", "shop", "-f", "json"],
    )
    found = [f for f in json.loads(res.stdout)["findings"] if f.get("explain")]
    assert found, res.stdout
    command = found[0]["explain"]
    assert f"istiolab explain {path} --context prod -n shop --host" in command, command
