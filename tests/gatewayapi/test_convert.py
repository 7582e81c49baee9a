"""VirtualService/Gateway ↔ Gateway API conversion: findings, round trips, equivalence."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from istiolab.config import ConfigSet, dumps, load, loads
from istiolab.config.convert import (
    GatewayAPIConversion,
    convert,
    legacy_to_gateway_api,
    to_gateway_api,
    to_istio,
)
from istiolab.config.gatewayapi import Gateway as APIGateway
from istiolab.config.gatewayapi import HTTPRoute, ReferenceGrant
from istiolab.config.k8s import Service
from istiolab.config.model import EnvoyFilter, Gateway, VirtualService
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile, is_legacy
from istiolab.envoy.equivalence import check_equivalent
from istiolab.envoy.match import Request, route
from istiolab.envoy.model import RouteTable
from istiolab.findings import Severity
from istiolab.profiles import get_profile

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*/*.yaml"))
DATA = Path(__file__).parent.parent / "data" / "gatewayapi"

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""

SERVICES = """
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shared, namespace: other}
spec:
  selector: {app: shared}
  ports: [{name: http, port: 80}]
"""


def vs_config(http: str, *, hosts: str = '["shop.example.com"]') -> ConfigSet:
    """A Gateway, Services and one VirtualService on the Gateway with *http* (YAML list)."""
    body = textwrap.indent(textwrap.dedent(http).strip("\n"), "    ")
    return loads(
        GATEWAY
        + SERVICES
        + f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop}}
spec:
  hosts: {hosts}
  gateways: [ingress]
  http:
{body}
"""
    )


def codes(conv: GatewayAPIConversion) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in conv.findings]


def the_route(conv: GatewayAPIConversion) -> HTTPRoute:
    (r,) = conv.config.kind(HTTPRoute)
    return r


def tables(before: ConfigSet, conv: GatewayAPIConversion) -> tuple[RouteTable, RouteTable]:
    prof = get_profile(None)  # legacy input: modern istiod's defaults, as the conversion writes
    return compile(before, prof), compile(conv.config)


# -- a finding for every feature the Gateway API cannot say ----------------------------------


@pytest.mark.parametrize(
    ("http", "code", "path"),
    [
        (
            "- fault: {abort: {httpStatus: 403, percentage: {value: 100}}}\n"
            "  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].fault",
        ),
        (
            "- corsPolicy: {allowOrigins: [{exact: 'https://a.example'}]}\n"
            "  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].corsPolicy",
        ),
        ("- directResponse: {status: 404}", "IL315", "spec.http[0].directResponse"),
        (
            "- match: [{uri: {prefix: /a/}}]\n"
            "  rewrite: {uriRegexRewrite: {match: '^/a/(.*)$', rewrite: '/\\\\1'}}\n"
            "  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].rewrite.uriRegexRewrite",
        ),
        (
            "- match: [{authority: {exact: a.example.com}}]\n  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].match[0].authority",
        ),
        (
            "- match: [{withoutHeaders: {x-a: {exact: '1'}}}]\n"
            "  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].match[0].withoutHeaders",
        ),
        (
            "- match: [{uri: {exact: /A}, ignoreUriCase: true}]\n"
            "  route: [{destination: {host: web}}]",
            "IL315",
            "spec.http[0].match[0].ignoreUriCase",
        ),
        (
            "- redirect: {uri: /b, redirectCode: 305}",
            "IL315",
            "spec.http[0].redirect.redirectCode",
        ),
        (
            "- retries: {attempts: 3, retryOn: 5xx}\n  route: [{destination: {host: web}}]",
            "IL316",
            "spec.http[0].retries",
        ),
        (
            "- mirror: {host: api}\n  mirrorPercentage: {value: 10}\n"
            "  route: [{destination: {host: web}}]",
            "IL316",
            "spec.http[0].mirror",
        ),
        (
            "- match: [{uri: {prefix: /api}}]\n  route: [{destination: {host: api}}]",
            "IL317",
            "spec.http[0].match[0].uri.prefix",
        ),
    ],
    ids=[
        "fault",
        "cors",
        "direct-response",
        "regex-rewrite",
        "authority",
        "without-headers",
        "ignore-uri-case",
        "redirect-code",
        "retries",
        "mirror-percent",
        "string-prefix",
    ],
)
def test_inexpressible_feature_is_a_finding(http: str, code: str, path: str) -> None:
    conv = to_gateway_api(vs_config(http))
    assert (code, path) in codes(conv)
    f = next(f for f in conv.findings if f.code == code)
    assert f.resource == "VirtualService/default/shop"
    assert f.fix


