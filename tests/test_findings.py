"""Every finding code validation can emit: one bad input each, with exact path, line and value.

Each case is a small YAML text. The line a finding must point at is marked in the text with the
comment ``# <-``; the expected line is computed from that marker, so the texts can be edited
without recounting.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

from istiolab.config import load, loads
from istiolab.config.convert import ingress_path_match
from istiolab.config.validate import validate
from istiolab.envoy.compile import compile as compile_table
from istiolab.findings import CODES, Finding, Severity, has_errors, render_docs

MARK = "# <-"
ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input and what validation must say about it."""

    code: str
    text: str
    path: str
    value: str
    profile: str | None = None

    @property
    def line(self) -> int:
        lines = [i for i, t in enumerate(self.text.splitlines(), 1) if MARK in t]
        assert len(lines) == 1, f"case {self.code} needs exactly one {MARK!r} marker"
        return lines[0]


def case(
    code: str, text: str, path: str, value: str, profile: str | None = None, id_: str = ""
) -> pytest.ParameterSet:
    c = Case(code, textwrap.dedent(text).lstrip("\n"), path, value, profile)
    return pytest.param(c, id=id_ or code)


def case_of(param: pytest.ParameterSet) -> Case:
    """The :class:`Case` inside a :func:`case` parameter."""
    c = param.values[0]
    assert isinstance(c, Case)
    return c


def analyzer_codes() -> set[str]:
    """Codes with a broken/correct pair in ``tests/analyzer``."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from analyzer.common import covered_codes
    finally:
        sys.path.pop(0)
    return covered_codes()


def run(text: str, profile: str | None = None, *, suppress: Iterable[str] = ()) -> list[Finding]:
    config = loads(textwrap.dedent(text).lstrip("\n"), file="x.yaml")
    return validate(config, profile, suppress=suppress)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    hits = [f for f in findings if f.code == code]
    assert len(hits) == 1, f"expected one {code}, got {[f.format() for f in findings]}"
    return hits[0]


VS_HEAD = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
spec:
  hosts:
  - httpbin
"""

