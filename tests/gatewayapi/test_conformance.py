"""Gateway API conformance scenarios that fit an offline tool, as our own request cases.

Each scenario restates one of kubernetes-sigs/gateway-api ``conformance/tests/httproute-*``
(named in its docstring) with our own resources, and checks request → route, backend, status
on the compiled table, as ``istiolab explain`` answers it.
"""

from __future__ import annotations

import textwrap

import pytest

from gatewayapi._util import SERVICES, send
from istiolab.config import loads
from istiolab.config.gatewayapi import HTTPRoute
from istiolab.config.gatewayapi_routing import GatewayAPI
from istiolab.envoy.compile import compile
from istiolab.envoy.model import RouteTable


def gateway(*listeners: str, name: str = "gw") -> str:
    """A Gateway in namespace apps (istio class) with the listeners given as flow mappings."""
    items = "".join(f"  - {listener}\n" for listener in listeners)
    return (
        f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
        f"metadata: {{name: {name}, namespace: apps}}\n"
        f"spec:\n  gatewayClassName: istio\n  listeners:\n{items}"
    )


# Routes that do not attach, or whose backends do not resolve, are lint errors; these cases
# look at what the gateway does with them anyway, so they carry a suppression.
SUPPRESS = "{istiolab.io/suppress: 'IL602,IL603,IL605,IL608,IL609'}"


def http_route(name: str, spec: str, namespace: str = "apps") -> str:
    return (
        f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: {name}, namespace: {namespace}, annotations: {SUPPRESS}}}\nspec:\n"
        + textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
        + "\n"
    )


def table(*docs: str) -> RouteTable:
    return compile(loads(SERVICES + "".join(docs), file="x.yaml"))


def backend(t: RouteTable, path: str, host: str = "example.com", **kw: object) -> str:
    """The Service a request reaches (its short name), or the status the gateway answers."""
    d = send(t, path, host=host, **kw)  # type: ignore[arg-type]
    if d.status is not None:
        return str(d.status)
    assert d.cluster is not None
    return d.cluster.host.split(".")[0]


SIMPLE = gateway("{name: http, port: 80, protocol: HTTP}")


def test_path_match_order() -> None:
    """httproute-path-match-order: Exact before PathPrefix, longer prefixes first."""
    t = table(
        SIMPLE,
        http_route(
            "order",
            """
            parentRefs: [{name: gw}]
            rules:
            - {matches: [{path: {type: Exact, value: /m}}], backendRefs: [{name: v1, port: 8080}]}
            - {matches: [{path: {type: Exact, value: /m/e}}], backendRefs: [{name: v2, port: 8080}]}
            - matches: [{path: {type: Exact, value: /m/e/1}}]
              backendRefs: [{name: v3, port: 8080}]
            - {matches: [{path: {value: /m/}}], backendRefs: [{name: v3, port: 8080}]}
            - {matches: [{path: {value: /m/p/}}], backendRefs: [{name: v1, port: 8080}]}
            - {matches: [{path: {value: /m/p/1}}], backendRefs: [{name: v2, port: 8080}]}
            """,
        ),
    )
    expect = {
        "/m/e/1": "v3",
        "/m/e": "v2",
        "/m": "v1",
        "/m/p/1/x": "v2",
        "/m/p/x": "v1",
        "/m/x": "v3",
        "/mx": "404",
    }
    assert {p: backend(t, p) for p in expect} == expect


