"""Attachment of routes to listeners and the would-be ``status.parents`` conditions.

istio/istio ``pilot/pkg/config/kube/gateway/conversion.go`` (``referenceAllowed``,
``hostnameAllowedByIsolation``) and ``conditions.go`` (``createRouteStatus``).
"""

from __future__ import annotations

import textwrap

from istiolab.config import loads
from istiolab.config.gatewayapi import HTTPRoute
from istiolab.config.gatewayapi_routing import GatewayAPI, ParentStatus


def status(gateway_listeners: str, route: str, extra: str = "") -> list[ParentStatus]:
    """The route's parent statuses with a Gateway infra/gw of *gateway_listeners*."""
    text = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
        "metadata: {name: gw, namespace: infra}\n"
        "spec:\n  gatewayClassName: istio\n  listeners:\n"
        + textwrap.indent(textwrap.dedent(gateway_listeners).strip("\n"), "  ")
        + "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        + textwrap.dedent(route).strip("\n")
        + "\n"
        + extra
    )
    cs = loads(text)
    return GatewayAPI(cs).parents(cs.kind(HTTPRoute)[0])


HTTP = "- {name: http, port: 80, protocol: HTTP}"
ROUTE_IN = """
metadata: {{name: r, namespace: {ns}}}
spec:
  parentRefs: [{{name: gw, namespace: infra{more}}}]
  hostnames: [{hosts}]
  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]
"""


def route(ns: str = "infra", more: str = "", hosts: str = "shop.example.com") -> str:
    return ROUTE_IN.format(ns=ns, more=more, hosts=hosts)


def accepted(p: ParentStatus) -> tuple[bool, str]:
    return p.accepted.status, p.accepted.reason


def test_same_namespace_is_the_default() -> None:
    (p,) = status(HTTP, route("infra"))
    assert accepted(p) == (True, "Accepted")
    assert [a.listener.name for a in p.attachments] == ["http"]
    (p,) = status(HTTP, route("shop"))
    assert accepted(p) == (False, "NotAllowedByListeners")
    assert "namespace 'shop' is not allowed" in p.accepted.message
    assert p.attachments == ()


def test_from_all_and_from_selector() -> None:
    listener = "- {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}"
    assert accepted(status(listener, route("shop"))[0]) == (True, "Accepted")
    selector = (
        "- name: http\n  port: 80\n  protocol: HTTP\n  allowedRoutes:\n"
        "    namespaces: {from: Selector, selector: {matchLabels: {ingress: public}}}"
    )
    labelled = (
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {ingress: public}}\n"
    )
    unlabelled = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    assert accepted(status(selector, route("shop"), labelled)[0]) == (True, "Accepted")
    assert accepted(status(selector, route("shop"), unlabelled)[0])[1] == "NotAllowedByListeners"
    # the API server's kubernetes.io/metadata.name label, even without a Namespace object
    by_name = selector.replace("{ingress: public}", "{kubernetes.io/metadata.name: shop}")
    assert accepted(status(by_name, route("shop"))[0]) == (True, "Accepted")


def test_section_name_and_port() -> None:
    two = HTTP + "\n- {name: alt, port: 8080, protocol: HTTP}"
    (p,) = status(two, route(more=", sectionName: alt"))
    assert [a.listener.name for a in p.attachments] == ["alt"]
    (p,) = status(two, route(more=", sectionName: nope"))
    assert accepted(p) == (False, "NoMatchingParent")
    assert "sectionName 'nope' not found" in p.accepted.message
    (p,) = status(two, route(more=", port: 9090"))
    assert accepted(p) == (False, "NoMatchingParent")
    (p,) = status(two, route())
    assert p.accepted.message == "Route was valid, bound to 2 parents"


def test_hostname_intersection_and_narrowing() -> None:
    wild = "- {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}"
    (p,) = status(wild, route(hosts="shop.example.com"))
    assert p.attachments[0].hostnames == ("shop.example.com",)
    (p,) = status(wild, route(hosts="example.com"))
    assert accepted(p) == (False, "NoMatchingListenerHostname")
    specific = "- {name: http, port: 80, protocol: HTTP, hostname: shop.example.com}"
    (p,) = status(specific, route(hosts="'*.example.com'"))
    assert p.attachments[0].hostnames == ("shop.example.com",)  # the listener's, narrower
    # hostname problems are reported before namespace ones (referenceAllowed's order)
    (p,) = status(wild, route("shop", hosts="example.com"))
    assert accepted(p) == (False, "NoMatchingListenerHostname")


def test_least_severe_listener_result_is_reported() -> None:
    listeners = (
        "- {name: a, port: 80, protocol: HTTP, hostname: a.example.com}\n"
        "- {name: b, port: 81, protocol: HTTP, hostname: shop.example.com}"
    )
    (p,) = status(listeners, route("shop"))
    # listener a: no hostname match; b: hostname matches but the namespace is not allowed
    assert accepted(p) == (False, "NotAllowedByListeners")


def test_kinds() -> None:
    grpc_only = (
        "- {name: http, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}"
    )
    (p,) = status(grpc_only, route())
    assert accepted(p) == (False, "NotAllowedByListeners")
    assert "kind HTTPRoute is not allowed" in p.accepted.message
    tcp = "- {name: tcp, port: 80, protocol: TCP}"
    assert accepted(status(tcp, route())[0])[1] == "NotAllowedByListeners"


def test_missing_gateway() -> None:
    (p,) = status(HTTP, route().replace("name: gw", "name: nope"))
    assert accepted(p) == (False, "NoMatchingParent")
    assert "gateway infra/nope not found" in p.accepted.message


def test_wildcard_listener_leaves_hostnames_of_specific_listeners_to_them() -> None:
    listeners = (
        "- {name: any, port: 80, protocol: HTTP}\n"
        "- {name: shop, port: 80, protocol: HTTP, hostname: shop.example.com}"
    )
    (p,) = status(
        listeners, route(more=", sectionName: any", hosts="shop.example.com, web.example.com")
    )
    # istiod's hostnameAllowedByIsolation: shop.example.com belongs to listener "shop"
    assert p.attachments[0].hostnames == ("web.example.com",)


def test_resolved_refs() -> None:
    (p,) = status(HTTP, route())
    assert (p.conditions[1].type, p.conditions[1].status) == ("ResolvedRefs", True)
    svc = (
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: infra}\n"
        "spec: {ports: [{port: 80}]}\n"
    )
    (p,) = status(HTTP, route(), svc)
    assert (p.conditions[1].status, p.conditions[1].reason) == (False, "BackendNotFound")
    assert p.accepted.status  # an unresolved backend does not stop attachment
