"""The Gateway API kinds on a cluster: import, diff, apply and rollback of Gateway, HTTPRoute,
GRPCRoute and ReferenceGrant, discovery of their CRDs' versions, and the refusals when a cluster
lacks them. Each test runs on KMock, the in-memory cluster and the real kube-apiserver (which
has the standard channel's CRDs, v1.6: v1 and v1beta1 served).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from istiolab.config import ConfigSet, codecs, loads
from istiolab.errors import ConfigError
from istiolab.kube import BackupStore, RefusedError, apply, inspect_cluster, plan, rollback
from istiolab.kube.apply import holds
from istiolab.kube.kinds import GATEWAY_API_GATEWAY, kind_key

from . import _seed as seed
from ._kmock import KMockServer, script_dry_run
from .conftest import GATEWAY_API_V1_V1BETA1

GW = "gateway.networking.k8s.io/v1"


def _config(*objs: dict[str, Any]) -> ConfigSet:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def k8s_gateway(name: str = "web", ns: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": GW,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "shop.example.com"}
            ],
        },
    }


def http_route(weight_v2: int = 10, ns: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": GW,
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "parentRefs": [{"name": "web", "namespace": "shop"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "web", "port": 80, "weight": 100 - weight_v2},
                        {"name": "web-v2", "port": 80, "weight": weight_v2},
                    ]
                }
            ],
        },
    }


def reference_grant(version: str = "gateway.networking.k8s.io/v1beta1") -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": "ReferenceGrant",
        "metadata": {"name": "from-edge", "namespace": "shop"},
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "edge"}
            ],
            "to": [{"group": "", "kind": "Service"}],
        },
    }


def grpc_route(version: str) -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": "GRPCRoute",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "web"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


def _services() -> list[dict[str, Any]]:
    svc = seed.topology()
    web = next(o for o in svc if o["kind"] == "Service" and o["metadata"]["name"] == "web")
    v2 = {**web, "metadata": {**web["metadata"], "name": "web-v2"}}
    return [web, v2]


def test_kind_keys() -> None:
    """Istio's Gateway keeps the key ``Gateway``; the Gateway API's is qualified by its group."""
    assert kind_key("Gateway", "networking.istio.io/v1") == "Gateway"
    assert kind_key("Gateway", GW) == GATEWAY_API_GATEWAY
    assert kind_key("HTTPRoute", GW) == "HTTPRoute"


def test_apply_diff_and_rollback(make_env: Any) -> None:
    """Gateway, HTTPRoute and ReferenceGrant are created in order, diffed, updated and rolled
    back exactly; an Istio Gateway of the same name and namespace is another object.

    KMock: dry-run answers are scripted.
    """
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    env.script_dry_run()
    istio_gw = seed.gateway()
    istio_gw["metadata"] = {"name": "web", "namespace": "shop"}
    config = _config(http_route(), reference_grant(), k8s_gateway(), istio_gw, *_services())
    p = plan(config, env.cluster)
    assert [(s.kind, s.ref, s.action, s.api_version) for s in p.steps] == [
        ("Gateway", "Gateway/shop/web", "create", "networking.istio.io/v1"),
        (GATEWAY_API_GATEWAY, f"{GATEWAY_API_GATEWAY}/shop/web", "create", GW),
        # ReferenceGrant is written in the newest served version
        ("ReferenceGrant", "ReferenceGrant/shop/from-edge", "create", GW),
        ("HTTPRoute", "HTTPRoute/shop/web", "create", GW),
    ]
    store = BackupStore()
    first = apply(p, env.cluster, backups=store)
    assert first.ok, first.format()
    stored = env.stored(GATEWAY_API_GATEWAY, "shop", "web")
    assert stored["apiVersion"] == GW
    assert stored["kind"] == "Gateway"
    assert stored["spec"]["gatewayClassName"] == "istio"
    assert env.stored("Gateway", "shop", "web")["spec"]["selector"] == istio_gw["spec"]["selector"]

    # the canary moves to 30 %: one update, diffed
    p2 = plan(_config(http_route(30), *_services()), env.cluster)
    (step,) = p2.steps
    assert (step.kind, step.action) == ("HTTPRoute", "update")
    assert "-      weight: 10\n" in step.diff
    assert "+      weight: 30\n" in step.diff
    report = apply(p2, env.cluster, backups=store)
    assert (
        env.stored("HTTPRoute", "shop", "web")["spec"]["rules"][0]["backendRefs"][1]["weight"] == 30
    )

    undo = rollback(report.backup_id, env.cluster, backups=store)
    assert undo.ok
    restored = env.stored("HTTPRoute", "shop", "web")
    # the real server's CRD adds its defaults (group, kind, a PathPrefix / match): held, not equal
    assert holds(restored, http_route(10))
    assert restored["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
    # and the first apply, undone: every created object is gone, Istio's Gateway too
    assert rollback(first.backup_id, env.cluster, backups=store).ok
    for kind in (GATEWAY_API_GATEWAY, "HTTPRoute", "Gateway"):
        assert env.stored(kind, "shop", "web") is None
    assert env.stored("ReferenceGrant", "shop", "from-edge") is None


def test_route_to_a_live_gateway_is_validated_with_it(make_env: Any) -> None:
    """A lone HTTPRoute whose parent Gateway is live: refused (IL601) until the Gateway is
    there, then planned. KMock: dry-run answers are scripted.
    """
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    env.script_dry_run()
    with pytest.raises(ConfigError) as info:
        plan(_config(http_route(), *_services()), env.cluster)
    assert {f.code for f in info.value.findings} == {"IL601"}
    env.seed(k8s_gateway())
    assert [s.action for s in plan(_config(http_route(), *_services()), env.cluster).steps] == [
        "create"
    ]


def test_import_reads_the_gateway_api_kinds(make_env: Any) -> None:
    """Import lists the Gateway API kinds the cluster serves, next to Istio's."""
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    for obj in seed.topology():
        env.seed(obj)
    env.seed(seed.gateway())
    env.seed(k8s_gateway())
    env.seed(http_route())
    env.seed(reference_grant(GW))  # KMock stores each version apart (it does not convert)
    result = inspect_cluster(env.cluster, "shop")
    keys = [(r.api_version.split("/")[0], r.key) for r in result.config]
    assert ("networking.istio.io", "Gateway/istio-system/web-gateway") in keys
    assert ("gateway.networking.k8s.io", "Gateway/shop/web") in keys
    assert ("gateway.networking.k8s.io", "HTTPRoute/shop/web") in keys
    assert ("gateway.networking.k8s.io", "ReferenceGrant/shop/from-edge") in keys
    # the placeholder traffic goes to a hostname the config routes
    assert result.scenario.traffic[0].host == "shop.example.com"