CASES = [
    case(
        "IL001",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: a: b  # <-
        """,
        "",
        "mapping values are not allowed",
    ),
    case(
        "IL002",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: httpbin
        ---
        - just  # <-
        - a list
        """,
        "",
        "is a list",
    ),
    case(
        "IL003",
        """
        # a resource without a string kind
        apiVersion: v1
        kind: [Service]  # <-
        metadata:
          name: httpbin
        """,
        "kind",
        "kind",
    ),
    case(
        "IL004",
        """
        apiVersion: example.com/v1
        kind: Widget  # <-
        metadata:
          name: w
        """,
        "kind",
        "example.com/v1 Widget",
    ),
    case(
        "IL006",
        """
        apiVersion: v1
        kind: Service
        metadata:  # <-
          namespace: web
        """,
        "metadata.name",
        "Service has no metadata.name",
    ),
    case(
        "IL010",
        """
        # a "billion laughs": each line repeats the one above ten times
        a: &a [x, x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]  # <-
        h: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
        ---
        # istiolab stops reading at the bomb. PyYAML, which builds the bomb as shared lists,
        # stops here, so test_config_fuzz (it mutates these cases, walking them) skips it.
        [unclosed
        """,
        "",
        "1,500,000 YAML nodes",
    ),
    case(
        "IL011",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n"
        + "data: "
        + "[" * 100
        + "]" * 100
        + "  # <-\n",
        "",
        "deeper than 100 levels",
    ),
    case(
        "IL013",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: !!binary aGVsbG8=  # <-
        """,
        "",
        "'!!binary'",
    ),
    case(
        "IL014",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: a
          name: b  # <-
        spec: {ports: [{name: http, port: 80}]}
        """,
        "",
        "'name' appears twice in one mapping (lines 4 and 5)",
    ),
    case(
        "IL101",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
      wieght: 100  # <-
""",
        "spec.http[0].route[0].wieght",
        "'wieght' (did you mean 'weight'?)",
    ),
    case(
        "IL102",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: dr
        spec:  # <-
          subsets:
          - name: v1
        """,
        "spec.host",
        "'host'",
    ),
    case(
        "IL103",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
      weight: heavy  # <-
""",
        "spec.http[0].route[0].weight",
        "'heavy'",
    ),
    case(
        "IL104",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
    timeout: 5 seconds  # <-
""",
        "spec.http[0].timeout",
        "'5 seconds'",
    ),
    case(
        "IL105",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
    fault:
      abort:
        httpStatus: 503
        percentage:
          value: 150  # <-
""",
        "spec.http[0].fault.abort.percentage.value",
        "150",
    ),
    case(
        "IL106",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
    fault:
      abort:
        httpStatus: 700  # <-
        percentage:
          value: 10
""",
        "spec.http[0].fault.abort.httpStatus",
        "700",
    ),
    case(
        "IL107",
        VS_HEAD
        + """\
  http:
  - match:
    - uri:
        regex: /api/(?!internal).*  # <-
    route:
    - destination:
        host: httpbin
""",
        "spec.http[0].match[0].uri.regex",
        "'/api/(?!internal).*'",
    ),
    case(
        "IL108",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: dr
        spec:
          host: httpbin
          trafficPolicy:
            loadBalancer:
              simple: FASTEST  # <-
        """,
        "spec.trafficPolicy.loadBalancer.simple",
        "'FASTEST'",
    ),
    case(
        "IL109",
        VS_HEAD
        + """\
  http:
  - match:
    - headers:
        x user:  # <-
          exact: beta
    route:
    - destination:
        host: httpbin
""",
        "spec.http[0].match[0].headers.'x user'",
        "'x user'",
    ),
    case(
        "IL110",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: Httpbin_v1  # <-
        """,
        "metadata.name",
        "'Httpbin_v1'",
    ),
    case(
        "IL111",
        VS_HEAD
        + """\
  http:
  - match:
    - uri:
        regex: /api/v[0-9]{1,60}  # <-
    route:
    - destination:
        host: httpbin
""",
        "spec.http[0].match[0].uri.regex",
        "'/api/v[0-9]{1,60}'",
    ),
    case(
        "IL201",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: canary
        spec:
          destination:
            name: httpbin
          route:  # <-
          - labels:
              version: v1
            weight: 50
          - labels:
              version: v2
            weight: 40
        """,
        "spec.route",
        "[50, 40] total 90",
        profile="0.2",
    ),
    case(
        "IL202",
        VS_HEAD
        + """\
  http:
  - route:  # <-
    - destination:
        host: httpbin
      weight: 50
    - destination:
        host: httpbin
      weight: 40
""",
        "spec.http[0].route",
        "[50, 40] total 90",
        profile="1.14",
    ),
    case(
        "IL203",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
        subset: v3  # <-
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: dr
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
""",
        "spec.http[0].route[0].destination.subset",
        "'v3'",
    ),
    case(
        "IL204",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: dr
        spec:
          host: httpbin
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v9
            labels:  # <-
              version: v9
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: httpbin-v1
        spec:
          template:
            metadata:
              labels: {app: httpbin, version: v1}
        """,
        "spec.subsets[1].labels",
        "'v9'",
    ),
    case(
        "IL205",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: httpbin
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: httpbin  # <-
        """,
        "metadata.name",
        "default/httpbin",
    ),
    case(
        "IL206",
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata:
          name: public
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: [www.example.com]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: vs
        spec:
          hosts:
          - www.example.com
          - api.example.com  # <-
          gateways: [public]
          http:
          - route:
            - destination: {host: httpbin}
        """,
        "spec.hosts[1]",
        "'api.example.com'",
    ),
    case(
        "IL207",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: httpbin
  - name: late  # <-
    match:
    - uri: {prefix: /api}
    route:
    - destination:
        host: httpbin
""",
        "spec.http[1]",
        "http[1] ('late') comes after http[0]",
    ),
    case(
        "IL208",
        VS_HEAD
        + """\
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: httpbin}
  - name: v1-api  # <-
    match:
    - uri: {prefix: /api/v1}
    route:
    - destination: {host: httpbin}
""",
        "spec.http[1]",
        "http[1] ('v1-api')",
    ),
    case(
        "IL209",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: a-rule
        spec:
          destination: {name: httpbin}
          precedence: 2
          match:
            request:
              headers:
                cookie: {regex: ".*user=jason.*"}
        ---
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: b-rule
        spec:
          destination: {name: httpbin}
          precedence: 2  # <-
        """,
        "spec.precedence",
        "a-rule, b-rule",
        profile="0.2",
    ),
    case(
        "IL210",
        VS_HEAD
        + """\
  gateways:
  - mesh
  - edge/missing-gw  # <-
  http:
  - route:
    - destination: {host: httpbin}
""",
        "spec.gateways[1]",
        "'edge/missing-gw'",
    ),
    case(
        "IL211",
        VS_HEAD
        + """\
  http:
  - route:
    - destination:
        host: ratings  # <-
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
""",
        "spec.http[0].route[0].destination.host",
        "'ratings'",
    ),
    case(
        "IL212",
        """
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: web
          annotations:
            kubernetes.io/ingress.class: istio
        spec:
          rules:
          - http:
              paths:
              - path: /.*
                backend:  # <-
                  serviceName: nosuch
                  servicePort: 8000
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: httpbin
        """,
        "spec.rules[0].http.paths[0].backend",
        "'nosuch'",
    ),
    case(
        "IL213",
        VS_HEAD
        + """\
  http:
  - redirect:  # <-
      uri: /new
    route:
    - destination: {host: httpbin}
""",
        "spec.http[0]",
        "route and redirect",
    ),
    case(
        "IL301",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: flaky
        spec:
          destination: {name: httpbin}
          httpFault:
            abort:
              percent: 0.5  # <-
              httpStatus: 503
        """,
        "spec.httpFault.abort.percent",
        "percent 0.5 truncates to 0",
        profile="0.2",
    ),
    case(
        "IL302",
        VS_HEAD
        + """\
  http:
  - route:
    - destination: {host: httpbin}
    fault:
      delay:
        exponentialDelay: 2s  # <-
""",
        "spec.http[0].fault.delay.exponentialDelay",
        "'2s'",
    ),
    case(
        "IL303",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: shadow
        spec:
          destination: {name: httpbin}
          mirror:  # <-
            name: httpbin-shadow
        """,
        "spec.mirror",
        "mirror",
        profile="0.2",
    ),
    case(
        "IL304",
        """
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: web
          annotations:
            kubernetes.io/ingress.class: istio
        spec:
          rules:
          - http:
              paths:
              - path: /.*
                backend: {serviceName: httpbin, servicePort: 8000}
              - path: /a.b/.*  # <-
                backend: {serviceName: httpbin, servicePort: 8000}
        """,
        "spec.rules[0].http.paths[1].path",
        "'/a.b/.*'",
    ),
    case(
        "IL306",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: l4
        spec:
          destination: {name: httpbin}
          l4Fault:  # <-
            terminate: {percent: 10}
        """,
        "spec.l4Fault",
        "l4Fault",
        profile="0.2",
    ),
    case(
        "IL307",
        """
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: web
          annotations:  # <-
            kubernetes.io/ingress.class: nginx
        spec:
          backend: {serviceName: httpbin, servicePort: 8000}
        """,
        "metadata.annotations",
        "'nginx'",
    ),
    case(
        "IL308",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: memquota
        metadata:
          name: handler
        spec:
          quotas:  # <-
          - name: requestcount.quota.istio-system
            maxAmount: 100
            validDuration: 1s
        """,
        "spec.quotas",
        "'handler'",
    ),
    case(
        "IL309",
        """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: lua
        spec:
          configPatches:
          - applyTo: HTTP_FILTER  # <-
            patch:
              operation: INSERT_BEFORE
              value:
                name: envoy.filters.http.lua
        """,
        "spec.configPatches[0]",
        "HTTP_FILTER",
    ),
    case(
        "IL310",
        VS_HEAD
        + """\
  http:
  - route:
    - destination: {host: httpbin}
    fault:
      abort:
        httpStatus: 503
        percentage:
          value: 0.00001  # <-
""",
        "spec.http[0].fault.abort.percentage.value",
        "1e-05",
    ),
]

# Codes validate() does not emit for a text given to loads(), and why.
NOT_FROM_VALIDATE = {
    "IL005": "emitted by load() for a path that does not exist (test_il005_missing_file)",
    "IL007": "load() of a device, FIFO or socket (tests/hostile)",
    "IL008": "load() of a file over 8 MiB, or loads() of as much text (tests/hostile)",
    "IL009": "a document over 6 MiB (tests/hostile)",
    "IL012": "load() of bytes that are not UTF-8 (tests/hostile)",
    "IL305": "converter only: a source match becomes sourceLabels/gateways in conversion",
    "IL311": "converter only: legacy defaults written out by conversion",
    "IL312": "converter only: fields with no effect at the ingress, found during conversion",
    "IL313": "route compiler only: features left out of the compiled routes",
    "IL314": "route compiler only: a local rate limit that never enforces",
    "IL315": "Gateway API conversion only (tests/gatewayapi/test_convert.py): not expressible",
    "IL316": "Gateway API conversion only: experimental-channel fields written",
    "IL317": "Gateway API conversion only: string prefix written as PathPrefix",
    "IL318": "Gateway API conversion only: specificity order overtakes an earlier route",
    "IL319": "Gateway API conversion only: a subset written as a Service",
    "IL320": "Gateway API conversion only: a mesh route written as a GAMMA HTTPRoute",
    "IL321": "Gateway API to VirtualService conversion only: not expressible",
    "IL401": "scenario files (not validated by istiolab.config.validate)",
    "IL402": "simulation budget: scenarios and sweeps too large to run (tests/hostile)",
}

# More inputs for codes with several causes (ids are code-cause).
EXTRA_CASES = [
    case(
        "IL003",
        """
        apiVersion: v1  # <-
        metadata:
          name: httpbin
        """,
        "kind",
        "kind missing",
        id_="IL003-kind-absent",
    ),
    case(
        "IL102",
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: vs
        spec:
          hosts: []  # <-
          http:
          - route:
            - destination: {host: httpbin}
        """,
        "spec.hosts",
        "spec.hosts is empty",
        id_="IL102-empty-hosts",
    ),
    case(
        "IL102",
        VS_HEAD
        + """\
  http:
  - name: nowhere  # <-
    timeout: 1s
""",
        "spec.http[0]",
        "http[0] has no route",
        id_="IL102-no-action",
    ),
    case(
        "IL102",
        VS_HEAD
        + """\
  http:
  - route:
    - destination: {host: httpbin}
    fault:
      delay:  # <-
        percentage: {value: 10}
""",
        "spec.http[0].fault.delay",
        "no fixedDelay",
        id_="IL102-delay-without-fixedDelay",
    ),
    case(
        "IL108",
        VS_HEAD
        + """\
  http:
  - route:
    - destination: {host: httpbin}
    fault:
      abort:  # <-
        httpStatus: 503
        grpcStatus: UNAVAILABLE
""",
        "spec.http[0].fault.abort",
        "httpStatus, grpcStatus",
        id_="IL108-oneof",
    ),
    case(
        "IL108",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination:
            name: httpbin
            labels:  # <-
              version: v1
        """,
        "spec.destination.labels",
        "'version': 'v1'",
        profile="0.2",
        id_="IL108-routerule-destination-labels",
    ),
    case(
        "IL108",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          match: {}  # <-
        """,
        "spec.match",
        "match is empty",
        profile="0.2",
        id_="IL108-empty-match",
    ),
    case(
        "IL204",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          route:
          - labels:  # <-
              version: v2
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: httpbin-v1
        spec:
          template:
            metadata:
              labels: {app: httpbin, version: v1}
        """,
        "spec.route[0].labels",
        "'v2'",
        profile="0.2",
        id_="IL204-routerule",
    ),
    case(
        "IL213",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          redirect:  # <-
            uri: /new
          route:
          - weight: 100
        """,
        "spec.redirect",
        "redirect cannot be combined with route",
        profile="0.2",
        id_="IL213-routerule",
    ),
    case(
        "IL302",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          httpFault:
            abort:
              percent: 10
              grpcStatus: UNAVAILABLE  # <-
        """,
        "spec.httpFault.abort.grpcStatus",
        "grpcStatus",
        profile="0.2",
        id_="IL302-grpc-abort",
    ),
    case(
        "IL302",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          httpFault:
            delay:
              percent: 10
              exponentialDelay:  # <-
                meanDelay: 1s
        """,
        "spec.httpFault.delay.exponentialDelay",
        "exponentialDelay",
        profile="0.2",
        id_="IL302-routerule-exponential",
    ),
    case(
        "IL306",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: RouteRule
        metadata:
          name: r
        spec:
          destination: {name: httpbin}
          match:
            tcp:  # <-
              sourceSubnet: [10.0.0.0/8]
        """,
        "spec.match.tcp",
        "match.tcp",
        profile="0.2",
        id_="IL306-tcp-match",
    ),
    case(
        "IL306",
        """
        apiVersion: config.istio.io/v1alpha2
        kind: DestinationPolicy
        metadata:
          name: p
        spec:
          destination: {name: httpbin}
          source:  # <-
            name: istio-ingress
        """,
        "spec.source",
        "DestinationPolicy.source",
        profile="0.2",
        id_="IL306-policy-source",
    ),
    case(
        "IL307",
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
        spec:
          ingressClassName: alb  # <-
          defaultBackend:
            service: {name: httpbin, port: {number: 8000}}
        """,
        "spec.ingressClassName",
        "'alb'",
        id_="IL307-ingressClassName",
    ),
    case(
        "IL310",
        VS_HEAD
        + """\
  http:
  - route:
    - destination: {host: httpbin}
    fault:
      delay:
        fixedDelay: 1s
        percentage:
          value: 0.00005  # <-
""",
        "spec.http[0].fault.delay.percentage.value",
        "5e-05",
        id_="IL310-delay",
    ),
]


