"""What an operator relies on, on all three clusters: backups bound to the cluster they were
made on, no stale approvals, GitOps-managed objects left to their controller, rollback that
names the newer apply, a preview before any rollback, retention, and the change-cause
annotations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from istiolab.config import ConfigSet, codecs, loads
from istiolab.kube import BackupStore, RefusedError, apply, plan, rollback
from istiolab.kube.apply import preview_rollback
from istiolab.kube.errors import OtherClusterError, StalePlanError
from istiolab.kube.memory import InMemoryCluster
from istiolab.kube.objects import content

from . import _seed as seed


def _config(*objs: dict[str, Any]) -> ConfigSet:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def _seeded(env: Any) -> None:
    env.script_dry_run()
    env.seed(seed.gateway())
    env.seed(seed.destination_rule())
    env.seed(seed.virtual_service(90, 10))


def test_rollback_into_another_cluster_with_the_same_context_name_is_refused(
    make_env: Callable[..., Any],
) -> None:
    """Cluster A and cluster B share the context name. A backup of A rolled back on B is
    refused before any request that changes B, naming both identities; on A it works.
    """
    a = make_env()
    _seeded(a)
    store = BackupStore()
    report = apply(plan(_config(seed.virtual_service(50, 50)), a.cluster), a.cluster, backups=store)
    assert report.ok, report.format()
    manifest = store.open(a.cluster.context, report.backup_id).manifest
    assert manifest["cluster"]["server"] == a.cluster.identity().server
    assert manifest["cluster"]["kubeSystemUid"] == a.cluster.identity().uid

    b = make_env(istio=False)
    assert b.cluster.context == a.cluster.context
    with pytest.raises(OtherClusterError) as refused:
        rollback(report.backup_id, b.cluster, backups=store)
    text = str(refused.value)
    assert a.cluster.identity().server in text
    assert b.cluster.identity().server in text
    assert "--allow-other-cluster" in text
    assert store.open(a.cluster.context, report.backup_id).status == "complete"
    assert b.stored("VirtualService", "shop", "web") is None  # B never had it, and still not

    assert rollback(report.backup_id, a.cluster, backups=store).ok


def test_same_context_name_by_uid_in_memory() -> None:
    """Identity is the kube-system uid when both sides know it: the same uid behind another
    URL is the same cluster; another uid behind the same URL is not.
    """
    store = BackupStore()
    a = InMemoryCluster(context="default", namespace="shop", cluster_uid="uid-a")
    a.seed(seed.destination_rule())
    a.seed(seed.virtual_service(90, 10), manager="istiolab")
    report = apply(plan(_config(seed.virtual_service(50, 50)), a), a, backups=store)
    other = InMemoryCluster(context="default", namespace="shop", cluster_uid="uid-b")
    with pytest.raises(OtherClusterError):
        rollback(report.backup_id, other, backups=store)
    # the loud flag writes A's backup into B: the object B never had is re-created there
    forced = rollback(report.backup_id, other, backups=store, allow_other_cluster=True)
    assert [r.action for r in forced.results] == ["restored"]
    moved = InMemoryCluster(
        context="default", namespace="shop", cluster_uid="uid-a", server="https://new-url"
    )
    moved.seed(seed.virtual_service(50, 50), manager="istiolab")
    store.open("default", report.backup_id).set_status("complete")
    assert rollback(report.backup_id, moved, backups=store).ok


@pytest.mark.parametrize("force", [False, True])
def test_an_edit_between_plan_and_apply_stops_the_apply(env: Any, force: bool) -> None:
    """An on-call edit made while the confirmation was open: apply refuses before any write,
    names the object, and the edit stays. With --force-conflicts too: the approved takeover
    does not extend to the new state.
    """
    _seeded(env)
    p = plan(_config(seed.virtual_service(50, 50)), env.cluster, force=force)
    assert [s.action for s in p.steps] == ["update"]
    _edit(env, seed.virtual_service(0, 100))  # the on-call edit
    writes_before = _writes(env)
    with pytest.raises(StalePlanError) as stale:
        apply(p, env.cluster, backups=BackupStore())
    assert stale.value.changed[0][0] == "VirtualService/shop/web"
    assert "changed on the cluster since the plan" in str(stale.value)
    assert _writes(env) == writes_before
    assert content(env.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(0, 100)
    )
    assert BackupStore().backups(env.cluster.context) == []  # refused before the backup set
    # planned again, the new diff shows the edit being undone (the editor owns .spec.http now)
    again = plan(_config(seed.virtual_service(50, 50)), env.cluster, force=True)
    assert "-      weight: 0" in again.diff()
    assert "+      weight: 50" in again.diff()


def _edit(env: Any, obj: dict[str, Any]) -> None:
    """An out-of-band edit by ``kubectl-edit`` (on the real server: a merge patch of spec)."""
    if env.name != "apiserver":
        env.seed(obj, manager="kubectl-edit")
        return
    path = env._path(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
    answer = env.call(
        "PATCH",
        path,
        {"spec": obj["spec"]},
        query={"fieldManager": "kubectl-edit"},
        content_type="application/merge-patch+json",
    )
    assert answer[0] == 200, answer


def _writes(env: Any) -> int:
    if env.name == "memory":
        return sum(1 for c in env.cluster.calls if c.verb in ("patch", "delete") and not c.dry_run)
    if env.name == "kmock":
        return sum(
            1
            for r in env.server.requests()
            if r.method in ("PATCH", "DELETE") and "dryRun" not in r.params
        )
    return sum(1 for m, _ in env.cluster.calls if m in ("PATCH", "DELETE"))


def test_a_status_update_between_plan_and_apply_is_not_a_change() -> None:
    """istiod writes status: a new resourceVersion, the same content and owners: the apply
    goes on, and carries the new resourceVersion as its precondition.
    """
    c = InMemoryCluster(namespace="shop")
    c.seed(seed.destination_rule())
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    p = plan(_config(seed.virtual_service(50, 50)), c)
    c.set_status("VirtualService", "shop", "web", {"validationMessages": []})
    assert apply(p, c, backups=BackupStore()).ok


def test_stale_between_the_check_and_the_write_is_refused_by_the_precondition() -> None:
    """An edit that lands after apply's re-read and before its write: the resourceVersion
    sent with the write makes the API server refuse it; nothing is overwritten.
    """

    class Racing(InMemoryCluster):
        reads = 0

        def get(self, kind: str, namespace: str | None, name: str, **kw: Any) -> Any:
            obj = super().get(kind, namespace, name, **kw)
            self.reads += 1
            if self.reads == 3:  # plan, recheck, then apply's own read: the edit lands now
                self.seed(seed.virtual_service(0, 100), manager="kubectl-edit")
            return obj

    c = Racing(namespace="shop")
    c.seed(seed.destination_rule())
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    p = plan(_config(seed.virtual_service(50, 50)), c, force=True)
    report = apply(p, c, backups=BackupStore())
    assert not report.ok
    assert "the object has been modified" in (report.failed[0].error or "")
    assert content(c.stored("VirtualService", "shop", "web") or {}) == content(
        seed.virtual_service(0, 100)
    )


def test_gitops_managed_objects_are_warned_about_and_refused(env: Any) -> None:
    """Argo CD's tracking annotation on the live VirtualService: the plan warns with the app's
    name, apply refuses without allow_managed, and applies with it.
    """
    env.script_dry_run()
    env.seed(seed.gateway())
    env.seed(seed.destination_rule())
    vs = seed.virtual_service(90, 10)
    vs["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "shop-routing:networking.istio.io/VirtualService:shop/web"
    }
    env.seed(vs)
    want = seed.virtual_service(50, 50)
    want["metadata"]["annotations"] = dict(vs["metadata"]["annotations"])
    p = plan(_config(want), env.cluster)
    (step,) = p.steps
    assert step.managed is not None
    assert step.managed.tool == "Argo CD"
    assert "managed by Argo CD app shop-routing: commit to Git instead" in p.format()
    with pytest.raises(RefusedError) as refused:
        apply(p, env.cluster, backups=BackupStore())
    assert "--allow-managed" in str(refused.value)
    assert env.stored("VirtualService", "shop", "web")["spec"] == vs["spec"]
    assert apply(p, env.cluster, backups=BackupStore(), allow_managed=True).ok


@pytest.mark.parametrize(
    ("labels", "annotations", "says"),
    [
        ({"kustomize.toolkit.fluxcd.io/name": "apps",
          "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}, {},
         "Flux Kustomization flux-system/apps: commit to Git instead"),
        ({"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "shop"},
         {"meta.helm.sh/release-name": "web"}, "Flux HelmRelease shop/web"),
        ({"app.kubernetes.io/managed-by": "Helm"},
         {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "shop"},
         "Helm release shop/web: change the chart's values"),
        ({"app.kubernetes.io/instance": "shop", "argocd.argoproj.io/instance": "shop"}, {},
         "Argo CD app shop"),
        ({"app.kubernetes.io/instance": "shop"}, {}, None),
    ],
)  # fmt: skip
def test_managed_by_reads_each_tools_metadata(
    labels: dict[str, str], annotations: dict[str, str], says: str | None
) -> None:
    from istiolab.kube.gitops import managed_by

    found = managed_by({"metadata": {"labels": labels, "annotations": annotations}})
    assert (found.format() if found else None) == says or (says and says in found.format())  # type: ignore[union-attr]


def test_rollback_of_an_older_apply_names_the_newer_one(env: Any) -> None:
    """Two applies of the same object: rolling back the first is refused, naming the second;
    rolled back newest first, both undo exactly.
    """
    _seeded(env)
    store = BackupStore()
    first = apply(
        plan(_config(seed.virtual_service(50, 50)), env.cluster), env.cluster, backups=store
    )
    second = apply(
        plan(_config(seed.virtual_service(70, 30)), env.cluster), env.cluster, backups=store
    )
    assert first.ok
    assert second.ok
    with pytest.raises(RefusedError) as refused:
        rollback(first.backup_id, env.cluster, backups=store)
    assert f"roll back {second.backup_id} first" in str(refused.value)
    assert rollback(second.backup_id, env.cluster, backups=store).ok
    assert rollback(first.backup_id, env.cluster, backups=store).ok
    assert content(env.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(90, 10)
    )


def test_preview_shows_an_object_that_would_be_recreated(env: Any) -> None:
    """Deleted out of band after the apply: the preview says `recreate` and shows the whole
    object from the backup, before anything is written.
    """
    _seeded(env)
    store = BackupStore()
    config = _config(seed.virtual_service(50, 50), seed.destination_rule(lb="RANDOM"))
    report = apply(plan(config, env.cluster), env.cluster, backups=store)
    assert report.ok
    env.cluster.delete("VirtualService", "shop", "web")
    backup = store.open(env.cluster.context, report.backup_id)
    preview = {p.ref: p for p in preview_rollback(backup, env.cluster)}
    vs = preview["VirtualService/shop/web"]
    assert vs.action == "recreate"
    assert vs.diff.startswith("--- /dev/null")
    assert "+      weight: 90" in vs.diff
    assert preview["DestinationRule/shop/web"].action == "restore"
    assert "-      simple: RANDOM" in preview["DestinationRule/shop/web"].diff
    assert env.stored("VirtualService", "shop", "web") is None  # a preview writes nothing


def test_change_cause_annotations_and_retention(env: Any) -> None:
    """With a change cause, written objects carry the backup id and the cause, and a re-plan
    of the same rules is unchanged; prune keeps the newest sets.
    """
    _seeded(env)
    store = BackupStore()
    ids = []
    for v1 in (50, 60, 70):
        report = apply(
            plan(_config(seed.virtual_service(v1, 100 - v1)), env.cluster),
            env.cluster,
            backups=store,
            change_cause=f"canary {v1}%",
        )
        assert report.ok, report.format()
        ids.append(report.backup_id)
    ann = env.stored("VirtualService", "shop", "web")["metadata"]["annotations"]
    assert ann["istiolab.io/backup-id"] == ids[-1]
    assert ann["istiolab.io/change-cause"] == "canary 70%"
    assert store.open(env.cluster.context, ids[-1]).change_cause == "canary 70%"
    again = plan(_config(seed.virtual_service(70, 30)), env.cluster)
    assert [s.action for s in again.steps] == ["unchanged"]
    assert store.prune(env.cluster.context, 2) == [ids[0]]
    assert [b.id for b in store.backups(env.cluster.context)] == ids[1:]
