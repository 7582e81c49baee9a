"""Istio and Kubernetes configuration: load, validate, convert.

``load`` / ``loads`` read YAML into a :class:`ConfigSet`; ``validate`` returns findings;
``convert`` turns legacy RouteRules, DestinationPolicies and Istio Ingresses into modern
VirtualServices, DestinationRules and Gateways.
"""

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet, dumps, from_documents, load, loads
from istiolab.config.k8s import Deployment, IngressV1, IngressV1Beta1, Service
from istiolab.config.legacy import DestinationPolicy, RouteRule
from istiolab.config.model import DestinationRule, EnvoyFilter, Gateway, VirtualService

__all__ = [
    "ConfigSet",
    "Deployment",
    "DestinationPolicy",
    "DestinationRule",
    "EnvoyFilter",
    "Gateway",
    "IngressV1",
    "IngressV1Beta1",
    "Resource",
    "RouteRule",
    "Service",
    "VirtualService",
    "dumps",
    "from_documents",
    "load",
    "loads",
]