@pytest.mark.parametrize("c", CASES + EXTRA_CASES)
def test_bad_input_gives_code_at_path_and_line(c: Case) -> None:
    findings = validate(loads(c.text, file="x.yaml"), c.profile)
    hits = [f for f in findings if f.code == c.code]
    assert hits, f"no {c.code} in {[f.format() for f in findings]}"
    f = next((h for h in hits if h.path == c.path), hits[0])
    assert f.path == c.path
    assert f.line == c.line, f.format()
    assert f.file == "x.yaml"
    assert c.value in f.message, f.message
    assert f.severity is CODES[c.code].severity
    assert f.fix
    # the finding is located, and its rendering carries everything a reader needs
    assert f"x.yaml:{c.line}" in f.format()


def test_every_code_is_covered_or_explained() -> None:
    covered = {case_of(p).code for p in CASES}
    assert covered.isdisjoint(NOT_FROM_VALIDATE)
    # the analyzer's checks of issue #13 have their pairs in tests/analyzer, one file per family
    missing = set(CODES) - covered - set(NOT_FROM_VALIDATE) - analyzer_codes()
    assert not missing, f"codes with neither a bad-input case nor a reason: {sorted(missing)}"
    assert set(NOT_FROM_VALIDATE) <= set(CODES)
    # one primary case per code, ids = codes
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids))
    assert all(p.id == case_of(p).code for p in CASES)