def test_matching_across_routes() -> None:
    """httproute-matching-across-routes: rules of two routes for one host merge by precedence."""
    t = table(
        SIMPLE,
        http_route(
            "first",
            """
            parentRefs: [{name: gw}]
            hostnames: [example.com, example.net]
            rules:
            - {matches: [{path: {value: /}}], backendRefs: [{name: v1, port: 8080}]}
            - {matches: [{path: {value: /v2}}], backendRefs: [{name: v2, port: 8080}]}
            """,
        ),
        http_route(
            "second",
            """
            parentRefs: [{name: gw}]
            hostnames: [example.com]
            rules:
            - matches:
              - {path: {value: /v2}, headers: [{name: version, value: two}]}
              - {headers: [{name: version, value: two}]}
              backendRefs: [{name: v3, port: 8080}]
            """,
        ),
    )
    assert backend(t, "/") == "v1"
    assert backend(t, "/v2") == "v2"
    assert backend(t, "/v2", headers={"version": "two"}) == "v3"
    assert backend(t, "/", headers={"version": "two"}) == "v3"
    assert backend(t, "/v2", host="example.net", headers={"version": "two"}) == "v2"


def test_hostname_intersection() -> None:
    """httproute-hostname-intersection: route and listener hostnames, wildcards both ways."""
    t = table(
        gateway(
            "{name: one, port: 80, protocol: HTTP, hostname: very.specific.com}",
            "{name: two, port: 80, protocol: HTTP, hostname: '*.wildcard.io'}",
        ),
        http_route(
            "specific",
            """
            parentRefs: [{name: gw}]
            hostnames: [non.matching.com, very.specific.com]
            rules: [{matches: [{path: {value: /s1}}], backendRefs: [{name: v1, port: 8080}]}]
            """,
        ),
        http_route(
            "in-wildcard",
            """
            parentRefs: [{name: gw}]
            hostnames: [wildcard.io, foo.wildcard.io, foo.bar.wildcard.io]
            rules: [{matches: [{path: {value: /s2}}], backendRefs: [{name: v2, port: 8080}]}]
            """,
        ),
        http_route(
            "wildcard-over-specific",
            """
            parentRefs: [{name: gw}]
            hostnames: ["*.specific.com"]
            rules: [{matches: [{path: {value: /s3}}], backendRefs: [{name: v3, port: 8080}]}]
            """,
        ),
    )
    assert backend(t, "/s1", host="very.specific.com") == "v1"
    assert backend(t, "/s1", host="non.matching.com") == "404"
    assert backend(t, "/s2", host="foo.wildcard.io") == "v2"
    assert backend(t, "/s2", host="foo.bar.wildcard.io") == "v2"  # one or more labels
    assert backend(t, "/s2", host="wildcard.io") == "404"  # the bare domain is not in it
    assert backend(t, "/s2", host="bar.wildcard.io") == "404"  # not a hostname of the route
    assert backend(t, "/s3", host="very.specific.com") == "v3"  # narrowed to the listener's
    assert backend(t, "/s3", host="other.specific.com") == "404"


def test_listener_hostname_matching() -> None:
    """httproute-listener-hostname-matching: routes bound by sectionName to listeners."""
    t = table(
        gateway(
            "{name: bar, port: 80, protocol: HTTP, hostname: bar.com}",
            "{name: foo-bar, port: 80, protocol: HTTP, hostname: foo.bar.com}",
            "{name: wild-bar, port: 80, protocol: HTTP, hostname: '*.bar.com'}",
        ),
        http_route(
            "r1",
            "parentRefs: [{name: gw, sectionName: bar}]\n"
            "rules: [{backendRefs: [{name: v1, port: 8080}]}]",
        ),
        http_route(
            "r2",
            "parentRefs: [{name: gw, sectionName: foo-bar}]\n"
            "rules: [{backendRefs: [{name: v2, port: 8080}]}]",
        ),
        http_route(
            "r3",
            "parentRefs: [{name: gw, sectionName: wild-bar}]\n"
            "rules: [{backendRefs: [{name: v3, port: 8080}]}]",
        ),
    )
    assert backend(t, "/", host="bar.com") == "v1"
    assert backend(t, "/", host="foo.bar.com") == "v2"
    assert backend(t, "/", host="baz.bar.com") == "v3"
    assert backend(t, "/", host="a.b.bar.com") == "v3"
    assert backend(t, "/", host="foo.com") == "404"


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("{name: nope, port: 8080}", "BackendNotFound"),  # httproute-invalid-nonexistent-backendref
        ("{name: shared, namespace: other, port: 8080}", "RefNotPermitted"),  # ...cross-namespace
        ("{group: example.com, kind: Bucket, name: v1, port: 8080}", "InvalidKind"),  # unknown-kind
    ],
)
def test_invalid_backend_ref_answers_500(ref: str, reason: str) -> None:
    """httproute-invalid-*-backendref: an unresolved backend answers 500, ResolvedRefs False."""
    docs = (
        SIMPLE,
        http_route("r", f"parentRefs: [{{name: gw}}]\nrules: [{{backendRefs: [{ref}]}}]"),
    )
    t = table(*docs)
    assert backend(t, "/") == "500"
    cs = loads(SERVICES + "".join(docs))
    (status,) = GatewayAPI(cs).parents(cs.kind(HTTPRoute)[0])
    assert status.accepted.status is True
    assert (status.conditions[1].status, status.conditions[1].reason) == (False, reason)


