"""Matching precedence across all rules of all routes for a hostname, one test per rule.

kubernetes-sigs/gateway-api ``apis/v1/httproute_types.go`` (HTTPRouteRule.Matches), as istiod
sorts it (istio/istio ``pilot/pkg/config/kube/gateway/conversion.go`` ``sortHTTPRoutes``).
Each test lists the losing rule first, so input order alone would give the wrong answer.
"""

from __future__ import annotations

from gatewayapi._util import compiled, picked, route_doc, send

BACKEND = "backendRefs: [{name: v1, port: 8080}]"


def rules(*matches: str) -> str:
    """One rule per match (YAML flow mapping of an HTTPRouteMatch), each to Service v1."""
    return "".join(f"- matches: [{m}]\n  {BACKEND}\n" for m in matches)


def test_exact_path_beats_any_prefix() -> None:
    t = compiled(
        route_doc(
            rules(
                "{path: {type: PathPrefix, value: /shop/cart}}",
                "{path: {type: Exact, value: /shop/cart}}",
            )
        )
    )
    assert picked(send(t, "/shop/cart")) == "rule1"
    assert picked(send(t, "/shop/cart/items")) == "rule0"


def test_longest_prefix_wins() -> None:
    t = compiled(
        route_doc(
            rules(
                "{path: {type: PathPrefix, value: /a}}", "{path: {type: PathPrefix, value: /a/b}}"
            )
        )
    )
    assert picked(send(t, "/a/b/c")) == "rule1"
    assert picked(send(t, "/a/bc")) == "rule0"  # whole segments: /a/b does not take /a/bc


def test_method_match_beats_no_method() -> None:
    t = compiled(route_doc(rules("{path: {value: /a}}", "{path: {value: /a}, method: POST}")))
    assert picked(send(t, "/a", method="POST")) == "rule1"
    assert picked(send(t, "/a", method="GET")) == "rule0"


def test_more_header_matches_win() -> None:
    t = compiled(
        route_doc(
            rules(
                "{path: {value: /a}, headers: [{name: x-a, value: '1'}]}",
                "{path: {value: /a}, headers: [{name: x-a, value: '1'}, {name: x-b, value: '2'}]}",
            )
        )
    )
    assert picked(send(t, "/a", headers={"x-a": "1", "x-b": "2"})) == "rule1"
    assert picked(send(t, "/a", headers={"x-a": "1"})) == "rule0"


def test_more_query_matches_win() -> None:
    t = compiled(
        route_doc(
            rules(
                "{path: {value: /a}, queryParams: [{name: q, value: '1'}]}",
                "{path: {value: /a}, queryParams: [{name: q, value: '1'}, {name: r, value: '2'}]}",
            )
        )
    )
    assert picked(send(t, "/a?q=1&r=2")) == "rule1"
    assert picked(send(t, "/a?q=1")) == "rule0"


def test_path_precedes_method_and_headers() -> None:
    # a longer prefix wins over a shorter one that has a method and headers
    t = compiled(
        route_doc(
            rules(
                "{path: {value: /a}, method: GET, headers: [{name: x, value: '1'}]}",
                "{path: {value: /a/b}}",
            )
        )
    )
    assert picked(send(t, "/a/b", headers={"x": "1"})) == "rule1"


def _two_routes(first: tuple[str, str, str], second: tuple[str, str, str]) -> dict[str, str]:
    """Two routes with the same match; (name, namespace, creationTimestamp) each."""
    docs = []
    for name, ns, ts in (first, second):
        extra = f"creationTimestamp: '{ts}'" if ts else ""
        backend = "v1" if name == first[0] else "v2"
        docs.append(
            route_doc(
                f"- matches: [{{path: {{value: /a}}}}]\n"
                f"  backendRefs: [{{name: {backend}, port: 8080, namespace: apps}}]\n",
                name=name,
                namespace=ns,
                extra=extra,
            )
        )
    grant = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-all, namespace: apps}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: zzz},
         {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: aaa}]
  to: [{group: "", kind: Service}]
