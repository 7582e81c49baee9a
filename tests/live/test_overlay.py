"""``istiolab.kube.live.overlay``: files laid over what a cluster serves, on every cluster kind."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from kube import _seed as seed
from kube.conftest import GATEWAY_API_V1_V1BETA1, Env

from istiolab.config import codecs, loads
from istiolab.config.validate import validate
from istiolab.errors import ClusterError
from istiolab.kube.live import LIVE, gateway_findings, overlay


def _files(*objs: dict[str, Any], name: str = "change.yaml") -> Any:
    return loads(codecs.dumps(list(objs)), file=name)


def _live_shop(env: Env) -> None:
    env.seed(seed.gateway())
    env.seed(seed.virtual_service(90, 10))
    env.seed(seed.destination_rule())
    env.seed(
        next(
            o
            for o in seed.topology()
            if o["kind"] == "Service" and o["metadata"]["namespace"] == seed.NS
        )
    )


def _vs(name: str, gateway: str, host: str = "shop.example.com") -> dict[str, Any]:
    vs = copy.deepcopy(seed.virtual_service())
    vs["metadata"]["name"] = name
    vs["spec"]["gateways"] = [gateway]
    vs["spec"]["hosts"] = [host]
    return vs


def test_a_file_replaces_its_live_object(env: Env) -> None:
    """The file's VirtualService stands for the live one: once, from the file, no IL205."""
    _live_shop(env)
    result = overlay(_files(seed.virtual_service(50, 50)), env.cluster)
    assert result.replaced == ("VirtualService/shop/web",)
    assert set(result.live) == {
        "Gateway/istio-system/web-gateway",
        "DestinationRule/shop/web",
        "Service/shop/web",
    }
    vss = [r for r in result.config if r.kind == "VirtualService"]
    assert len(vss) == 1
    assert result.config.origin(vss[0]).file == "change.yaml"  # type: ignore[union-attr]
    assert vss[0].spec.http[0].route[0].weight == 50  # type: ignore[attr-defined]
    found = validate(result.config)
    assert not [f for f in found if f.code == "IL205"]
    # the file's route binds to the live Gateway: nothing is missing
    assert gateway_findings(result.config) == []


def test_without_the_cluster_the_gateway_is_missing(env: Env) -> None:
    """The same file alone: its Gateway lives only in the cluster (IL210 at the file)."""
    _live_shop(env)
    alone = gateway_findings(_files(seed.virtual_service(50, 50)))
    assert [(f.code, f.file) for f in alone] == [("IL210", "change.yaml")]


def test_a_route_bound_to_a_gateway_in_neither_is_reported(env: Env) -> None:
    """A live route and a file route naming a Gateway nowhere: IL210 for each, marked apart."""
    _live_shop(env)
    env.seed(_vs("stale", "istio-system/gone", "old.example.com"))
    files = _files(_vs("new", "istio-system/typo", "new.example.com"))
    result = overlay(files, env.cluster)
    by_resource = {f.resource: f for f in gateway_findings(result.config)}
    assert set(by_resource) == {"VirtualService/shop/stale", "VirtualService/shop/new"}
    assert by_resource["VirtualService/shop/stale"].file == LIVE
    assert by_resource["VirtualService/shop/new"].file == "change.yaml"
    assert "istio-system/typo" in by_resource["VirtualService/shop/new"].message


def test_namespaces_named_by_the_files_are_read(make_env: Callable[..., Env]) -> None:
    """The cluster's namespace is edge; the file's VirtualService is in shop: shop is read."""
    env = make_env(namespace="edge")
    env.seed(seed.gateway())
    env.seed(seed.destination_rule())
    result = overlay(_files(seed.virtual_service()), env.cluster)
    assert result.namespaces == ("edge", "istio-system", "shop")
    assert set(result.live) == {"Gateway/istio-system/web-gateway", "DestinationRule/shop/web"}
    assert gateway_findings(result.config) == []


def test_gateway_api_objects_are_read(make_env: Callable[..., Env]) -> None:
    """A file HTTPRoute whose parent Gateway is live: no IL601; with no such Gateway: IL601."""
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    gw = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "shop"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    env.seed(gw)
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }
    result = overlay(_files(route), env.cluster)
    assert "Gateway/shop/public" in result.live
    assert gateway_findings(result.config) == []
    assert [f.code for f in gateway_findings(_files(route))] == ["IL601"]


def test_an_istio_gateway_file_does_not_replace_a_gateway_api_gateway(
    make_env: Callable[..., Env],
) -> None:
    """Two kinds share the name Gateway: a file of one never stands for a live one of the other."""
    env = make_env(gateway_api=GATEWAY_API_V1_V1BETA1)
    env.seed(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "web-gateway", "namespace": "istio-system"},
            "spec": {
                "gatewayClassName": "istio",
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
        }
    )
    result = overlay(_files(seed.gateway()), env.cluster)
    assert result.replaced == ()
    assert result.live == ("Gateway/istio-system/web-gateway",)


# RBAC refusals are scripted on KMock and modelled in memory; the real server is not a variant
# of this test (rather than a skip under -m peers)
@pytest.mark.parametrize("make_env", ["kmock", "memory"], indirect=True)
def test_a_forbidden_namespace_is_a_note_the_main_one_an_error(env: Env) -> None:
    """RBAC: refusing the gateway namespace is a note; refusing -n's namespace raises."""
    _live_shop(env)
    env.script_forbidden("list", "DestinationRule")
    with pytest.raises(ClusterError, match=r"(?i)forbidden"):
        overlay(_files(seed.virtual_service()), env.cluster)


def test_a_live_service_entry_makes_its_host_known(env: Env) -> None:
    """A route to an external host that a ServiceEntry on the cluster declares is not unknown."""
    _live_shop(env)
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "payments", "namespace": seed.NS},
        "spec": {
            "hosts": ["api.payments.example"],
            "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "resolution": "DNS",
            "location": "MESH_EXTERNAL",
        },
    }
    vs = _vs("pay", "istio-system/web-gateway", host="pay.example.com")
    vs["spec"]["http"] = [{"route": [{"destination": {"host": "api.payments.example"}}]}]
    without = {f.code for f in validate(overlay(_files(vs), env.cluster).config)}
    env.seed(entry)
    result = overlay(_files(vs), env.cluster)
    assert "ServiceEntry/shop/payments" in result.live
    with_entry = {f.code for f in validate(result.config)}
    assert "IL211" in without or "IL004" in without
    assert "IL211" not in with_entry
    assert "IL004" not in with_entry