def test_partially_invalid_via_reference_grant() -> None:
    """httproute-partially-invalid-via-invalid-reference-grant: the grant is for another kind,
    so the cross-namespace backend answers 500 while the valid rule keeps working."""
    grant = (
        "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
        "metadata: {name: g, namespace: other}\nspec:\n"
        "  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: apps}]\n"
        "  to: [{group: '', kind: Service}]\n"
    )
    spec = """
        parentRefs: [{name: gw}]
        rules:
        - {matches: [{path: {value: /ok}}], backendRefs: [{name: v1, port: 8080}]}
        - matches: [{path: {value: /x}}]
          backendRefs: [{name: shared, namespace: other, port: 8080}]
        """
    t = table(SIMPLE, grant, http_route("r", spec))
    assert backend(t, "/ok") == "v1"
    assert backend(t, "/x") == "500"
    fixed = grant.replace("kind: GRPCRoute", "kind: HTTPRoute")
    assert backend(table(SIMPLE, fixed, http_route("r", spec)), "/x") == "shared"


def test_not_matching_section_name_and_port_attach_nothing() -> None:
    """httproute-invalid-parentref-not-matching-section-name / -listener-port: 404."""
    for ref in ("{name: gw, sectionName: nope}", "{name: gw, port: 8080}"):
        t = table(
            SIMPLE,
            http_route(
                "r", f"parentRefs: [{ref}]\nrules: [{{backendRefs: [{{name: v1, port: 8080}}]}}]"
            ),
        )
        assert t.virtual_hosts == ()
    t = table(
        SIMPLE,
        http_route(
            "r",
            "parentRefs: [{name: gw, sectionName: http, port: 80}]\n"
            "rules: [{backendRefs: [{name: v1, port: 8080}]}]",
        ),
    )
    assert backend(t, "/") == "v1"


def test_disallowed_kind() -> None:
    """httproute-disallowed-kind: a listener that takes only GRPCRoutes gets no HTTPRoute."""
    t = table(
        gateway(
            "{name: http, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}"
        ),
        http_route(
            "r", "parentRefs: [{name: gw}]\nrules: [{backendRefs: [{name: v1, port: 8080}]}]"
        ),
    )
    assert t.virtual_hosts == ()


def test_cross_namespace_route_needs_allowed_routes() -> None:
    """httproute-cross-namespace / invalid-cross-namespace-parent-ref: from Same vs All."""
    route = http_route(
        "r",
        "parentRefs: [{name: gw, namespace: apps}]\n"
        "rules: [{backendRefs: [{name: shared, port: 8080}]}]",
        namespace="other",
    )
    same = table(SIMPLE, route)
    assert same.virtual_hosts == ()
    everyone = table(
        gateway("{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}"),
        route,
    )
    assert backend(everyone, "/") == "shared"


