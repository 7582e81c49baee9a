"""What the in-memory cluster models: server-side apply field ownership, dry run,
resourceVersion and uid preconditions, discovery, RBAC denials and API failures.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from istiolab.kube import (
    ApiError,
    BackupStore,
    ConflictError,
    ForbiddenError,
    InMemoryCluster,
    NotFoundError,
    apply,
    plan,
    rollback,
)
from istiolab.kube.objects import content

from . import _seed as seed
from .test_behaviour import _config


def _vs(**changes: Any) -> dict[str, Any]:
    obj = seed.virtual_service()
    obj["spec"].update(changes)
    return obj


def test_resource_version_generation_uid() -> None:
    c = InMemoryCluster(namespace="shop")
    first = c.apply(_vs())
    meta = first["metadata"]
    assert (meta["resourceVersion"], meta["generation"]) == ("1", 1)
    again = c.apply(_vs())["metadata"]
    assert again["resourceVersion"] == "1"  # nothing changed, nothing written
    label_only = copy.deepcopy(_vs())
    label_only["metadata"]["labels"]["tier"] = "front"
    m2 = c.apply(label_only)["metadata"]
    assert (m2["resourceVersion"], m2["generation"], m2["uid"]) == ("2", 1, meta["uid"])
    m3 = c.apply(_vs(hosts=["shop.example.org"]))["metadata"]
    assert (m3["resourceVersion"], m3["generation"]) == ("3", 2)
    assert "tier" not in m3["labels"]  # a field istiolab applied before and dropped now


def test_dry_run_stores_nothing() -> None:
    c = InMemoryCluster(namespace="shop")
    preview = c.dry_run_apply(_vs())
    assert preview["spec"]["hosts"] == ["shop.example.com"]
    assert c.stored("VirtualService", "shop", "web") is None
    c.apply(_vs())
    c.dry_run_apply(_vs(hosts=["other.example.com"]))
    stored = c.stored("VirtualService", "shop", "web")
    assert stored["spec"]["hosts"] == ["shop.example.com"]
    assert stored["metadata"]["resourceVersion"] == "1"
    assert [(x.verb, x.dry_run) for x in c.calls] == [
        ("patch", True),
        ("patch", False),
        ("patch", True),
    ]


def test_field_ownership_conflict_coownership_and_force() -> None:
    c = InMemoryCluster(namespace="shop")
    c.seed(_vs(), manager="helm")
    # same values: no conflict, the fields become co-owned
    c.apply(_vs())
    owners = {
        m["manager"] for m in c.get("VirtualService", "shop", "web")["metadata"]["managedFields"]
    }
    assert owners == {"helm", "istiolab"}
    # a different value for a field helm owns: conflict on that field only
    with pytest.raises(ConflictError) as info:
        c.apply(_vs(hosts=["a.example.com"]))
    assert [(x.field, x.manager) for x in info.value.conflicts] == [(".spec.hosts", "helm")]
    assert info.value.status == 409
    assert info.value.reason == "Conflict"
    with pytest.raises(ConflictError):
        c.dry_run_apply(_vs(hosts=["a.example.com"]))  # dry runs find conflicts too
    # forced: ownership moves to istiolab
    c.apply(_vs(hosts=["a.example.com"]), force=True)
    fields = {
        m["manager"]: m["fieldsV1"]
        for m in c.get("VirtualService", "shop", "web")["metadata"]["managedFields"]
    }
    assert "f:hosts" in fields["istiolab"]["f:spec"]
    assert "f:hosts" not in fields["helm"].get("f:spec", {})


def test_fields_owned_by_others_survive_when_dropped() -> None:
    c = InMemoryCluster(namespace="shop")
    c.seed(_vs(exportTo=["."]), manager="kubectl")
    c.apply(_vs(exportTo=["."]))  # co-owned
    c.apply(_vs())  # istiolab drops exportTo; kubectl still owns it: it stays
    assert c.stored("VirtualService", "shop", "web")["spec"]["exportTo"] == ["."]
    alone = InMemoryCluster(namespace="shop")
    alone.apply(_vs(exportTo=["."]))
    alone.apply(_vs())  # istiolab was the only owner: the field goes
    assert "exportTo" not in alone.stored("VirtualService", "shop", "web")["spec"]


def test_replace_and_delete_preconditions() -> None:
    c = InMemoryCluster(namespace="shop")
    obj = c.apply(_vs())
    rv, uid = obj["metadata"]["resourceVersion"], obj["metadata"]["uid"]
    c.seed(_vs(hosts=["changed.example.com"]), manager="kubectl")  # someone else changes it
    with pytest.raises(ConflictError, match="the object has been modified"):
        c.replace(_vs(), resource_version=rv)
    c.replace(_vs(), resource_version=None)
    assert c.stored("VirtualService", "shop", "web")["spec"]["hosts"] == ["shop.example.com"]
    with pytest.raises(ConflictError, match="Precondition failed: UID"):
        c.delete("VirtualService", "shop", "web", uid="not-the-uid")
    c.delete("VirtualService", "shop", "web", uid=uid)
    with pytest.raises(NotFoundError):
        c.delete("VirtualService", "shop", "web")


def test_rollback_leaves_objects_changed_since_the_apply() -> None:
    """resourceVersion guard: a change by someone else after the apply is not overwritten."""
    c = InMemoryCluster(namespace="shop")
    c.seed(seed.gateway(), manager="istiolab")
    c.seed(seed.destination_rule(), manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    store = BackupStore()
    report = apply(plan(_config(seed.virtual_service(50, 50)), c), c, backups=store)
    assert report.ok
    c.seed(seed.virtual_service(20, 80), manager="kubectl")  # a hotfix after our apply
    undo = rollback(report.backup_id, c, backups=store)
    assert not undo.ok
    assert undo.results[0].action == "skipped"
    assert "changed by someone else" in undo.results[0].detail
    assert store.open("in-memory", report.backup_id).status == "rollback-incomplete"
    assert c.stored("VirtualService", "shop", "web")["spec"]["http"][0]["route"][0]["weight"] == 20
    forced = rollback(report.backup_id, c, backups=store, force=True)
    assert forced.ok
    assert content(c.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(90, 10)
    )


def test_rollback_after_a_status_update() -> None:
    """istiod writing status moves the resourceVersion, not the content: rollback proceeds."""
    c = InMemoryCluster(namespace="shop")
    c.seed(seed.gateway(), manager="istiolab")
    c.seed(seed.destination_rule(), manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    store = BackupStore()
    report = apply(plan(_config(seed.virtual_service(50, 50)), c), c, backups=store)
    before = c.stored("VirtualService", "shop", "web")["metadata"]
    after = c.set_status("VirtualService", "shop", "web", {"observedGeneration": 2})["metadata"]
    assert int(after["resourceVersion"]) > int(before["resourceVersion"])
    assert after["generation"] == before["generation"]
    undo = rollback(report.backup_id, c, backups=store)
    assert undo.ok, undo.format()
    assert content(c.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(90, 10)
    )


def test_rollback_does_not_delete_an_object_recreated_by_someone_else() -> None:
    c = InMemoryCluster(namespace="shop")
    c.seed(seed.destination_rule(), manager="istiolab")
    store = BackupStore()
    report = apply(plan(_config(seed.gateway(), seed.virtual_service()), c), c, backups=store)
    c.delete("Gateway", "istio-system", "web-gateway")
    c.seed(seed.gateway(), manager="kubectl")  # a new object, a new uid
    undo = rollback(report.backup_id, c, backups=store)
    assert ("Gateway/istio-system/web-gateway", "skipped") in [
        (r.ref, r.action) for r in undo.results
    ]
    assert c.stored("Gateway", "istio-system", "web-gateway") is not None


def test_discovery_and_version_aliases() -> None:
    c = InMemoryCluster(namespace="shop", istio_versions=["networking.istio.io/v1beta1"])
    assert c.served_versions() == {
        "Gateway": ("networking.istio.io/v1beta1",),
        "DestinationRule": ("networking.istio.io/v1beta1",),
        "VirtualService": ("networking.istio.io/v1beta1",),
        "ServiceEntry": ("networking.istio.io/v1beta1",),
    }
    with pytest.raises(NotFoundError, match="could not find the requested resource"):
        c.apply(seed.virtual_service())  # v1 is not served
    c.apply(seed.virtual_service(version="networking.istio.io/v1beta1"))
    both = InMemoryCluster(namespace="shop")
    both.apply(seed.virtual_service(version="networking.istio.io/v1alpha3"))
    assert both.get("VirtualService", "shop", "web")["apiVersion"] == "networking.istio.io/v1"
    legacy = InMemoryCluster(istio_versions=["config.istio.io/v1alpha2"])
    assert set(legacy.served_versions()) == {"RouteRule", "DestinationPolicy"}
    assert InMemoryCluster(istio_versions=()).served_versions() == {}


def test_rbac_denial_and_api_failures() -> None:
    c = InMemoryCluster(namespace="shop", user="ci")
    c.deny("patch", "VirtualService", "shop")
    with pytest.raises(ForbiddenError) as info:
        c.apply(seed.virtual_service())
    assert 'User "ci" cannot patch resource "virtualservices"' in str(info.value)
    c.apply(seed.destination_rule())  # other kinds are allowed
    c.fail(
        "patch",
        "DestinationRule",
        "web",
        status=503,
        reason="ServiceUnavailable",
        message="etcd down",
    )
    before = c.stored("DestinationRule", "shop", "web")
    c.dry_run_apply(seed.destination_rule(lb="RANDOM"))  # dry runs are not affected
    with pytest.raises(ApiError, match=r"etcd down \(HTTP 503 ServiceUnavailable\)") as err:
        c.apply(seed.destination_rule(lb="RANDOM"))
    assert err.value.status == 503
    assert c.stored("DestinationRule", "shop", "web") == before
    c.apply(seed.destination_rule(lb="RANDOM"))  # once only
    assert c.stored("DestinationRule", "shop", "web")["spec"]["trafficPolicy"]


def test_lists_and_cluster_scoped_nodes() -> None:
    c = InMemoryCluster(objects=seed.topology(), namespace="shop")
    assert len(c.list("Node", None)) == 4
    assert "namespace" not in c.get("Node", "ignored", "app-a")["metadata"]
    assert [p["metadata"]["name"] for p in c.list("Pod", "istio-system")] == ["gw-a", "gw-b"]
    assert len(c.list("Pod", None)) == 6
    assert repr(c) == "InMemoryCluster(context='in-memory', namespace='shop', objects=15)"