def test_expressible_route_has_no_finding_and_keeps_every_field() -> None:
    cs = vs_config(
        """
        - name: api
          match:
          - uri: {exact: /api}
            headers: {x-canary: {exact: "true"}}
            queryParams: {v: {regex: "[0-9]+"}}
            method: {exact: POST}
          headers:
            request: {set: {x-env: prod}, remove: [x-debug]}
            response: {add: {x-served-by: shop}}
          timeout: 3s
          route:
          - {destination: {host: api, port: {number: 8080}}, weight: 90}
          - {destination: {host: web, port: {number: 80}}, weight: 10}
        - name: old
          match: [{uri: {exact: /old}}]
          redirect: {uri: /new, authority: new.example.com, redirectCode: 308}
        """
    )
    conv = to_gateway_api(cs)
    assert codes(conv) == []
    r = the_route(conv)
    assert r.spec.hostnames == ["shop.example.com"]
    assert [p.name for p in r.spec.parent_refs or []] == ["ingress"]
    rules = r.spec.rules or []
    m = (rules[0].matches or [])[0]
    assert (m.path.type, m.path.value) == ("Exact", "/api")  # type: ignore[union-attr]
    assert m.method == "POST"
    assert [(h.name, h.value) for h in m.headers or []] == [("x-canary", "true")]
    assert [(q.type, q.value) for q in m.query_params or []] == [("RegularExpression", "[0-9]+")]
    assert [(b.name, b.port, b.weight) for b in rules[0].backend_refs or []] == [
        ("api", 8080, 90),
        ("web", 80, 10),
    ]
    assert rules[0].timeouts is not None
    assert rules[0].timeouts.request == "3s"
    assert [f.type for f in rules[0].filters or []] == [
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
    ]
    (redirect,) = rules[1].filters or []
    assert redirect.request_redirect is not None
    assert redirect.request_redirect.status_code == 308
    assert rules[1].backend_refs is None
    before, after = tables(cs, conv)
    assert check_equivalent(before, after) == []


def test_prefix_mode_regex_keeps_the_string_prefix() -> None:
    cs = vs_config(
        """
        - match: [{uri: {prefix: /api}}]
          route: [{destination: {host: api}}]
        - route: [{destination: {host: web}}]
        """
    )
    lossy = to_gateway_api(cs)
    exact = to_gateway_api(cs, prefix_mode="regex")
    assert ("IL317", "spec.http[0].match[0].uri.prefix") in codes(lossy)
    assert codes(exact) == []
    before = compile(cs)
    broken = check_equivalent(before, compile(lossy.config))
    assert {d.request.path for d in broken} >= {"/apix", "/api-v2/x"}
    assert all(d.before_route == "VirtualService/default/shop http[0]" for d in broken)
    assert check_equivalent(before, compile(exact.config)) == []


