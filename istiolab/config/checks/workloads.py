"""Deployments: what the Kubernetes API server refuses in an ``apps/v1`` Deployment.

Anchor: kubernetes/kubernetes ``pkg/apis/apps/validation/validation.go``
(``ValidateDeploymentSpec``: a selector is required, not empty, and matches the template's
labels; ``ValidatePodTemplateSpecForReplicaSet``) and ``pkg/apis/core/validation/validation.go``
(``validateContainers``: at least one container, each with a name and an image). The 2017 beta
groups (``apps/v1beta1``, ``extensions/v1beta1``) defaulted the selector from the template's
labels and are not served any more, so only ``apps/v1`` is checked.
"""

from __future__ import annotations

from istiolab.config.checks.context import Context
from istiolab.config.k8s import Deployment


def check(ctx: Context) -> None:
    """Run the Deployment checks."""
    for d in ctx.kind(Deployment):
        if d.api_version == "apps/v1":
            deployment(ctx, d)


def deployment(ctx: Context, d: Deployment) -> None:
    """Selector, template and containers of one ``apps/v1`` Deployment."""
    spec = d.spec
    selector = spec.selector
    labels = spec.template.metadata.labels
    if selector is None:
        ctx.add(
            "IL102",
            d,
            ("spec", "selector"),
            f"Deployment {d.name!r} has no spec.selector; apps/v1 requires one",
            "add spec.selector.matchLabels with the template's labels, e.g. {app: web}",
        )
    else:
        expressions = (selector.model_extra or {}).get("matchExpressions")
        match = selector.match_labels or {}
        if not match and not expressions:
            ctx.add(
                "IL108",
                d,
                ("spec", "selector"),
                f"Deployment {d.name!r} has an empty selector, which Kubernetes refuses "
                "(it would select every pod)",
                "add matchLabels with the template's labels, e.g. {app: web}",
            )
        elif not expressions and not match.items() <= labels.items():
            ctx.add(
                "IL108",
                d,
                ("spec", "template", "metadata", "labels"),
                f"the template's labels {labels} do not carry the selector's {match}; "
                "Kubernetes refuses a Deployment whose pods its selector would not select",
                "give the template every label of spec.selector.matchLabels",
            )
    if "template" not in spec.model_fields_set:
        ctx.add(
            "IL102",
            d,
            ("spec", "template"),
            f"Deployment {d.name!r} has no pod template (spec.template)",
            "add spec.template with metadata.labels and spec.containers",
        )
        return
    pod = spec.template.spec or {}
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        ctx.add(
            "IL102",
            d,
            ("spec", "template", "spec", "containers"),
            f"Deployment {d.name!r} has no container in its pod template; Kubernetes "
            "requires at least one",
            "add a container with a name and an image, e.g. {name: web, image: nginx:1.27}",
        )
        return
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue  # not a map: the API server's schema check names it
        for key in ("name", "image"):
            if not c.get(key):
                ctx.add(
                    "IL102",
                    d,
                    ("spec", "template", "spec", "containers", i, key),
                    f"container {i} of Deployment {d.name!r} has no {key}",
                    "give the container a name"
                    if key == "name"
                    else "give the container an image, e.g. image: nginx:1.27",
                )
