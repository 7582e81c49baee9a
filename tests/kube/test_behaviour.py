"""The behavioural suite: each test runs against KMock (real HTTP, official client) and the
in-memory cluster. Where KMock needs a behaviour scripted, the test's docstring says so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from istiolab.config import ConfigSet, codecs, loads
from istiolab.config.validate import validate
from istiolab.errors import ConfigError
from istiolab.findings import has_errors
from istiolab.kube import (
    BackupStore,
    ForbiddenError,
    IstioNotServedError,
    RefusedError,
    apply,
    import_cluster,
    inspect_cluster,
    plan,
    rollback,
)
from istiolab.kube.objects import content, strip
from istiolab.sim.scenario import scenario_from_dict

from . import _seed as seed


def _config(*objs: dict[str, Any]) -> ConfigSet:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def _live_context(env: Any) -> None:
    """The Gateway and DestinationRule a lone VirtualService names, already in the cluster."""
    env.seed(seed.gateway())
    env.seed(seed.destination_rule())


def _seed_cluster(env: Any, *, istio: bool = True) -> None:
    for obj in seed.topology():
        env.seed(obj)
    if istio:
        env.seed(seed.gateway())
        env.seed(seed.virtual_service())
        env.seed(seed.destination_rule())


# -- import ----------------------------------------------------------------------------------


def test_import_from_seeded_cluster(env: Any) -> None:
    """Nodes, the gateway, its NLB Service, workloads and Istio objects become a scenario."""
    _seed_cluster(env)
    result = inspect_cluster(env.cluster, "shop")
    sc, config = result.scenario, result.config

    assert sc.ingress.azs == ["us-east-1a", "us-east-1b"]
    assert sc.ingress.nodes_per_az == {"us-east-1a": 1, "us-east-1b": 1}
    assert sc.ingress.pods_per_node == 1
    assert sc.ingress.cores_per_node == 3  # 3920m allocatable
    assert sc.ingress.concurrency == 2  # --concurrency 2
    assert (sc.aws.lb, sc.aws.target_type, sc.aws.cross_zone) == ("nlb", "ip", True)
    assert sc.aws.external_traffic_policy == "Local"
    assert sc.rules.profile == "1.22"  # from the proxyv2:1.22.3 image

    (web,) = sc.services
    assert (web.name, web.namespace, web.port, web.sidecar) == ("web", "shop", 80, True)
    v1, v2 = web.versions
    assert (v1.name, v1.pod_labels) == ("v1", {"app": "web", "version": "v1"})
    assert v1.replicas_per_az == {"us-east-1a": 1, "us-east-1b": 1}  # 2 of 3 pods are ready
    assert v2.replicas_per_az == {"us-east-1b": 1}
    assert any("3 replica(s) desired, 2 ready" in n for n in result.notes)

    assert [r.key for r in config] == [
        "Gateway/istio-system/web-gateway",
        "DestinationRule/shop/web",
        "VirtualService/shop/web",
    ]
    assert not has_errors(validate(config))
    assert sc.traffic[0].host == "shop.example.com"
    assert sc.traffic[0].arrival.rate_rps == 100
    assert len(sc.rules.inline) == 3

    # the written YAML says the traffic is a placeholder and loads back to the same scenario
    text = result.scenario_yaml()
    assert "# PLACEHOLDER TRAFFIC" in text
    again = scenario_from_dict(codecs.load_data(text))
    assert again == sc
    assert import_cluster(env.cluster, "shop") == (sc, config)


def test_import_without_permission_to_list_nodes(env: Any) -> None:
    """Namespaced users often may not list Nodes: the import goes on with a note.

    KMock: the 403 is scripted; the in-memory cluster models the denial.
    """
    _seed_cluster(env)
    env.script_forbidden("list", "Node")
    result = inspect_cluster(env.cluster, "shop")
    assert "could not list Node objects (not allowed); left out" in result.notes
    assert result.scenario.ingress.azs == ["unknown-zone"]
    assert result.scenario.services[0].versions[0].replicas_per_az == {"unknown-zone": 2}


def test_import_simulates(env: Any) -> None:
    """The imported scenario runs in the simulator as it is."""
    from istiolab.sim.engine import simulate

    _seed_cluster(env)
    sc, _ = import_cluster(env.cluster, "shop")
    sc = sc.with_overrides({"run.duration_s": 2.0, "run.warmup_s": 0.5})
    result = simulate(sc, seed=1)
    assert result.summary() is not None


# -- plan, diff, apply -----------------------------------------------------------------------


def test_apply_happy_path(env: Any) -> None:
    """Dependency order, create and update, stored objects as planned, and a backup set.

    KMock: dry-run answers are scripted (KMock has no dryRun and would persist it); server-side
    apply of a missing object creates it (scripted in the harness: KMock answers 404).
    """
    env.seed(seed.virtual_service(90, 10))
    env.script_dry_run()
    config = _config(seed.virtual_service(50, 50), seed.destination_rule(), seed.gateway())

    p = plan(config, env.cluster)
    assert [(s.action, s.ref, s.api_version) for s in p.steps] == [
        ("create", "Gateway/istio-system/web-gateway", "networking.istio.io/v1"),
        ("create", "DestinationRule/shop/web", "networking.istio.io/v1"),
        ("update", "VirtualService/shop/web", "networking.istio.io/v1"),
    ]
    assert p.ok
    assert len(p.changes) == 3
    store = BackupStore()
    report = apply(p, env.cluster, backups=store)
    assert report.ok, report.format()
    assert [r.status for r in report.results] == ["applied"] * 3

    for obj in (seed.virtual_service(50, 50), seed.destination_rule(), seed.gateway()):
        meta = obj["metadata"]
        live = env.stored(obj["kind"], meta["namespace"], meta["name"])
        assert content(live) == content(obj)

    backup = store.open(env.cluster.context, report.backup_id)
    assert backup.status == "complete"
    assert [(e.action, e.ref, e.state) for e in backup.entries] == [
        ("create", "Gateway/istio-system/web-gateway", "applied"),
        ("create", "DestinationRule/shop/web", "applied"),
        ("update", "VirtualService/shop/web", "applied"),
    ]
    saved = backup.load_object(backup.entries[2])
    assert content(saved) == content(seed.virtual_service(90, 10))
    manifest = json.loads((backup.path / "manifest.json").read_text())
    assert manifest["context"] == env.cluster.context

    # a second plan sees nothing to do
    again = plan(config, env.cluster)
    assert [s.action for s in again.steps] == ["unchanged"] * 3
    assert apply(again, env.cluster, backups=store).backup_id is None


def test_diff_output(env: Any) -> None:
    """A unified YAML diff per object, server-managed fields stripped.

    KMock: dry-run answers are scripted (KMock has no dryRun).
    """
    _live_context(env)
    env.seed(seed.with_server_fields(seed.virtual_service(90, 10)))
    env.script_dry_run()
    p = plan(_config(seed.virtual_service(80, 20)), env.cluster)
    (step,) = p.steps
    assert step.action == "update"
    diff = step.diff
    assert diff.startswith(
        "--- live/VirtualService/shop/web\n+++ planned/VirtualService/shop/web\n"
    )
    assert "-      weight: 90\n" in diff
    assert "+      weight: 80\n" in diff
    assert "-      weight: 10\n" in diff
    assert "+      weight: 20\n" in diff
    for server_field in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "status"):
        assert server_field not in diff
    changed = [
        ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    ]
    assert len(changed) == 4
    text = p.format()
    assert "update  VirtualService/shop/web  (networking.istio.io/v1)" in text
    assert text.endswith(diff)


def test_subsets_may_be_defined_by_a_live_destination_rule(env: Any) -> None:
    """A lone VirtualService is validated with the live DestinationRules and Gateways: refused
    while its subsets are defined nowhere, accepted once the DestinationRule is live.

    KMock: dry-run answers are scripted.
    """
    env.script_dry_run()
    env.seed(seed.gateway())
    with pytest.raises(ConfigError) as info:
        plan(_config(seed.virtual_service()), env.cluster)
    assert {f.code for f in info.value.findings} == {"IL203"}
    assert all(f.file == "config.yaml" and f.line for f in info.value.findings)
    env.seed(seed.destination_rule())
    assert [s.action for s in plan(_config(seed.virtual_service()), env.cluster).steps] == [
        "create"
    ]


def test_refuses_invalid_config_before_any_request(env: Any) -> None:
    """Error findings refuse the plan; the cluster is not even asked."""
    bad = seed.virtual_service()
    bad["spec"]["http"][0]["timeout"] = "soon"
    with pytest.raises(ConfigError) as info:
        plan(_config(bad, seed.destination_rule()), env.cluster)
    assert [f.code for f in info.value.findings] == ["IL104"]
    if env.name == "kmock":
        assert env.server.requests() == []
    else:
        assert env.cluster.calls == []


def test_conflict_gives_a_clean_report(env: Any) -> None:
    """Fields owned by another manager: per-field report, apply refused, nothing changed.

    KMock: the 409 FieldManagerConflict is scripted (KMock has no field ownership); the
    in-memory cluster finds it from the seeded object's owner.
    """
    _live_context(env)
    env.seed(seed.virtual_service(90, 10), manager="kubectl-client-side-apply")
    env.script_conflict("VirtualService", "web", [".spec.http"], "kubectl-client-side-apply")
    env.script_dry_run()
    before = env.stored("VirtualService", "shop", "web")

    p = plan(_config(seed.virtual_service(50, 50)), env.cluster)
    (step,) = p.steps
    assert step.action == "conflict"
    assert [(c.field, c.manager) for c in step.conflicts] == [
        (".spec.http", "kubectl-client-side-apply")
    ]
    assert not p.ok
    assert 'conflict: .spec.http (owned by "kubectl-client-side-apply")' in p.format()

    with pytest.raises(RefusedError) as info:
        apply(p, env.cluster, backups=BackupStore())
    message = str(info.value)
    assert "VirtualService/shop/web: .spec.http" in message
    assert "--force" in message
    assert "Traceback" not in message
    assert env.stored("VirtualService", "shop", "web") == before

    forced = plan(_config(seed.virtual_service(50, 50)), env.cluster, force=True)
    assert [s.action for s in forced.steps] == ["update"]
    assert apply(forced, env.cluster, backups=BackupStore()).ok
    assert content(env.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(50, 50)
    )


def test_forbidden_is_a_clear_error(env: Any) -> None:
    """RBAC refusal names the verb, the resource and the namespace.

    KMock: the 403 is scripted (KMock has no RBAC); the in-memory cluster models a denial.
    """
    _live_context(env)
    env.script_forbidden("patch", "VirtualService")
    env.script_dry_run()
    with pytest.raises(ForbiddenError) as info:
        plan(_config(seed.virtual_service()), env.cluster)
    message = str(info.value)
    assert message.startswith(
        "forbidden: cannot patch (dry run) virtualservices.networking.istio.io"
    )
    assert '"web" in namespace "shop"' in message
    assert "HTTP 403 Forbidden" in message
    assert info.value.verb == "patch"
    assert info.value.namespace == "shop"


def test_forbidden_on_import(env: Any) -> None:
    """Listing the namespace's VirtualServices refused: one clear error (scripted on KMock)."""
    _seed_cluster(env)
    env.script_forbidden("list", "VirtualService")
    with pytest.raises(
        ForbiddenError, match=r'cannot list virtualservices.networking.istio.io in namespace "shop"'
    ):
        import_cluster(env.cluster, "shop")