def test_precedence_change_names_the_route_that_now_wins() -> None:
    cs = vs_config(
        """
        - name: everything-beta
          match: [{headers: {x-beta: {exact: "1"}}}]
          route: [{destination: {host: web}}]
        - name: api
          match: [{uri: {prefix: /api/}}]
          route: [{destination: {host: api}}]
        """
    )
    conv = to_gateway_api(cs)
    (f,) = [f for f in conv.findings if f.code == "IL318"]
    assert f.path == "spec.http[1]"
    assert "'api'" in f.message
    assert "'everything-beta'" in f.message
    before, after = tables(cs, conv)
    req = Request("/api/x", host="shop.example.com", headers={"x-beta": "1"})
    assert route(before, req).route.source.http_index == 0  # type: ignore[union-attr]
    assert route(after, req).route.source.http_index == 1  # type: ignore[union-attr]
    assert any(d.request.headers.get("x-beta") == "1" for d in check_equivalent(before, after))


def test_disjoint_routes_in_any_order_have_no_precedence_finding() -> None:
    conv = to_gateway_api(
        vs_config(
            """
            - match: [{headers: {x-beta: {exact: "1"}}, uri: {exact: /a}}]
              route: [{destination: {host: web}}]
            - match: [{uri: {exact: /b}, method: {exact: GET}}]
              route: [{destination: {host: api}}]
            """
        )
    )
    assert [c for c, _ in codes(conv) if c == "IL318"] == []


def test_cross_namespace_backend_gets_a_reference_grant() -> None:
    cs = vs_config("- route: [{destination: {host: shared.other.svc.cluster.local}}]")
    conv = to_gateway_api(cs)
    (grant,) = conv.config.kind(ReferenceGrant)
    assert grant.namespace == "other"
    assert [(f.kind, f.namespace) for f in grant.spec.from_] == [("HTTPRoute", "default")]
    (b,) = (the_route(conv).spec.rules or [])[0].backend_refs or []
    assert (b.name, b.namespace, b.port) == ("shared", "other", 80)
    assert not [f for f in validate(conv.config) if f.code == "IL608"]
    before, after = tables(cs, conv)
    assert check_equivalent(before, after) == []
    # without the grant the backend does not resolve
    no_grant = ConfigSet.of(r for r in conv.config if not isinstance(r, ReferenceGrant))
    assert [f.path for f in validate(no_grant) if f.code == "IL608"] == [
        "spec.rules[0].backendRefs[0].namespace"
    ]


def test_subset_becomes_a_service_and_counts_as_the_subset() -> None:
    conv = to_gateway_api(load(ROOT / "examples" / "modern" / "canary-90-10.yaml"))
    new = {s.name: s for s in conv.config.kind(Service)}
    assert new["webui-v2"].spec.selector == {"app": "webui", "version": "v2"}
    assert conv.backends["webui-v2.default.svc.cluster.local"] == (
        "webui.default.svc.cluster.local",
        "v2",
    )
    assert ("IL320", "spec.hosts") in codes(conv)  # a mesh route: GAMMA, not compiled


def test_more_than_sixteen_routes_split_in_order() -> None:
    http = "\n".join(
        f"- match: [{{uri: {{exact: /p{k}}}}}]\n  route: [{{destination: {{host: web}}}}]"
        for k in range(20)
    )
    cs = vs_config(http)
    conv = to_gateway_api(cs)
    routes = conv.config.kind(HTTPRoute)
    assert [(r.name, len(r.spec.rules or [])) for r in routes] == [("shop", 16), ("shop-01", 4)]
    before, after = tables(cs, conv)
    assert check_equivalent(before, after) == []


def test_mirror_and_rewrite_and_header_match_prefix_round_trip() -> None:
    cs = vs_config(
        """
        - match: [{uri: {prefix: /v1/}, headers: {user: {prefix: beta-}}}]
          rewrite: {uri: /v2/}
          mirror: {host: api, port: {number: 8080}}
          route: [{destination: {host: web}}]
        - match: [{uri: {exact: /x}}]
          rewrite: {uri: /y, authority: internal.example.com}
          route: [{destination: {host: web}}]
        """
    )
    conv = to_gateway_api(cs)
    assert [c for c, _ in codes(conv)] == ["IL317"]  # "/v1/" now also matches "/v1"
    before, after = tables(cs, conv)
    diffs = check_equivalent(before, after)
    assert {d.request.path for d in diffs} == {"/v1"}
    back = to_istio(conv.config)
    assert check_equivalent(after, compile(back.config)) == []


