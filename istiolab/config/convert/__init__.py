"""Convert Istio 0.2 configuration to modern Istio (``networking.istio.io/v1``).

Input: RouteRules and DestinationPolicies (``config.istio.io/v1alpha2``), Kubernetes Ingresses of
class ``istio`` and the Mixer objects of a 2017 rate limit (``memquota``, ``quota``, ``rule``,
``QuotaSpec``, ``QuotaSpecBinding``). Output: VirtualServices, DestinationRules, one Gateway per
namespace and local-rate-limit EnvoyFilters, written the way an experienced Istio 1.x user writes
them. Everything else (Services, Deployments, modern resources, Ingresses of other classes) passes
through unchanged.

The conversion keeps Istio 0.2 behaviour: :func:`istiolab.envoy.compile.compile` compiles legacy
input by converting it here first, so this package *is* istiolab's implementation of Pilot 0.2.
The rules it follows (``../shared/reference/istio-envoy-aws-facts.md`` §1.8, §1.9, §2.10, and
Pilot 0.2's ``proxy/envoy/{route,ingress,fault,policy,header}.go`` and
``adapter/config/ingress/conversion.go``):

* RouteRules for one destination are ordered by precedence (descending), then by the key
  ``route-rule/<namespace>/<name>``; one HTTP route per rule; the list stops at the first catch-all
  and otherwise ends with the default route (all instances of the service).
* ``match.source`` is not a request match: it chose which proxies got the rule. Rules whose source
  is the ``istio-ingress`` service apply only at the ingress; rules without a source apply in the
  mesh and at the ingress; rules with another source become ``sourceLabels`` in the mesh.
* Each Ingress path takes the destination's ingress route list and intersects every route with the
  path (Pilot's ``CombinePathPrefix``); all routes of a host are then ordered by ``RoutesByPath``.
* Istio 0.2's implicit behaviour is written out unless ``modern_defaults``: the 15 s Envoy route
  timeout, no retries, retry_on ``5xx,connect-failure,refused-stream``, ROUND_ROBIN, and the outlier
  detection Pilot emitted whenever a circuit breaker was set.

Every part that cannot be kept exactly becomes a finding (IL301, IL302, IL304–IL308, IL311, IL312).

One module per job: :mod:`~istiolab.config.convert.routerules` (RouteRule → routes and mesh
VirtualServices), :mod:`~istiolab.config.convert.ingress` (Istio Ingress → Gateway and gateway
VirtualServices), :mod:`~istiolab.config.convert.fault_propagation` (0.2's per-cluster fault
filters), :mod:`~istiolab.config.convert.destination_policy` (DestinationPolicy →
DestinationRule) and :mod:`~istiolab.config.convert.mixer_quota` (Mixer quota → local rate limit
EnvoyFilter), on the shared state of :mod:`~istiolab.config.convert.state` and the naming rules
of :mod:`~istiolab.config.convert.names`. :mod:`~istiolab.config.convert.gatewayapi` converts
VirtualServices and Gateways to and from the Kubernetes Gateway API.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from istiolab.config.base import Resource
from istiolab.config.codecs import RawDocument
from istiolab.config.configset import ConfigSet
from istiolab.config.convert.destination_policy import _DestinationPolicyConverter
from istiolab.config.convert.fault_propagation import _FaultPropagation
from istiolab.config.convert.gatewayapi import (
    GatewayAPIConversion,
    PrefixMode,
    to_gateway_api,
    to_istio,
)
from istiolab.config.convert.ingress import (
    LEGACY_INGRESS_SECRET,
    _IngressConverter,
    combine_path_prefix,
    ingress_path_match,
    is_regular_expression,
    routes_by_path_key,
)
from istiolab.config.convert.mixer_quota import (
    ENVOY_FILTER_VERSION,
    RATELIMIT_FILTER,
    RATELIMIT_TYPE_URL,
    TYPED_STRUCT,
    _MixerQuotaConverter,
)
from istiolab.config.convert.names import (
    API_VERSION,
    ISTIO_INGRESS_CLASS,
    ROOT_NAMESPACE,
    subset_name,
)
from istiolab.config.convert.state import DestKey
from istiolab.config.k8s import IngressV1, IngressV1Beta1
from istiolab.config.legacy import (
    DestinationPolicy,
    MemQuota,
    MixerRule,
    QuotaInstance,
    QuotaSpec,
    QuotaSpecBinding,
    RouteRule,
)
from istiolab.config.model import DestinationRule, EnvoyFilter, Gateway, VirtualService
from istiolab.findings import Finding
from istiolab.profiles import IstioProfile, get_profile
from istiolab.reprs import HTMLRepr

__all__ = [
    "API_VERSION",
    "ENVOY_FILTER_VERSION",
    "ISTIO_INGRESS_CLASS",
    "LEGACY_INGRESS_SECRET",
    "RATELIMIT_FILTER",
    "RATELIMIT_TYPE_URL",
    "ROOT_NAMESPACE",
    "TYPED_STRUCT",
    "Conversion",
    "DestKey",
    "GatewayAPIConversion",
    "combine_path_prefix",
    "convert",
    "ingress_path_match",
    "is_regular_expression",
    "legacy_to_gateway_api",
    "routes_by_path_key",
    "subset_name",
    "to_gateway_api",
    "to_istio",
]


@dataclasses.dataclass(frozen=True)
class Conversion(HTMLRepr):
    """The result of :func:`convert`.

    Attributes:
        config: The converted resources: modern VirtualServices, DestinationRules, Gateways and
            EnvoyFilters, then every non-legacy input (Services, Deployments, modern resources,
            Ingresses of other classes) unchanged, with their origins.
        findings: What could not be kept exactly, what was truncated or dropped, and which
            Istio 0.2 defaults were written out.
    """

    config: ConfigSet
    findings: tuple[Finding, ...]


def convert(
    config: ConfigSet,
    profile: IstioProfile | str | None = "0.2",
    *,
    modern_defaults: bool = False,
    gateway_name: str = "istio-ingress",
    gateway_namespace: str | None = None,
) -> Conversion:
    """Convert legacy Istio 0.2 resources to modern VirtualServices, DestinationRules and Gateways.

    Args:
        config: A loaded config set (legacy and other resources mixed).
        profile: The Istio version whose semantics the legacy input has; None means ``0.2``. Its
            ingress service name, ingress pod labels, route timeout, retry and load-balancer
            defaults and fault-percent truncation are used.
        modern_defaults: Do not write out 0.2's implicit behaviour (15 s timeout, no retries,
            retry_on, ROUND_ROBIN, outlier-detection defaults); the result then uses modern
            Istio's defaults, as a hand-written 1.x config would.
        gateway_name: Name of the Gateway created for Istio Ingresses.
        gateway_namespace: Namespace of that Gateway; default: one Gateway in each namespace
            that has Istio Ingresses.

    Returns:
        The converted config set and the conversion findings.

    Example:
        >>> from istiolab.config import loads
        >>> ingress = '''
        ... apiVersion: extensions/v1beta1
        ... kind: Ingress
        ... metadata: {name: web, annotations: {kubernetes.io/ingress.class: istio}}
        ... spec:
        ...   rules:
        ...   - http: {paths: [{path: /.*, backend: {serviceName: web, servicePort: 80}}]}
        ... '''
        >>> [r.key for r in convert(loads(ingress)).config]
        ['Gateway/default/istio-ingress', 'VirtualService/default/web']
    """
    prof = get_profile(profile if profile is not None else "0.2")
    return _Converter(config, prof, modern_defaults, gateway_name, gateway_namespace).run()


# -- the converter -------------------------------------------------------------------------


class _Converter(
    _IngressConverter, _FaultPropagation, _DestinationPolicyConverter, _MixerQuotaConverter
):
    # -- driver ----------------------------------------------------------------------------

    def run(self) -> Conversion:
        for rr in self.rules:
            self.converted[id(rr)] = self.convert_rule(rr)
        entries = self.ingress_entries()
        self.build_ingress(entries)
        self.build_mesh()
        self.unused_ingress_rules(entries)
        self.name_ingress_routes()
        self.propagate_faults()
        self.destination_policies()
        filters = self.rate_limits()
        gateways = self.gateways()
        return self.assemble(gateways, filters)

    # -- output ----------------------------------------------------------------------------

    def is_converted(self, r: Resource) -> bool:
        if isinstance(r, (RouteRule, DestinationPolicy)):
            return True
        if isinstance(r, (IngressV1Beta1, IngressV1)):
            return r.ingress_class == ISTIO_INGRESS_CLASS
        return isinstance(r, (MemQuota, QuotaInstance, MixerRule, QuotaSpec, QuotaSpecBinding))

    def assemble(self, gateways: list[dict[str, Any]], filters: list[dict[str, Any]]) -> Conversion:
        resources: list[Resource] = []
        origins: list[RawDocument | None] = []

        def add(resource: Resource, origin: RawDocument | None = None) -> None:
            resources.append(resource)
            origins.append(origin)

        for gw in gateways:
            add(Gateway.model_validate(gw))
        # A gateway VirtualService named after its Ingress must not replace the mesh one named
        # after the service (or a VirtualService given in the input).
        taken = {(r.namespace, r.name) for r in self.config.kind(VirtualService)}
        taken |= {(v.namespace, v.name) for v in self.mesh_vss}
        for vs in sorted(self.ingress_vss, key=lambda v: (v.namespace, v.name)):
            base = vs.name
            n = 1
            while (vs.namespace, vs.name) in taken:
                vs.name = f"{base}-ingress" if n == 1 else f"{base}-ingress-{n}"
                n += 1
            taken.add((vs.namespace, vs.name))
        ingress = sorted(self.ingress_vss, key=lambda v: (v.namespace, v.name))
        mesh = sorted(self.mesh_vss, key=lambda v: (v.namespace, v.name))
        for vs in [*ingress, *mesh]:
            add(VirtualService.model_validate(self.virtual_service(vs)))
        drs = sorted(self.drs.values(), key=lambda d: (self.namespace_of(d.host, ""), d.host))
        for dr in drs:
            add(DestinationRule.model_validate(self.destination_rule(dr)))
        for ef in filters:
            add(EnvoyFilter.model_validate(ef))
        for r, o in zip(self.config.resources, self.config.origins, strict=True):
            if not self.is_converted(r):
                add(r, o)
        return Conversion(ConfigSet(tuple(resources), tuple(origins)), tuple(self.findings))


def legacy_to_gateway_api(
    config: ConfigSet, *, prefix_mode: PrefixMode = "path", modern_defaults: bool = True
) -> GatewayAPIConversion:
    """Convert Istio 0.2 RouteRules and Ingresses to the Gateway API, through VirtualServices.

    Args:
        config: A loaded config set with legacy resources.
        prefix_mode: As for :func:`~istiolab.config.convert.gatewayapi.to_gateway_api`.
        modern_defaults: Leave out Istio 0.2's implicit 15 s timeout and "no retries" (the
            default: a Gateway API user gets istiod's defaults); False writes them out, the
            retries then in the experimental ``retry`` field.

    Returns:
        The conversion; the legacy conversion's findings come first.
    """
    legacy = convert(config, modern_defaults=modern_defaults)
    out = to_gateway_api(legacy.config, prefix_mode=prefix_mode)
    return dataclasses.replace(out, findings=(*legacy.findings, *out.findings))
