"""Envoy-style request matching on the RouteTable (no Envoy needed)."""

from __future__ import annotations

import pytest

from istiolab.envoy.match import (
    Request,
    explain,
    failed_condition,
    matches,
    pick,
    route,
    select_virtual_host,
    strip_port,
)
from istiolab.envoy.model import (
    HeaderMatcher,
    QueryParamMatcher,
    RateLimit,
    Route,
    RouteMatch,
    RouteSource,
    RouteTable,
    StringMatcher,
    VirtualHost,
    WeightedCluster,
)


def wc(subset: str, weight: int = 100) -> WeightedCluster:
    host = "httpbin.default.svc.cluster.local"
    return WeightedCluster(f"outbound|8000|{subset}|{host}", weight, host, subset, 8000)


def rt(name: str, match: RouteMatch | None = None, *clusters: WeightedCluster) -> Route:
    return Route(
        name=name,
        match=match or RouteMatch(),
        source=RouteSource("VirtualService/default/vs", 0, None, name),
        clusters=clusters or (wc("v1"),),
    )


def table(*vhosts: VirtualHost, rate_limit: RateLimit | None = None) -> RouteTable:
    return RouteTable("test", 80, vhosts, {}, rate_limit=rate_limit)


def vh(name: str, *domains: str, routes: tuple[Route, ...] = ()) -> VirtualHost:
    return VirtualHost(name, domains, routes or (rt(f"{name}-route"),))


# -- virtual hosts -------------------------------------------------------------------------


VHOSTS = table(
    vh("star", "*"),
    vh("suffix-short", "*.com"),
    vh("suffix-long", "*.example.com"),
    vh("prefix", "api.*"),
    vh("exact", "api.example.com"),
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.example.com", "exact"),  # exact beats every wildcard
        ("API.Example.COM", "exact"),  # domains are case-insensitive
        ("api.example.com:8080", "exact"),  # the port is ignored
        ("www.example.com", "suffix-long"),  # the longest suffix wildcard wins
        ("deep.www.example.com", "suffix-long"),  # a wildcard spans several labels
        ("foo.com", "suffix-short"),
        ("api.example.org", "prefix"),  # suffix wildcards beat prefix wildcards
        ("other.org", "star"),
        (".com", "star"),  # '*.com' needs at least one character before '.com'
    ],
)
def test_virtual_host_selection_order(host: str, expected: str) -> None:
    chosen = select_virtual_host(VHOSTS, host)
    assert chosen is not None
    assert chosen.name == expected


def test_no_virtual_host_is_404_nr() -> None:
    t = table(vh("only", "a.example.com"))
    d = route(t, Request(host="b.example.com"))
    assert (d.route, d.virtual_host, d.status, d.flags) == (None, None, 404, "NR")


def test_strip_port() -> None:
    assert strip_port("example.com:80") == "example.com"
    assert strip_port("example.com") == "example.com"
    assert strip_port("[::1]:8080") == "[::1]"
    assert strip_port("host:notaport") == "host:notaport"


# -- routes ----------------------------------------------------------------------------------


def test_first_match_wins_prefix_retry_catches_retryslow() -> None:
    routes = (
        rt("retry", RouteMatch("prefix", "/retry"), wc("v2")),
        rt("retryslow", RouteMatch("prefix", "/retryslow"), wc("v3")),
        rt("default"),
    )
    t = table(vh("all", "*", routes=routes))
    d = route(t, Request(path="/retryslow"))
    assert d.route is not None
    assert d.route.name == "retry"
    assert d.cluster == wc("v2")
    assert route(t, Request(path="/other")).route is routes[2]


def test_no_matching_route_is_404_nr() -> None:
    t = table(vh("all", "*", routes=(rt("api", RouteMatch("prefix", "/api")),)))
    d = route(t, Request(path="/"))
    assert d.route is None
    assert d.virtual_host is not None
    assert (d.status, d.flags) == (404, "NR")


@pytest.mark.parametrize(
    ("pattern", "value", "ok"),
    [
        (".*user=beta.*", "user=betamax", True),  # RE2 full match, as observed with real Envoy
        (".*user=beta.*", "a=1; user=beta", True),
        ("^(.*?;)?(user=beta)(;.*)?$", "user=beta", True),
        ("^(.*?;)?(user=beta)(;.*)?$", "a=1;user=beta;b=2", True),
        ("^(.*?;)?(user=beta)(;.*)?$", "user=betamax", False),
        ("^(.*?;)?(user=beta)(;.*)?$", "a=1; user=beta", False),  # the space defeats it
        ("user=beta", "xuser=beta", False),  # full match, not search
    ],
)
def test_header_regex_is_re2_full_match(pattern: str, value: str, ok: bool) -> None:
    m = RouteMatch(headers=(HeaderMatcher("cookie", StringMatcher("regex", pattern)),))
    assert matches(m, Request(headers={"Cookie": value})) is ok


def test_query_string_is_ignored_for_path_matching() -> None:
    assert matches(RouteMatch("exact", "/healthz"), Request(path="/healthz?probe=1"))
    assert matches(RouteMatch("regex", "/status/[0-9]{3}"), Request(path="/status/200?x=y"))
    assert not matches(RouteMatch("exact", "/healthz"), Request(path="/healthz/"))


def test_case_insensitive_path() -> None:
    m = RouteMatch("prefix", "/API/", case_sensitive=False)
    assert matches(m, Request(path="/api/items"))
    assert not matches(RouteMatch("prefix", "/API/"), Request(path="/api/items"))


