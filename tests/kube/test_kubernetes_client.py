"""The real adapter (official client) against KMock: what goes over the wire, discovery,
kubeconfig handling, and that credentials never reach a message.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from istiolab.config import codecs, loads
from istiolab.kube import (
    BackupStore,
    ConnectError,
    ForbiddenError,
    UnauthorizedError,
    apply,
    plan,
)
from istiolab.kube.client import KubernetesCluster, connect

from . import _seed as seed
from ._kmock import TOKEN, KMockServer, script_dry_run, status


def _config(*objs: dict[str, Any]) -> Any:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def _patches(server: KMockServer) -> list[Any]:
    return [r for r in server.requests() if r.method == "PATCH"]


def test_dry_run_comes_first_then_apply_patch_with_field_manager(kmock_server: KMockServer) -> None:
    """Per object: a dryRun=All apply-patch during plan, then the real one, in dependency order.

    Dry-run answers are scripted (KMock has no dryRun).
    """
    kmock_server.seed(seed.virtual_service(90, 10))
    script_dry_run(kmock_server)
    cluster = kmock_server.cluster("shop")
    p = plan(
        _config(seed.virtual_service(50, 50), seed.destination_rule(), seed.gateway()), cluster
    )
    assert apply(p, cluster, backups=BackupStore()).ok

    patches = _patches(kmock_server)
    paths = [(r.url.path, r.params.get("dryRun")) for r in patches]
    gw = "/apis/networking.istio.io/v1/namespaces/istio-system/gateways/web-gateway"
    dr = "/apis/networking.istio.io/v1/namespaces/shop/destinationrules/web"
    vs = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/web"
    assert paths == [
        (gw, "All"),
        (dr, "All"),
        (vs, "All"),
        (gw, None),
        (dr, None),
        (vs, None),
    ]
    for r in patches:
        assert r.headers["Content-Type"] == "application/apply-patch+yaml"
        assert r.params["fieldManager"] == "istiolab"
        assert "force" not in r.params  # no force unless asked
        assert r.headers["Authorization"] == f"Bearer {TOKEN}"
    # Dry runs and creates carry no resourceVersion; an update carries the one it was checked
    # at, as a precondition. KMock keeps no resourceVersion, so here none is sent at all (the
    # in-memory and real API servers test the precondition).
    rvs = [r.data["metadata"].get("resourceVersion") for r in patches]
    assert rvs == [None] * 5 + [p.steps[2].live_version]
    # the apply body is exactly the planned object
    assert patches[5].data == p.steps[2].desired


def test_force_is_sent_only_for_the_conflicts_the_plan_showed(kmock_server: KMockServer) -> None:
    """--force-conflicts: the dry run is tried without force first; only the object whose dry
    run conflicted is dry-run and applied with force=true, and the plan names what it takes
    over. Dry runs and the conflict are scripted.
    """
    script_dry_run(kmock_server)
    kmock_server.seed(seed.destination_rule())
    kmock_server.seed(seed.gateway())
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "helm" using networking.istio.io/v1',
            "field": ".spec.trafficPolicy",
        }
    ]
    kmock_server.react(
        lambda r: (
            r.method == "PATCH"
            and r.resource is not None
            and r.resource.plural == "destinationrules"
            and r.params.get("force") != "true"
        ),
        409,
        status(409, "Conflict", "Apply failed with 1 conflict", {"causes": causes}),
    )
    cluster = kmock_server.cluster("shop")
    config = _config(seed.gateway(), seed.destination_rule(lb="RANDOM"))
    refused = plan(config, cluster)
    assert [s.action for s in refused.steps] == ["unchanged", "conflict"]
    p = plan(config, cluster, force=True)
    assert [s.action for s in p.steps] == ["unchanged", "update"]
    assert [(c.field, c.manager) for c in p.steps[1].takeover] == [(".spec.trafficPolicy", "helm")]
    assert 'taking over .spec.trafficPolicy from "helm"' in p.format()
    assert apply(p, cluster, backups=BackupStore()).ok
    sent = [
        (r.resource.plural if r.resource else "", r.params.get("dryRun"), r.params.get("force"))
        for r in _patches(kmock_server)
    ][2:]  # after the refused plan's two dry runs
    assert sent == [
        ("gateways", "All", None),
        ("destinationrules", "All", None),
        ("destinationrules", "All", "true"),
        ("destinationrules", None, "true"),
    ]


def test_discovery_picks_the_newest_served_version() -> None:
    """An Istio 1.x cluster without v1: VirtualService as v1beta1, EnvoyFilter as v1alpha3.

    Discovery is KMock's own (declared resources); dry-run answers are scripted.
    """
    with KMockServer(("networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")) as server:
        cluster = server.cluster("shop")
        served = cluster.served_versions()
        assert served["VirtualService"] == (
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        )
        assert served["EnvoyFilter"] == ("networking.istio.io/v1alpha3",)
        assert "RouteRule" not in served
        script_dry_run(server)
        p = plan(
            _config(seed.virtual_service(), seed.destination_rule(), seed.envoy_filter()), cluster
        )
        assert {s.kind: s.api_version for s in p.steps} == {
            "DestinationRule": "networking.istio.io/v1beta1",
            "EnvoyFilter": "networking.istio.io/v1alpha3",
            "VirtualService": "networking.istio.io/v1beta1",
        }
        discovery = [r.url.path for r in server.requests() if r.url.path.count("/") == 3]
        assert discovery == [
            "/apis/networking.istio.io/v1",
            "/apis/networking.istio.io/v1beta1",
            "/apis/networking.istio.io/v1alpha3",
            "/apis/config.istio.io/v1alpha2",
            "/apis/gateway.networking.k8s.io/v1",
            "/apis/gateway.networking.k8s.io/v1beta1",
            "/apis/gateway.networking.k8s.io/v1alpha2",
        ]
        cluster.served_versions()  # cached: no second discovery
        assert len([r for r in server.requests() if r.url.path.count("/") == 3]) == 7


def test_legacy_route_rule_refused_on_a_modern_cluster(kmock_server: KMockServer) -> None:
    """A RouteRule on a cluster without config.istio.io/v1alpha2: a rejected step, no write."""
    rr = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "RouteRule",
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"destination": {"name": "web"}, "route": [{"weight": 100}]},
    }
    p = plan(_config(rr), kmock_server.cluster("shop"))
    (step,) = p.steps
    assert step.action == "rejected"
    assert "serves no version of RouteRule" in (step.error or "")
    assert "istiolab convert" in (step.error or "")
    assert _patches(kmock_server) == []


def test_kubeconfig_context_and_namespace(kmock_server: KMockServer, tmp_path: Path) -> None:
    """The context's namespace is the default; -n overrides it; unknown contexts are named."""
    kc = kmock_server.kubeconfig(tmp_path / "kubeconfig", namespace="shop", context="eks-prod")
    cluster = KubernetesCluster.from_kubeconfig(kc)
    assert (cluster.context, cluster.namespace) == ("eks-prod", "shop")
    assert KubernetesCluster.from_kubeconfig(kc, namespace="other").namespace == "other"
    assert connect(kc).context == "eks-prod"
    with pytest.raises(
        ConnectError, match=r'context "nope" is not defined .* \(contexts: eks-prod\)'
    ):
        KubernetesCluster.from_kubeconfig(kc, context="nope")
    with pytest.raises(ConnectError, match="cannot read the kubeconfig"):
        KubernetesCluster.from_kubeconfig(tmp_path / "missing")