def test_missing_istio_api(make_env: Any) -> None:
    """No Istio CRDs: one clear error, from plan and from import.

    KMock answers discovery of undeclared groups with 404 by itself; nothing is scripted.
    """
    env = make_env(istio=False)
    for call in (
        lambda: plan(_config(seed.virtual_service()), env.cluster),
        lambda: import_cluster(env.cluster),
    ):
        with pytest.raises(IstioNotServedError) as info:
            call()
        message = str(info.value)
        assert "serves none of the Istio APIs" in message
        assert "networking.istio.io/v1" in message
        assert "is Istio installed?" in message


# A real server cannot be made to fail one chosen write with a 500: its version of this case is
# the admission refusal in test_real_server.py, so it is not a (skipped) variant here.
@pytest.mark.parametrize("make_env", ["kmock", "memory"], indirect=True)
def test_failure_midway_then_rollback_restores_exactly(env: Any) -> None:
    """A step fails: the report says what was and was not applied, nothing is lost, and
    rollback restores the saved objects exactly and deletes only what the apply created.

    KMock: dry runs and the 500 on one apply are scripted; a refused request changes nothing
    (a kube-apiserver convention the harness adds: KMock stores writes before answering).
    """
    env.seed(seed.destination_rule())
    env.seed(seed.virtual_service(90, 10))
    before_dr = env.stored("DestinationRule", "shop", "web")
    before_vs = env.stored("VirtualService", "shop", "web")
    env.script_failure("EnvoyFilter", "web-headers")
    env.script_dry_run()
    config = _config(
        seed.virtual_service(0, 100),
        seed.envoy_filter(),
        seed.destination_rule(lb="ROUND_ROBIN"),
        seed.gateway(),
    )
    p = plan(config, env.cluster)
    assert [s.ref for s in p.steps] == [
        "Gateway/istio-system/web-gateway",
        "DestinationRule/shop/web",
        "EnvoyFilter/shop/web-headers",
        "VirtualService/shop/web",
    ]
    store = BackupStore()
    report = apply(p, env.cluster, backups=store)
    assert not report.ok
    assert [(r.step.kind, r.status) for r in report.results] == [
        ("Gateway", "applied"),
        ("DestinationRule", "applied"),
        ("EnvoyFilter", "failed"),
        ("VirtualService", "not-attempted"),
    ]
    assert "etcdserver: request timed out" in (report.failed[0].error or "")
    text = report.format()
    assert "apply stopped: 2 applied, 1 failed, 1 not attempted" in text
    assert f"istiolab rollback {report.backup_id}" in text
    # nothing lost: the failed and the unattempted objects are untouched
    assert env.stored("EnvoyFilter", "shop", "web-headers") is None
    assert env.stored("VirtualService", "shop", "web") == before_vs
    assert content(env.stored("DestinationRule", "shop", "web")) == content(
        seed.destination_rule(lb="ROUND_ROBIN")
    )

    backup = store.open(env.cluster.context, report.backup_id)
    assert backup.status == "failed"
    assert [(e.ref, e.action, e.state) for e in backup.entries] == [
        ("Gateway/istio-system/web-gateway", "create", "applied"),
        ("DestinationRule/shop/web", "update", "applied"),
        ("EnvoyFilter/shop/web-headers", "create", "failed"),
    ]

    undo = rollback(report.backup_id, env.cluster, backups=store)
    assert undo.ok, undo.format()
    assert [(r.ref, r.action) for r in undo.results] == [
        ("DestinationRule/shop/web", "restored"),
        ("Gateway/istio-system/web-gateway", "deleted"),
    ]
    assert env.stored("Gateway", "istio-system", "web-gateway") is None
    assert content(env.stored("DestinationRule", "shop", "web")) == content(before_dr)
    assert strip(env.stored("DestinationRule", "shop", "web")) == strip(before_dr)
    assert env.stored("VirtualService", "shop", "web") == before_vs
    assert store.open(env.cluster.context, report.backup_id).status == "rolled-back"
    with pytest.raises(RefusedError, match="already rolled back"):
        rollback(report.backup_id, env.cluster, backups=store)


