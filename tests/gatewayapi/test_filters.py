"""Each HTTPRoute filter, backend weights and timeouts: compiled, rendered and routed.

istio/istio ``pilot/pkg/config/kube/gateway/conversion.go`` (``createHeadersFilter``,
``createRedirectFilter``, ``createRewriteFilter``, ``createMirrorFilter``,
``buildHTTPDestination``, the timeouts of ``convertHTTPRoute``) and
``pilot/pkg/networking/core/route/route.go`` (gateway semantics).
"""

from __future__ import annotations

from gatewayapi._util import compiled, picked, route_doc, send
from istiolab.envoy.model import UNKNOWN_CLUSTER, Route, RouteTable
from istiolab.envoy.render import render_route, render_route_config


def only_route(t: RouteTable) -> Route:
    routes = t.routes()
    assert len(routes) == 1, [r.name for r in routes]
    return routes[0]


def one_rule(body: str) -> RouteTable:
    return compiled(route_doc(body))


def test_request_header_modifier() -> None:
    r = only_route(
        one_rule(
            """
            - filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: X-Env, value: prod}, {name: x-env, value: ignored}]
                  add: [{name: X-Trace, value: "on"}]
                  remove: [x-debug]
              backendRefs: [{name: v1, port: 8080}]
            """
        )
    )
    assert r.headers is not None
    # names lower-cased, a repeated name ignored (conversion.go headerListToMap)
    assert r.headers.request_set == (("x-env", "prod"),)
    assert r.headers.request_add == (("x-trace", "on"),)
    assert r.headers.request_remove == ("x-debug",)
    out = render_route(r)
    assert {
        "header": {"key": "x-env", "value": "prod"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    } in out["request_headers_to_add"]
    assert out["request_headers_to_remove"] == ["x-debug"]


def test_response_header_modifier() -> None:
    r = only_route(
        one_rule(
            """
            - filters:
              - type: ResponseHeaderModifier
                responseHeaderModifier:
                  set: [{name: Cache-Control, value: no-store}]
                  remove: [server]
              backendRefs: [{name: v1, port: 8080}]
            """
        )
    )
    assert r.headers is not None
    assert r.headers.response_set == (("cache-control", "no-store"),)
    assert r.headers.response_remove == ("server",)
    assert render_route(r)["response_headers_to_remove"] == ["server"]


def test_request_redirect_defaults_to_302() -> None:
    t = one_rule(
        """
        - matches: [{path: {type: Exact, value: /old}}]
          filters:
          - type: RequestRedirect
            requestRedirect: {scheme: https, hostname: new.example.com, port: 8443}
        """
    )
    d = send(t, "/old")
    assert d.status == 302
    r = only_route(t)
    assert r.redirect is not None
    assert (r.redirect.scheme, r.redirect.host, r.redirect.port) == (
        "https",
        "new.example.com",
        8443,
    )
    red = render_route(r)["redirect"]
    assert red["response_code"] == "FOUND"
    assert red["scheme_redirect"] == "https"
    assert red["port_redirect"] == 8443


def test_request_redirect_full_path_and_status() -> None:
    t = one_rule(
        """
        - filters:
          - type: RequestRedirect
            requestRedirect:
              statusCode: 301
              path: {type: ReplaceFullPath, replaceFullPath: /moved}
        """
    )
    d = send(t, "/anything")
    assert d.status == 301
    assert d.route is not None
    assert d.route.redirect is not None
    assert d.route.redirect.path == "/moved"


def test_url_rewrite_replace_full_path_is_a_regex_rewrite() -> None:
    r = only_route(
        one_rule(
            """
            - matches: [{path: {value: /app}}]
              filters:
              - type: URLRewrite
                urlRewrite:
                  hostname: internal.example.com
                  path: {type: ReplaceFullPath, replaceFullPath: /index.html}
              backendRefs: [{name: v1, port: 8080}]
            """
        )
    )
    assert r.rewrite is not None
    assert r.rewrite.regex == ("/.*", "/index.html")
    assert r.rewrite.authority == "internal.example.com"
    action = render_route(r)["route"]
    assert action["regex_rewrite"] == {"pattern": {"regex": "/.*"}, "substitution": "/index.html"}
    assert action["host_rewrite_literal"] == "internal.example.com"


def test_url_rewrite_replace_prefix_match() -> None:
    r = only_route(
        one_rule(
            """
            - matches: [{path: {value: /v1/}}]
              filters:
              - type: URLRewrite
                urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /api/}}
              backendRefs: [{name: v1, port: 8080}]
            """
        )
    )
    assert r.rewrite is not None
    assert (r.rewrite.prefix, r.rewrite.regex) == ("/api", None)  # trailing "/" trimmed
    assert render_route(r)["route"]["prefix_rewrite"] == "/api"


def test_url_rewrite_replace_prefix_with_slash_strips_the_prefix() -> None:
    r = only_route(
        one_rule(
            """
            - matches: [{path: {value: /strip}}]
              filters:
              - type: URLRewrite
                urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
              backendRefs: [{name: v1, port: 8080}]
            """
        )
    )
    assert r.rewrite is not None
    assert r.rewrite.regex is not None
    pattern, substitution = r.rewrite.regex
    assert (pattern, substitution) == (r"^/strip(/?)(.*)", r"/\2")
    import re

    assert re.sub(pattern, substitution, "/strip/a/b") == "/a/b"
    assert re.sub(pattern, substitution, "/strip") == "/"


def test_request_mirror_percent_and_fraction() -> None:
    t = one_rule(
        """
        - matches: [{path: {value: /a}}]
          filters:
          - type: RequestMirror
            requestMirror: {backendRef: {name: mirror, port: 8080}, percent: 25}
          backendRefs: [{name: v1, port: 8080}]
        - matches: [{path: {value: /b}}]
          filters:
          - type: RequestMirror
            requestMirror:
              backendRef: {name: mirror, port: 8080}
              fraction: {numerator: 1, denominator: 8}
          backendRefs: [{name: v1, port: 8080}]
        """
    )
    by = {r.source.http_index: r for r in t.routes()}
    (m0,) = by[0].mirrors
    (m1,) = by[1].mirrors
    assert m0.cluster == "outbound|8080||mirror.apps.svc.cluster.local"
    assert m0.per_million == 250_000
    assert m1.per_million == 125_000
    assert m0.cluster in t.clusters
    policies = render_route(by[0])["route"]["request_mirror_policies"]
    assert policies[0]["runtime_fraction"]["default_value"]["numerator"] == 250_000


def test_weights_split_and_zero_weight_dropped() -> None:
    t = one_rule(
        """
        - backendRefs:
          - {name: v1, port: 8080, weight: 3}
          - {name: v2, port: 8080, weight: 1}
          - {name: v3, port: 8080, weight: 0}
        """
    )
    r = only_route(t)
    assert [(c.host.split(".")[0], c.weight) for c in r.clusters] == [("v1", 3), ("v2", 1)]
    assert send(t, "/", random_value=2).cluster == r.clusters[0]
    assert send(t, "/", random_value=3).cluster == r.clusters[1]


def test_weights_summing_to_zero_answer_500() -> None:
    t = one_rule("- backendRefs: [{name: v1, port: 8080, weight: 0}]\n")
    d = send(t, "/")
    assert d.status == 500
    assert render_route(only_route(t))["direct_response"] == {"status": 500}


def test_unresolved_backend_answers_500_for_its_share() -> None:
    t = one_rule(
        """
        - backendRefs:
          - {name: v1, port: 8080, weight: 1}
          - {name: missing, port: 8080, weight: 1}
        """
    )
    r = only_route(t)
    assert [c.name for c in r.clusters][1] == UNKNOWN_CLUSTER
    assert UNKNOWN_CLUSTER not in t.clusters
    assert send(t, "/", random_value=0).cluster == r.clusters[0]
    d = send(t, "/", random_value=1)
    assert (d.status, d.cluster, d.flags) == (500, None, "NC")
    assert render_route(r)["route"]["cluster_not_found_response_code"] == "INTERNAL_SERVER_ERROR"
    assert render_route_config(t)["validate_clusters"] is False


def test_request_timeout_is_the_route_timeout() -> None:
    r = only_route(
        one_rule("- backendRefs: [{name: v1, port: 8080}]\n  timeouts: {request: 1m30s}\n")
    )
    assert r.timeout_s == 90.0
    assert render_route(r)["route"]["timeout"] == "90s"


def test_backend_request_timeout_without_retry_replaces_the_route_timeout() -> None:
    # istiod (convertHTTPRoute): with no retry stanza, backendRequest becomes the route timeout
    r = only_route(
        one_rule(
            "- backendRefs: [{name: v1, port: 8080}]\n"
            "  timeouts: {request: 10s, backendRequest: 2s}\n"
        )
    )
    assert r.timeout_s == 2.0
    assert r.retry is not None
    assert r.retry.per_try_timeout_s is None


def test_backend_request_timeout_with_retry_is_the_per_try_timeout() -> None:
    r = only_route(
        one_rule(
            "- backendRefs: [{name: v1, port: 8080}]\n"
            "  timeouts: {request: 10s, backendRequest: 2s}\n"
            "  retry: {attempts: 3, codes: [503]}\n"
        )
    )
    assert r.timeout_s == 10.0
    assert r.retry is not None
    assert r.retry.per_try_timeout_s == 2.0
    assert r.retry.num_retries == 3
    assert "503" not in r.retry.retry_on
    assert r.retry.retriable_status_codes == (503,)
    assert "connect-failure" in r.retry.retry_on


def test_zero_request_timeout_means_none() -> None:
    r = only_route(one_rule("- backendRefs: [{name: v1, port: 8080}]\n  timeouts: {request: 0s}\n"))
    assert r.timeout_s is None


def test_cors_filter_is_noted_not_compiled() -> None:
    t = one_rule(
        """
        - filters:
          - type: CORS
            cors: {allowOrigins: ["https://a.example.com"]}
          backendRefs: [{name: v1, port: 8080}]
        """
    )
    assert [f.code for f in t.findings] == ["IL615", "IL613"]
    status, note = t.findings
    assert status.message.startswith("status.parents[0] infra/gw: Accepted=True (Accepted)")
    assert note.path == "spec.rules[0].filters"
    assert picked(send(t, "/")) == "rule0"
