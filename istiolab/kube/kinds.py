"""The Kubernetes kinds istiolab reads and writes: API group, versions, plural, apply order.

Istio's kinds are *discovered* (:data:`ISTIO_GROUP_VERSIONS` are probed and the newest served
version of each kind is written); the core kinds are assumed served in their stable version.
:data:`APPLY_ORDER` puts the objects that others name first: Gateways and DestinationRules
before the VirtualServices that name them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = [
    "APPLY_ORDER",
    "ISTIO_GROUP_VERSIONS",
    "KINDS",
    "KindInfo",
    "kind_info",
    "split_api_version",
]


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """What the API needs to address a kind.

    Attributes:
        kind: The kind (``VirtualService``).
        api_versions: ``group/version`` strings istiolab knows, newest first.
        plural: The resource name in URLs (``virtualservices``).
        namespaced: Namespaced (True) or cluster-scoped.
        istio: An Istio kind, found by discovery.
        writable: ``apply`` writes it (others are read-only context).
    """

    kind: str
    api_versions: tuple[str, ...]
    plural: str
    namespaced: bool = True
    istio: bool = False
    writable: bool = False

    def resource(self, api_version: str | None = None) -> str:
        """``plural.group`` (``virtualservices.networking.istio.io``; ``services`` for core)."""
        group, _ = split_api_version(api_version or self.api_versions[0])
        return f"{self.plural}.{group}" if group else self.plural


def split_api_version(api_version: str) -> tuple[str, str]:
    """``networking.istio.io/v1`` → ``("networking.istio.io", "v1")``; ``v1`` → ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


_NETWORKING = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)
_LEGACY = ("config.istio.io/v1alpha2",)

KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in (
        KindInfo("Gateway", _NETWORKING, "gateways", istio=True, writable=True),
        KindInfo("DestinationRule", _NETWORKING, "destinationrules", istio=True, writable=True),
        KindInfo(
            "EnvoyFilter",
            ("networking.istio.io/v1alpha3",),
            "envoyfilters",
            istio=True,
            writable=True,
        ),
        KindInfo("VirtualService", _NETWORKING, "virtualservices", istio=True, writable=True),
        KindInfo("DestinationPolicy", _LEGACY, "destinationpolicies", istio=True, writable=True),
        KindInfo("RouteRule", _LEGACY, "routerules", istio=True, writable=True),
        KindInfo(
            "Ingress",
            ("networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"),
            "ingresses",
            writable=True,
        ),
        KindInfo("Service", ("v1",), "services"),
        KindInfo("Deployment", ("apps/v1",), "deployments"),
        KindInfo("Pod", ("v1",), "pods"),
        KindInfo("Node", ("v1",), "nodes", namespaced=False),
    )
}
"""Every kind the cluster layer handles, by kind name."""

APPLY_ORDER: tuple[str, ...] = (
    "Gateway",
    "DestinationRule",
    "EnvoyFilter",
    "VirtualService",
    "DestinationPolicy",
    "RouteRule",
    "Ingress",
)
"""Kinds ``apply`` writes, in the order it writes them (rollback undoes them in reverse)."""

ISTIO_GROUP_VERSIONS: tuple[str, ...] = (*_NETWORKING, *_LEGACY)
"""The Istio API group/versions probed by discovery, newest first within a group."""


def kind_info(kind: str) -> KindInfo:
    """The :class:`KindInfo` of *kind*.

    Raises:
        KeyError: With the known kinds, when istiolab does not handle *kind*.
    """
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(
            f"istiolab does not read or write {kind!r} in a cluster (kinds: {', '.join(KINDS)})"
        ) from None


def newest_served(kind: str, served: Mapping[str, tuple[str, ...]]) -> str | None:
    """The apiVersion to write *kind* with: the newest served one (Istio), the stable one (core).

    Returns:
        ``group/version``, or None when the cluster serves no version of an Istio kind.
    """
    info = kind_info(kind)
    if not info.istio:
        return info.api_versions[0]
    versions = served.get(kind, ())
    for v in info.api_versions:
        if v in versions:
            return v
    return None