def test_il005_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    findings = validate(load([missing]))
    f = only(findings, "IL005")
    assert str(missing) in f.message
    assert f.severity is Severity.ERROR


def test_codes_not_from_validate_are_really_not_emitted() -> None:
    # Sanity: the seed-like legacy input that a converter would flag with IL305 is quiet here.
    findings = run(SEED_ROUTE_RULE, "0.2")
    assert not set(codes(findings)) & set(NOT_FROM_VALIDATE)


# -- profile-dependent weights --------------------------------------------------------------


def vs_weights(*weights: int) -> str:
    dests = "".join(
        f"    - destination: {{host: httpbin, subset: v{i}}}\n      weight: {w}\n"
        for i, w in enumerate(weights)
    )
    return VS_HEAD + "  http:\n  - route:\n" + dests


@pytest.mark.parametrize(
    ("weights", "profile", "expected"),
    [
        ((50, 40), "1.14", True),
        ((50, 40), "1.0", True),
        ((50, 40), "1.7", True),
        ((50, 40), "1.24", False),
        ((50, 40), "1.15", False),
        ((50, 50), "1.14", False),
        ((0, 0), "1.24", True),
        ((0, 0), "1.15", True),
        ((0, 0), "1.14", True),
        ((0, 100), "1.24", False),
        ((3, 1), None, False),
    ],
)
def test_destination_weights_depend_on_profile(
    weights: tuple[int, ...], profile: str | None, expected: bool
) -> None:
    findings = run(vs_weights(*weights), profile, suppress=["IL203"])
    assert ("IL202" in codes(findings)) is expected
    if expected:
        f = only(findings, "IL202")
        assert f.path == "spec.http[0].route"
        assert str(list(weights)) in f.message
        assert f.severity is Severity.ERROR


