"""Cost-model defaults, with their sources (mirrored in ``sim/calibration/istio-proxy.yaml``).

Istio's published data-plane figures (facts §4, external-truths item 17):

* Istio 1.24: a sidecar uses **0.20 vCPU per 1000 rps** (1 KB HTTP, 2 workers) → 0.20 ms of CPU per
  request; an ingress gateway is the same Envoy, so the default gateway cost is the same.
* Istio 1.20: two proxies add **0.228 ms at p90** → about 0.11 ms of latency per proxy hop beyond
  its CPU time (network stack, queueing in the benchmark).
* Istio 1.9–1.16: 0.35 vCPU per 1000 rps, +2.65 ms p90 (profile ``istio-1.16`` below).

AWS publishes no per-hop latency for ALB/NLB (facts §5.10); the defaults are free parameters of
the order seen in practice and are labelled as such.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ProxyCost:
    """CPU and extra latency of one Envoy hop, in milliseconds."""

    cpu_ms: float
    latency_ms: float
    source: str


PROXY_COSTS: dict[str, ProxyCost] = {
    "istio-1.24": ProxyCost(
        0.20,
        0.11,
        "istio.io performance-and-scalability (1.24): 0.20 vCPU/1000 rps per sidecar; "
        "1.20: +0.228 ms p90 for two proxies",
    ),
    "istio-1.16": ProxyCost(
        0.35,
        1.3,
        "istio.io performance-and-scalability (1.9-1.16): 0.35 vCPU/1000 rps, +2.65 ms p90 "
        "for two proxies",
    ),
    "istio-1.4": ProxyCost(
        0.50, 3.15, "istio.io v1.4 performance: 0.5 vCPU/1000 rps, +6.3 ms p90 for two proxies"
    ),
}
DEFAULT_PROXY = "istio-1.24"

LB_LATENCY_MS = 0.3
"""One AWS LB hop (free parameter; AWS publishes none)."""
KUBE_PROXY_LATENCY_MS = 0.05
"""kube-proxy DNAT on the node (instance targets)."""
CROSS_NODE_LATENCY_MS = 0.1
"""An extra hop between nodes in one AZ."""
CROSS_AZ_LATENCY_MS = 0.6
"""Extra round trip between AZs (free parameter)."""
