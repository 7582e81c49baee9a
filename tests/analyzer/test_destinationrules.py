"""DestinationRules: duplicate subset names, several rules for one host, subsets without labels,
TLS without server verification or replacing mesh mTLS, the deprecated consecutiveErrors."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair, pair_of

DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
"""
SVC = """
---
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports:
  - {name: http, port: 8000}
"""

PAIRS = [
    pair(
        "IL229",
        DR
        + """
          subsets:
          - {name: v1, labels: {version: v1}}
          - name: v1  # <-
            labels: {version: v2}
        """.replace("\n          ", "\n  "),
        ("- name: v1  # <-", "- name: v2  # <-"),
        "spec.subsets[1].name",
        "subset name 'v1' is also subsets[0]",
    ),
    pair(
        "IL230",
        DR
        + """
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: httpbin-canary}
        spec:
          host: httpbin.default.svc.cluster.local  # <-
        """,
        ("host: httpbin.default.svc.cluster.local", "host: ratings.default.svc.cluster.local"),
        "spec.host",
        "also has DestinationRule default/httpbin",
    ),
    pair(
        "IL231",
        DR
        + """
          subsets:
          - {name: v1, labels: {version: v1}}
          - name: v2  # <-
        """.replace("\n          ", "\n  "),
        ("- name: v2  # <-", "- name: v2  # <-\n    labels: {version: v2}"),
        "spec.subsets[1]",
        "subset 'v2' has no labels",
    ),
    pair(
        "IL232",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: external}
        spec:
          host: api.example.com
          trafficPolicy:
            tls:
              mode: SIMPLE  # <-
              sni: api.example.com
        """,
        ("sni: api.example.com", "caCertificates: /etc/certs/ca.pem"),
        "spec.trafficPolicy.tls.mode",
        "TLS mode SIMPLE for 'api.example.com' has no caCertificates",
    ),
    pair(
        "IL232",
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: external}
        spec:
          host: api.example.com
          trafficPolicy:
            portLevelSettings:
            - port: {number: 8443}
              tls:
                mode: MUTUAL  # <-
                clientCertificate: /etc/certs/client.pem
                privateKey: /etc/certs/key.pem
        """,
        (
            "privateKey: /etc/certs/key.pem",
            "privateKey: /etc/certs/key.pem\n        caCertificates: /etc/certs/ca.pem",
        ),
        "spec.trafficPolicy.portLevelSettings[0].tls.mode",
        "TLS mode MUTUAL at port 8443",
        id_="IL232-port-level",
    ),
    pair(
        "IL233",
        DR
        + """
          trafficPolicy:
            tls:
              mode: DISABLE  # <-
        """.replace("\n          ", "\n  ")
        + SVC,
        ("mode: DISABLE", "mode: ISTIO_MUTUAL"),
        "spec.trafficPolicy.tls.mode",
        "TLS mode DISABLE for httpbin.default.svc.cluster.local, a Service of the mesh",
    ),
    pair(
        "IL228",
        DR
        + """
          trafficPolicy:
            outlierDetection:
              consecutiveErrors: 5  # <-
              interval: 10s
        """.replace("\n          ", "\n  "),
        ("consecutiveErrors: 5", "consecutive5xxErrors: 5"),
        "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        "outlierDetection.consecutiveErrors (5) is deprecated",
        id_="IL228-consecutive-errors",
    ),
]


# What the API server refuses though the proto allows it: a duration over CEL's int64
# nanoseconds, and a uint64 over 2^63-1 (Kubernetes decodes JSON integers as int64)
_LIMITS_DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5, interval: 153722868m}  # <-
"""
PAIRS += [
    pair(
        "IL104",
        _LIMITS_DR,
        ("interval: 153722868m", "interval: 153722867m"),
        "spec.trafficPolicy.outlierDetection.interval",
        "'153722868m'",
        id_="IL104-cel-interval",
    ),
    pair(
        "IL108",
        _LIMITS_DR.replace(
            "outlierDetection: {consecutive5xxErrors: 5, interval: 153722868m}  # <-",
            "loadBalancer:\n      consistentHash:\n        httpHeaderName: x-user\n"
            "        ringHash: {minimumRingSize: 9223372036854775808}  # <-",
        ),
        ("9223372036854775808", "9223372036854775807"),
        "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize",
        "9223372036854775807",
        id_="IL108-uint64-as-int64",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


def test_rules_for_one_host_in_two_namespaces_are_not_merged() -> None:
    text = pair_of(PAIRS[1]).bad.replace(
        "metadata: {name: httpbin-canary}", "metadata: {name: httpbin-canary, namespace: other}"
    )
    assert not [f for f in lint(text) if f.code == "IL230"]


def test_tls_to_a_host_outside_the_mesh_is_not_an_mtls_override() -> None:
    bad = pair_of(PAIRS[5]).bad
    assert not [f for f in lint(bad.split("---")[0]) if f.code == "IL233"]