def test_zero_total_message_says_no_traffic() -> None:
    f = only(run(vs_weights(0, 0), "1.24", suppress=["IL203"]), "IL202")
    assert "total 0" in f.message


def test_single_destination_needs_no_weight() -> None:
    text = VS_HEAD + "  http:\n  - route:\n    - destination: {host: httpbin}\n"
    for profile in ("1.0", "1.14", "1.24"):
        assert run(text, profile) == []


# -- legacy weights --------------------------------------------------------------------------


def route_rule(weights: list[int | None], name: str = "r") -> str:
    routes = ""
    for i, w in enumerate(weights):
        routes += f"  - labels: {{version: v{i}}}\n"
        if w is not None:
            routes += f"    weight: {w}\n"
    return (
        "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\n"
        f"metadata:\n  name: {name}\nspec:\n  destination: {{name: httpbin}}\n  route:\n" + routes
    )


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([50, 40], True),
        ([50, 50], False),
        ([90, 10, 1], True),
        ([100], False),
        ([0], False),  # "if there is only one destination the weight is assumed to be 100"
        ([None], False),
        ([50], True),  # Pilot 0.2: one route with a weight other than 0 must be 100
        ([0, 0], True),
        ([None, 100], False),
    ],
)
def test_legacy_route_weights(weights: list[int | None], expected: bool) -> None:
    for profile in ("0.2", None):  # legacy rules are checked with Pilot 0.2's rule
        findings = run(route_rule(weights), profile)
        assert ("IL201" in codes(findings)) is expected, (profile, findings)
    if expected:
        f = only(run(route_rule(weights), "0.2"), "IL201")
        total = sum(w or 0 for w in weights)
        assert f"total {total}" in f.message
        assert f.path == "spec.route"


def test_legacy_weight_above_100_is_a_schema_error() -> None:
    f = only(run(route_rule([150]), "0.2"), "IL108")
    assert f.path == "spec.route[0].weight"
    assert "150" in f.message


# -- suppression -----------------------------------------------------------------------------

UNREACHABLE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
  {annotations}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {{host: httpbin}}
  - match:
    - uri: {{prefix: /api}}
    route:
    - destination: {{host: httpbin}}
