"""Names the conversion writes and how it names services, subsets and hosts.

API versions, the ingress class Pilot 0.2 served, the root namespace; subset names from labels,
DNS labels, service FQDNs and how a 1.x user refers to a service from a namespace.
"""

from __future__ import annotations

import re

from istiolab.config.hosts import DOMAIN

API_VERSION = "networking.istio.io/v1"
"""apiVersion of the VirtualServices, DestinationRules and Gateways written."""
ISTIO_INGRESS_CLASS = "istio"
"""The ingress class Pilot 0.2 processed (``ingressClass``, STRICT mode)."""
ROOT_NAMESPACE = "istio-system"
"""Where the ingress gateway pods (and their EnvoyFilters) live."""


def subset_name(labels: dict[str, str]) -> str:
    """Subset name for route labels: ``v1`` for ``{version: v1}``, else ``k-v`` pairs joined."""
    if set(labels) == {"version"}:
        return _dns_label(labels["version"])
    return _dns_label("-".join(f"{k}-{v}" for k, v in sorted(labels.items())))


def _dns_label(text: str) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", out)[:63].strip("-") or "x"


def _host_label(host: str) -> str:
    return "wildcard" if host == "*" else _dns_label(host.replace("*", "wildcard"))


def _service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.{DOMAIN}"


def _split_fqdn(fqdn: str) -> tuple[str, str] | None:
    """``(name, namespace)`` of a cluster-local service FQDN, else None."""
    suffix = "." + DOMAIN
    if fqdn.endswith(suffix):
        parts = fqdn[: -len(suffix)].split(".")
        if len(parts) == 2:
            return parts[0], parts[1]
    return None


def _ref(fqdn: str, namespace: str) -> str:
    """How a 1.x user names a service from *namespace*: short name there, else the FQDN.

    (``name.namespace`` is not used: istiod takes any host with a dot as fully qualified.)
    """
    parts = _split_fqdn(fqdn)
    if parts is not None and parts[1] == namespace:
        return parts[0]
    return fqdn


def _labels_key(labels: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))
