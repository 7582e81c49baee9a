"""The interface between istiolab and a Kubernetes cluster.

:class:`ClusterAdapter` is what :func:`~istiolab.kube.plan.plan`,
:func:`~istiolab.kube.apply.apply`, :func:`~istiolab.kube.apply.rollback` and
:func:`~istiolab.kube.importer.import_cluster` use. Two classes implement it:
:class:`~istiolab.kube.client.KubernetesCluster` (the official ``kubernetes`` client, a real
API server) and :class:`~istiolab.kube.memory.InMemoryCluster` (a model, for notebooks,
workshops and tests). Errors are :class:`~istiolab.kube.errors.ApiError` subclasses in both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from istiolab.kube.errors import IstioNotServedError
from istiolab.kube.kinds import ISTIO_GROUP_VERSIONS, KINDS
from istiolab.kube.objects import Obj

__all__ = ["ClusterAdapter", "ClusterIdentity", "ObjList", "require_istio"]

ObjList = list[Obj]
"""A list of objects (spelled as an alias: ``list`` is also a method name below)."""


@dataclasses.dataclass(frozen=True)
class ClusterIdentity:
    """Which cluster this is, beyond the context's name (which two clusters may share).

    Attributes:
        server: The API server's URL as the client reaches it.
        uid: The ``uid`` of the ``kube-system`` Namespace: created once with the cluster and
            never changed, so it tells two clusters apart behind any name or URL. None when it
            could not be read (a user without the right to get Namespaces).
    """

    server: str
    uid: str | None = None

    def same_as(self, other: ClusterIdentity) -> bool:
        """Whether *other* is this cluster: by uid when both are known, else by server URL."""
        if self.uid and other.uid:
            return self.uid == other.uid
        return self.server == other.server

    def format(self) -> str:
        """``https://10.0.0.1:6443 (kube-system uid 1234…)``."""
        return f"{self.server} (kube-system uid {self.uid or 'unknown'})"

    def to_dict(self) -> dict[str, str | None]:
        """Manifest form."""
        return {"server": self.server, "kubeSystemUid": self.uid}


@runtime_checkable
class ClusterAdapter(Protocol):
    """A Kubernetes API, as far as istiolab uses one.

    Kinds are Kubernetes kind names (``VirtualService``, ``Service``, ``Node``); see
    :data:`istiolab.kube.kinds.KINDS`. Objects are plain dicts as the API sends them.
    Every write goes through server-side apply with :attr:`field_manager`.
    """

    @property
    def context(self) -> str:
        """Name of the kubeconfig context (names the backup folder)."""
        ...

    @property
    def namespace(self) -> str:
        """Default namespace (the context's, unless given)."""
        ...

    @property
    def field_manager(self) -> str:
        """Field manager of every write (``istiolab``)."""
        ...

    def identity(self) -> ClusterIdentity:
        """The API server's URL and the ``kube-system`` Namespace's uid (backups record it)."""
        ...

    def served_versions(self) -> dict[str, tuple[str, ...]]:
        """Discovered kinds the cluster serves, each with its served apiVersions, newest first.

        Istio's kinds and the Gateway API's, keyed as :data:`~istiolab.kube.kinds.KINDS` is
        (``Gateway`` is Istio's). Empty when neither API is served.
        """
        ...

    def get(
        self, kind: str, namespace: str | None, name: str, *, api_version: str | None = None
    ) -> Obj | None:
        """One object, or None when it does not exist."""
        ...

    def list(self, kind: str, namespace: str | None, *, api_version: str | None = None) -> ObjList:
        """Objects of a kind in a namespace (None: every namespace, or cluster-scoped)."""
        ...

    def dry_run_apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply with ``dryRun=All``: the object as it would be; nothing persists."""
        ...

    def apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply; creates the object when missing. Returns the stored object.

        Raises:
            ConflictError: When fields are owned by another manager and *force* is False.
        """
        ...

    def replace(self, obj: Mapping[str, Any], *, resource_version: str | None = None) -> Obj:
        """Make the live object's labels, annotations and spec exactly those of *obj*.

        Args:
            obj: The content to restore.
            resource_version: Precondition: fail with a conflict unless the live object still
                has this resourceVersion (nobody changed it since).
        """
        ...

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        api_version: str | None = None,
        uid: str | None = None,
    ) -> None:
        """Delete an object; with *uid*, only if it is still that very object."""
        ...


def require_istio(cluster: ClusterAdapter) -> dict[str, tuple[str, ...]]:
    """The served discovered kinds (Istio's, the Gateway API's), or one clear error without Istio.

    Raises:
        IstioNotServedError: Naming the APIs that were looked for and how to check.
    """
    served = cluster.served_versions()
    if not any(KINDS[k].istio for k in served if k in KINDS):
        groups = ", ".join(ISTIO_GROUP_VERSIONS)
        raise IstioNotServedError(
            f'the cluster of context "{cluster.context}" serves none of the Istio APIs '
            f"({groups}): is Istio installed? Check with `kubectl get crd | grep istio.io` "
            "(install Istio, or its CRDs, first)"
        )
    return served