"""


def test_unreachable_is_reported_without_suppression() -> None:
    assert codes(run(UNREACHABLE.format(annotations=""))) == ["IL207"]


@pytest.mark.parametrize(
    ("first_match", "unreachable"),
    [
        ("[{uri: {}}]", True),  # "present": every path, so istiod stops here
        ("[{uri: {regex: '.*'}}]", True),
        ("[{uri: {prefix: /}, method: {exact: GET}}]", False),
    ],
)
def test_unreachable_follows_compiles_catch_all(first_match: str, unreachable: bool) -> None:
    text = UNREACHABLE.format(annotations="").replace(
        "  - route:\n    - destination: {host: httpbin}\n  - match:",
        f"  - match: {first_match}\n    route:\n    - destination: {{host: httpbin}}\n  - match:",
    )
    assert codes(run(text)) == (["IL207"] if unreachable else [])
    config = loads(text)
    routes = [r for vh in compile_table(config, "1.24").virtual_hosts for r in vh.routes]
    assert len(routes) == (1 if unreachable else 2)  # the route table agrees


@pytest.mark.parametrize("value", ['"IL207"', '"il207, IL209"', '"IL209,IL207"'])
def test_suppress_by_annotation(value: str) -> None:
    text = UNREACHABLE.format(annotations=f"annotations:\n    istiolab.io/suppress: {value}")
    assert run(text) == []


def test_annotation_suppresses_only_its_resource_and_code() -> None:
    text = UNREACHABLE.format(annotations='annotations:\n    istiolab.io/suppress: "IL209"')
    other = UNREACHABLE.format(annotations='annotations:\n    istiolab.io/suppress: "IL207"')
    other = other.replace("name: vs", "name: other").replace("hosts: [httpbin]", "hosts: [web]")
    findings = run(text + "---\n" + other)
    assert codes(findings) == ["IL207"]
    assert findings[0].resource == "VirtualService/default/vs"


def test_suppress_argument() -> None:
    text = UNREACHABLE.format(annotations="")
    assert run(text, suppress=["IL207"]) == []
    assert run(text, suppress=[" il207 "]) == []
    assert codes(run(text, suppress=["IL208"])) == ["IL207"]


# -- unreachable and shadowed routes ----------------------------------------------------------


def vs_routes(*matches: str) -> str:
    http = ""
    for m in matches:
        http += (f"  - match:\n    - {{{m}}}\n" if m else "  -\n") + (
            "    route:\n    - destination: {host: httpbin}\n"
        )
    return VS_HEAD + "  http:\n" + http.replace("  -\n    route", "  - route")


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        (("", "uri: {prefix: /api}"), ["IL207"]),
        (("uri: {prefix: /}", "uri: {exact: /x}"), ["IL207"]),
        (("uri: {regex: .*}", "uri: {exact: /x}"), ["IL207"]),
        (("uri: {prefix: /api}", "uri: {prefix: /api/v1}"), ["IL208"]),
        (("uri: {prefix: /api}", "uri: {exact: /api/users}"), ["IL208"]),
        (("uri: {exact: /a}", "uri: {exact: /a}"), ["IL208"]),
        (("uri: {prefix: /api/v1}", "uri: {prefix: /api}"), []),
        (("uri: {exact: /api}", "uri: {prefix: /api}"), []),
        (("uri: {prefix: /api}", "uri: {regex: /api/.*}"), []),
        (("headers: {x-user: {exact: a}}", "uri: {prefix: /}"), []),
        (("uri: {prefix: /api}, headers: {x: {exact: a}}", "uri: {prefix: /api/v1}"), []),
        (("uri: {prefix: /api}", "uri: {prefix: /api/v1}, headers: {x: {exact: a}}"), ["IL208"]),
        (("uri: {prefix: /api}", "uri: {prefix: /API/v1}"), []),
        (("uri: {prefix: /api}, ignoreUriCase: true", "uri: {prefix: /API/v1}"), ["IL208"]),
        (("uri: {prefix: /api}", "uri: {prefix: /api/v1}, ignoreUriCase: true"), []),
        (("method: {exact: GET}", "method: {exact: POST}"), []),
        (("withoutHeaders: {x: {exact: foo}}", "withoutHeaders: {x: {}}"), ["IL208"]),
        (("withoutHeaders: {x: {}}", "withoutHeaders: {x: {exact: foo}}"), []),
        (("headers: {x: {}}", "headers: {x: {exact: a}}"), ["IL208"]),
        (("headers: {x: {exact: a}}", "headers: {x: {}}"), []),
    ],
)
def test_unreachable_and_shadowed_routes(matches: tuple[str, ...], expected: list[str]) -> None:
    findings = run(vs_routes(*matches))
    assert codes(findings) == expected
    if expected:
        assert findings[0].path == "spec.http[1]"


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("gateways: [gw1]", "uri: {prefix: /a}", []),  # the second also serves gw2
        ("gateways: [gw1]", "gateways: [gw1], uri: {prefix: /a}", ["IL208"]),
        ("gateways: [gw1, gw2]", "gateways: [gw2]", ["IL208"]),
        ("gateways: [gw1]", "gateways: [gw1, gw2]", []),
    ],
)
def test_shadowing_respects_match_gateways(first: str, second: str, expected: list[str]) -> None:
    text = vs_routes(first, second).replace("spec:\n", "spec:\n  gateways: [mesh, gw1, gw2]\n")
    assert [c for c in codes(run(text)) if c != "IL210"] == expected


def test_only_routes_after_the_catch_all_are_unreachable() -> None:
    findings = run(vs_routes("uri: {prefix: /a}", "", "uri: {prefix: /b}", "uri: {prefix: /c}"))
    assert [(f.code, f.path) for f in findings] == [
        ("IL207", "spec.http[2]"),
        ("IL207", "spec.http[3]"),
    ]
    assert "after http[1]" in findings[0].message


def test_route_with_several_match_blocks_is_shadowed_only_if_all_are() -> None:
    text = (
        VS_HEAD
        + """\
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: httpbin}
  - match:
    - uri: {prefix: /api/v1}
    - uri: {prefix: /web}
    route:
    - destination: {host: httpbin}
"""
    )
    assert run(text) == []


# -- the seed ---------------------------------------------------------------------------------

# The seed's two resources, verbatim from the talk (examples/seed holds them).
SEED_INGRESS = (ROOT / "examples" / "seed" / "ingress.yaml").read_text(encoding="utf-8")
SEED_ROUTE_RULE = (ROOT / "examples" / "seed" / "deny-route.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("profile", ["0.2", None])
def test_seed_resources_have_no_errors(profile: str | None) -> None:
    cs = loads(SEED_INGRESS + "---\n" + SEED_ROUTE_RULE, file="seed.yaml")
    assert len(cs) == 2
    assert cs.findings == ()
    findings = validate(cs, profile)
    assert not has_errors(findings), [f.format() for f in findings]


# -- specific semantics -----------------------------------------------------------------------


def test_legacy_precedence_tie_only_within_same_destination_and_precedence() -> None:
    a = route_rule([100], "a").replace("destination: {name: httpbin}", "destination: {name: x}")
    b = route_rule([100], "b").replace("destination: {name: httpbin}", "destination: {name: x}")
    c = route_rule([100], "c")  # other destination
    findings = run("---\n".join([a, b, c]), "0.2")
    f = only(findings, "IL209")
    assert f.resource == "RouteRule/default/b"  # the later one by name
    assert "a, b" in f.message
    assert "precedence 0" in f.message
    distinct = "---\n".join([a, b.replace("spec:\n", "spec:\n  precedence: 3\n")])
    assert "IL209" not in codes(run(distinct, "0.2"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a.b/.*", ["IL304"]),
        ("/api/[0-9]+", ["IL304"]),
        ("/.*", []),
        ("/status/.*", []),
        ("/x", []),
        ("", []),
    ],
)
def test_ingress_path_regex(path: str, expected: list[str]) -> None:
    text = SEED_INGRESS.replace("path: /.*", f"path: {path!r}" if path else 'path: ""')
    assert codes(run(text)) == expected


def test_ingress_path_match_conversion() -> None:
    assert ingress_path_match("/.*") == ("prefix", "/")
    assert ingress_path_match("/status/.*") == ("prefix", "/status/")
    assert ingress_path_match("/x") == ("exact", "/x")
    assert ingress_path_match("/") == ("exact", "/")
    assert ingress_path_match("") == ("prefix", "/")
    assert ingress_path_match("/a.b/.*") is None
    assert ingress_path_match("/a.b", "Prefix") == ("prefix", "/a.b")
    assert ingress_path_match("/a.b", "Exact") == ("exact", "/a.b")


def test_ingress_v1_prefix_path_type_is_not_a_regex() -> None:
    text = """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: web
      annotations: {kubernetes.io/ingress.class: istio}
    spec:
      rules:
      - http:
          paths:
          - path: /v1.0
            pathType: Prefix
            backend: {service: {name: httpbin, port: {number: 8000}}}
          - path: /v1.0/.+
            pathType: ImplementationSpecific
            backend: {service: {name: httpbin, port: {number: 8000}}}
    """
    findings = run(text)
    assert [(f.code, f.path) for f in findings] == [("IL304", "spec.rules[0].http.paths[1].path")]


DR_V1_V2 = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: dr
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
"""