"""
    t = compiled(*docs, grant)
    d = send(t, "/a")
    assert d.route is not None
    return {"resource": d.route.source.resource}


def test_oldest_route_wins_over_name_order() -> None:
    got = _two_routes(("a", "apps", "2024-05-01T00:00:00Z"), ("z", "apps", "2023-01-01T00:00:00Z"))
    assert got["resource"] == "HTTPRoute/apps/z"


def test_same_age_goes_by_namespace_then_name() -> None:
    got = _two_routes(("b", "apps", ""), ("a", "apps", ""))
    assert got["resource"] == "HTTPRoute/apps/a"
    got = _two_routes(("a", "zzz", ""), ("z", "aaa", ""))
    assert got["resource"] == "HTTPRoute/aaa/z"


def test_rule_order_breaks_the_last_tie() -> None:
    t = compiled(
        route_doc(
            "- matches: [{path: {value: /a}}]\n  backendRefs: [{name: v2, port: 8080}]\n"
            "- matches: [{path: {value: /a}}]\n  backendRefs: [{name: v1, port: 8080}]\n"
        )
    )
    d = send(t, "/a")
    assert picked(d) == "rule0"
    assert d.cluster is not None
    assert d.cluster.host.startswith("v2.")


def test_precedence_spans_routes() -> None:
    # route "a" is older and first by name, yet route "b"'s longer prefix wins
    t = compiled(
        route_doc(rules("{path: {value: /api}}"), name="a"),
        route_doc(
            "- matches: [{path: {value: /api/v2}}]\n  backendRefs: [{name: v2, port: 8080}]\n",
            name="b",
        ),
    )
    d = send(t, "/api/v2/items")
    assert d.route is not None
    assert d.route.source.resource == "HTTPRoute/apps/b"
    d = send(t, "/api/v1")
    assert d.route is not None
    assert d.route.source.resource == "HTTPRoute/apps/a"


# -- path and header rules -------------------------------------------------------------------


def test_path_prefix_matches_whole_segments() -> None:
    t = compiled(route_doc(rules("{path: {type: PathPrefix, value: /api}}")))
    assert picked(send(t, "/api")) == "rule0"
    assert picked(send(t, "/api/")) == "rule0"
    assert picked(send(t, "/api/x")) == "rule0"
    assert picked(send(t, "/apix")) == "404"
    r = t.routes()[0]
    assert (r.match.path_kind, r.match.path) == ("path_separated_prefix", "/api")


def test_path_prefix_ignores_a_trailing_slash() -> None:
    t = compiled(route_doc(rules("{path: {type: PathPrefix, value: /api/}}")))
    assert picked(send(t, "/api")) == "rule0"
    assert picked(send(t, "/api/x")) == "rule0"
    assert t.routes()[0].match.path == "/api"


def test_a_match_without_path_is_prefix_slash_and_ranks_last() -> None:
    t = compiled(
        route_doc(
            "- backendRefs: [{name: v2, port: 8080}]\n"  # no matches at all
            "- matches: [{headers: [{name: x, value: '1'}]}]\n"  # a match without a path
            f"  {BACKEND}\n"
            "- matches: [{path: {value: /a}}]\n"
            f"  {BACKEND}\n"
        )
    )
    assert picked(send(t, "/zzz")) == "rule0"
    assert picked(send(t, "/zzz", headers={"x": "1"})) == "rule1"  # more headers than rule 0
    assert picked(send(t, "/a/b", headers={"x": "1"})) == "rule2"  # a longer prefix first
    assert [r.match.path_kind for r in t.routes()] == ["path_separated_prefix", "prefix", "prefix"]


def test_header_names_are_case_insensitive_and_values_exact() -> None:
    t = compiled(route_doc(rules("{headers: [{name: X-Version, value: Beta}]}")))
    assert picked(send(t, "/", headers={"x-version": "Beta"})) == "rule0"
    assert picked(send(t, "/", headers={"X-VERSION": "Beta"})) == "rule0"
    assert picked(send(t, "/", headers={"x-version": "beta"})) == "404"


def test_regular_expression_header_is_re2_full_match() -> None:
    t = compiled(
        route_doc(rules("{headers: [{type: RegularExpression, name: x, value: 'v[0-9]+'}]}"))
    )
    assert picked(send(t, "/", headers={"x": "v12"})) == "rule0"
    assert picked(send(t, "/", headers={"x": "xv12"})) == "404"


def test_regex_path_ranks_below_prefix_as_istio_does() -> None:
    # the spec leaves RegularExpression precedence to the implementation; istiod ranks it
    # after every Exact and PathPrefix match (getURIRank)
    t = compiled(
        route_doc(rules("{path: {type: RegularExpression, value: '/a/.*'}}", "{path: {value: /a}}"))
    )
    assert picked(send(t, "/a/b")) == "rule1"
