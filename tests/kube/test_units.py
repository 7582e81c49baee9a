"""Pure parts of the cluster layer: scrubbing, object helpers, backups, kinds, CPU quantities."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from istiolab.errors import ClusterError
from istiolab.kube.backups import BackupStore, context_dir_name, default_backup_root
from istiolab.kube.errors import Scrubber, api_error
from istiolab.kube.importer import cpu_millis
from istiolab.kube.kinds import kind_info, newest_served
from istiolab.kube.objects import apply_merge_patch, canonical, merge_patch, strip, unified_diff


def test_scrubber_known_secrets_and_shapes() -> None:
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        "MIIEpAIBAAKCAQEAtopsecretkeymaterial\n"
        "-----END RSA PRIVATE KEY-----"
    )
    key_b64 = base64.b64encode(key.encode()).decode()
    scrub = Scrubber(["s3cr3t-token-value", key_b64, "pw"])  # "pw": too short to be one
    text = (
        "token s3cr3t-token-value; data "
        + key_b64
        + "; pem "
        + key
        + "; Authorization: Bearer abc.def-ghi; jwt eyJhbGciOi.eyJzdWIiOiJ4.sig; "
        + "https://admin:hunter2@example.com/; k8s-aws-v1.aHR0cHM6Ly9zdHM; token: zzz9; pw ok"
    )
    out = scrub(text)
    for secret in (
        "s3cr3t-token-value",
        key_b64,
        "topsecretkeymaterial",
        "abc.def-ghi",
        "eyJzdWIiOiJ4",
        "hunter2",
        "aHR0cHM6Ly9zdHM",
        "zzz9",
    ):
        assert secret not in out
    assert out.endswith("pw ok")
    assert "s3cr3t" not in repr(scrub)


def test_api_error_messages_name_verb_resource_namespace() -> None:
    e = api_error(
        status=403,
        reason="Forbidden",
        message="nope",
        verb="list",
        resource="gateways.networking.istio.io",
        namespace="istio-system",
        name=None,
    )
    assert str(e).startswith(
        'forbidden: cannot list gateways.networking.istio.io in namespace "istio-system": nope'
    )
    n = api_error(
        status=404,
        reason="NotFound",
        message="",
        verb="get",
        resource="nodes",
        namespace=None,
        name="n1",
        namespaced=False,
    )
    assert str(n) == 'not found: nodes "n1" (cluster-scoped) (get) (HTTP 404 NotFound)'
    c = api_error(
        status=409,
        reason="Conflict",
        message="Apply failed",
        verb="patch",
        resource="virtualservices.networking.istio.io",
        namespace="shop",
        name="web",
        causes=[
            {
                "reason": "FieldManagerConflict",
                "field": ".spec.http",
                "message": 'conflict with "argocd-controller" using networking.istio.io/v1',
            }
        ],
    )
    assert [(x.field, x.manager) for x in c.conflicts] == [(".spec.http", "argocd-controller")]  # type: ignore[attr-defined]
    v = api_error(
        status=422,
        reason="Invalid",
        message="admission webhook denied",
        verb="patch",
        resource="virtualservices.networking.istio.io",
        namespace="shop",
        name="web",
        dry_run=True,
    )
    assert str(v).startswith("rejected: the API server refused to patch (dry run) virtualservices")


def test_strip_and_canonical_diff() -> None:
    live = {
        "kind": "VirtualService",
        "apiVersion": "networking.istio.io/v1",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "resourceVersion": "9",
            "uid": "u",
            "managedFields": [],
            "labels": {},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"hosts": ["a"]},
        "status": {"x": 1},
    }
    assert strip(live) == {
        "kind": "VirtualService",
        "apiVersion": "networking.istio.io/v1",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"hosts": ["a"]},
    }
    assert list(canonical(live)) == ["apiVersion", "kind", "metadata", "spec"]
    assert unified_diff(live, strip(live), "VirtualService/shop/web") == ""
    created = unified_diff(None, live, "VirtualService/shop/web")
    assert created.startswith("--- /dev/null\n+++ planned/VirtualService/shop/web\n")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}, "e": [1, 2]}),
        ({"spec": {"http": [{"x": 1}]}}, {"spec": {"http": [{"x": 2}]}}),
        ({}, {"metadata": {"labels": {"a": "b"}}}),
        ({"metadata": {"labels": {"a": "b"}}}, {"metadata": {}}),
    ],
)
def test_merge_patch_round_trip(current: dict[str, Any], target: dict[str, Any]) -> None:
    patch = merge_patch(current, target)
    assert apply_merge_patch(current, patch) == target


def test_backup_root_respects_istiolab_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ISTIOLAB_HOME", str(tmp_path / "lab"))
    assert default_backup_root() == tmp_path / "lab" / "backups"
    monkeypatch.delenv("ISTIOLAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_backup_root() == tmp_path / "home" / ".istiolab" / "backups"


def test_backup_store(tmp_path: Path) -> None:
    ctx = "arn:aws:eks:us-east-1:123456789012:cluster/prod"
    assert context_dir_name(ctx) == "arn_aws_eks_us-east-1_123456789012_cluster_prod"
    store = BackupStore(tmp_path)
    first = store.create(ctx, "shop")
    entry = first.record_update(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"hosts": ["a"]},
        }
    )
    first.record_create("Gateway", "networking.istio.io/v1", "istio-system", "gw")
    first.set_status("complete")
    assert entry.file == "001-VirtualService-shop-web.yaml"
    assert first.load_object(entry)["spec"] == {"hosts": ["a"]}
    assert (first.path.stat().st_mode & 0o777) == 0o700
    assert not list(first.path.glob("*.tmp"))
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert [e["action"] for e in manifest["entries"]] == ["update", "create"]
    second = store.create(ctx, "shop")
    # in start order, also within one second (ids then differ only by their random suffix)
    assert [b.id for b in store.backups(ctx)] == [first.id, second.id]
    assert store.open(ctx).id == second.id
    assert store.open(ctx, first.id).status == "complete"
    with pytest.raises(ClusterError, match="is not a backup id"):
        store.open(ctx, "../../etc")
    with pytest.raises(ClusterError, match="no backup 2020"):
        store.open(ctx, "2020")
    with pytest.raises(ClusterError, match='no backups for context "other"'):
        store.open("other")
    assert os.path.commonpath([first.path, tmp_path]) == str(tmp_path)


def test_kinds_and_versions() -> None:
    served = {"VirtualService": ("networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")}
    assert newest_served("VirtualService", served) == "networking.istio.io/v1beta1"
    assert newest_served("Gateway", served) is None
    assert newest_served("Service", served) == "v1"
    assert kind_info("Node").resource() == "nodes"
    with pytest.raises(KeyError, match="does not read or write 'Secret'"):
        kind_info("Secret")


@pytest.mark.parametrize(("q", "m"), [("2", 2000), ("1930m", 1930), ("3.5", 3500), ("x", None)])
def test_cpu_millis(q: str, m: int | None) -> None:
    assert cpu_millis(q) == m