def test_subset_defined_is_quiet_and_undefined_names_known_subsets() -> None:
    ok = VS_HEAD + "  http:\n  - route:\n    - destination: {host: httpbin, subset: v2}\n"
    assert run(ok + "---" + DR_V1_V2) == []
    bad = ok.replace("subset: v2", "subset: v3")
    f = only(run(bad + "---" + DR_V1_V2), "IL203")
    assert "'v3'" in f.message
    assert "v1, v2" in f.message


def test_subset_of_another_host_does_not_count() -> None:
    text = VS_HEAD + "  http:\n  - route:\n    - destination: {host: ratings, subset: v1}\n"
    # IL217 (info): no route goes to the DestinationRule's host, and no Service says it exists
    assert codes(run(text + "---" + DR_V1_V2)) == ["IL203", "IL217"]


def test_subset_fqdn_and_short_name_match() -> None:
    text = (
        VS_HEAD
        + "  http:\n  - route:\n"
        + "    - destination: {host: httpbin.default.svc.cluster.local, subset: v1}\n"
    )
    assert run(text + "---" + DR_V1_V2) == []


DEPLOYMENT_V1 = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin-v1
spec:
  template:
    metadata:
      labels: {app: httpbin, version: v1}
"""


def test_subset_labels_checked_only_when_deployments_are_given() -> None:
    assert run(DR_V1_V2, suppress=["IL217"]) == []
    findings = run(DR_V1_V2 + "---" + DEPLOYMENT_V1)
    f = only(findings, "IL204")
    assert f.path == "spec.subsets[1].labels"
    assert "'v2'" in f.message
    assert f.severity is Severity.WARNING


def test_subset_labels_in_other_namespace_do_not_match() -> None:
    dep = DEPLOYMENT_V1.replace("name: httpbin-v1", "name: httpbin-v1\n  namespace: other")
    assert len([f for f in run(DR_V1_V2 + "---" + dep) if f.code == "IL204"]) == 2


GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
"""


@pytest.mark.parametrize(
    ("host", "expected"),
    [("www.example.com", []), ("example.org", ["IL206"]), ("*.example.com", [])],
)
def test_host_served_by_gateway(host: str, expected: list[str]) -> None:
    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n"
        f"spec:\n  hosts: [{host!r}]\n  gateways: [public]\n  http:\n"
        "  - route:\n    - destination: {host: httpbin}\n"
    )
    assert codes(run(GATEWAY + "---\n" + vs)) == expected


@pytest.mark.parametrize(
    ("gateways", "expected"),
    [
        ("[public]", [("IL206", "spec.hosts[0]")]),
        ("[mesh, public]", []),  # httpbin is served in the mesh, www.example.com at the edge
        ("[public, internal]", []),  # each gateway takes the hosts it accepts
        ("[public, nosuch]", [("IL206", "spec.hosts[0]"), ("IL210", "spec.gateways[1]")]),
    ],
)
def test_host_served_by_any_bound_gateway(gateways: str, expected: list[tuple[str, str]]) -> None:
    internal = GATEWAY.replace("name: public", "name: internal").replace(
        '["*.example.com"]', "[httpbin]"
    )
    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n"
        f"spec:\n  hosts: [httpbin, www.example.com]\n  gateways: {gateways}\n  http:\n"
        "  - route:\n    - destination: {host: httpbin}\n"
    )
    findings = run(GATEWAY + "---\n" + internal + "---\n" + vs)
    assert [(f.code, f.path) for f in findings] == expected


def test_gateway_in_other_namespace() -> None:
    gw = GATEWAY.replace("name: public", "name: public\n  namespace: edge")
    vs = VS_HEAD + "  gateways: [edge/public]\n  http:\n  - route:\n    - destination: {host: h}\n"
    assert codes(run(gw + "---\n" + vs)) == ["IL206"]  # serves *.example.com, not httpbin
    assert codes(run(gw + "---\n" + vs.replace("edge/public", "public"))) == ["IL210"]


