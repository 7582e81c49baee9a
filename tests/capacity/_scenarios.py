"""Scenarios the capacity tests share: built from dicts so every number is in sight."""

from __future__ import annotations

from typing import Any

from istiolab.sim.scenario import Scenario, scenario_from_dict

ZERO_NET = {
    "lb_latency": "zero",
    "kube_proxy_latency": "zero",
    "cross_node_latency": "zero",
    "cross_az_latency": "zero",
}


def rules(retries: dict[str, Any] | None, lb: str | None = None) -> dict[str, Any]:
    """A Gateway and a VirtualService sending everything to ``api`` with *retries*."""
    route: dict[str, Any] = {"name": "api", "route": [{"destination": {"host": "api"}}]}
    if retries is not None:
        route["retries"] = retries
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "public", "namespace": "istio-system"},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "api"},
            "spec": {"hosts": ["*"], "gateways": ["istio-system/public"], "http": [route]},
        },
    ]
    if lb is not None:
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "api"},
                "spec": {"host": "api", "trafficPolicy": {"loadBalancer": {"simple": lb}}},
            }
        )
    return {"inline": docs}


def crash_scenario(endpoint_delay_s: float, *, duration_s: float = 20.0) -> Scenario:
    """Two pods behind one route without retries; one crashes at t = 5 s for good."""
    return scenario_from_dict(
        {
            "name": "crash",
            "run": {"duration_s": duration_s, "warmup_s": 1.0, "seed": 3},
            "rules": rules({"attempts": 0}),
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 200}}],
            "aws": ZERO_NET,
            "ingress": {
                "azs": ["a"],
                "nodes_per_az": 1,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "api",
                    "endpoint_delay_s": endpoint_delay_s,
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 2,
                            "concurrency": 100,
                            "service_time": "exp(5ms)",
                        }
                    ],
                }
            ],
            "events": [{"at_s": 5.0, "kind": "pod_crash", "service": "api", "count": 1}],
        }
    )