def test_weights() -> None:
    """httproute-weight: the split follows the weights (Envoy's cumulative pick)."""
    t = table(
        SIMPLE,
        http_route(
            "r",
            """
            parentRefs: [{name: gw}]
            rules:
            - backendRefs:
              - {name: v1, port: 8080, weight: 70}
              - {name: v2, port: 8080, weight: 30}
              - {name: v3, port: 8080, weight: 0}
            """,
        ),
    )
    counts = {"v1": 0, "v2": 0, "v3": 0}
    for rv in range(100):
        counts[backend(t, "/", random_value=rv)] += 1
    assert counts == {"v1": 70, "v2": 30, "v3": 0}


def test_omitted_backend_refs_answer_500() -> None:
    """A rule without backendRefs (and no redirect) answers 500 (conversion.go)."""
    t = table(
        SIMPLE,
        http_route("r", "parentRefs: [{name: gw}]\nrules: [{matches: [{path: {value: /}}]}]"),
    )
    assert backend(t, "/") == "500"


def test_redirect_host_status_and_path() -> None:
    """httproute-redirect-host-and-status, -path, -scheme, -port."""
    t = table(
        SIMPLE,
        http_route(
            "r",
            """
            parentRefs: [{name: gw}]
            rules:
            - matches: [{path: {value: /host}}]
              filters:
              - type: RequestRedirect
                requestRedirect: {hostname: example.org, statusCode: 301}
            - matches: [{path: {value: /full}}]
              filters:
              - type: RequestRedirect
                requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}}
            - matches: [{path: {value: /scheme}}]
              filters: [{type: RequestRedirect, requestRedirect: {scheme: https, port: 443}}]
            """,
        ),
    )
    d = send(t, "/host/x")
    assert d.status == 301
    assert d.route is not None
    assert d.route.redirect is not None
    assert d.route.redirect.host == "example.org"
    d = send(t, "/full/x")
    assert d.status == 302
    assert d.route is not None
    assert d.route.redirect is not None
    assert d.route.redirect.path == "/new"
    d = send(t, "/scheme")
    assert d.route is not None
    assert d.route.redirect is not None
    # route.go ApplyRedirect: no explicit :443 for https (nor :80 for http)
    assert (d.route.redirect.scheme, d.route.redirect.port) == ("https", None)


def test_redirect_port_comes_from_the_listener_without_a_scheme() -> None:
    """httproute-redirect-port: istiod's FROM_REQUEST_PORT is the listener's port; with a
    scheme, the scheme's default port (none in the Location)."""
    rules = """
        parentRefs: [{name: gw}]
        rules:
        - matches: [{path: {value: /host}}]
          filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
        - matches: [{path: {value: /scheme}}]
          filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
        """
    t = table(gateway("{name: http, port: 8080, protocol: HTTP}"), http_route("r", rules))
    host = send(t, "/host").route
    scheme = send(t, "/scheme").route
    assert host is not None
    assert host.redirect is not None
    assert host.redirect.port == 8080
    assert scheme is not None
    assert scheme.redirect is not None
    assert scheme.redirect.port is None
    t80 = table(SIMPLE, http_route("r", rules))
    r80 = send(t80, "/host").route
    assert r80 is not None
    assert r80.redirect is not None
    assert r80.redirect.port is None


def test_the_most_specific_hostname_takes_the_request() -> None:
    """Istio: one Envoy virtual host per hostname; a wildcard route is not a fallback."""
    t = table(
        SIMPLE,
        http_route(
            "wild",
            """
            parentRefs: [{name: gw}]
            hostnames: ["*.example.com"]
            rules: [{matches: [{path: {value: /a}}], backendRefs: [{name: v1, port: 8080}]}]
            """,
        ),
        http_route(
            "shop",
            """
            parentRefs: [{name: gw}]
            hostnames: [shop.example.com]
            rules: [{matches: [{path: {value: /b}}], backendRefs: [{name: v2, port: 8080}]}]
            """,
        ),
    )
    assert backend(t, "/a", host="web.example.com") == "v1"
    assert backend(t, "/b", host="shop.example.com") == "v2"
    assert backend(t, "/a", host="shop.example.com") == "404"
