"""Kubernetes resources istiolab reads: Ingress, Service, Deployment, Pod.

Ingress is modelled in full (``extensions/v1beta1`` as in the seed, ``networking.k8s.io/v1beta1``
and ``networking.k8s.io/v1``). Service and Deployment are modelled as far as routing needs them
(ports, selectors, replicas, pod labels); their other fields are accepted and kept.

Integer ranges are those of ``k8s.io/api`` (``core/v1/types.go``, ``apps/v1/types.go``,
``networking/v1/types.go``) as the API server validates them: ``int32`` ports 1..65535
(``validation.IsValidPortNum``), ``int32`` replicas ≥ 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from istiolab.config.base import (
    Data,
    IstioModel,
    NonNegativeInt32,
    OptionalPort,
    Port,
    PortOrName,
    Resource,
)

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


# -- Ingress (extensions/v1beta1, networking.k8s.io/v1beta1) -------------------------------


class IngressBackendV1Beta1(IstioModel):
    """``serviceName`` + ``servicePort`` (number or name)."""

    service_name: str | None = None
    service_port: PortOrName | None = None  # IntOrString: a port 1..65535 or a port name
    resource: dict[str, Data] | None = None


class HTTPIngressPathV1Beta1(IstioModel):
    """A path and its backend."""

    path: str | None = None
    path_type: Literal["Exact", "Prefix", "ImplementationSpecific"] | None = None
    backend: IngressBackendV1Beta1


class HTTPIngressRuleValueV1Beta1(IstioModel):
    """HTTP paths of a rule."""

    paths: list[HTTPIngressPathV1Beta1]


class IngressRuleV1Beta1(IstioModel):
    """A host and its paths."""

    host: str | None = None
    http: HTTPIngressRuleValueV1Beta1 | None = None


class IngressTLS(IstioModel):
    """TLS hosts and secret."""

    hosts: list[str] | None = None
    secret_name: str | None = None


class IngressSpecV1Beta1(IstioModel):
    """Ingress spec (beta)."""

    ingress_class_name: str | None = None
    backend: IngressBackendV1Beta1 | None = None
    rules: list[IngressRuleV1Beta1] | None = None
    tls: list[IngressTLS] | None = None


# -- Ingress (networking.k8s.io/v1) ---------------------------------------------------------


class ServiceBackendPort(IstioModel):
    """Port by number or name."""

    number: Port | None = None  # int32, 1..65535
    name: str | None = None


class IngressServiceBackend(IstioModel):
    """A Service backend."""

    name: str
    port: ServiceBackendPort | None = None


class IngressBackendV1(IstioModel):
    """``service`` or ``resource``."""

    service: IngressServiceBackend | None = None
    resource: dict[str, Data] | None = None


class HTTPIngressPathV1(IstioModel):
    """A path, its type and backend."""

    path: str | None = None
    path_type: Literal["Exact", "Prefix", "ImplementationSpecific"] = "ImplementationSpecific"
    backend: IngressBackendV1


class HTTPIngressRuleValueV1(IstioModel):
    """HTTP paths of a rule."""

    paths: list[HTTPIngressPathV1]


class IngressRuleV1(IstioModel):
    """A host and its paths."""

    host: str | None = None
    http: HTTPIngressRuleValueV1 | None = None


class IngressSpecV1(IstioModel):
    """Ingress spec (v1)."""

    ingress_class_name: str | None = None
    default_backend: IngressBackendV1 | None = None
    rules: list[IngressRuleV1] | None = None
    tls: list[IngressTLS] | None = None


@dataclasses.dataclass(frozen=True)
class IngressPath:
    """One Ingress path, normalised across API versions.

    Attributes:
        rule_index: Index in ``spec.rules`` (-1 for the default backend).
        path_index: Index in ``http.paths`` (-1 for the default backend).
        host: Host, or None for any host.
        path: The path as written ("" when absent).
        path_type: ``Exact``, ``Prefix``, ``ImplementationSpecific`` or None (beta, unset).
        service: Backend Service name.
        port: Backend port number or name.
        field: Field path of this entry, for findings.
    """

    rule_index: int
    path_index: int
    host: str | None
    path: str
    path_type: str | None
    service: str
    port: int | str | None
    field: str


class _IngressMixin:
    metadata: Any

    @property
    def ingress_class(self) -> str | None:
        """``spec.ingressClassName`` or the ``kubernetes.io/ingress.class`` annotation."""
        spec = self.spec  # type: ignore[attr-defined]
        cls: str | None = spec.ingress_class_name
        return cls or self.metadata.annotations.get(INGRESS_CLASS_ANNOTATION)


class IngressV1Beta1(_IngressMixin, Resource):
    """Kubernetes Ingress, ``extensions/v1beta1`` or ``networking.k8s.io/v1beta1``."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (
        "extensions/v1beta1",
        "networking.k8s.io/v1beta1",
    )
    KIND: ClassVar[str] = "Ingress"

    spec: IngressSpecV1Beta1

    def paths(self) -> list[IngressPath]:
        """Every path with its backend, the default backend last."""
        out: list[IngressPath] = []
        for i, rule in enumerate(self.spec.rules or []):
            for j, p in enumerate(rule.http.paths if rule.http else []):
                out.append(
                    IngressPath(
                        i,
                        j,
                        rule.host,
                        p.path or "",
                        p.path_type,
                        p.backend.service_name or "",
                        p.backend.service_port,
                        f"spec.rules[{i}].http.paths[{j}]",
                    )
                )
        b = self.spec.backend
        if b is not None and b.service_name:
            out.append(
                IngressPath(-1, -1, None, "", None, b.service_name, b.service_port, "spec.backend")
            )
        return out


