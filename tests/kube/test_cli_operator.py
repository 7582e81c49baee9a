"""The cluster commands as an operator meets them: kubectl's flags, exit codes, JSON plans,
an edit between the diff and the confirmation, GitOps refusals, backups bound to the cluster,
and an unwritable backup folder. The in-memory cluster stands behind the CLI (``_connect``
replaced), so what the cluster holds is read directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import istiolab.cli.cluster as cli_cluster
from istiolab.config import codecs
from istiolab.kube import BackupStore, InMemoryCluster

from . import _seed as seed


def _cluster(**kw: Any) -> InMemoryCluster:
    c = InMemoryCluster(context="default", namespace="shop", **kw)
    for obj in (*seed.topology(), seed.gateway(), seed.destination_rule()):
        c.seed(obj, manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    return c


def _run(monkeypatch: pytest.MonkeyPatch, c: InMemoryCluster, args: list[str], **kw: Any) -> Any:
    from istiolab.cli.app import app

    monkeypatch.setattr(cli_cluster, "_connect", lambda *a: c)
    result = CliRunner().invoke(app, args, **kw)
    assert "Traceback" not in result.output
    return result


def _rules(tmp_path: Path, *objs: dict[str, Any], name: str = "rules.yaml") -> str:
    path = tmp_path / name
    path.write_text(codecs.dumps(list(objs)), encoding="utf-8")
    return str(path)


def test_diff_exit_codes_tell_changes_from_failures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--exit-code: 0 no changes, 1 changes, 2 refused (a conflict) — as kubectl diff."""
    c = _cluster()
    same = _rules(tmp_path, seed.virtual_service(90, 10), name="same.yaml")
    changed = _rules(tmp_path, seed.virtual_service(50, 50), name="changed.yaml")
    assert _run(monkeypatch, c, ["diff", "-f", same, "--exit-code"]).exit_code == 0
    assert _run(monkeypatch, c, ["diff", "-f", changed, "--exit-code"]).exit_code == 1
    c.seed(seed.virtual_service(90, 10), manager="helm")  # helm owns the fields now
    refused = _run(monkeypatch, c, ["diff", "-f", changed, "--exit-code"])
    assert refused.exit_code == 2, refused.output
    assert "conflict: .spec.http" in refused.output
    assert _run(monkeypatch, c, ["diff", "-f", changed]).exit_code == 1  # without: as before


