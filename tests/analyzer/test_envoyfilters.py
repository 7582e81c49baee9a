"""EnvoyFilters: the istioctl IST0151-IST0155 family."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair

EF = """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef, namespace: istio-system}
spec:
  workloadSelector:
    labels: {istio: ingressgateway}
  configPatches:
  - applyTo: APPLY_TO
    match:
      context: GATEWAY
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter: {name: envoy.filters.http.lua}
    patch:
      operation: OPERATION  # <-
      value: {name: envoy.filters.http.custom}
"""


def ef(apply_to: str, op: str) -> str:
    return EF.replace("APPLY_TO", apply_to).replace("OPERATION", op)


PAIRS = [
    pair(
        "IL236",
        ef("HTTP_FILTER", "INSERT_AFTER"),
        ("  configPatches:", "  priority: 10\n  configPatches:"),
        "spec.configPatches[0].patch.operation",
        "INSERT_AFTER is relative to another filter and this EnvoyFilter has no priority",
    ),
    pair(
        "IL237",
        ef("CLUSTER", "REPLACE"),
        ("operation: REPLACE", "operation: MERGE"),
        "spec.configPatches[0].patch.operation",
        "REPLACE on CLUSTER is not allowed",
    ),
    pair(
        "IL238",
        ef("HTTP_ROUTE", "ADD"),
        ("operation: ADD", "operation: MERGE"),
        "spec.configPatches[0].patch.operation",
        "ADD on HTTP_ROUTE is ignored by Istio",
    ),
    pair(
        "IL239",
        ef("ROUTE_CONFIGURATION", "REMOVE"),
        ("operation: REMOVE", "operation: MERGE"),
        "spec.configPatches[0].patch.operation",
        "REMOVE on ROUTE_CONFIGURATION is ignored by Istio",
    ),
    pair(
        "IL240",
        ef("HTTP_FILTER", "INSERT_BEFORE")
        .replace("  # <-", "")
        .replace(
            "      context: GATEWAY",
            "      context: GATEWAY\n      proxy:\n        proxyVersion: '^1\\.2.*'  # <-",
        ),
        ("  configPatches:", "  priority: -1\n  configPatches:"),
        "spec.configPatches[0].match.proxy.proxyVersion",
        "INSERT_BEFORE matched on proxyVersion '^1\\\\.2.*' without a priority",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


def test_insert_relative_to_the_router_needs_no_priority() -> None:
    # the router is in every listener istiod builds, so the patch always finds it
    text = ef("HTTP_FILTER", "INSERT_BEFORE").replace(
        "envoy.filters.http.lua", "envoy.filters.http.router"
    )
    assert not [f for f in lint(text) if f.code == "IL236"]
