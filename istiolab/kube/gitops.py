"""Who else manages an object: Argo CD, Flux or Helm tracking metadata on a live object.

An object that a GitOps controller or Helm keeps in sync is changed by committing to Git (or
upgrading the release), not by applying it by hand: the controller would undo the change at
its next sync, or the release would drift. :func:`managed_by` reads the labels and annotations
these tools put on the objects they own; ``diff`` warns about them and ``apply`` refuses them
unless the operator says so (``--allow-managed``, break-glass).

The keys come from the tools' own sources:

* Argo CD — ``argocd.argoproj.io/tracking-id`` (``<app>:<group>/<kind>:<ns>/<name>``, the
  annotation tracking method), the ``app.kubernetes.io/instance`` label of the default label
  tracking, and every other ``argocd.argoproj.io/`` key (argo-cd
  ``util/argo/resource_tracking.go``);
* Flux — ``kustomize.toolkit.fluxcd.io/name`` and ``/namespace`` labels (kustomize-controller)
  and ``helm.toolkit.fluxcd.io/name`` and ``/namespace`` (helm-controller);
* Helm — ``meta.helm.sh/release-name`` and ``release-namespace`` annotations, and the label
  ``app.kubernetes.io/managed-by: Helm`` (helm ``pkg/action/validate.go``).

``app.kubernetes.io/instance`` alone is a common label that many charts set, and cannot be told
apart from Argo CD's label tracking: it names the Argo CD application only together with
another Argo CD key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["Manager", "managed_by"]

ARGO_PREFIX = "argocd.argoproj.io/"
ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io/"
FLUX_HELM = "helm.toolkit.fluxcd.io/"
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_RELEASE_NS = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclasses.dataclass(frozen=True)
class Manager:
    """The tool that keeps an object in sync, and how to change the object instead.

    Attributes:
        tool: ``Argo CD``, ``Flux`` or ``Helm``.
        owner: What owns it: ``app shop``, ``Kustomization flux-system/apps``, ``release web``.
        advice: What to do instead of applying by hand.
    """

    tool: str
    owner: str
    advice: str

    def format(self) -> str:
        """``managed by Argo CD app shop: commit to Git instead``."""
        return f"managed by {self.tool} {self.owner}: {self.advice}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"tool": self.tool, "owner": self.owner, "advice": self.advice}


def _meta_map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = (obj.get("metadata") or {}).get(key) or {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def managed_by(obj: Mapping[str, Any] | None) -> Manager | None:
    """The GitOps controller or Helm release that manages *obj*, from its metadata; or None.

    Argo CD is looked for first, then Flux, then Helm: Flux's helm-controller installs with Helm
    and leaves Helm's keys too, and Argo CD may deploy a Helm chart.
    """
    if obj is None:
        return None
    labels, annotations = _meta_map(obj, "labels"), _meta_map(obj, "annotations")
    both = {**labels, **annotations}
    argo = [k for k in both if k.startswith(ARGO_PREFIX)]
    if argo:
        tracking = annotations.get(ARGO_TRACKING_ID, "")
        app = tracking.split(":", 1)[0] if tracking else ""
        app = app or labels.get(INSTANCE_LABEL) or both.get("argocd.argoproj.io/instance", "")
        return Manager("Argo CD", f"app {app or '(unnamed)'}", "commit to Git instead")
    for prefix, kind in ((FLUX_KUSTOMIZE, "Kustomization"), (FLUX_HELM, "HelmRelease")):
        if any(k.startswith(prefix) for k in both):
            name = both.get(prefix + "name", "?")
            ns = both.get(prefix + "namespace")
            return Manager(
                "Flux", f"{kind} {ns + '/' if ns else ''}{name}", "commit to Git instead"
            )
    release = annotations.get(HELM_RELEASE)
    if release or labels.get(MANAGED_BY, "").lower() == "helm":
        ns = annotations.get(HELM_RELEASE_NS)
        name = release or labels.get(INSTANCE_LABEL) or "?"
        return Manager(
            "Helm",
            f"release {ns + '/' if ns else ''}{name}",
            "change the chart's values and `helm upgrade` instead",
        )
    return None