def test_rollback_restores_removed_labels_and_fields(env: Any) -> None:
    """Exactly: fields and labels the apply added are removed again, removed ones come back.

    KMock: dry runs are scripted; the restore is a JSON merge patch, which KMock applies.
    """
    _live_context(env)
    original = seed.virtual_service(90, 10)
    original["spec"]["http"][0]["timeout"] = "5s"
    env.seed(original)
    env.script_dry_run()
    changed = seed.virtual_service(90, 10)
    changed["metadata"]["labels"] = {"release": "canary"}
    changed["spec"]["http"][0]["retries"] = {"attempts": 3}
    store = BackupStore()
    report = apply(plan(_config(changed), env.cluster), env.cluster, backups=store)
    assert report.ok
    live = env.stored("VirtualService", "shop", "web")
    assert live["metadata"]["labels"]["release"] == "canary"

    assert rollback(None, env.cluster, backups=store).ok  # None: the newest backup
    restored = env.stored("VirtualService", "shop", "web")
    assert content(restored) == content(original)
    assert "release" not in restored["metadata"].get("labels", {})
    assert "retries" not in restored["spec"]["http"][0]
    assert restored["spec"]["http"][0]["timeout"] == "5s"


def test_writes_with_the_newest_served_version(make_env: Any) -> None:
    """A v1beta1 file is written as v1 when the cluster serves v1 (the schemas are one).

    KMock: dry-run answers are scripted.
    """
    env = make_env()
    _live_context(env)
    env.script_dry_run()
    p = plan(_config(seed.virtual_service(version="networking.istio.io/v1beta1")), env.cluster)
    assert p.steps[0].api_version == "networking.istio.io/v1"
    assert p.steps[0].desired["apiVersion"] == "networking.istio.io/v1"
    assert apply(p, env.cluster, backups=BackupStore()).ok
    assert env.stored("VirtualService", "shop", "web")["apiVersion"] == "networking.istio.io/v1"


def test_services_and_deployments_are_not_applied(env: Any) -> None:
    """Read-only context: validated with, listed as skipped, never sent.

    KMock: dry-run answers are scripted.
    """
    env.script_dry_run()
    config = _config(seed.virtual_service(), seed.destination_rule(), *seed.topology()[8:10])
    p = plan(config, env.cluster)
    assert {s.kind for s in p.steps} == {"VirtualService", "DestinationRule"}
    assert any(n.startswith("Service/shop/web: not applied (read-only context)") for n in p.skipped)
    assert any(n.startswith("Deployment/shop/web-v1") for n in p.skipped)