def test_no_kubeconfig_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """No $KUBECONFIG, no ~/.kube/config (HOME is a temp dir), not in a pod: one clear error."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConnectError, match="no kubeconfig found"):
        connect()


def test_unreachable_server(tmp_path: Path) -> None:
    """A server that is gone: a connection error naming the context and the request."""
    with KMockServer() as server:
        kc = server.kubeconfig(tmp_path / "kc")
    cluster = KubernetesCluster.from_kubeconfig(kc)
    with pytest.raises(
        ConnectError, match=r'cannot reach the API server of context "kmock"'
    ) as info:
        cluster.served_versions()
    assert TOKEN not in str(info.value)


def _assert_clean(text: str) -> None:
    assert TOKEN not in text
    assert TOKEN[:20] not in text


def test_token_never_in_errors_repr_or_tracebacks(
    kmock_server: KMockServer, tmp_path: Path
) -> None:
    """A 403 whose message echoes the credentials (scripted: a hostile or buggy proxy can do
    that) still never shows the kubeconfig's token, in the message, the repr of the adapter,
    the chained client exception, or a formatted traceback.
    """
    kc = kmock_server.kubeconfig(tmp_path / "kubeconfig", namespace="shop")
    cluster = KubernetesCluster.from_kubeconfig(kc)
    _assert_clean(repr(cluster))
    _assert_clean(str(vars(cluster)))
    echoed = f"denied for Authorization: Bearer {TOKEN} (token={TOKEN})"
    kmock_server.react(
        lambda r: (
            r.method == "GET" and r.resource is not None and r.resource.plural == "virtualservices"
        ),
        403,
        status(403, "Forbidden", echoed),
    )
    with pytest.raises(ForbiddenError) as info:
        cluster.list("VirtualService", "shop")
    err = info.value
    assert 'forbidden: cannot list virtualservices.networking.istio.io in namespace "shop"' in str(
        err
    )
    assert "<redacted>" in str(err)
    _assert_clean(str(err))
    _assert_clean(str(err.__cause__))
    _assert_clean("".join(traceback.format_exception(err)))


def test_unauthorized_names_the_context(kmock_server: KMockServer) -> None:
    """401 (scripted): the message says which context's credentials were refused."""
    kmock_server.react(lambda r: True, 401, status(401, "Unauthorized", "Unauthorized"))
    cluster = kmock_server.cluster("shop", context="eks-prod")
    with pytest.raises(UnauthorizedError) as info:
        cluster.get("VirtualService", "shop", "web", api_version="networking.istio.io/v1")
    message = str(info.value)
    assert message.startswith(
        'unauthorized: the API server did not accept the credentials of context "eks-prod"'
    )
    assert 'cannot get virtualservices.networking.istio.io "web" in namespace "shop"' in message
    _assert_clean(message)


