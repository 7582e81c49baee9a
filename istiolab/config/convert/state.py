"""The converter's shared state and the intermediate form of what it builds.

Each job of the conversion is a mixin of :class:`_ConverterState`: RouteRules
(:mod:`~istiolab.config.convert.routerules`), Istio Ingresses
(:mod:`~istiolab.config.convert.ingress`), fault filters
(:mod:`~istiolab.config.convert.fault_propagation`), DestinationPolicies
(:mod:`~istiolab.config.convert.destination_policy`) and Mixer quotas
(:mod:`~istiolab.config.convert.mixer_quota`). The state holds the input, the findings and the
VirtualServices and DestinationRules being built; ``istiolab.config.convert._Converter`` combines
the mixins and runs the jobs in order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.config.convert.names import (
    ISTIO_INGRESS_CLASS,
    ROOT_NAMESPACE,
    _labels_key,
    _split_fqdn,
    subset_name,
)
from istiolab.config.k8s import IngressV1, IngressV1Beta1, Service
from istiolab.config.legacy import DestinationPolicy, IstioService, RouteRule
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile, get_profile

DestKey = tuple[str, int | None, tuple[tuple[str, str], ...]]
"""An Envoy cluster as Pilot 0.2 built it: (service FQDN, port, subset labels)."""


# -- intermediate form ---------------------------------------------------------------------


@dataclasses.dataclass
class _Route:
    """One converted RouteRule (or the default route), before it is placed in a VirtualService.

    ``scope`` is ``all`` (no source), ``ingress`` (source is the ingress), ``source`` (another
    source, expressed as ``source_labels``) or ``none`` (source cannot be expressed).
    """

    name: str
    rule: RouteRule | None
    host: str
    scope: str
    uri: tuple[str, str] | None = None
    match: dict[str, Any] = dataclasses.field(default_factory=dict)
    source_labels: dict[str, str] | None = None
    dests: list[tuple[str, dict[str, str] | None, int | None]] = dataclasses.field(
        default_factory=list
    )
    redirect: dict[str, Any] | None = None
    rewrite: dict[str, Any] | None = None
    fault: dict[str, Any] | None = None
    mirror: str | None = None
    cors: dict[str, Any] | None = None
    append_headers: dict[str, str] | None = None
    timeout: str | None = None
    timeout_default: bool = False
    retries: dict[str, Any] | None = None
    retries_default: bool = False

    @property
    def catch_all(self) -> bool:
        """Pilot's ``CatchAll``: no header conditions, no exact path, prefix ``/``."""
        return not self.match and (self.uri is None or self.uri == ("prefix", "/"))

    @property
    def fault_headers(self) -> dict[str, Any]:
        """The header conditions Pilot 0.2 put on this rule's fault filter (all but the path)."""
        out = dict(self.match)
        if self.uri is not None and self.uri[0] == "regex":
            out["uri"] = {"regex": self.uri[1]}  # 0.2 matched a uri regex as a header
        return out


@dataclasses.dataclass
class _Placed:
    """A route rendered into a VirtualService, with what fault propagation needs."""

    data: dict[str, Any]
    origin: _Route
    dests: tuple[DestKey, ...]
    fault_headers: dict[str, Any]


@dataclasses.dataclass
class _VS:
    """A VirtualService being built."""

    name: str
    namespace: str
    hosts: list[str]
    gateways: list[str] | None
    source: Resource
    routes: list[_Placed] = dataclasses.field(default_factory=list)
    tls: bool = False
    ingresses: list[IngressV1Beta1 | IngressV1] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _DR:
    """A DestinationRule being built for one service FQDN."""

    host: str
    source: Resource
    subsets: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    by_labels: dict[tuple[tuple[str, str], ...], str] = dataclasses.field(default_factory=dict)
    top: dict[str, Any] | None = None
    top_source: DestinationPolicy | None = None
    subset_policy: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    outlier_defaults: list[str] = dataclasses.field(default_factory=list)