# -- Gateway API → VirtualService ------------------------------------------------------------


def test_httproutes_to_virtual_services_are_exact() -> None:
    cs = load(DATA / "shop.yaml")
    conv = to_istio(cs)
    assert conv.findings == ()
    assert conv.config.kind(Gateway)
    assert conv.config.kind(VirtualService)
    assert not conv.config.kind(HTTPRoute)
    before, after = compile(cs), compile(conv.config)
    assert check_equivalent(before, after) == []
    # PathPrefix /api as Istio's two matches: exact /api and prefix /api/
    uris = [
        m.uri.model_dump(exclude_none=True)
        for vs in conv.config.kind(VirtualService)
        for h in vs.spec.http or []
        for m in h.match or []
        if m.uri is not None
    ]
    assert {"exact": "/api"} in uris
    assert {"prefix": "/api/"} in uris
    # and back again: nothing lost, nothing reordered
    again = to_gateway_api(conv.config)
    assert codes(again) == []
    assert check_equivalent(before, compile(again.config)) == []


def test_unresolved_backend_share_is_a_finding_when_converting_to_istio() -> None:
    cs = load(DATA / "rewrites.yaml")
    conv = to_istio(cs)
    assert [(f.code, f.path) for f in conv.findings] == [("IL321", "spec.rules[2].backendRefs[1]")]
    diffs = check_equivalent(compile(cs), compile(conv.config))
    half = [d for d in diffs if d.request.path.startswith("/half")]
    assert half
    assert all(d.aspects == ("backends",) for d in half)
    assert "500 unresolved backend" in half[0].before
    # The ReplaceFullPath on a PathPrefix match becomes a uriRegexRewrite, which the
    # VirtualService compiler turns into Envoy's regex_rewrite: the rewritten paths agree.
    assert [d for d in diffs if d not in half] == []


# -- every example, both ways -----------------------------------------------------------------


def on_gateway(cs: ConfigSet) -> ConfigSet:
    """Mesh VirtualServices put on an ingress Gateway, so that their rules are compiled."""
    if is_legacy(cs) and not cs.kind(Gateway):
        legacy = convert(cs, modern_defaults=True)
        if legacy.config.kind(Gateway):
            return cs
        cs = legacy.config
    if cs.kind(Gateway):
        return cs
    out = [
        r.model_copy(update={"spec": r.spec.model_copy(update={"gateways": ["ingress"]})})
        if isinstance(r, VirtualService)
        else r
        for r in cs
    ]
    return ConfigSet.of([*loads(GATEWAY), *out])


LOSSY = {"IL315", "IL317", "IL318"}


