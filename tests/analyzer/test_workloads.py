"""Deployments: what the Kubernetes API server refuses in an ``apps/v1`` Deployment (no
selector, a selector its template's labels do not carry, no template, no container)."""

from __future__ import annotations

import pytest

from analyzer.common import Pair, assert_broken, assert_correct, lint, pair
from istiolab.findings import Severity

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web, version: v1}
    spec:
      containers:
      - {name: web, image: nginx:1.27}
"""

PAIRS = [
    pair(
        "IL102",
        DEPLOY.replace("  selector: {matchLabels: {app: web}}\n", "").replace(
            "spec:\n  replicas", "spec:  # <-\n  replicas"
        ),
        ("replicas: 2", "replicas: 2\n  selector: {matchLabels: {app: web}}"),
        "spec.selector",
        "Deployment 'web' has no spec.selector",
        id_="IL102-deployment-selector",
    ),
    pair(
        "IL108",
        DEPLOY.replace("labels: {app: web, version: v1}", "labels: {app: api, version: v1}  # <-"),
        ("{app: api, version: v1}", "{app: web, version: v1}"),
        "spec.template.metadata.labels",
        "do not carry the selector's {'app': 'web'}",
        id_="IL108-deployment-template-labels",
    ),
    pair(
        "IL102",
        DEPLOY.replace(
            "      containers:\n      - {name: web, image: nginx:1.27}\n",
            "      containers: []  # <-\n",
        ),
        ("containers: []", "containers: [{name: web, image: nginx:1.27}]"),
        "spec.template.spec.containers",
        "has no container in its pod template",
        id_="IL102-deployment-containers",
    ),
    pair(
        "IL102",
        DEPLOY.replace("- {name: web, image: nginx:1.27}", "- {name: web}  # <-"),
        ("- {name: web}", "- {name: web, image: nginx:1.27}"),
        "spec.template.spec.containers[0].image",
        "container 0 of Deployment 'web' has no image",
        id_="IL102-deployment-image",
    ),
]


@pytest.mark.parametrize("p", PAIRS)
def test_broken_config_gets_the_finding(p: Pair) -> None:
    assert_broken(p)


@pytest.mark.parametrize("p", PAIRS)
def test_correct_config_stays_clean(p: Pair) -> None:
    assert_correct(p)


def test_a_deployment_without_a_template_or_with_an_empty_selector() -> None:
    bare = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n"
    assert [(f.code, f.path) for f in lint(bare)] == [
        ("IL102", "spec.selector"),
        ("IL102", "spec.template"),
    ]
    empty = DEPLOY.replace("{matchLabels: {app: web}}", "{}")
    assert [(f.code, f.path) for f in lint(empty)] == [("IL108", "spec.selector")]


def test_match_expressions_are_not_judged() -> None:
    # a selector with matchExpressions is left to the API server (istiolab does not evaluate it)
    text = DEPLOY.replace(
        "{matchLabels: {app: web}}", "{matchExpressions: [{key: app, operator: Exists}]}"
    )
    assert [f for f in lint(text) if f.severity is Severity.ERROR] == []


def test_the_beta_groups_default_the_selector() -> None:
    # apps/v1beta1 and extensions/v1beta1 took the selector from the template's labels
    text = DEPLOY.replace("apps/v1", "apps/v1beta1").replace(
        "  selector: {matchLabels: {app: web}}\n", ""
    )
    assert [f for f in lint(text) if f.severity is Severity.ERROR] == []