class IngressV1(_IngressMixin, Resource):
    """Kubernetes Ingress, ``networking.k8s.io/v1``."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("networking.k8s.io/v1",)
    KIND: ClassVar[str] = "Ingress"

    spec: IngressSpecV1

    def paths(self) -> list[IngressPath]:
        """Every path with its backend, the default backend last."""
        out: list[IngressPath] = []
        for i, rule in enumerate(self.spec.rules or []):
            for j, p in enumerate(rule.http.paths if rule.http else []):
                svc = p.backend.service
                if svc is None:
                    continue
                port = svc.port.number or svc.port.name if svc.port else None
                out.append(
                    IngressPath(
                        i,
                        j,
                        rule.host,
                        p.path or "",
                        p.path_type,
                        svc.name,
                        port,
                        f"spec.rules[{i}].http.paths[{j}]",
                    )
                )
        d = self.spec.default_backend
        if d is not None and d.service is not None:
            port = d.service.port.number or d.service.port.name if d.service.port else None
            out.append(
                IngressPath(-1, -1, None, "", None, d.service.name, port, "spec.defaultBackend")
            )
        return out


Ingress = IngressV1Beta1 | IngressV1


# -- Service and Deployment -----------------------------------------------------------------


class ServicePort(IstioModel):
    """A Service port."""

    model_config = ConfigDict(extra="allow")

    port: Port  # int32, 1..65535
    name: str | None = None
    protocol: str | None = None
    target_port: PortOrName | None = None  # IntOrString: 1..65535 or a port name
    node_port: OptionalPort | None = None  # int32; 0 lets the API server choose


class ServiceSpec(IstioModel):
    """The parts of a Service spec routing needs; other fields are kept."""

    model_config = ConfigDict(extra="allow")

    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    type: str | None = None
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    load_balancer_class: str | None = None


class Service(Resource):
    """Kubernetes ``v1`` Service."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    KIND: ClassVar[str] = "Service"

    spec: ServiceSpec = Field(default_factory=ServiceSpec)

    def fqdn(self, domain: str = "svc.cluster.local") -> str:
        """``name.namespace.svc.cluster.local``."""
        return f"{self.name}.{self.namespace}.{domain}"


class PodTemplateMeta(IstioModel):
    """Pod template metadata."""

    model_config = ConfigDict(extra="allow")

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplate(IstioModel):
    """Pod template (its spec is kept as data)."""

    model_config = ConfigDict(extra="allow")

    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: dict[str, Data] | None = None


class LabelSelector(IstioModel):
    """Label selector."""

    model_config = ConfigDict(extra="allow")

    match_labels: dict[str, str] | None = None


class DeploymentSpec(IstioModel):
    """The parts of a Deployment spec routing needs; other fields are kept."""

    model_config = ConfigDict(extra="allow")

    replicas: NonNegativeInt32 = 1  # int32
    selector: LabelSelector | None = None
    template: PodTemplate = Field(default_factory=PodTemplate)


class Deployment(Resource):
    """Kubernetes Deployment (``apps/v1`` and the 2017 beta groups)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = (
        "apps/v1",
        "apps/v1beta1",
        "apps/v1beta2",
        "extensions/v1beta1",
    )
    KIND: ClassVar[str] = "Deployment"

    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)

    @property
    def pod_labels(self) -> dict[str, str]:
        """Labels of the pods it creates."""
        return dict(self.spec.template.metadata.labels)


class Pod(Resource):
    """Kubernetes ``v1`` Pod: read for its labels (gateway selectors, subsets) and ports.

    Its spec is kept as data.
    """

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    KIND: ClassVar[str] = "Pod"

    spec: dict[str, Data] | None = None

    @property
    def pod_labels(self) -> dict[str, str]:
        """The Pod's own labels."""
        return dict(self.metadata.labels)