def test_diff_json_plan_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """-o json: one entry per object with action, ref, apiVersion, conflicts, takeover,
    managedBy, diff, backupId and outcome; human text goes to stderr."""
    c = _cluster()
    c.seed(seed.virtual_service(90, 10), manager="helm")
    rules = _rules(tmp_path, seed.virtual_service(50, 50), seed.destination_rule(lb="RANDOM"))
    result = _run(monkeypatch, c, ["diff", "-f", rules, "-o", "json", "--force-conflicts"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["apiVersion"], doc["kind"], doc["context"], doc["changes"]) == (
        "istiolab.io/v1alpha1",
        "Diff",
        "default",
        2,
    )
    dr, vs = doc["items"]
    assert set(vs) == {
        "ref", "kind", "namespace", "name", "apiVersion", "action", "conflicts", "takeover",
        "managedBy", "diff", "backupId", "outcome", "detail", "error",
    }  # fmt: skip
    assert (vs["ref"], vs["action"], vs["apiVersion"]) == (
        "VirtualService/shop/web",
        "update",
        "networking.istio.io/v1",
    )
    assert vs["takeover"] == [{"field": ".spec.http", "manager": "helm"}]
    assert "+      weight: 50" in vs["diff"]
    assert dr["action"] == "update"
    assert dr["takeover"] == []
    out = _run(monkeypatch, c, ["diff", "-f", rules, "-o", "yaml", "--force-conflicts"])
    assert codecs.load_data(out.stdout)["items"][1]["takeover"][0]["manager"] == "helm"


def test_namespace_mismatch_is_refused_like_kubectl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = _cluster()
    rules = _rules(tmp_path, seed.virtual_service(50, 50))
    for cmd in (["diff"], ["apply", "--yes"]):
        result = _run(monkeypatch, c, [*cmd, "-f", rules, "-n", "other"])
        assert result.exit_code == 2, result.output
        assert (
            "the namespace from the provided object 'shop' does not match the namespace 'other'"
            in result.output
        )
    assert not [x for x in c.calls if x.verb == "patch"]
    assert _run(monkeypatch, c, ["diff", "-f", rules, "-n", "shop"]).exit_code == 0


def test_an_edit_while_the_question_is_open_stops_with_the_new_diff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator approves a diff; an on-call edit lands before the answer. Nothing is
    applied, the new diff is shown, exit 3; the edit stays. Likewise with --force-conflicts."""
    for flags in ([], ["--force-conflicts"]):
        c = _cluster()
        rules = _rules(tmp_path, seed.virtual_service(50, 50))

        def answer(question: str, c: InMemoryCluster = c, **kw: Any) -> bool:
            c.seed(seed.virtual_service(0, 100), manager="kubectl-edit")
            return True

        monkeypatch.setattr(typer, "confirm", answer)
        result = _run(monkeypatch, c, ["apply", "-f", rules, *flags])
        assert result.exit_code == 3, result.output
        assert "VirtualService/shop/web: its content changed since the plan" in result.output
        assert "the cluster changed since the diff above; the new diff:" in result.output
        assert "nothing applied" in result.output
        stored = c.stored("VirtualService", "shop", "web") or {}
        assert stored["spec"]["http"][0]["route"][0]["weight"] == 0
        assert BackupStore().backups("default") == []


def test_apply_json_and_rollback_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """apply -o json gives each object's outcome and the backup id; rollback --diff previews;
    rollback -o json reports the outcome; --list -n -o json lists the set with its cluster."""
    c = _cluster()
    rules = _rules(tmp_path, seed.virtual_service(50, 50))
    out = tmp_path / "apply.json"
    result = _run(
        monkeypatch,
        c,
        ["apply", "-f", rules, "--yes", "-o", "json", "--output-file", str(out), "--keep", "5"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    (vs,) = doc["items"]
    assert (doc["outcome"], vs["outcome"], vs["action"]) == ("applied", "applied", "update")
    backup_id = doc["backupId"]
    assert vs["backupId"] == backup_id
    ann = (c.stored("VirtualService", "shop", "web") or {})["metadata"]["annotations"]
    assert ann["istiolab.io/backup-id"] == backup_id
    assert ann["istiolab.io/change-cause"].startswith(f"istiolab apply -f {rules} by ")

    listed = json.loads(
        _run(monkeypatch, c, ["rollback", "--list", "-n", "shop", "-o", "json"]).stdout
    )
    assert [s["id"] for s in listed["items"]] == [backup_id]
    assert listed["items"][0]["cluster"] == c.identity().to_dict()
    assert (
        json.loads(_run(monkeypatch, c, ["rollback", "--list", "-n", "x", "-o", "json"]).stdout)[
            "items"
        ]
        == []
    )

    preview = _run(monkeypatch, c, ["rollback", backup_id, "--diff"])
    assert preview.exit_code == 0
    assert "restore   VirtualService/shop/web" in preview.output
    assert "+      weight: 90" in preview.output
    assert (c.stored("VirtualService", "shop", "web") or {})["spec"]["http"][0]["route"][0][
        "weight"
    ] == 50

    done = _run(monkeypatch, c, ["rollback", backup_id, "--yes", "-o", "json"])
    assert done.exit_code == 0, done.output
    rdoc = json.loads(done.stdout)
    assert rdoc["kind"] == "Rollback"
    assert rdoc["outcome"] == "rolled-back"
    assert [(i["ref"], i["apiVersion"], i["action"], i["outcome"]) for i in rdoc["items"]] == [
        ("VirtualService/shop/web", "networking.istio.io/v1", "restore", "restored")
    ]


def test_rollback_on_another_cluster_with_the_same_context_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Cluster B shares cluster A's context name; A's backup is refused on B (exit 1, nothing
    written) and the refusal names the flag; --list marks the set as another cluster's."""
    a = _cluster()
    rules = _rules(tmp_path, seed.virtual_service(50, 50))
    assert _run(monkeypatch, a, ["apply", "-f", rules, "--yes"]).exit_code == 0
    b = InMemoryCluster(context="default", namespace="shop")
    result = _run(monkeypatch, b, ["rollback", "--yes"])
    assert result.exit_code == 1, result.output
    assert "another cluster behind the same context name" in result.output
    assert not [x for x in b.calls if x.verb in ("patch", "delete")]
    assert "[ANOTHER CLUSTER]" in _run(monkeypatch, b, ["rollback", "--list"]).output


def test_gitops_managed_object_warned_and_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = _cluster()
    vs = seed.virtual_service(90, 10)
    vs["metadata"]["labels"] = {
        **vs["metadata"]["labels"],
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    c.seed(vs, manager="istiolab")
    want = seed.virtual_service(50, 50)
    want["metadata"]["labels"] = vs["metadata"]["labels"]
    rules = _rules(tmp_path, want)
    diff = _run(monkeypatch, c, ["diff", "-f", rules])
    assert "managed by Flux Kustomization flux-system/apps: commit to Git instead" in diff.output
    refused = _run(monkeypatch, c, ["apply", "-f", rules, "--yes"])
    assert refused.exit_code == 1
    assert "--allow-managed" in refused.output
    assert not [x for x in c.calls if x.verb == "patch" and not x.dry_run]
    assert _run(monkeypatch, c, ["apply", "-f", rules, "--yes", "--allow-managed"]).exit_code == 0


def test_unwritable_backup_dir_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = _cluster()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rules = _rules(tmp_path, seed.virtual_service(50, 50))
    result = _run(monkeypatch, c, ["apply", "-f", rules, "--yes", "--backup-dir", str(blocker)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("istiolab:")]
    assert len(errors) == 1
    assert str(blocker) in errors[0]
    assert "cannot be written" in errors[0]
    assert not [x for x in c.calls if x.verb == "patch" and not x.dry_run]


def test_kubectl_spellings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """-f twice and a folder, --dry-run=server and a bare --dry-run, --server-side, the
    deprecated --force (a message, then --force-conflicts), --field-manager: a pipeline with
    its own manager conflicts with the fields "istiolab" applied instead of overwriting them.
    """
    c = _cluster(field_manager="ci-pipeline")
    folder = tmp_path / "rules"
    folder.mkdir()
    _rules(folder, seed.virtual_service(50, 50), name="vs.yaml")
    dr = _rules(tmp_path, seed.destination_rule(lb="RANDOM"), name="dr.yaml")
    for dry in (["--dry-run=server"], ["--dry-run"], ["--dry-run", "server"]):
        args = ["apply", "-f", str(folder), "-f", dr, *dry, "--server-side", "--force-conflicts"]
        result = _run(monkeypatch, c, args)
        assert result.exit_code == 0, result.output
        assert "dry run: nothing applied" in result.output
        assert "update  DestinationRule/shop/web" in result.output
    assert not [x for x in c.calls if x.verb == "patch" and not x.dry_run]
    assert _run(monkeypatch, c, ["apply", "-f", dr, "--dry-run=client"]).exit_code == 2
    other = _run(monkeypatch, c, ["apply", "-f", str(folder), "--yes"])
    assert other.exit_code == 1
    assert 'conflict: .spec.http (owned by "istiolab")' in other.output
    forced = _run(monkeypatch, c, ["apply", "-f", str(folder), "--yes", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "--force is deprecated: use --force-conflicts" in forced.output
    assert 'taking over .spec.http from "istiolab"' in forced.output
    fields = (c.get("VirtualService", "shop", "web") or {})["metadata"]["managedFields"]
    assert ("ci-pipeline", "Apply") in {(f["manager"], f["operation"]) for f in fields}
    assert _run(monkeypatch, c, ["diff", "-f", dr, "--field-manager", "bad name"]).exit_code == 2
    assert _run(monkeypatch, c, ["diff"]).exit_code == 2  # no input at all


def test_the_json_report_fields_and_the_flags_are_documented() -> None:
    """Every key of a JSON report entry is in docs/cluster.md's schema table, and every
    kubectl-style flag of its flags table is accepted by the command it names."""
    from istiolab.kube.plan import PlanStep

    docs = (Path(__file__).parents[2] / "docs" / "cluster.md").read_text(encoding="utf-8")
    schema = docs.split("## JSON reports")[1].split("\n## ")[0]
    step = PlanStep("VirtualService", "shop", "web", "networking.istio.io/v1", "create", {})
    for key in cli_cluster._step_entry(step):
        assert f"`{key}`" in schema, key
    from istiolab.cli.app import app

    helps = {
        cmd: CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"}).output
        for cmd in ("diff", "apply", "rollback")
    }
    kubectl_flags = (
        "--filename", "--recursive", "--kustomize", "--output", "--output-file",
        "--field-manager", "--force-conflicts", "--server-side", "--exit-code",
    )  # fmt: skip
    for flag in kubectl_flags:
        assert flag in helps["diff"] + helps["apply"], flag
    for flag in ("--dry-run", "--atomic", "--allow-managed", "--change-cause", "--keep"):
        assert flag in helps["apply"], flag
    for flag in ("--diff", "--allow-other-cluster", "--list"):
        assert flag in helps["rollback"], flag


def test_cluster_import_output_file_and_the_old_dash_o(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--output-file writes the scenario; the old `-o FILE` still works, with a deprecation
    message; -o json is refused (the scenario is YAML); a folder that is missing exits 2."""
    c = _cluster()
    new = tmp_path / "new.yaml"
    assert _run(monkeypatch, c, ["cluster", "import", "--output-file", str(new)]).exit_code == 0
    assert "PLACEHOLDER TRAFFIC" in new.read_text()
    old = tmp_path / "old.yaml"
    result = _run(monkeypatch, c, ["cluster", "import", "-o", str(old)])
    assert result.exit_code == 0, result.output
    assert f"-o FILE is deprecated for cluster import: use --output-file {old}" in result.output
    assert old.read_text() == new.read_text()
    assert _run(monkeypatch, c, ["cluster", "import", "-o", "json"]).exit_code == 2
    missing = tmp_path / "no" / "such.yaml"
    assert _run(monkeypatch, c, ["cluster", "import", "--output-file", str(missing)]).exit_code == 2
