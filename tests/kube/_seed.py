"""A small EKS-like cluster: two AZs, a dedicated ingress node per AZ, an NLB in front of the
gateway, and a shop namespace with a web service in two versions and its Istio routing.
"""

from __future__ import annotations

from typing import Any

NS = "shop"
GW_NS = "istio-system"


def node(name: str, zone: str | None, cpu: str) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": {"cpu": cpu, "memory": "15Gi"}},
    }


def pod(
    name: str, ns: str, labels: dict[str, str], node_name: str, ready: bool, *, sidecar: bool
) -> dict[str, Any]:
    containers = [{"name": "app", "image": "example/app:1"}]
    if sidecar:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node_name, "containers": containers},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def deployment(
    name: str, ns: str, labels: dict[str, str], replicas: int, containers: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


GW_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
WEB_CONTAINER = {"name": "web", "image": "example/web:1"}


def topology() -> list[dict[str, Any]]:
    """Nodes, the gateway and the shop's workloads (no Istio objects)."""
    proxy = {
        "name": "istio-proxy",
        "image": "docker.io/istio/proxyv2:1.22.3",
        "args": ["proxy", "router", "--concurrency", "2"],
    }
    return [
        node("ingress-a", "us-east-1a", "3920m"),
        node("ingress-b", "us-east-1b", "3920m"),
        node("app-a", "us-east-1a", "7910m"),
        node("app-b", "us-east-1b", "7910m"),
        deployment("istio-ingressgateway", GW_NS, GW_LABELS, 2, [proxy]),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "istio-ingressgateway",
                "namespace": GW_NS,
                "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                    "service.beta.kubernetes.io/aws-load-balancer-attributes": (
                        "load_balancing.cross_zone.enabled=true"
                    ),
                },
            },
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "selector": dict(GW_LABELS),
                "ports": [{"name": "http2", "port": 80, "targetPort": 8080}],
            },
        },
        pod("gw-a", GW_NS, GW_LABELS, "ingress-a", True, sidecar=False),
        pod("gw-b", GW_NS, GW_LABELS, "ingress-b", True, sidecar=False),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        },
        # a real API server requires a container image in a Deployment's pod template
        deployment("web-v1", NS, {"app": "web", "version": "v1"}, 3, [WEB_CONTAINER]),
        deployment("web-v2", NS, {"app": "web", "version": "v2"}, 1, [WEB_CONTAINER]),
        pod("web-v1-a", NS, {"app": "web", "version": "v1"}, "app-a", True, sidecar=True),
        pod("web-v1-b", NS, {"app": "web", "version": "v1"}, "app-b", True, sidecar=True),
        pod("web-v1-c", NS, {"app": "web", "version": "v1"}, "app-a", False, sidecar=True),
        pod("web-v2-a", NS, {"app": "web", "version": "v2"}, "app-b", True, sidecar=True),
    ]


def gateway(host: str = "shop.example.com") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "web-gateway", "namespace": GW_NS},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [host]}
            ],
        },
    }


def virtual_service(
    v1: int = 90, v2: int = 10, *, version: str = "networking.istio.io/v1"
) -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": NS, "labels": {"team": "shop"}},
        "spec": {
            "hosts": ["shop.example.com"],
            "gateways": [f"{GW_NS}/web-gateway"],
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


def destination_rule(*, lb: str | None = None) -> dict[str, Any]:
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
        "metadata": {"name": "web", "namespace": NS, "annotations": {"owner": "shop-team"}},
        "spec": spec,
    }


def envoy_filter() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "web-headers", "namespace": NS},
        "spec": {
            "workloadSelector": {"labels": {"app": "web"}},
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {"context": "SIDECAR_INBOUND"},
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {"name": "envoy.filters.http.lua"},
                    },
                }
            ],
        },
    }


def with_server_fields(obj: dict[str, Any], rv: str = "4711") -> dict[str, Any]:
    """The object as an API server returns it: resourceVersion, uid, managedFields, status."""
    out = dict(obj)
    out["metadata"] = {
        **obj["metadata"],
        "resourceVersion": rv,
        "uid": "6f1c-seeded",
        "generation": 3,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
    }
    out["status"] = {"validationMessages": []}
    return out
