"""The Kubernetes kinds istiolab reads and writes: API group, versions, plural, apply order.

Istio's and the Gateway API's kinds are *discovered* (:data:`DISCOVERED_GROUP_VERSIONS` are
probed and the newest served version of each kind is written); the core kinds are assumed
served in their stable version. :data:`APPLY_ORDER` puts the objects that others name first:
GatewayClasses, Gateways, ReferenceGrants and DestinationRules before the routes that name them.

Two kinds share the name ``Gateway``: Istio's (``networking.istio.io``) keeps the key
``Gateway``; the Gateway API's is keyed ``Gateway.gateway.networking.k8s.io`` (kubectl's
``Kind.group`` spelling). :func:`kind_key` gives the key of an object from its apiVersion and
kind; everything in this package that addresses a kind (``get``, ``list``, plan steps, backup
entries) uses the key, and objects keep their Kubernetes ``kind``.

GatewayClass is read (``cluster import``, validation context) but never written: it is
cluster-scoped and Istio installs its own (``istio``, ``istio-waypoint``, ...), so an
application's config names one rather than owning it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = [
    "APPLY_ORDER",
    "DISCOVERED_GROUP_VERSIONS",
    "GATEWAY_API_GATEWAY",
    "GATEWAY_API_GROUP_VERSIONS",
    "ISTIO_GROUP_VERSIONS",
    "KINDS",
    "KindInfo",
    "kind_info",
    "kind_key",
    "split_api_version",
]


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """What the API needs to address a kind.

    Attributes:
        kind: The key istiolab addresses the kind by: the Kubernetes kind (``VirtualService``),
            or ``Kind.group`` where two groups share a kind name
            (``Gateway.gateway.networking.k8s.io``).
        api_versions: ``group/version`` strings istiolab knows, newest first.
        plural: The resource name in URLs (``virtualservices``).
        namespaced: Namespaced (True) or cluster-scoped.
        istio: An Istio kind, found by discovery.
        writable: ``apply`` writes it (others are read-only context).
        gateway_api: A Gateway API kind (``gateway.networking.k8s.io``), found by discovery.
        name: The Kubernetes kind when it differs from :attr:`kind` (``Gateway``).
    """

    kind: str
    api_versions: tuple[str, ...]
    plural: str
    namespaced: bool = True
    istio: bool = False
    writable: bool = False
    gateway_api: bool = False
    name: str = ""

    @property
    def k8s_kind(self) -> str:
        """The ``kind`` objects carry (``Gateway`` for both Gateway kinds)."""
        return self.name or self.kind

    @property
    def discovered(self) -> bool:
        """Served only when a CRD is installed: its versions come from discovery."""
        return self.istio or self.gateway_api

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
_GW = "gateway.networking.k8s.io"
# Served versions of the standard channel's CRDs (gateway-api v1.6, config/crd/standard/):
# GatewayClass, Gateway and HTTPRoute serve v1 and v1beta1; GRPCRoute v1 (v1alpha2 before
# v1.2); ReferenceGrant v1beta1 and, since v1.5, v1.
_GW_V1_BETA = (f"{_GW}/v1", f"{_GW}/v1beta1")
GATEWAY_API_GATEWAY = f"Gateway.{_GW}"
"""The key of the Gateway API's Gateway (Istio's Gateway is keyed ``Gateway``)."""

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
        KindInfo("ServiceEntry", _NETWORKING, "serviceentries", istio=True, writable=True),
        KindInfo("DestinationPolicy", _LEGACY, "destinationpolicies", istio=True, writable=True),
        KindInfo("RouteRule", _LEGACY, "routerules", istio=True, writable=True),
        KindInfo(
            "Ingress",
            ("networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"),
            "ingresses",
            writable=True,
        ),
        KindInfo(
            "GatewayClass",
            _GW_V1_BETA,
            "gatewayclasses",
            namespaced=False,
            gateway_api=True,
        ),
        KindInfo(
            GATEWAY_API_GATEWAY,
            _GW_V1_BETA,
            "gateways",
            gateway_api=True,
            writable=True,
            name="Gateway",
        ),
        KindInfo("ReferenceGrant", _GW_V1_BETA, "referencegrants", gateway_api=True, writable=True),
        KindInfo("HTTPRoute", _GW_V1_BETA, "httproutes", gateway_api=True, writable=True),
        KindInfo(
            "GRPCRoute",
            (f"{_GW}/v1", f"{_GW}/v1alpha2"),
            "grpcroutes",
            gateway_api=True,
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
    GATEWAY_API_GATEWAY,
    "ReferenceGrant",
    "HTTPRoute",
    "GRPCRoute",
)
"""Kinds ``apply`` writes, in the order it writes them (rollback undoes them in reverse)."""

ISTIO_GROUP_VERSIONS: tuple[str, ...] = (*_NETWORKING, *_LEGACY)
"""The Istio API group/versions probed by discovery, newest first within a group."""

GATEWAY_API_GROUP_VERSIONS: tuple[str, ...] = (f"{_GW}/v1", f"{_GW}/v1beta1", f"{_GW}/v1alpha2")
"""The Gateway API group/versions probed by discovery, newest first."""

DISCOVERED_GROUP_VERSIONS: tuple[str, ...] = (*ISTIO_GROUP_VERSIONS, *GATEWAY_API_GROUP_VERSIONS)
"""Every group/version probed by discovery."""


def kind_key(kind: str, api_version: str | None = None) -> str:
    """The key istiolab addresses an object's kind by (see the module docstring).

    Args:
        kind: The object's ``kind``.
        api_version: Its ``apiVersion``; only the group matters.

    Returns:
        ``Gateway.gateway.networking.k8s.io`` for the Gateway API's Gateway, else *kind*.
    """
    if kind == "Gateway" and api_version and split_api_version(api_version)[0] == _GW:
        return GATEWAY_API_GATEWAY
    return kind


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
    if not info.discovered:
        return info.api_versions[0]
    versions = served.get(kind, ())
    for v in info.api_versions:
        if v in versions:
            return v
    return None
