"""Files over live: a change set laid on top of what a cluster already serves.

``istiolab lint --context C FILES`` and ``istiolab explain --context C FILES`` check the files
together with the routing objects the cluster holds, as ``istioctl analyze FILES`` does with a
cluster behind it (istio/istio ``pkg/config/analysis/local``, the file source laid over the
Kubernetes source). A file replaces the live object of the same kind, namespace and name, so
nothing is reported twice; every other live object stays as context, loaded from the document
named :data:`LIVE` so that findings about it say where it came from.

Read: Istio's Gateways, VirtualServices and DestinationRules, the Gateway API's Gateways,
HTTPRoutes, GRPCRoutes, ReferenceGrants and GatewayClasses (each only when the cluster serves
it) and Services, in the namespace given, the gateway namespace, and every namespace the files
or their gateway references name. A namespace that cannot be read (RBAC, not served) is a note,
not an error. ServiceEntries are not read: the cluster layer does not address that kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from istiolab.config.codecs import RawDocument
from istiolab.config.configset import ConfigSet, from_documents
from istiolab.findings import Finding
from istiolab.kube.adapter import ClusterAdapter
from istiolab.kube.errors import ForbiddenError, NotFoundError
from istiolab.kube.kinds import GATEWAY_API_GATEWAY, KINDS, kind_key
from istiolab.kube.objects import Obj, strip

__all__ = ["LIVE", "LIVE_KINDS", "LiveOverlay", "gateway_findings", "overlay"]

LIVE = "<live>"
"""The file name of every document read from the cluster (``Finding.file``)."""

LIVE_KINDS: tuple[str, ...] = (
    "Gateway",
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "GatewayClass",
    GATEWAY_API_GATEWAY,
    "HTTPRoute",
    "GRPCRoute",
    "ReferenceGrant",
    "Service",
)
"""The kinds read from the cluster (keys of :data:`~istiolab.kube.kinds.KINDS`)."""

GATEWAY_CODES = ("IL210", "IL601")
"""A VirtualService's Gateway, a route's parent Gateway: not found in files or cluster."""


@dataclasses.dataclass(frozen=True)
class LiveOverlay:
    """The files laid over the live objects.

    Attributes:
        config: The live objects not replaced by a file, then the files' resources (and the
            files' load findings; live documents that do not load add theirs, at :data:`LIVE`).
        live: ``Kind/namespace/name`` of each live object kept.
        replaced: ``Kind/namespace/name`` of each live object a file replaced.
        notes: What could not be read, one sentence each.
        context: The kubeconfig context read.
        namespaces: The namespaces read.
    """

    config: ConfigSet
    live: tuple[str, ...]
    replaced: tuple[str, ...]
    notes: tuple[str, ...]
    context: str
    namespaces: tuple[str, ...]

    def summary(self) -> str:
        """One line: what was read and what the files replaced."""
        return (
            f'files over live (context "{self.context}", namespaces {", ".join(self.namespaces)}):'
            f" {len(self.live)} live object(s) kept, {len(self.replaced)} replaced by a file"
        )


def _ident(kind: str, api_version: str, namespace: str | None, name: str) -> tuple[str, str, str]:
    info = KINDS.get(kind_key(kind, api_version))
    ns = (namespace or "") if info is None or info.namespaced else ""
    return (kind_key(kind, api_version), ns, name)


def _gateway_namespaces(data: Mapping[str, Any], own: str) -> set[str]:
    """Namespaces of the Gateways a route names (``ns/name`` entries, ``parentRefs``)."""
    spec = data.get("spec")
    if not isinstance(spec, Mapping):
        return set()
    out: set[str] = set()
    for gw in spec.get("gateways") or ():
        if isinstance(gw, str) and "/" in gw:
            out.add(gw.split("/", 1)[0])
    for ref in spec.get("parentRefs") or ():
        if isinstance(ref, Mapping) and isinstance(ref.get("namespace"), str):
            out.add(ref["namespace"])
    out.discard(own)
    return out


def _namespaces(
    files: ConfigSet, namespace: str, gateway_namespace: str, extra: Iterable[str]
) -> tuple[str, ...]:
    seen = dict.fromkeys([namespace, gateway_namespace, *extra])
    for r, doc in zip(files.resources, files.origins, strict=True):
        ns = r.metadata.namespace or namespace
        seen[ns] = None
        if doc is not None and isinstance(doc.data, Mapping):
            seen.update(dict.fromkeys(sorted(_gateway_namespaces(doc.data, ns))))
    return tuple(n for n in seen if n and n != "*")


def overlay(
    files: ConfigSet,
    cluster: ClusterAdapter,
    namespace: str | None = None,
    *,
    gateway_namespace: str = "istio-system",
    extra_namespaces: Iterable[str] = (),
) -> LiveOverlay:
    """Lay *files* over the routing objects *cluster* serves.

    Args:
        files: The config set loaded from files.
        cluster: The cluster to read.
        namespace: The namespace of files that name none (and always read); default the
            cluster's.
        gateway_namespace: Where the ingress Gateways live (always read, optionally).
        extra_namespaces: More namespaces to read.

    Returns:
        The overlay. Its config keeps the files' resources with their documents, so findings
        about them point at the files.

    Raises:
        ApiError: When the cluster cannot be reached or refuses reading *namespace* itself.
    """
    ns = namespace or cluster.namespace
    served = cluster.served_versions()
    spaces = _namespaces(files, ns, gateway_namespace, extra_namespaces)
    notes: list[str] = []
    objects: list[Obj] = []
    for kind in LIVE_KINDS:
        info = KINDS[kind]
        if info.discovered and kind not in served:
            continue
        for where in spaces if info.namespaced else (None,):
            try:
                objects.extend(cluster.list(kind, where))
            except (ForbiddenError, NotFoundError) as err:
                if where == ns and isinstance(err, ForbiddenError):
                    raise
                why = "not allowed" if isinstance(err, ForbiddenError) else "not served"
                place = f' in namespace "{where}"' if where else ""
                notes.append(f"could not list {kind} objects{place} ({why}); left out")
    mine = {
        _ident(r.kind, r.api_version, r.metadata.namespace or ns, r.name)
        for r in [*files.resources, *(s.resource for s, _ in files.partial)]
    }
    kept: list[RawDocument] = []
    live: list[str] = []
    replaced: list[str] = []
    for i, obj in enumerate(objects):
        meta = obj.get("metadata") or {}
        key = _ident(
            str(obj.get("kind")), str(obj.get("apiVersion") or ""), meta.get("namespace"),
            str(meta.get("name")),
        )  # fmt: skip
        label = f"{obj.get('kind')}/{meta.get('namespace') or '-'}/{meta.get('name')}"
        if key in mine:
            replaced.append(label)
            continue
        live.append(label)
        # line 0: a live object has no line to point at; the file says where it came from
        kept.append(RawDocument(strip(obj), LIVE, i, 0))
    config = from_documents(kept) + files
    return LiveOverlay(config, tuple(live), tuple(replaced), tuple(notes), cluster.context, spaces)


def gateway_findings(config: ConfigSet, profile: str | None = None) -> list[Finding]:
    """The routes of *config* that bind to a Gateway it does not hold (IL210, IL601).

    With an overlay's config that is a Gateway in neither the files nor the cluster: the
    request then reaches no route through it (``explain`` answers 404), which is worth saying
    before the answer.
    """
    from istiolab.config.validate import validate

    found = validate(config, profile)
    return [f for f in found if f.code in GATEWAY_CODES]