def _services_of(rr: RouteRule) -> list[IstioService]:
    spec = rr.spec
    out = [spec.destination]
    if spec.match and spec.match.source:
        out.append(spec.match.source)
    out.extend(d.destination for d in spec.route or [] if d.destination)
    if spec.mirror:
        out.append(spec.mirror)
    return out


class _ConverterState:
    """What every conversion job reads and writes: the input, the findings, the objects built."""

    def __init__(
        self,
        config: ConfigSet,
        profile: IstioProfile,
        modern_defaults: bool,
        gateway_name: str,
        gateway_namespace: str | None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.modern = modern_defaults
        self.gateway_name = gateway_name
        self.gateway_namespace = gateway_namespace
        # the modern ingress gateway's pod labels come from the newest profile
        self.gateway_selector = dict(get_profile(None).gateway_selector)
        self.findings: list[Finding] = []
        self.services = {s.fqdn(): s for s in config.kind(Service)}
        self.explicit_ns = self._explicit_namespaces()
        self.converted: dict[int, _Route] = {}
        self.drs: dict[str, _DR] = {}
        self.ingress_vss: list[_VS] = []
        self.mesh_vss: list[_VS] = []
        self.ingress_lists: dict[str, list[_Route]] = {}
        # RouteRules in Pilot 0.2's SortRouteRules order
        self.rules = sorted(
            config.kind(RouteRule),
            key=lambda r: (-r.spec.precedence, f"route-rule/{r.namespace}/{r.name}"),
        )

    # -- helpers ---------------------------------------------------------------------------

    def note(
        self,
        code: str,
        resource: Resource,
        path: tuple[str | int, ...],
        message: str,
        fix: str,
        severity: Severity | None = None,
    ) -> None:
        f = self.config.finding(code, resource, path, message, fix)
        if severity is not None:
            f = dataclasses.replace(f, severity=severity)
        self.findings.append(f)

    def _explicit_namespaces(self) -> set[str]:
        """Namespaces the input names explicitly; output in another one omits ``namespace``."""
        out = {r.metadata.namespace for r in self.config if r.metadata.namespace}
        for rr in self.config.kind(RouteRule):
            out.update(s.namespace for s in _services_of(rr) if s.namespace)
        for dp in self.config.kind(DestinationPolicy):
            if dp.spec.destination.namespace:
                out.add(dp.spec.destination.namespace)
        if self.gateway_namespace:
            out.add(self.gateway_namespace)
        out.add(ROOT_NAMESPACE)
        return {ns for ns in out if ns}

    def meta(self, name: str, namespace: str) -> dict[str, str]:
        if namespace in self.explicit_ns:
            return {"name": name, "namespace": namespace}
        return {"name": name}

    def namespace_of(self, fqdn: str, fallback: str) -> str:
        parts = _split_fqdn(fqdn)
        return parts[1] if parts else fallback

    def dr_for(self, fqdn: str, source: Resource) -> _DR:
        if fqdn not in self.drs:
            self.drs[fqdn] = _DR(fqdn, source)
        return self.drs[fqdn]

    def subset(self, fqdn: str, labels: dict[str, str], source: Resource) -> str:
        dr = self.dr_for(fqdn, source)
        key = _labels_key(labels)
        if key not in dr.by_labels:
            base = name = subset_name(labels)
            n = 2
            while name in dr.subsets:
                name = f"{base}-{n}"
                n += 1
            dr.by_labels[key] = name
            dr.subsets[name] = dict(labels)
        return dr.by_labels[key]

    def istio_ingresses(self) -> list[IngressV1Beta1 | IngressV1]:
        return [i for i in self.ingresses() if i.ingress_class == ISTIO_INGRESS_CLASS]

    def ingresses(self) -> list[IngressV1Beta1 | IngressV1]:
        return [r for r in self.config if isinstance(r, (IngressV1Beta1, IngressV1))]