# the session's real server always has the Gateway API CRDs: it is not a variant of this test
@pytest.mark.parametrize("make_env", ["kmock", "memory"], indirect=True)
def test_cluster_without_gateway_api_crds(make_env: Any) -> None:
    """No Gateway API CRDs: every Gateway API step is rejected with the way out; nothing is
    written; import leaves the kinds out.
    """
    env = make_env()
    env.script_dry_run()
    p = plan(_config(k8s_gateway(), http_route(), *_services()), env.cluster)
    assert [(s.kind, s.action) for s in p.steps] == [
        (GATEWAY_API_GATEWAY, "rejected"),
        ("HTTPRoute", "rejected"),
    ]
    assert "serves no version of HTTPRoute" in (p.steps[1].error or "")
    assert "install the Gateway API CRDs" in (p.steps[1].error or "")
    with pytest.raises(RefusedError):
        apply(p, env.cluster, backups=BackupStore())
    for obj in seed.topology():
        env.seed(obj)
    result = inspect_cluster(env.cluster, "shop")
    assert not [r for r in result.config if r.api_version.startswith("gateway.")]


def test_version_not_served_is_refused(make_env: Any) -> None:
    """A GRPCRoute written as v1alpha2 on CRDs that serve only v1 (v1.6 standard channel) is
    refused with the served versions named, not converted.
    """
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    env.script_dry_run()
    p = plan(
        _config(k8s_gateway(), grpc_route("gateway.networking.k8s.io/v1alpha2"), *_services()),
        env.cluster,
    )
    rejected = [s for s in p.steps if s.action == "rejected"]
    assert [s.kind for s in rejected] == ["GRPCRoute"]
    assert "serves GRPCRoute only as gateway.networking.k8s.io/v1" in (rejected[0].error or "")
    assert "not gateway.networking.k8s.io/v1alpha2" in (rejected[0].error or "")
    ok = plan(_config(k8s_gateway(), grpc_route(GW), *_services()), env.cluster)
    assert [s.action for s in ok.steps] == ["create", "create"]


def test_cli_diff_apply_rollback(tmp_path: Path) -> None:
    """The commands end to end over KMock with the Gateway API CRDs: diff names the Gateway
    API's Gateway apart from Istio's, apply writes both kinds, rollback undoes them; without
    the CRDs, apply refuses (exit 1) and says how to install them.
    """
    from .test_cli import _run

    rules = tmp_path / "rules.yaml"
    rules.write_text(codecs.dumps([k8s_gateway(), http_route(), *_services()]), encoding="utf-8")
    with KMockServer(gateway_api_versions=GATEWAY_API_V1_V1BETA1) as server:
        script_dry_run(server)
        kc = server.kubeconfig(tmp_path / "kc", namespace="shop")
        diff = _run(["diff", str(rules), "--kubeconfig", str(kc)])
        assert diff.exit_code == 0, diff.output
        assert f"create  {GATEWAY_API_GATEWAY}/shop/web" in diff.output
        assert "create  HTTPRoute/shop/web" in diff.output
        applied = _run(["apply", str(rules), "--kubeconfig", str(kc), "--yes"])
        assert applied.exit_code == 0, applied.output
        assert server.stored(GATEWAY_API_GATEWAY, "shop", "web") is not None
        undo = _run(["rollback", "--kubeconfig", str(kc), "--yes"])
        assert undo.exit_code == 0, undo.output
        assert server.stored("HTTPRoute", "shop", "web") is None
    with KMockServer() as bare:
        script_dry_run(bare)
        kc = bare.kubeconfig(tmp_path / "kc2", namespace="shop")
        refused = _run(["apply", str(rules), "--kubeconfig", str(kc), "--yes"])
        assert refused.exit_code == 1
        assert "install the Gateway API CRDs" in refused.output