def test_get_missing_object_is_none(kmock_server: KMockServer) -> None:
    """404 on a get is "does not exist", not an error."""
    cluster = kmock_server.cluster("shop")
    assert cluster.get("VirtualService", "shop", "nope") is None
    assert cluster.list("VirtualService", "shop") == []


def test_core_kinds_are_read_with_core_v1(kmock_server: KMockServer) -> None:
    """Services, Pods and Nodes through CoreV1Api; Deployments through apps/v1."""
    for obj in seed.topology():
        kmock_server.seed(obj)
    cluster = kmock_server.cluster("shop")
    assert [n["metadata"]["name"] for n in cluster.list("Node", None)] == [
        "ingress-a",
        "ingress-b",
        "app-a",
        "app-b",
    ]
    assert {s["kind"] for s in cluster.list("Service", "shop")} == {"Service"}
    assert len(cluster.list("Pod", "shop")) == 4
    assert len(cluster.list("Deployment", "shop")) == 2
    assert cluster.get("Service", "shop", "web")["spec"]["selector"] == {"app": "web"}
    paths = {r.url.path for r in kmock_server.requests()}
    assert "/api/v1/nodes" in paths
    assert "/apis/apps/v1/namespaces/shop/deployments" in paths


def test_in_cluster_service_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Inside a pod: the service account's namespace, context "in-cluster" (loader stubbed)."""
    import kubernetes.config as kconfig

    import istiolab.kube.client as client_mod

    def fake_load(client_configuration: Any = None, **_: Any) -> None:
        client_configuration.host = "https://10.0.0.1:443"
        client_configuration.api_key = {"authorization": f"Bearer {TOKEN}"}

    ns_file = tmp_path / "namespace"
    ns_file.write_text("payments\n")
    monkeypatch.setattr(kconfig, "load_incluster_config", fake_load)
    monkeypatch.setattr(client_mod, "SA_NAMESPACE_FILE", str(ns_file))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    cluster = connect()
    assert (cluster.context, cluster.namespace) == ("in-cluster", "payments")
    assert repr(cluster) == (
        "KubernetesCluster(context='in-cluster', namespace='payments', server='https://10.0.0.1:443')"
    )
    assert connect(namespace="ops").namespace == "ops"
