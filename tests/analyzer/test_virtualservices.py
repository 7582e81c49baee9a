"""VirtualServices: '*' on the mesh, no routes, hosts in two VirtualServices, single weights,
repeated destinations, deprecated forms, and shadowed routes named with the route and field that
shadow them (indexed by match shape, so the check stays near-linear)."""

from __future__ import annotations

import re
import textwrap

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair, pair_of
from istiolab.config.checks import virtualservices
from istiolab.config.matching import covers
from istiolab.config.model import HTTPMatchRequest


def cont(text: str) -> str:
    """More of :data:`VS`'s spec (indented under ``spec:``), then any further documents as is."""
    first, *rest = re.split(r"(?m)^[ \t]*---[ \t]*$", text)
    head = textwrap.indent(textwrap.dedent(first).lstrip("\n"), "  ")
    return head + "".join("---" + textwrap.dedent(r) for r in rest)


VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [httpbin]
"""

PAIRS = [
    pair(
        "IL223",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts:
          - "*"  # <-
          gateways: [mesh]
          http:
          - route:
            - destination: {host: httpbin}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public}
        spec:
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: ["*"]
        """,
        ("gateways: [mesh]", "gateways: [public]"),
        "spec.hosts[0]",
        "host '*' with the mesh gateway",
    ),
    pair(
        "IL224",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:  # <-
          hosts: [httpbin]
        """,
        (
            "hosts: [httpbin]",
            "hosts: [httpbin]\n  http:\n  - route:\n    - destination: {host: httpbin}",
        ),
        "spec",
        "VirtualService 'vs' has no http, tls or tcp routes",
    ),
    pair(
        "IL225",
        VS
        + cont(
            """
          http:
          - route:
            - destination: {host: httpbin}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: canary}
        spec:
          hosts:
          - httpbin.default.svc.cluster.local  # <-
          http:
          - route:
            - destination: {host: httpbin, subset: v2}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: httpbin}
        spec:
          host: httpbin
          subsets:
          - {name: v2, labels: {version: v2}}
            """
        ),
        ("- httpbin.default.svc.cluster.local", "- ratings"),
        "spec.hosts[0]",
        "host 'httpbin.default.svc.cluster.local' is also in VirtualService default/vs",
    ),
    pair(
        "IL226",
        VS
        + cont(
            """
          http:
          - route:
            - destination: {host: httpbin}
              weight: 80  # <-
            """
        ),
        ("weight: 80", "weight: 100"),
        "spec.http[0].route[0].weight",
        "the only destination has weight 80",
    ),
    pair(
        "IL227",
        VS
        + cont(
            """
          http:
          - route:
            - destination: {host: httpbin, subset: v1}
              weight: 50
            - destination: {host: httpbin, subset: v1}  # <-
              weight: 50
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: httpbin}
        spec:
          host: httpbin
          subsets:
          - {name: v1, labels: {version: v1}}
          - {name: v2, labels: {version: v2}}
            """
        ),
        (
            "- destination: {host: httpbin, subset: v1}  # <-",
            "- destination: {host: httpbin, subset: v2}  # <-",
        ),
        "spec.http[0].route[1].destination",
        "host 'httpbin' subset 'v1' is already route[0]",
    ),
    pair(
        "IL228",
        VS
        + cont(
            """
          http:
          - fault:
              delay:
                fixedDelay: 5s
                percent: 10  # <-
            route:
            - destination: {host: httpbin}
            """
        ),
        ("percent: 10", "percentage: {value: 10}"),
        "spec.http[0].fault.delay.percent",
        "fault.delay.percent (10) is deprecated",
        id_="IL228-delay-percent",
    ),
    pair(
        "IL228",
        VS
        + cont(
            """
          http:
          - route:
            - destination: {host: httpbin}
            mirror: {host: httpbin-shadow}
            mirrorPercent: 5  # <-
            """
        ),
        ("mirrorPercent: 5", "mirrorPercentage: {value: 5}"),
        "spec.http[0].mirrorPercent",
        "mirrorPercent (5) is deprecated",
        id_="IL228-mirror-percent",
    ),
    pair(
        "IL228",
        VS
        + cont(
            """
          gateways:
          - public.istio-system  # <-
          http:
          - route:
            - destination: {host: httpbin}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public, namespace: istio-system}
        spec:
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: ["*"]
            """
        ),
        ("public.istio-system", "istio-system/public"),
        "spec.gateways[0]",
        "gateway 'public.istio-system' uses the old 'name.namespace' form",
        id_="IL228-gateway-name",
    ),
    pair(
        "IL208",
        VS
        + cont(
            """
          http:
          - name: api
            match:
            - uri: {prefix: /api}
            route:
            - destination: {host: httpbin}
          - name: api-v2  # <-
            match:
            - uri: {prefix: /api/v2}
            route:
            - destination: {host: httpbin}
            """
        ),
        ("prefix: /api}", "prefix: /api/v1}"),
        "spec.http[1]",
        "is taken by earlier route http[0] ('api'): its match[0].uri (prefix '/api') covers",
        id_="IL208-names-route-and-field",
    ),
    pair(
        "IL241",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: edge}
        spec:
          hosts: [shop.example.com]
          gateways: [public]
          http:
          - route:
            - destination:
                host: reviews  # <-
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews}
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination: {host: reviews, subset: v1}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          subsets:
          - {name: v1, labels: {version: v1}}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public}
        spec:
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: [shop.example.com]
        """,
        ("host: reviews  # <-", "host: reviews  # <-\n        subset: v1"),
        "spec.http[0].route[0].destination.host",
        "VirtualService default/reviews splits it by subset for the mesh only",
    ),
]