@pytest.mark.parametrize(
    "path", [*EXAMPLES, ROOT / "examples" / "seed"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_example_converts_both_ways_with_the_same_answers(path: Path) -> None:
    cs = on_gateway(load(path))
    conv = legacy_to_gateway_api(cs) if is_legacy(cs) else to_gateway_api(cs)
    assert not [f for f in conv.findings if f.severity is Severity.ERROR]
    before, after = tables(cs, conv)
    assert bool(after.virtual_hosts) == bool(before.virtual_hosts)
    diffs = check_equivalent(before, after, backends=conv.backends)
    lossy = {f.code for f in conv.findings} & LOSSY
    # a difference only where a finding says the conversion loses something
    assert not diffs or lossy, "\n".join(map(str, diffs))
    if "IL317" in lossy and lossy == {"IL317"}:
        exact = (
            legacy_to_gateway_api(cs, prefix_mode="regex")
            if is_legacy(cs)
            else to_gateway_api(cs, prefix_mode="regex")
        )
        assert check_equivalent(before, compile(exact.config), backends=exact.backends) == []
    # and back to VirtualServices: exactly the HTTPRoutes' answers
    back = to_istio(conv.config)
    assert back.findings == ()
    assert check_equivalent(after, compile(back.config)) == []


def test_seed_loses_its_fault_and_says_so() -> None:
    cs = load(ROOT / "examples" / "seed")
    conv = legacy_to_gateway_api(cs)
    assert "IL315" in {f.code for f in conv.findings}
    before, after = tables(cs, conv)
    (first, *_) = check_equivalent(before, after)
    assert first.aspects == ("answer",)
    assert first.before == "403 fault abort"


def test_check_equivalent_sees_weights_and_redirects() -> None:
    split = vs_config(
        """
        - route:
          - {destination: {host: web}, weight: 90}
          - {destination: {host: api}, weight: 10}
        """
    )
    other = vs_config(
        """
        - route:
          - {destination: {host: web}, weight: 50}
          - {destination: {host: api}, weight: 50}
        """
    )
    (d, *_) = check_equivalent(compile(split), compile(other))
    assert d.aspects == ("backends",)
    moved = vs_config("- redirect: {uri: /a}")
    elsewhere = vs_config("- redirect: {uri: /b}")
    (d, *_) = check_equivalent(compile(moved), compile(elsewhere))
    assert d.aspects == ("answer",)
    assert "/a" in d.before
    assert "/b" in d.after


def test_converted_output_is_valid_yaml_that_loads_again() -> None:
    conv = to_gateway_api(load(ROOT / "examples" / "modern" / "ingress.yaml"))
    again = loads(dumps(conv.config))
    assert [r.key for r in again] == [r.key for r in conv.config]
    assert not [f for f in validate(again) if f.severity is Severity.ERROR]


# -- a real Envoy agrees with the converted tables ------------------------------------------


@pytest.mark.envoy
@pytest.mark.xdist_group("envoy")
@pytest.mark.parametrize(
    ("path", "to"),
    [
        ("examples/modern/ingress.yaml", "gateway-api"),
        ("examples/modern/canary-90-10.yaml", "gateway-api"),
    ],
)
def test_converted_output_verifies_on_envoy(path: str, to: str) -> None:
    from istiolab.envoy.verify.generate import generate_cases
    from istiolab.envoy.verify.runner import verify

    cs = on_gateway(load(ROOT / path))
    conv = to_gateway_api(cs)
    table = compile(conv.config)
    cases = generate_cases(table)
    assert len(cases) >= len(table.routes())
    report = verify(table, cases, requests=200)
    assert report.ok, report.failures()
    assert report.agree == len(report.results)
    # and the VirtualServices it converts back to
    back = compile(to_istio(conv.config).config)
    report = verify(back, generate_cases(back), requests=200)
    assert report.ok, report.failures()


# -- the command line --------------------------------------------------------------------------


def test_cli_convert_to_gateway_api_and_back(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from istiolab.cli.app import app

    runner = CliRunner()
    out = tmp_path / "gw.yaml"
    src = str(ROOT / "examples" / "modern" / "ingress.yaml")
    res = runner.invoke(app, ["convert", src, "--to", "gateway-api", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "IL317" in res.output
    kinds = [r.kind for r in load(out)]
    assert kinds.count("HTTPRoute") == 1
    assert "VirtualService" not in kinds
    res = runner.invoke(app, ["convert", src, "--to", "gateway-api", "--prefix-mode", "regex"])
    assert res.exit_code == 0, res.output
    assert "IL317" not in res.output
    assert "RegularExpression" in res.output
    res = runner.invoke(app, ["convert", str(out), "--to", "istio"])
    assert res.exit_code == 0, res.output
    assert [r.kind for r in loads(res.stdout)].count("VirtualService") == 1
    # the default stays the legacy conversion
    res = runner.invoke(app, ["convert", str(ROOT / "examples" / "seed")])
    assert res.exit_code == 0, res.output
    assert "kind: VirtualService" in res.stdout
    for bad in (["--to", "nginx"], ["--to", "gateway-api", "--prefix-mode", "glob"]):
        res = runner.invoke(app, ["convert", src, *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert "Traceback" not in res.output


def test_header_presence_and_empty_values() -> None:
    cs = vs_config(
        """
        - match: [{headers: {x-debug: {}}}]
          route: [{destination: {host: api}}]
        - match: [{headers: {x-empty: {exact: ""}}}]
          route: [{destination: {host: api}}]
        - route: [{destination: {host: web}}]
        """
    )
    conv = to_gateway_api(cs)
    assert codes(conv) == [("IL315", "spec.http[1].match[0].headers.x-empty")]
    rules = the_route(conv).spec.rules or []
    (h,) = (rules[0].matches or [])[0].headers or []
    assert (h.name, h.type, h.value) == ("x-debug", "RegularExpression", ".*")
    before, after = tables(cs, conv)
    debug = Request("/", host="shop.example.com", headers={"x-debug": "yes"})
    assert route(after, debug).route.source.http_index == 0  # type: ignore[union-attr]
    diffs = check_equivalent(before, after)
    assert all(d.before_route == "VirtualService/default/shop http[1]" for d in diffs)


def test_a_value_the_gateway_api_refuses_is_a_finding_not_a_crash() -> None:
    hosts = "[" + ", ".join(f"h{k}.example.com" for k in range(17)) + "]"
    conv = to_gateway_api(vs_config("- route: [{destination: {host: web}}]", hosts=hosts))
    assert not conv.config.kind(HTTPRoute)
    (f,) = conv.findings
    assert f.code == "IL315"
    assert "spec.hostnames" in f.message


def test_long_durations_fit_gep_2257() -> None:
    conv = to_gateway_api(vs_config("- timeout: 100000s\n  route: [{destination: {host: web}}]"))
    t = (the_route(conv).spec.rules or [])[0].timeouts
    assert t is not None
    assert t.request == "27h46m40s"


def test_parent_refs_name_the_listeners_serving_the_hosts() -> None:
    cs = loads(
        """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com, b.example.com]}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
"""
        + SERVICES
        + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  gateways: [ingress]
  http: [{route: [{destination: {host: web}}]}]
"""
    )
    conv = to_gateway_api(cs)
    (gw,) = conv.config.kind(APIGateway)
    assert [(x.name, x.port, x.hostname) for x in gw.spec.listeners] == [
        ("http-80", 80, "a.example.com"),
        ("http-80-2", 80, "b.example.com"),
        ("https-443", 443, "a.example.com"),
    ]
    tls = gw.spec.listeners[2].tls
    assert tls is not None
    assert [c.name for c in tls.certificate_refs or []] == ["a-cert"]
    refs = the_route(conv).spec.parent_refs or []
    assert [(p.name, p.section_name) for p in refs] == [
        ("ingress", "http-80"),
        ("ingress", "https-443"),
    ]
    before, after = tables(cs, conv)
    assert check_equivalent(before, after) == []


def test_gateway_rate_limit_does_not_follow_to_the_gateway_api_gateway() -> None:
    limit = load(ROOT / "examples" / "modern" / "ratelimit-100rps.yaml").kind(EnvoyFilter)
    cs = vs_config("- route: [{destination: {host: web}}]") + ConfigSet.of(limit)
    conv = to_gateway_api(cs)
    (f,) = [f for f in conv.findings if f.resource.startswith("EnvoyFilter/")]
    assert f.code == "IL315"
    assert "gateway.networking.k8s.io/gateway-name" in f.fix
    before, after = tables(cs, conv)
    diffs = check_equivalent(before, after)
    assert diffs
    assert {d.aspects for d in diffs} == {("rate_limit",)}
