"""Compiling Istio config into the Envoy-level RouteTable (istiod semantics)."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from istiolab.config import loads
from istiolab.config.matching import is_catch_all_match
from istiolab.config.model import HTTPMatchRequest
from istiolab.envoy.compile import compile, route_match
from istiolab.envoy.model import RouteTable
from istiolab.errors import CompileError, ConfigError

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
"""
SUBSETS = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""
V1 = "outbound|8000|v1|httpbin.default.svc.cluster.local"
V2 = "outbound|8000|v2|httpbin.default.svc.cluster.local"


def vs(http: str, *, gateway: bool = True, hosts: str = '["*"]', extra: str = SUBSETS) -> str:
    """A Gateway (optional), one VirtualService with the given ``http:`` list, and *extra*."""
    body = textwrap.indent(textwrap.dedent(http).strip(), "  ")
    text = (GATEWAY if gateway else "") + textwrap.dedent(
        f"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: httpbin, namespace: default}}
        spec:
          hosts: {hosts}
          {"gateways: [gw]" if gateway else ""}
          http:
        """
    )
    return text + body + "\n" + textwrap.dedent(extra)


def build(text: str, profile: str | None = None, gateway: str | None = None) -> RouteTable:
    return compile(loads(text), profile, gateway)


def dest(subset: str, weight: int | None = None) -> str:
    w = f", weight: {weight}" if weight is not None else ""
    return f"{{destination: {{host: httpbin, subset: {subset}, port: {{number: 8000}}}}{w}}}"


# -- routes ----------------------------------------------------------------------------------


def test_cluster_names_follow_istiod() -> None:
    t = build(vs(f"- route: [{dest('v1')}]"))
    (r,) = t.routes()
    assert [c.name for c in r.clusters] == [V1]
    assert list(t.clusters) == [V1]
    plain = build(vs("- route: [{destination: {host: httpbin.other.svc.cluster.local}}]"))
    assert list(plain.clusters) == ["outbound|80||httpbin.other.svc.cluster.local"]


def test_one_route_per_match_block_and_stop_after_first_catch_all() -> None:
    t = build(
        vs(
            f"""
            - name: a
              match: [{{uri: {{prefix: /a}}}}, {{headers: {{x-user: {{exact: bob}}}}}}]
              route: [{dest("v2")}]
            - name: catch-all
              route: [{dest("v1")}]
            - name: never
              match: [{{uri: {{prefix: /never}}}}]
              route: [{dest("v2")}]
            """
        )
    )
    names = [(r.name, r.source.http_index, r.source.match_index) for r in t.routes()]
    assert names == [("a", 0, 0), ("a", 0, 1), ("catch-all", 1, None)]


def test_catch_all_inside_a_match_list_stops_generation() -> None:
    t = build(
        vs(
            f"""
            - name: a
              match: [{{uri: {{prefix: /}}}}, {{uri: {{prefix: /b}}}}]
              route: [{dest("v1")}]
            - name: b
              route: [{dest("v2")}]
            """
        )
    )
    assert [(r.name, r.match.path) for r in t.routes()] == [("a", "/")]


def test_zero_weight_destination_is_dropped() -> None:
    t = build(vs(f"- route: [{dest('v1', 100)}, {dest('v2', 0)}]"))
    (r,) = t.routes()
    assert [(c.name, c.weight) for c in r.clusters] == [(V1, 100)]


def test_weights_kept_as_written_when_sum_is_not_100() -> None:
    t = build(vs(f"- route: [{dest('v1', 1)}, {dest('v2', 2)}]"), "1.24")
    (r,) = t.routes()
    assert [c.weight for c in r.clusters] == [1, 2]
    assert r.total_weight == 3


def test_match_translation() -> None:
    t = build(
        vs(
            f"""
            - match:
              - uri: {{regex: "/status/[0-9]+"}}
                ignoreUriCase: true
                method: {{exact: POST}}
                authority: {{prefix: api.}}
                scheme: {{exact: https}}
                headers: {{X-User: {{exact: a}}, x-any: {{regex: ".*"}}, x-debug: {{}}}}
                withoutHeaders: {{x-internal: {{exact: "true"}}}}
                queryParams: {{flag: {{exact: ""}}, id: {{regex: "[0-9]+"}}, dbg: {{}}}}
              route: [{dest("v1")}]
            """
        )
    )
    (r,) = t.routes()
    m = r.match
    assert (m.path_kind, m.path, m.case_sensitive) == ("regex", "/status/[0-9]+", False)
    headers = [(h.name, h.match.kind, h.match.value, h.invert) for h in m.headers]
    assert headers == [  # sorted by name, as istiod sorts them
        (":authority", "prefix", "api.", False),
        (":method", "exact", "POST", False),
        (":scheme", "exact", "https", False),
        ("x-any", "regex", ".*", False),  # only "*" becomes a presence check in istiod
        ("x-debug", "present", "", False),
        ("x-internal", "exact", "true", True),
        ("x-user", "exact", "a", False),
    ]
    params = [(q.name, q.match.kind, q.match.value) for q in m.query_params]
    # istiod: {} is present_match; exact "" stays an exact match of the empty value.
    assert params == [("dbg", "present", ""), ("flag", "exact", ""), ("id", "regex", "[0-9]+")]


# -- retries and timeouts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "retried_codes", "tokens"),
    [
        ("1.24", (), ("connect-failure", "refused-stream", "unavailable", "cancelled")),
        (
            "1.20",
            (503,),
            (
                "connect-failure",
                "refused-stream",
                "unavailable",
                "cancelled",
                "retriable-status-codes",
            ),
        ),
    ],
)
def test_default_retries_per_profile(
    profile: str, retried_codes: tuple[int, ...], tokens: tuple[str, ...]
) -> None:
    t = build(vs(f"- route: [{dest('v1')}]"), profile)
    (r,) = t.routes()
    assert r.retry is not None
    assert r.retry.num_retries == 2
    assert r.retry.retry_on == tokens
    assert r.retry.retriable_status_codes == retried_codes
    assert r.retry.previous_hosts
    assert r.retry.host_selection_retry_max_attempts == 5


def test_no_default_retries_in_1_0() -> None:
    (r,) = build(vs(f"- route: [{dest('v1')}]"), "1.0").routes()
    assert r.retry is None


def test_retry_on_numeric_codes_become_retriable_status_codes() -> None:
    t = build(
        vs(
            f"""
            - retries: {{attempts: 3, retryOn: "503,reset,gateway-error,409", perTryTimeout: 2s}}
              route: [{dest("v1")}]
            """
        )
    )
    (r,) = t.routes()
    assert r.retry is not None
    assert r.retry.num_retries == 3
    assert r.retry.retry_on == ("reset", "gateway-error", "retriable-status-codes")
    assert r.retry.retriable_status_codes == (503, 409)
    assert r.retry.per_try_timeout_s == 2.0


def test_attempts_zero_disables_retries() -> None:
    (r,) = build(vs(f"- retries: {{attempts: 0}}\n  route: [{dest('v1')}]")).routes()
    assert r.retry is None


def test_timeout_default_per_profile() -> None:
    (r,) = build(vs(f"- route: [{dest('v1')}]")).routes()
    assert r.timeout_s is None  # modern Istio: disabled
    (r,) = build(vs(f"- timeout: 1.5s\n  route: [{dest('v1')}]")).routes()
    assert r.timeout_s == 1.5


def test_legacy_route_keeps_envoy_15s_timeout() -> None:
    text = textwrap.dedent(
        """
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: web
          annotations: {kubernetes.io/ingress.class: istio}
        spec:
          rules:
          - http:
              paths:
              - path: /.*
                backend: {serviceName: httpbin, servicePort: 8000}
        """
    )
    t = compile(loads(text))
    assert t.profile == "0.2"
    (r,) = t.routes()
    assert r.timeout_s == 15.0
    assert r.retry is None
    assert r.match.path_kind == "prefix"
    assert r.match.path == "/"


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "per_million"),
    [(100, 1_000_000), (50, 500_000), (12.5, 125_000), (0.0001, 1), (0.57, 5699)],
)
def test_fault_percent_per_million(percent: float, per_million: int) -> None:
    # istiod: uint32(value * 10000), truncated (0.57 % is 5699.999… → 5699).
    t = build(
        vs(
            f"""
            - fault: {{abort: {{httpStatus: 503, percentage: {{value: {percent}}}}}}}
              route: [{dest("v1")}]
            """
        )
    )
    (r,) = t.routes()
    assert r.fault is not None
    assert r.fault.abort_per_million == per_million
    assert r.fault.abort_status == 503


def test_fault_delay_and_zero_percent() -> None:
    t = build(
        vs(
            f"""
            - fault:
                delay: {{fixedDelay: 200ms, percentage: {{value: 25}}}}
                abort: {{httpStatus: 500, percentage: {{value: 0}}}}
              route: [{dest("v1")}]
            """
        )
    )
    (r,) = t.routes()
    assert r.fault is not None
    assert (r.fault.delay_s, r.fault.delay_per_million) == (0.2, 250_000)
    assert (r.fault.abort_status, r.fault.abort_per_million) == (None, 0)


# -- DestinationRule -------------------------------------------------------------------------


def test_destination_rule_mapping() -> None:
    dr = """
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: httpbin, namespace: default}
    spec:
      host: httpbin
      trafficPolicy:
        loadBalancer: {simple: ROUND_ROBIN}
        connectionPool:
          tcp: {maxConnections: 100, connectTimeout: 2s}
          http: {http1MaxPendingRequests: 10, http2MaxRequests: 50, maxRetries: 4,
                 maxRequestsPerConnection: 1}
        outlierDetection:
          consecutive5xxErrors: 3
          interval: 5s
          baseEjectionTime: 1m
          maxEjectionPercent: 50
      subsets:
      - name: v1
        labels: {version: v1}
      - name: v2
        labels: {version: v2}
        trafficPolicy:
          loadBalancer:
            consistentHash: {httpHeaderName: X-User}
    """
    t = build(vs(f"- route: [{dest('v1', 50)}, {dest('v2', 50)}]", extra=dr), "1.24")
    c1, c2 = t.clusters[V1], t.clusters[V2]
    assert c1.lb == "ROUND_ROBIN"
    assert c1.labels == (("version", "v1"),)
    assert (c1.max_connections, c1.connect_timeout_s) == (100, 2.0)
    assert (c1.max_pending_requests, c1.max_requests, c1.max_retries) == (10, 50, 4)
    assert c1.max_requests_per_connection == 1
    assert c1.outlier is not None
    assert c1.outlier.consecutive_5xx == 3
    assert (c1.outlier.interval_s, c1.outlier.base_ejection_s) == (5.0, 60.0)
    assert c1.outlier.max_ejection_percent == 50
    assert c1.source == "DestinationRule/default/httpbin"
    # The subset's policy is merged over the top level field by field.
    assert c2.lb == "RING_HASH"
    assert c2.max_connections == 100
    (r,) = t.routes()
    assert r.hash_policy is None  # the route's first destination has no consistent hash


def test_cluster_defaults_per_profile() -> None:
    modern = build(vs(f"- route: [{dest('v1')}]"), "1.24").clusters[V1]
    assert modern.lb == "LEAST_REQUEST"
    assert modern.max_retries == 2**32 - 1
    old = build(vs(f"- route: [{dest('v1')}]"), "1.1").clusters[V1]
    assert old.lb == "ROUND_ROBIN"


# -- gateways and mesh -----------------------------------------------------------------------


def test_gateway_host_binding() -> None:
    text = textwrap.dedent(
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: default}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: [a.example.com, "*.wild.example.com"]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: bound, namespace: default}
        spec:
          hosts: ["*"]
          gateways: [gw]
          http:
          - route: [{destination: {host: httpbin, port: {number: 8000}}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: unbound, namespace: default}
        spec:
          hosts: [b.example.com]
          http:
          - route: [{destination: {host: other, port: {number: 8000}}}]
        """
    )
    t = compile(loads(text))
    assert t.name == "gateway default/gw:80"
    # A '*' VirtualService is narrowed to the hosts the gateway accepts.
    assert sorted(d for vh in t.virtual_hosts for d in vh.domains) == [
        "*.wild.example.com",
        "a.example.com",
    ]
    assert all("other" not in c for c in t.clusters)  # the mesh-only VirtualService is out


