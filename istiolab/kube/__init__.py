"""Take a validated routing config to a real cluster, safely; or read a cluster into a scenario.

The pieces, in the order an operator meets them:

* :func:`connect` (or :class:`KubernetesCluster`) reaches a cluster with a kubeconfig context
  or a pod's service account; :class:`InMemoryCluster` is a model of one for notebooks,
  workshops and tests. Both implement :class:`ClusterAdapter`.
* :func:`import_cluster` reads a namespace into a :class:`~istiolab.sim.scenario.Scenario`
  and a :class:`~istiolab.config.ConfigSet`; :func:`import_files` does the same from YAML
  files, without a cluster.
* :func:`plan` validates a config set, then dry-runs every object on the API server and diffs
  it against the live object; :func:`apply` applies the plan with server-side apply, saving
  every live object in a backup set first; :func:`rollback` undoes an apply.

``KubernetesCluster`` and ``connect`` need the ``kubernetes`` package (``pip install
'istiolab[kube]'``); everything else does not.

Example:
    >>> from istiolab.config import loads
    >>> from istiolab.kube import InMemoryCluster, plan
    >>> cluster = InMemoryCluster(namespace="shop")
    >>> config = loads('''
    ... apiVersion: networking.istio.io/v1beta1
    ... kind: VirtualService
    ... metadata: {name: web}
    ... spec:
    ...   hosts: [web]
    ...   http: [{route: [{destination: {host: web}}]}]
    ... ''')
    >>> [(s.action, s.ref, s.api_version) for s in plan(config, cluster).steps]
    [('create', 'VirtualService/shop/web', 'networking.istio.io/v1')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from istiolab.kube.adapter import ClusterAdapter, ClusterIdentity, require_istio
from istiolab.kube.apply import (
    ApplyReport,
    RollbackPreview,
    RollbackReport,
    StepResult,
    apply,
    preview_rollback,
    rollback,
)
from istiolab.kube.backups import BackupSet, BackupStore
from istiolab.kube.errors import (
    ApiError,
    ConflictError,
    ConnectError,
    FieldConflict,
    ForbiddenError,
    InvalidError,
    IstioNotServedError,
    NotFoundError,
    OtherClusterError,
    RefusedError,
    StalePlanError,
    UnauthorizedError,
)
from istiolab.kube.files import import_files
from istiolab.kube.importer import ClusterImport, import_cluster, inspect_cluster
from istiolab.kube.memory import InMemoryCluster
from istiolab.kube.plan import Plan, PlanStep, plan

if TYPE_CHECKING:
    from istiolab.kube.client import KubernetesCluster, connect

    def _both_are_adapters(
        a: InMemoryCluster, b: KubernetesCluster
    ) -> tuple[ClusterAdapter, ClusterAdapter]:
        return a, b  # mypy checks that both classes implement the protocol


__all__ = [
    "ApiError",
    "ApplyReport",
    "BackupSet",
    "BackupStore",
    "ClusterAdapter",
    "ClusterIdentity",
    "ClusterImport",
    "ConflictError",
    "ConnectError",
    "FieldConflict",
    "ForbiddenError",
    "InMemoryCluster",
    "InvalidError",
    "IstioNotServedError",
    "KubernetesCluster",
    "NotFoundError",
    "OtherClusterError",
    "Plan",
    "PlanStep",
    "RefusedError",
    "RollbackPreview",
    "RollbackReport",
    "StalePlanError",
    "StepResult",
    "UnauthorizedError",
    "apply",
    "connect",
    "import_cluster",
    "import_files",
    "inspect_cluster",
    "plan",
    "preview_rollback",
    "require_istio",
    "rollback",
]


def __getattr__(name: str) -> Any:
    # The official client is an optional dependency: import it only when asked for.
    if name in ("KubernetesCluster", "connect"):
        from istiolab.kube import client

        return getattr(client, name)
    raise AttributeError(f"module 'istiolab.kube' has no attribute {name!r}")