def test_duplicate_needs_same_kind_namespace_and_name() -> None:
    svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: httpbin\n"
    svc += "spec: {ports: [{name: http, port: 80}]}\n"
    assert codes(run(svc + "---\n" + svc)) == ["IL205"]
    other_ns = svc.replace("name: httpbin", "name: httpbin\n  namespace: web")
    assert run(svc + "---\n" + other_ns) == []
    dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: httpbin\n"
    dep += "spec: {selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: a}},"
    dep += " spec: {containers: [{name: a, image: a}]}}}\n"
    assert run(svc + "---\n" + dep) == []
    f = only(run(svc + "---\n" + svc, None), "IL205")
    assert "x.yaml:1" in f.message  # points at the first definition


TYPE_URL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
LOCAL_RATELIMIT = """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: TYPE_URL
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket:
                max_tokens: 4
                tokens_per_fill: 4
                fill_interval: 60s
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              response_headers_to_add:
                - append: false
                  header:
                    key: x-local-rate-limit
                    value: 'true'
    - applyTo: HTTP_ROUTE
      match:
        context: SIDECAR_INBOUND
        routeConfiguration:
          vhost:
            name: "inbound|http|9080"
            route:
              action: ANY
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.filters.http.local_ratelimit:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: TYPE_URL
              value:
                stat_prefix: http_local_rate_limiter
                token_bucket:
                  max_tokens: 4
                  tokens_per_fill: 4
                  fill_interval: 60s
""".replace("TYPE_URL", TYPE_URL)


def test_local_ratelimit_envoyfilter_as_in_istio_docs_is_understood() -> None:
    assert run(LOCAL_RATELIMIT) == []


def test_other_envoyfilter_patches_are_flagged_one_by_one() -> None:
    text = LOCAL_RATELIMIT + (
        "    - applyTo: HTTP_FILTER\n"
        "      patch:\n        operation: INSERT_BEFORE\n"
        "        value: {name: envoy.filters.http.lua}\n"
        "    - applyTo: CLUSTER\n"
        "      patch: {operation: MERGE, value: {name: [not, a, string]}}\n"
        "    - applyTo: HTTP_ROUTE\n"
        "      patch: {operation: MERGE, value: {typed_per_filter_config: [x]}}\n"
    )
    findings = run(text)
    assert [(f.code, f.path) for f in findings] == [
        ("IL309", "spec.configPatches[2]"),
        # INSERT_BEFORE with no match: relative to nothing known, so order-dependent
        ("IL236", "spec.configPatches[2].patch.operation"),
        ("IL309", "spec.configPatches[3]"),
        ("IL309", "spec.configPatches[4]"),
    ]


@pytest.mark.parametrize(
    ("percent", "truncated"),
    [("0.5", "0"), ("10.5", "10"), ("99.9", "99")],
)
def test_legacy_fault_percent_truncation(percent: str, truncated: str) -> None:
    text = SEED_ROUTE_RULE.replace("percent: 100", f"percent: {percent}")
    f = only(run(text, "0.2"), "IL301")
    assert f"percent {percent} truncates to {truncated}" in f.message
    assert ("no fault is injected" in f.message) is (truncated == "0")
    assert f.path == "spec.httpFault.abort.percent"


def test_whole_legacy_fault_percent_is_fine() -> None:
    assert "IL301" not in codes(run(SEED_ROUTE_RULE.replace("percent: 100", "percent: 50"), "0.2"))


def test_legacy_features_of_0_3() -> None:
    text = SEED_ROUTE_RULE + (
        "  corsPolicy:\n    allowOrigin: ['*']\n  appendHeaders:\n    x-a: b\n"
    )
    paths = [f.path for f in run(text, "0.2") if f.code == "IL303"]
    assert paths == ["spec.corsPolicy", "spec.appendHeaders"]


def test_findings_are_sorted_by_location() -> None:
    text = vs_routes("", "uri: {prefix: /a}", "uri: {prefix: /b}") + "---\n" + route_rule([1, 2])
    lines = [f.line or 0 for f in run(text)]
    assert lines == sorted(lines)
    assert len(lines) == 3


# -- YAML edge cases that once crashed validation ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",
        "apiVersion: v1\nkind: Service\nmetadata: &m {name: s, annotations: *m}\n",
    ],
)
def test_recursive_alias_is_a_syntax_finding(text: str) -> None:
    f = only(validate(loads(text, file="x.yaml")), "IL001")
    assert "recursive alias" in f.message


def test_alias_bomb_is_refused_cheaply() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    f = only(validate(loads("\n".join(levels) + "\n", file="x.yaml")), "IL010")
    assert f.line == 7  # 'g', where the count of nodes with aliases expanded passes 1.5 million


def test_route_rule_with_single_label_service_and_deployments() -> None:
    text = (
        route_rule([None]).replace("{name: httpbin}", "{service: httpbin}") + "---" + DEPLOYMENT_V1
    )
    f = only(run(text, "0.2"), "IL204")
    assert "'default'" in f.message


# -- docs -----------------------------------------------------------------------------------------


def test_findings_doc_is_in_sync() -> None:
    doc = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert doc == render_docs(), "regenerate: python -m istiolab.findings > docs/findings.md"
    for code in CODES:
        assert f"| {code} |" in doc