# Durations the CRDs' CEL rules refuse ("duration(self) >= duration('1ms')" parses int64
# nanoseconds: at most 9223372036.854775807s) though protobuf allows 315576000000s
_CEL_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin}
    timeout: 9223372036.855s  # <-
    retries: {attempts: 2, perTryTimeout: 2s}
"""
PAIRS += [
    pair(
        "IL104",
        _CEL_VS,
        ("9223372036.855s", "9223372036.854s"),
        "spec.http[0].timeout",
        "'9223372036.855s'",
        id_="IL104-cel-timeout",
    ),
    pair(
        "IL104",
        _CEL_VS.replace("9223372036.855s  # <-", "5s").replace(
            "perTryTimeout: 2s}", "perTryTimeout: 2562048h}  # <-"
        ),
        ("2562048h", "2562047h"),
        "spec.http[0].retries.perTryTimeout",
        "'2562048h'",
        id_="IL104-cel-per-try-timeout",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


def test_same_host_on_two_gateways_is_no_conflict() -> None:
    text = pair_of(PAIRS[2]).bad.replace(
        "metadata: {name: canary}\nspec:\n",
        "metadata: {name: canary}\nspec:\n  gateways: [public]\n",
    )
    assert not [f for f in lint(text) if f.code == "IL225"]


def test_gateway_host_conflict_says_routes_are_merged() -> None:
    gw = (
        "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: public}\n"
        "spec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n"
        "    hosts: ['*']\n"
    )
    one = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: NAME}\n"
        "spec:\n  hosts: [web.example.com]\n  gateways: [public]\n  http:\n  - route:\n"
        "    - destination: {host: web}\n"
    )
    findings = [
        f
        for f in lint(one.replace("NAME", "a") + "---\n" + one.replace("NAME", "b") + gw)
        if f.code == "IL225"
    ]
    assert len(findings) == 1
    assert "merges their routes in creation order" in findings[0].message
    assert findings[0].resource == "VirtualService/default/b"


def test_shadowing_names_every_covering_route() -> None:
    text = VS + (
        "  http:\n"
        "  - match: [{uri: {prefix: /a}}]\n"
        "    route: [{destination: {host: httpbin}}]\n"
        "  - match: [{uri: {exact: /b}}]\n"
        "    route: [{destination: {host: httpbin}}]\n"
        "  - match: [{uri: {exact: /a/x}}, {uri: {exact: /b}}]\n"
        "    route: [{destination: {host: httpbin}}]\n"
    )
    (f,) = [f for f in lint(text) if f.code == "IL208"]
    assert f.path == "spec.http[2]"
    assert "http[0] (with http[0], http[1])" in f.message


def routes(n: int, *, shadowed_at: int | None = None) -> str:
    """A VirtualService with *n* routes on distinct paths and headers; one shadowed if asked."""
    out = [VS.lstrip("\n"), "  http:\n"]
    for i in range(n):
        uri = f"/svc/{i}/api" if i != shadowed_at else "/svc/7/api/deeper"
        kind = "prefix" if i % 2 else "exact"
        if i == shadowed_at:
            kind = "prefix"
        out.append(
            f"  - match:\n    - uri: {{{kind}: {uri}}}\n"
            f"      headers: {{x-tenant: {{exact: t{i % 50}}}}}\n"
            "    route:\n    - destination: {host: httpbin}\n"
        )
    return "".join(out)


def test_shadowing_of_3000_routes_is_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    # route 7 is a prefix /svc/7/api with header t7; route 2507 has a longer path and the same
    # header (2507 % 50 == 7), so it is shadowed; no other route is. (10 000 routes are timed in
    # bench/; loading them takes too long for a unit test on a shared machine.)
    text = routes(3_000, shadowed_at=2507)
    calls = 0

    def counting(a: HTTPMatchRequest | None, b: HTTPMatchRequest | None) -> bool:
        nonlocal calls
        calls += 1
        return covers(a, b)

    monkeypatch.setattr(virtualservices, "covers", counting)
    shadowed = [f for f in lint(text) if f.code == "IL208"]
    assert [f.path for f in shadowed] == ["spec.http[2507]"]
    assert "http[7]" in shadowed[0].message
    # the index hands each route a few candidates; comparing with every earlier route would be
    # 4.5 million calls
    assert calls < 5 * 3_000, calls


def test_mesh_rules_bound_to_the_gateway_too_apply_there() -> None:
    bad = next(pair_of(p) for p in PAIRS if pair_of(p).code == "IL241").bad
    both = bad.replace("  hosts: [reviews]\n", "  hosts: [reviews]\n  gateways: [mesh, public]\n")
    assert both != bad
    assert not [f for f in lint(both) if f.code == "IL241"]


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("9223372036.854775807s", False),  # 2^63-1 ns: the longest CEL duration
        ("9223372036.854775808s", True),
        ("2562047h47m16.854775807s", False),
        ("2562047h47m16.854775808s", True),
        ("315576000000s", True),  # protobuf's maximum, past CEL's
    ],
)
def test_the_cel_duration_limit_is_exact_to_the_nanosecond(value: str, refused: bool) -> None:
    text = _CEL_VS.replace("9223372036.855s  # <-", value)
    hits = [f for f in lint(text) if f.code == "IL104" and f.path == "spec.http[0].timeout"]
    # istiod's webhook also refuses sub-ms precision (its own finding, below); the CEL limit
    # is the other refusal
    over = [f for f in hits if "milliseconds" not in f.message]
    assert bool(over) is refused


def test_istiod_refuses_durations_finer_than_a_millisecond() -> None:
    """The CRD's CEL rule takes 2^63-1 ns; istiod's ValidateDuration takes whole ms only."""
    text = _CEL_VS.replace("9223372036.855s  # <-", "9223372036.854775807s")
    hits = [f for f in lint(text) if f.code == "IL104" and f.path == "spec.http[0].timeout"]
    assert [f.message for f in hits] == [
        "'9223372036.854775807s' is not a whole number of milliseconds"
    ]
    assert not lint(_CEL_VS.replace("9223372036.855s  # <-", "9223372036.854s"))
