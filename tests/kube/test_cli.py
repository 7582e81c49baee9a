"""The cluster commands end to end: a kubeconfig pointing at KMock, the official client, the
CLI. Dry-run answers are scripted in every test that plans (KMock has no dryRun).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from istiolab.config import codecs, load
from istiolab.kube.memory import InMemoryCluster

from . import _seed as seed
from ._kmock import TOKEN, KMockServer, script_dry_run, status


def _app() -> typer.Typer:
    from istiolab.cli.cluster import register

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    register(app)
    register(app)  # idempotent
    return app


def _run(args: list[str], input: str | None = None) -> Any:
    result = CliRunner().invoke(_app(), args, input=input)
    assert TOKEN not in result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def kc(kmock_server: KMockServer, tmp_path: Path) -> Path:
    for obj in seed.topology():
        kmock_server.seed(obj)
    kmock_server.seed(seed.gateway())
    kmock_server.seed(seed.destination_rule())
    kmock_server.seed(seed.virtual_service(90, 10))
    script_dry_run(kmock_server)
    return kmock_server.kubeconfig(tmp_path / "kubeconfig", namespace="shop", context="eks-shop")


def _write(tmp_path: Path, *objs: dict[str, Any]) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(codecs.dumps(list(objs)), encoding="utf-8")
    return str(path)


def _applied(server: KMockServer) -> list[str]:
    return [
        r.url.path for r in server.requests() if r.method == "PATCH" and "dryRun" not in r.params
    ]


def test_help_lists_the_commands() -> None:
    out = _run(["--help"]).output
    for name in ("cluster", "diff", "apply", "rollback"):
        assert name in out
    assert "Examples:" in _run(["apply", "--help"]).output
    assert "import" in _run(["cluster", "--help"]).output


def test_cluster_import_writes_scenario_and_config(kc: Path, tmp_path: Path) -> None:
    out, rules = tmp_path / "shop.yaml", tmp_path / "shop-rules.yaml"
    result = _run(
        ["cluster", "import", "--kubeconfig", str(kc), "-o", str(out), "--config-out", str(rules)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith(
        '# Imported by `istiolab cluster import` from context "eks-shop", namespace "shop".'
    )
    assert "PLACEHOLDER TRAFFIC" in text
    assert "note: web/v1: 3 replica(s) desired, 2 ready" in result.output
    assert [r.key for r in load(rules)] == [
        "Gateway/istio-system/web-gateway",
        "DestinationRule/shop/web",
        "VirtualService/shop/web",
    ]


def test_diff_shows_changes_and_exit_code(kc: Path, tmp_path: Path) -> None:
    rules = _write(tmp_path, seed.virtual_service(70, 30))
    result = _run(["diff", rules, "--kubeconfig", str(kc)])
    assert result.exit_code == 0, result.output
    assert "update  VirtualService/shop/web" in result.output
    assert "+      weight: 70" in result.output
    assert _run(["diff", rules, "--kubeconfig", str(kc), "--exit-code"]).exit_code == 1
    same = _write(tmp_path, seed.virtual_service(90, 10))
    assert _run(["diff", same, "--kubeconfig", str(kc), "--exit-code"]).exit_code == 0


def test_apply_asks_and_a_no_changes_nothing(
    kc: Path, tmp_path: Path, kmock_server: KMockServer
) -> None:
    rules = _write(tmp_path, seed.virtual_service(70, 30))
    result = _run(["apply", rules, "--kubeconfig", str(kc)], input="n\n")
    assert result.exit_code == 1
    assert "context:   eks-shop\nnamespace: shop\n" in result.output
    assert 'apply 1 change(s) to context "eks-shop", namespace(s) shop?' in result.output
    assert "aborted: nothing applied" in result.output
    assert _applied(kmock_server) == []


def test_apply_dry_run_changes_nothing(kc: Path, tmp_path: Path, kmock_server: KMockServer) -> None:
    rules = _write(tmp_path, seed.virtual_service(70, 30))
    result = _run(["apply", rules, "--kubeconfig", str(kc), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: nothing applied" in result.output
    assert _applied(kmock_server) == []


def test_apply_yes_then_list_and_rollback(
    kc: Path, tmp_path: Path, kmock_server: KMockServer
) -> None:
    rules = _write(tmp_path, seed.virtual_service(70, 30))
    result = _run(["apply", rules, "--kubeconfig", str(kc), "--yes"])
    assert result.exit_code == 0, result.output
    assert "applied 1 change(s)" in result.output
    assert _applied(kmock_server) == [
        "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/web"
    ]
    backup_id = result.output.split("istiolab rollback ")[1].split("`")[0]

    listing = _run(["rollback", "--list", "--kubeconfig", str(kc)])
    assert listing.exit_code == 0
    assert backup_id in listing.output
    assert "VirtualService/shop/web" in listing.output

    undo = _run(["rollback", backup_id, "--kubeconfig", str(kc), "--yes"])
    assert undo.exit_code == 0, undo.output
    assert "restored  VirtualService/shop/web" in undo.output
    vs = kmock_server.stored("VirtualService", "shop", "web")
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [90, 10]
    assert _run(["rollback", backup_id, "--kubeconfig", str(kc), "--yes"]).exit_code == 1  # done


def test_apply_failure_offers_rollback(kc: Path, tmp_path: Path, kmock_server: KMockServer) -> None:
    """The VirtualService apply fails (scripted 500): the DestinationRule is rolled back on 'y'."""
    kmock_server.react(
        lambda r: (
            r.method == "PATCH"
            and r.name == "web"
            and "dryRun" not in r.params
            and r.resource is not None
            and r.resource.plural == "virtualservices"
        ),
        500,
        status(500, "InternalError", "Internal error occurred: etcdserver: leader changed"),
    )
    rules = _write(tmp_path, seed.virtual_service(70, 30), seed.destination_rule(lb="RANDOM"))
    result = _run(["apply", rules, "--kubeconfig", str(kc)], input="y\ny\n")
    assert result.exit_code == 1
    assert "apply stopped: 1 applied, 1 failed, 0 not attempted" in result.output
    assert "leader changed" in result.output
    assert "roll back the 1 applied change(s) now?" in result.output
    assert "restored  DestinationRule/shop/web" in result.output
    assert "trafficPolicy" not in kmock_server.stored("DestinationRule", "shop", "web")["spec"]


def test_invalid_config_refused_without_requests(
    kc: Path, tmp_path: Path, kmock_server: KMockServer
) -> None:
    bad = seed.virtual_service()
    bad["spec"]["http"][0]["retries"] = {"attempts": 3, "perTryTimeout": "quick"}
    before = len(kmock_server.requests())
    result = _run(["apply", _write(tmp_path, bad), "--kubeconfig", str(kc), "--yes"])
    assert result.exit_code == 1
    assert "IL104" in result.output
    assert "refusing: the config has 1 error(s)" in result.output
    assert len(kmock_server.requests()) == before


def test_conflict_refused_with_exit_1(kc: Path, tmp_path: Path, kmock_server: KMockServer) -> None:
    """Scripted 409 FieldManagerConflict on the VirtualService."""
    kmock_server.react(
        lambda r: (
            r.method == "PATCH"
            and r.name == "web"
            and r.resource is not None
            and r.resource.plural == "virtualservices"
        ),
        409,
        status(
            409,
            "Conflict",
            "Apply failed with 1 conflict",
            {
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "field": ".spec.http",
                        "message": 'conflict with "helm" using networking.istio.io/v1',
                    }
                ]
            },
        ),
    )
    result = _run(
        ["apply", _write(tmp_path, seed.virtual_service(70, 30)), "--kubeconfig", str(kc), "--yes"]
    )
    assert result.exit_code == 1
    assert 'conflict: .spec.http (owned by "helm")' in result.output
    assert "refusing to apply: 1 field(s) are managed by another field manager" in result.output
    assert _applied(kmock_server) == []


def test_forbidden_exit_1_and_clear(kc: Path, tmp_path: Path, kmock_server: KMockServer) -> None:
    """Scripted 403 on listing DestinationRules (validation context)."""
    kmock_server.react(
        lambda r: (
            r.method == "GET" and r.resource is not None and r.resource.plural == "destinationrules"
        ),
        403,
        status(403, "Forbidden", f"no (Bearer {TOKEN})"),
    )
    result = _run(["diff", _write(tmp_path, seed.virtual_service()), "--kubeconfig", str(kc)])
    assert result.exit_code == 1
    assert "istiolab: forbidden: cannot list destinationrules.networking.istio.io" in result.output


def test_no_cluster_is_exit_2(tmp_path: Path) -> None:
    result = _run(
        ["diff", _write(tmp_path, seed.virtual_service()), "--kubeconfig", str(tmp_path / "none")]
    )
    assert result.exit_code == 2
    assert "cannot read the kubeconfig" in result.output
    assert _run(["apply", str(tmp_path / "missing.yaml")]).exit_code == 2


def test_commands_with_the_in_memory_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same commands on the in-memory cluster (as a workshop would use them)."""
    import istiolab.cli.cluster as cli_kube

    cluster = InMemoryCluster(context="workshop", namespace="shop")
    for obj in (*seed.topology(), seed.gateway(), seed.destination_rule(), seed.virtual_service()):
        cluster.seed(obj, manager="istiolab")
    monkeypatch.setattr(cli_kube, "_connect", lambda *a: cluster)
    rules = _write(tmp_path, seed.virtual_service(0, 100))
    result = _run(["apply", rules, "--yes"])
    assert result.exit_code == 0, result.output
    assert (
        cluster.stored("VirtualService", "shop", "web")["spec"]["http"][0]["route"][0]["weight"]
        == 0
    )
    assert _run(["rollback", "--yes"]).exit_code == 0
    assert (
        cluster.stored("VirtualService", "shop", "web")["spec"]["http"][0]["route"][0]["weight"]
        == 90
    )
    imported = _run(["cluster", "import"])
    assert imported.exit_code == 0
    assert "name: imported-shop" in imported.output


def test_cluster_import_of_invalid_objects_shows_findings_and_exits_1(
    kmock_server: KMockServer, tmp_path: Path
) -> None:
    # A cluster can hold what lint refuses (an object applied before a webhook existed, or
    # with a client that skipped validation): the import writes what it read, shows the
    # findings, and its exit code says there were errors.
    for obj in seed.topology():
        kmock_server.seed(obj)
    kmock_server.seed(seed.gateway())
    bad = seed.virtual_service(90, 10)
    bad["spec"]["http"][0]["fault"] = {"abort": {"httpStatus": 700, "percentage": {"value": 5}}}
    kmock_server.seed(bad)
    kc = kmock_server.kubeconfig(tmp_path / "kubeconfig", namespace="shop", context="eks-shop")
    out = tmp_path / "shop.yaml"
    result = _run(["cluster", "import", "--kubeconfig", str(kc), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "httpStatus" in result.output
    assert out.exists()