def test_mesh_mode_without_gateways() -> None:
    t = build(vs(f"- route: [{dest('v1')}]", gateway=False, hosts="[httpbin]"))
    assert t.name == "mesh"
    (vhost,) = t.virtual_hosts
    assert vhost.domains == (
        "httpbin",
        "httpbin.default",
        "httpbin.default.svc",
        "httpbin.default.svc.cluster.local",
    )


def test_missing_gateway_is_a_compile_error_naming_it() -> None:
    with pytest.raises(CompileError, match=r"gateway 'nope' is not in the config.*default/gw"):
        build(vs(f"- route: [{dest('v1')}]"), gateway="nope")


def test_missing_port_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="no gateway server listens on port 8443"):
        compile(loads(vs(f"- route: [{dest('v1')}]")), port=8443)


def test_invalid_input_is_a_config_error_with_findings() -> None:
    bad = vs(f"- route: [{dest('v1', 30)}, {dest('v2', 30)}]")  # sum 60: invalid before 1.15
    with pytest.raises(ConfigError) as err:
        build(bad, "1.14")
    assert err.value.findings
    assert all(f.severity.value == "error" for f in err.value.findings)
    build(bad, "1.24")  # accepted from 1.15 on


_STRING_MATCHES = st.sampled_from(
    [{}, {"exact": "/"}, {"prefix": "/"}, {"prefix": "/a"}, {"regex": ".*"}, {"regex": "/a.*"}]
)


