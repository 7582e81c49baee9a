"""A cluster read from YAML files: ``istiolab cluster import --from-files PATHS…``.

A Binder user or a CI job has the cluster's objects as files (``kubectl get -o yaml`` output,
a Helm chart's rendered manifests, hand-written ones), not a cluster. :func:`import_files`
puts them in an :class:`~istiolab.kube.memory.InMemoryCluster` that serves every kind
istiolab reads (Istio's, legacy ones and the Gateway API's), and runs the same import as a
live cluster's, so both give the same scenario; findings name the file and line an object
came from. Kinds istiolab does not read (ConfigMaps, Namespaces, ...) are left out with a
note; so are documents that are not objects.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from istiolab.config import codecs
from istiolab.config.codecs import RawDocument
from istiolab.config.configset import from_documents
from istiolab.errors import ClusterError
from istiolab.findings import Finding, Severity
from istiolab.kube.importer import ClusterImport, inspect_cluster
from istiolab.kube.kinds import (
    DISCOVERED_GROUP_VERSIONS,
    KINDS,
    kind_key,
)
from istiolab.kube.memory import InMemoryCluster

__all__ = ["FILES_CONTEXT", "FileCluster", "cluster_from_files", "import_files"]

FILES_CONTEXT = "files"
"""The context name an import from files reports."""


@dataclasses.dataclass(frozen=True)
class FileCluster:
    """Objects read from files, as a cluster.

    Attributes:
        cluster: An in-memory cluster holding them (every discovered API served).
        sources: Each object's document, by ``Kind/namespace/name`` (kind as
            :func:`~istiolab.kube.kinds.kind_key` spells it).
        findings: Files or documents that could not be read (IL00x).
        notes: Documents left out, and why.
    """

    cluster: InMemoryCluster
    sources: Mapping[str, RawDocument]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]


def cluster_from_files(
    paths: Iterable[str | Path],
    *,
    namespace: str | None = None,
    gateway_namespace: str = "istio-system",
    stdin: TextIO | None = None,
) -> FileCluster:
    """Read files, directories (recursively) and ``-`` (stdin) into an in-memory cluster.

    Args:
        paths: What to read.
        namespace: Namespace of objects that name none, and the cluster's default; default
            the namespace most Services and Deployments outside *gateway_namespace* are in.
        gateway_namespace: Where the ingress gateway runs (not taken as the default).
        stdin: Stream read for ``-``.

    Returns:
        The cluster, where each object came from, and what could not be read.
    """
    docs = codecs.load_paths(list(paths), stdin=stdin)
    broken = [d for d in docs if d.error is not None]
    findings: tuple[Finding, ...] = from_documents(broken).findings if broken else ()
    notes: list[str] = []
    objects: list[RawDocument] = []
    skipped: collections.Counter[str] = collections.Counter()
    for doc in docs:
        if doc.error is not None or doc.data is None:
            continue
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            notes.append(f"{_where(doc)}: not a Kubernetes object; left out")
            continue
        key = kind_key(data["kind"], str(data.get("apiVersion") or ""))
        if key not in KINDS:
            skipped[str(data["kind"])] += 1
            continue
        meta = data.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            notes.append(f"{_where(doc)}: {data['kind']} without metadata.name; left out")
            continue
        shape = _misshapen(data)
        if shape:
            notes.append(f"{_where(doc)}: {data['kind']} {meta['name']}: {shape}; left out")
            continue
        # a kind the config layer models (Service, Deployment, Pod, the routing kinds) is
        # schema-checked as `lint` would; with errors it is left out, and they are findings
        errors = [f for f in from_documents([doc]).findings if f.severity is Severity.ERROR]
        if errors and key not in _ROUTING_KEYS:
            findings = (*findings, *errors)
            notes.append(
                f"{_where(doc)}: {data['kind']} {meta['name']} has schema errors; left out"
            )
            continue
        objects.append(doc)
    if skipped:
        notes.append(
            "kinds istiolab does not read, left out: "
            + ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items()))
        )
    ns = namespace or _main_namespace(objects, gateway_namespace)
    cluster = InMemoryCluster(
        context=FILES_CONTEXT,
        namespace=ns,
        istio_versions=DISCOVERED_GROUP_VERSIONS,
        server="files://",
        cluster_uid="files",
    )
    sources: dict[str, RawDocument] = {}
    for doc in objects:
        data = copy.deepcopy(doc.data)
        info = KINDS[kind_key(data["kind"], str(data.get("apiVersion") or ""))]
        meta = data["metadata"]
        if info.namespaced:
            meta.setdefault("namespace", ns)
        else:
            meta.pop("namespace", None)
        ref = f"{info.kind}/{meta.get('namespace', '-')}/{meta['name']}"
        if ref in sources:
            notes.append(f"{_where(doc)}: {ref} again (first in {_where(sources[ref])}); kept last")
        try:
            cluster.seed(data)
        except (TypeError, ValueError, AttributeError) as err:
            notes.append(f"{_where(doc)}: {ref} could not be stored ({err}); left out")
            continue
        sources[ref] = doc
    return FileCluster(cluster, sources, tuple(findings), tuple(notes))


def import_files(
    paths: Iterable[str | Path],
    namespace: str | None = None,
    *,
    gateway_namespace: str = "istio-system",
    rate_rps: float = 100.0,
    stdin: TextIO | None = None,
) -> tuple[ClusterImport, FileCluster]:
    """:func:`~istiolab.kube.importer.inspect_cluster` over objects read from files.

    Returns:
        The import (its notes start with the files' own) and the files' cluster.

    Raises:
        ClusterError: When no Service in the namespace selects a Deployment.
    """
    files = cluster_from_files(
        paths, namespace=namespace, gateway_namespace=gateway_namespace, stdin=stdin
    )
    try:
        result = _inspect(
            files.cluster,
            files.cluster.namespace,
            gateway_namespace=gateway_namespace,
            rate_rps=rate_rps,
            sources=files.sources,
        )
    except ClusterError as err:
        if not files.findings:
            raise
        # the likely cause is in the input (a missing file, a YAML error): say it first
        problems = "; ".join(f.format() for f in files.findings[:3])
        raise ClusterError(f"{problems}; then: {err}") from None
    result = dataclasses.replace(
        result,
        notes=(*files.notes, *result.notes),
        findings=(*files.findings, *result.findings),
    )
    return result, files


def _inspect(cluster: InMemoryCluster, namespace: str, **kwargs: Any) -> ClusterImport:
    try:
        return inspect_cluster(cluster, namespace, **kwargs)
    except (AttributeError, TypeError, ValueError, KeyError) as err:
        # a live API server guarantees the core kinds' shapes; files do not, and a field deep
        # in one (a Pod's containers, a Node's status) may still be of the wrong type
        raise ClusterError(
            "an object in the files is not shaped as Kubernetes stores it "
            f"({type(err).__name__}: {str(err)[:120]}); run `istiolab lint` on the files, or "
            "export them again with `kubectl get -o yaml`"
        ) from None


_ROUTING_KEYS = frozenset(k for k, info in KINDS.items() if info.discovered or k == "Ingress")
"""Kinds whose schema errors the import reports as findings but keeps (a live cluster may
hold such objects too: the import says so with its exit code)."""

_SHAPES = (("metadata", "labels"), ("metadata", "annotations"), ("spec",), ("status",))


def _misshapen(data: Mapping[str, Any]) -> str | None:
    """What makes an object unlike anything an API server stores (None when nothing)."""
    meta = data["metadata"]
    if "namespace" in meta and not isinstance(meta["namespace"], str):
        return "metadata.namespace is not a string"
    for path in _SHAPES:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            return f"{'.'.join(path)} is not a mapping"
        if (
            path[0] == "metadata"
            and isinstance(value, dict)
            and not all(isinstance(v, str) for v in value.values())
        ):
            return f"{'.'.join(path)} has a value that is not a string"
    return None


def _where(doc: RawDocument) -> str:
    return f"{doc.file or '<input>'}:{doc.line}"


def _main_namespace(docs: Iterable[RawDocument], gateway_namespace: str) -> str:
    counts: collections.Counter[str] = collections.Counter()
    for doc in docs:
        data: Any = doc.data
        ns = (data.get("metadata") or {}).get("namespace")
        if data.get("kind") in ("Service", "Deployment") and ns and ns != gateway_namespace:
            counts[str(ns)] += 1
    return counts.most_common(1)[0][0] if counts else "default"