def test_query_parameters() -> None:
    exact_empty = RouteMatch(query_params=(QueryParamMatcher("flag", StringMatcher("exact", "")),))
    assert matches(exact_empty, Request(path="/?flag"))
    assert matches(exact_empty, Request(path="/?flag="))
    assert not matches(exact_empty, Request(path="/?flag=x"))
    present = RouteMatch(query_params=(QueryParamMatcher("debug", StringMatcher("present")),))
    assert matches(present, Request(path="/?debug=0"))
    assert not matches(present, Request(path="/"))


def test_pseudo_headers() -> None:
    post = RouteMatch(headers=(HeaderMatcher(":method", StringMatcher("exact", "POST")),))
    assert matches(post, Request(method="POST"))
    assert not matches(post, Request(method="GET"))
    api = RouteMatch(headers=(HeaderMatcher(":authority", StringMatcher("prefix", "api.")),))
    assert matches(api, Request(host="api.example.com:8080"))
    https = RouteMatch(headers=(HeaderMatcher(":scheme", StringMatcher("exact", "https")),))
    assert matches(https, Request(scheme="https"))
    assert not matches(https, Request())


def test_without_headers_treat_a_missing_header_as_empty() -> None:
    # istiod renders withoutHeaders with invert_match and treat_missing_header_as_empty.
    not_true = RouteMatch(
        headers=(HeaderMatcher("x-internal", StringMatcher("exact", "true"), True),)
    )
    assert matches(not_true, Request())
    assert matches(not_true, Request(headers={"x-internal": "false"}))
    assert not matches(not_true, Request(headers={"x-internal": "true"}))
    not_any = RouteMatch(headers=(HeaderMatcher("x-any", StringMatcher("regex", ".*"), True),))
    assert not matches(not_any, Request())  # "" matches .*, so the route never matches
    not_present = RouteMatch(headers=(HeaderMatcher("x-canary", StringMatcher("present"), True),))
    assert matches(not_present, Request())
    assert not matches(not_present, Request(headers={"x-canary": ""}))


# -- weighted pick -------------------------------------------------------------------------


SPLIT = rt("split", None, wc("v1", 90), wc("v2", 10))


@pytest.mark.parametrize(
    ("random_value", "subset"),
    [(0, "v1"), (89, "v1"), (90, "v2"), (99, "v2"), (100, "v1"), (189, "v1"), (190, "v2")],
)
def test_weighted_pick_boundaries(random_value: int, subset: str) -> None:
    chosen = pick(SPLIT, random_value)
    assert chosen is not None
    assert chosen.subset == subset


def test_weighted_pick_sum_not_100() -> None:
    r = rt("odd", None, wc("v1", 1), wc("v2", 2), wc("v3", 5))

    def subset(random_value: int) -> str:
        chosen = pick(r, random_value)
        assert chosen is not None
        return chosen.subset

    assert [subset(i) for i in range(9)] == [
        "v1",
        "v2",
        "v2",
        "v3",
        "v3",
        "v3",
        "v3",
        "v3",
        "v1",
    ]


def test_split_without_random_value_leaves_cluster_unset() -> None:
    t = table(vh("all", "*", routes=(SPLIT,)))
    d = route(t, Request())
    assert d.cluster is None
    assert d.destinations == SPLIT.clusters
    assert route(t, Request(), 95).cluster == wc("v2", 10)


# -- explain -------------------------------------------------------------------------------


def test_explain_trace_lists_failed_conditions() -> None:
    routes = (
        rt(
            "beta",
            RouteMatch(headers=(HeaderMatcher("cookie", StringMatcher("regex", ".*beta.*")),)),
        ),
        rt("api", RouteMatch("prefix", "/api")),
        rt("q", RouteMatch(query_params=(QueryParamMatcher("v", StringMatcher("exact", "2")),))),
        rt("default"),
        rt("after"),
    )
    t = table(vh("all", "*", routes=routes))
    ex = explain(t, Request(path="/x?v=3", headers={"cookie": "user=alpha"}))
    steps = [(s.route.name, s.matched) for s in ex.trace]
    assert steps == [("beta", False), ("api", False), ("q", False), ("default", True)]
    why = [s.failed_condition for s in ex.trace]
    assert why[0] == "header cookie = 'user=alpha' is not regex '.*beta.*'"
    assert why[1] == "path '/x' does not match prefix '/api'"
    assert why[2] == "query parameter v = '3' is not exact '2'"
    assert why[3] is None
    data = ex.to_dict()
    for key in ("route", "destinations", "fault", "retries", "timeout", "rate_limit", "trace"):
        assert key in data
    assert data["trace"][0] == {
        "route": "beta",
        "matched": False,
        "failed_condition": "header cookie = 'user=alpha' is not regex '.*beta.*'",
    }
    assert data["destinations"][0]["percent"] == 100.0


def test_failed_condition_without_headers() -> None:
    m = RouteMatch(headers=(HeaderMatcher("x-internal", StringMatcher("exact", "true"), True),))
    why = failed_condition(m, Request(headers={"x-internal": "true"}))
    assert why == "header x-internal = 'true' is exact 'true', which this route excludes"


def test_explain_reports_the_gateway_rate_limit() -> None:
    bucket = RateLimit(max_tokens=10, tokens_per_fill=10, fill_interval_s=1.0)
    t = table(vh("all", "*"), rate_limit=bucket)
    data = explain(t, Request()).to_dict()
    assert data["rate_limit"] == {
        "max_tokens": 10,
        "tokens_per_fill": 10,
        "fill_interval_s": 1.0,
        "scope": "gateway",
    }
    assert explain(table(vh("all", "*")), Request()).to_dict()["rate_limit"] is None
