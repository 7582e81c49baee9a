"""End to end on a real API server: what KMock and the in-memory cluster can only imitate.

Server-side dry run that truly persists nothing, real field ownership and conflicts, real
resourceVersions, RBAC with a restricted service account, and import of real workloads.
Opt-in: see ``conftest.py`` (``ISTIOLAB_KUBECONFIG``, ``pytest -m cluster``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from istiolab.config import codecs, loads
from istiolab.kube import (
    BackupStore,
    ForbiddenError,
    RefusedError,
    apply,
    import_cluster,
    plan,
    rollback,
)
from istiolab.kube.objects import content

pytestmark = pytest.mark.cluster


def _gateway(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": ns},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                    "hosts": ["e2e.example.com"],
                }
            ],
        },
    }


def _dr(ns: str, lb: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "host": "web",
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    }
    if lb:
        spec["trafficPolicy"] = {"loadBalancer": {"simple": lb}}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web", "namespace": ns},
        "spec": spec,
    }


def _vs(ns: str, v1: int = 90, v2: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "hosts": ["e2e.example.com"],
            "gateways": ["gw"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web", "subset": "v1"}, "weight": v1},
                        {"destination": {"host": "web", "subset": "v2"}, "weight": v2},
                    ]
                }
            ],
        },
    }


def _config(*objs: dict[str, Any]) -> Any:
    return loads(codecs.dumps(list(objs)), file="e2e.yaml")


def test_discovery(cluster: Any) -> None:
    served = cluster.served_versions()
    assert served["VirtualService"][0].startswith("networking.istio.io/")
    assert served["EnvoyFilter"] == ("networking.istio.io/v1alpha3",)


def test_server_side_dry_run_persists_nothing(cluster: Any, namespace: str) -> None:
    p = plan(_config(_gateway(namespace), _dr(namespace), _vs(namespace)), cluster)
    assert [s.action for s in p.steps] == ["create", "create", "create"]
    assert p.steps[2].result is not None
    assert p.steps[2].result["spec"]["hosts"] == ["e2e.example.com"]
    for s in p.steps:
        assert cluster.get(s.kind, namespace, s.name) is None


def test_apply_diff_rollback_round_trip(cluster: Any, namespace: str) -> None:
    store = BackupStore()
    first = apply(
        plan(_config(_gateway(namespace), _dr(namespace), _vs(namespace)), cluster),
        cluster,
        backups=store,
    )
    assert first.ok, first.format()
    live = cluster.get("VirtualService", namespace, "web")
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["istiolab"]
    again = plan(_config(_gateway(namespace), _dr(namespace), _vs(namespace)), cluster)
    assert [s.action for s in again.steps] == ["unchanged"] * 3

    change = plan(_config(_dr(namespace, "RANDOM"), _vs(namespace, 50, 50)), cluster)
    assert [s.action for s in change.steps] == ["update", "update"]
    assert "+      weight: 50" in change.steps[1].diff
    assert "resourceVersion" not in change.diff()
    second = apply(change, cluster, backups=store)
    assert second.ok
    # the backup records the cluster: its server, and kube-system's uid where it may be read
    recorded = store.open(cluster.context, second.backup_id).identity
    assert recorded == cluster.identity()
    # the older set is refused while the newer one, on the same objects, is not rolled back
    with pytest.raises(RefusedError, match=second.backup_id):
        rollback(first.backup_id, cluster, backups=store)
    undo = rollback(second.backup_id, cluster, backups=store)
    assert undo.ok, undo.format()
    assert content(cluster.get("VirtualService", namespace, "web")) == content(_vs(namespace))
    assert "trafficPolicy" not in cluster.get("DestinationRule", namespace, "web")["spec"]

    assert rollback(first.backup_id, cluster, backups=store).ok
    for kind, name in (("Gateway", "gw"), ("DestinationRule", "web"), ("VirtualService", "web")):
        assert cluster.get(kind, namespace, name) is None


def test_conflict_with_another_field_manager(cluster: Any, namespace: str, admin: Any) -> None:
    from kubernetes import client as k8s

    apply(
        plan(_config(_gateway(namespace), _dr(namespace)), cluster), cluster, backups=BackupStore()
    )
    # another tool owns the VirtualService's routes
    k8s.CustomObjectsApi(admin).patch_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        namespace,
        "virtualservices",
        "web",
        _vs(namespace),
        field_manager="e2e-other-tool",
        _content_type="application/apply-patch+yaml",
    )
    p = plan(_config(_vs(namespace, 10, 90)), cluster)
    (step,) = p.steps
    assert step.action == "conflict"
    assert ".spec.http" in {c.field for c in step.conflicts}
    assert {c.manager for c in step.conflicts} == {"e2e-other-tool"}
    forced = plan(_config(_vs(namespace, 10, 90)), cluster, force=True)
    # the forced plan lists exactly what it takes over, and from whom
    assert ".spec.http" in {c.field for c in forced.steps[0].takeover}
    assert {c.manager for c in forced.steps[0].takeover} == {"e2e-other-tool"}
    assert apply(forced, cluster, backups=BackupStore()).ok
    managers = {
        m["manager"]
        for m in cluster.get("VirtualService", namespace, "web")["metadata"]["managedFields"]
    }
    assert "istiolab" in managers


def test_rbac_denial_names_verb_resource_namespace(
    kubeconfig: str, context: str | None, namespace: str, admin: Any
) -> None:
    """A service account that may only read: apply is refused with a clear 403."""
    from kubernetes import client as k8s
    from kubernetes import config as kconfig

    from istiolab.kube.client import KubernetesCluster

    core, rbac = k8s.CoreV1Api(admin), k8s.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(
        namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        k8s.V1Role(
            metadata=k8s.V1ObjectMeta(name="istio-reader"),
            rules=[
                k8s.V1PolicyRule(
                    api_groups=["networking.istio.io"], resources=["*"], verbs=["get", "list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="reader"),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="istio-reader"
            ),
            subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    issued = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(expiration_seconds=600)),
    )
    assert issued.status is not None
    token = issued.status.token
    assert token
    cfg = k8s.Configuration()
    # kubernetes.config has no annotations (only kubernetes.client is typed)
    kconfig.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
    )
    cfg.api_key = {"authorization": f"Bearer {token}"}
    cfg.api_key_prefix = {}
    cfg.refresh_api_key_hook = None
    cfg.cert_file = cfg.key_file = None
    cfg.username = cfg.password = None
    reader = KubernetesCluster(k8s.ApiClient(cfg), context="e2e-reader", namespace=namespace)
    time.sleep(1)  # RBAC caches settle
    with pytest.raises(ForbiddenError) as info:
        plan(_config(_gateway(namespace), _dr(namespace), _vs(namespace)), reader)
    message = str(info.value)
    assert message.startswith("forbidden: cannot patch (dry run) gateways.networking.istio.io")
    assert f'in namespace "{namespace}"' in message
    assert token not in message
    assert token not in repr(reader)


def test_import_real_workloads(cluster: Any, namespace: str, admin: Any) -> None:
    from kubernetes import client as k8s

    apps, core = k8s.AppsV1Api(admin), k8s.CoreV1Api(admin)
    for version in ("v1", "v2"):
        labels = {"app": "web", "version": version}
        apps.create_namespaced_deployment(
            namespace,
            k8s.V1Deployment(
                metadata=k8s.V1ObjectMeta(name=f"web-{version}"),
                spec=k8s.V1DeploymentSpec(
                    replicas=1,
                    selector=k8s.V1LabelSelector(match_labels=labels),
                    template=k8s.V1PodTemplateSpec(
                        metadata=k8s.V1ObjectMeta(labels=labels),
                        spec=k8s.V1PodSpec(
                            containers=[
                                k8s.V1Container(name="pause", image="registry.k8s.io/pause:3.9")
                            ]
                        ),
                    ),
                ),
            ),
        )
    core.create_namespaced_service(
        namespace,
        k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="web"),
            spec=k8s.V1ServiceSpec(selector={"app": "web"}, ports=[k8s.V1ServicePort(port=80)]),
        ),
    )
    apply(
        plan(_config(_gateway(namespace), _dr(namespace), _vs(namespace)), cluster),
        cluster,
        backups=BackupStore(),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pods = cluster.list("Pod", namespace)
        if len(pods) == 2 and all(
            any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in pods
        ):
            break
        time.sleep(2)
    scenario, config = import_cluster(cluster, namespace)
    (web,) = scenario.services
    assert [v.name for v in web.versions] == ["v1", "v2"]
    assert {r.kind for r in config} == {"Gateway", "DestinationRule", "VirtualService"}
    assert scenario.ingress.azs