@settings(max_examples=300, deadline=None)
@given(
    uri=st.none() | _STRING_MATCHES,
    extra=st.dictionaries(
        st.sampled_from(["headers", "withoutHeaders", "queryParams"]),
        st.dictionaries(st.sampled_from(["x-a", "b"]), _STRING_MATCHES, min_size=1, max_size=2),
        max_size=2,
    ),
    pseudo=st.dictionaries(
        st.sampled_from(["method", "authority", "scheme"]), _STRING_MATCHES, max_size=2
    ),
    ignore_case=st.none() | st.booleans(),
)
def test_catch_all_on_config_agrees_with_compiled_match(
    uri: dict[str, str] | None,
    extra: dict[str, dict[str, dict[str, str]]],
    pseudo: dict[str, dict[str, str]],
    ignore_case: bool | None,
) -> None:
    # compile stops at the first catch-all block by the config-level rule (as istiod's
    # isCatchAllMatch does); the Envoy route it emits for that block must be a catch-all too.
    raw: dict[str, object] = {**extra, **pseudo}
    if uri is not None:
        raw["uri"] = uri
    if ignore_case is not None:
        raw["ignoreUriCase"] = ignore_case
    m = HTTPMatchRequest.model_validate(raw)
    assert is_catch_all_match(m) == route_match(m).is_catch_all
