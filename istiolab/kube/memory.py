"""An in-memory Kubernetes API, for notebooks, workshops (Binder) and tests.

:class:`InMemoryCluster` implements :class:`~istiolab.kube.adapter.ClusterAdapter` without a
cluster. It models what ``plan``, ``apply`` and ``rollback`` rely on, and nothing more:

* **API discovery**: which Istio group/versions are served (``istio_versions``); reading or
  writing an unserved version is a 404, as on a real API server; the networking versions are
  aliases of one schema, so an object written as ``v1beta1`` reads back as ``v1``.
* **Server-side apply** with field ownership: every field (map keys are tracked one by one,
  lists as a whole, like a CRD with ``x-kubernetes-preserve-unknown-fields``) is owned by the
  managers that set it. Applying a field another manager owns with a *different* value is a
  409 conflict naming the field and the manager, unless forced (then ownership moves); the
  same value makes the field co-owned. Fields a manager applied before and leaves out now are
  removed unless someone else owns them. Ownership is shown as ``metadata.managedFields``. As
  on kube-apiserver, a manager is a (name, operation) pair: fields that istiolab wrote with an
  Update (a rollback's merge patch) conflict with its next Apply.
* **Dry run**: ``dry_run_apply`` computes the result (conflicts included) and stores nothing.
* **resourceVersion** (a cluster-wide counter, bumped on every change), ``generation`` (bumped
  when ``spec`` changes), ``uid`` and ``creationTimestamp``; ``replace`` with a stale
  resourceVersion and ``delete`` with a different uid are 409 conflicts;
  :meth:`InMemoryCluster.set_status` writes ``status`` as istiod does (a new resourceVersion,
  the same generation).
* **RBAC denials** (:meth:`InMemoryCluster.deny`) and **API failures**
  (:meth:`InMemoryCluster.fail`), so that a workshop can show what a refused or half-done
  apply looks like; and **answers that lie** (:meth:`InMemoryCluster.lie`): the write is
  stored, then an error is answered (a 504 after the commit, a proxy's page instead of JSON).

It does not model: schema validation and admission webhooks (Istio's validating webhook),
defaulting, controllers (a Deployment does not create Pods; seed them), watches, label
selectors, finalizers and garbage collection, list-map merge keys, or the separate field sets
of one manager's Apply and Update operations beyond what rollback uses. ``docs/cluster.md``
lists what only a real cluster shows.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from istiolab.kube.adapter import ClusterIdentity, ObjList
from istiolab.kube.errors import ApiError, Scrubber, api_error
from istiolab.kube.kinds import KINDS, KindInfo, kind_info, kind_key, split_api_version
from istiolab.kube.objects import Obj

__all__ = ["Call", "InMemoryCluster"]

FieldPath = tuple[str, ...]
_MISSING = object()
_IDENTITY = frozenset({"apiVersion", "kind", "metadata", "status"})
DEFAULT_ISTIO_VERSIONS = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)


@dataclasses.dataclass(frozen=True)
class Call:
    """One request to the in-memory API, as an audit log entry.

    Attributes:
        verb: ``get``, ``list``, ``patch`` or ``delete``.
        kind: The kind.
        namespace: The namespace (None: all, or cluster-scoped).
        name: The object's name (None for a list).
        dry_run: A server-side dry run.
        field_manager: The field manager of a write.
        force: A forced apply.
        patch_type: ``apply`` (server-side apply) or ``merge`` (restore), for writes.
    """

    verb: str
    kind: str
    namespace: str | None
    name: str | None
    dry_run: bool = False
    field_manager: str | None = None
    force: bool = False
    patch_type: str | None = None


@dataclasses.dataclass
class _Owner:
    api_version: str
    fields: set[FieldPath]


@dataclasses.dataclass
class _Stored:
    obj: Obj
    # keyed by (manager, operation), as the API server keeps managedFields entries
    owners: dict[tuple[str, str], _Owner]


@dataclasses.dataclass
class _Fault:
    verb: str
    kind: str
    name: str | None
    status: int
    reason: str
    message: str
    times: int
    dry_run: bool
    stored: bool = False
    patch_type: str | None = None


# -- field paths ------------------------------------------------------------------------------


def _walk(value: Any, path: FieldPath, out: dict[FieldPath, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(v, (*path, str(k)), out)
    else:
        out[path] = value


def _fields(obj: Mapping[str, Any]) -> dict[FieldPath, Any]:
    """Leaf fields an object sets: labels and annotations key by key, then everything else."""
    out: dict[FieldPath, Any] = {}
    meta = obj.get("metadata") or {}
    for key in ("labels", "annotations"):
        for k, v in (meta.get(key) or {}).items():
            out[("metadata", key, str(k))] = v
    for k, v in obj.items():
        if k not in _IDENTITY:
            _walk(v, (k,), out)
    return out


def _overlap(p: FieldPath, q: FieldPath) -> bool:
    n = min(len(p), len(q))
    return p[:n] == q[:n]


def _get(obj: Any, path: FieldPath) -> Any:
    cur = obj
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _set(obj: Obj, path: FieldPath, value: Any) -> None:
    cur = obj
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[path[-1]] = copy.deepcopy(value)


def _delete(obj: Obj, path: FieldPath) -> None:
    chain: list[tuple[Obj, str]] = []
    cur: Any = obj
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return
        chain.append((cur, part))
        cur = cur[part]
    parent, key = chain.pop()
    del parent[key]
    # prune maps left empty by the removal (never metadata itself)
    while chain:
        parent, key = chain.pop()
        if parent[key] == {} and not (parent is obj and key == "metadata"):
            del parent[key]
        else:
            break


def _signature(owners: Mapping[tuple[str, str], _Owner]) -> list[tuple[str, str, list[FieldPath]]]:
    return sorted((m, op, sorted(o.fields)) for (m, op), o in owners.items())


def _dotted(path: FieldPath) -> str:
    return "".join(f".{p}" for p in path)


def _fields_v1(paths: Iterable[FieldPath]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        cur = tree
        for part in path:
            cur = cur.setdefault(f"f:{part}", {})
    return tree


class InMemoryCluster:
    """A Kubernetes API server in memory (see the module docstring for what it models).

    Args:
        context: Name that stands for the kubeconfig context (names the backup folder).
        namespace: Default namespace.
        istio_versions: Istio ``group/version`` strings served; empty means Istio is not
            installed. Add ``"config.istio.io/v1alpha2"`` for a 2017 cluster with RouteRules.
        gateway_api_versions: Gateway API ``group/version`` strings served (the standard
            channel's CRDs serve ``gateway.networking.k8s.io/v1`` and ``/v1beta1``); empty (the
            default, as on a new cluster) means the Gateway API CRDs are not installed.
        objects: Objects to start with, owned by the manager ``kubectl``.
        field_manager: Field manager of istiolab's writes.
        user: The user named in RBAC denials.
        clock: Time source for ``creationTimestamp``.
        server: The URL that stands for its API server (part of its identity).
        cluster_uid: The uid that stands for its ``kube-system`` Namespace; default a fresh
            random one, so two in-memory clusters are two clusters even with one context name.

    Example:
        >>> cluster = InMemoryCluster(namespace="shop")
        >>> vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        ...       "metadata": {"name": "web", "namespace": "shop"},
        ...       "spec": {"hosts": ["web"],
        ...                "http": [{"route": [{"destination": {"host": "web"}}]}]}}
        >>> cluster.apply(vs)["metadata"]["resourceVersion"]
        '1'
        >>> cluster.get("VirtualService", "shop", "web")["spec"]["hosts"]
        ['web']
    """

    def __init__(
        self,
        *,
        context: str = "in-memory",
        namespace: str = "default",
        istio_versions: Iterable[str] = DEFAULT_ISTIO_VERSIONS,
        gateway_api_versions: Iterable[str] = (),
        objects: Iterable[Mapping[str, Any]] = (),
        field_manager: str = "istiolab",
        user: str = "workshop-user",
        clock: Callable[[], datetime.datetime] | None = None,
        server: str = "memory://in-memory",
        cluster_uid: str | None = None,
    ) -> None:
        self._context = context
        self._identity = ClusterIdentity(server, cluster_uid or str(uuid.uuid4()))
        self._namespace = namespace
        self._field_manager = field_manager
        self._istio_versions = tuple(istio_versions) + tuple(gateway_api_versions)
        self._user = user
        self._clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self._objects: dict[tuple[str, str | None, str], _Stored] = {}
        self._revision = 0
        self._uids = 0
        self._denied: list[tuple[str, str, str | None]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self.calls: list[Call] = []
        """Every request, in order (an audit log to assert on)."""
        for obj in objects:
            self.seed(obj)

    def __repr__(self) -> str:
        return (
            f"InMemoryCluster(context={self._context!r}, namespace={self._namespace!r}, "
            f"objects={len(self._objects)})"
        )

    # -- ClusterAdapter -----------------------------------------------------------------------

    @property
    def context(self) -> str:
        """Name standing for the kubeconfig context."""
        return self._context

    @property
    def namespace(self) -> str:
        """Default namespace."""
        return self._namespace

    @property
    def field_manager(self) -> str:
        """Field manager of istiolab's writes."""
        return self._field_manager

    def identity(self) -> ClusterIdentity:
        """The server URL and ``kube-system`` uid standing for this cluster's."""
        return self._identity

    def served_versions(self) -> dict[str, tuple[str, ...]]:
        """Istio and Gateway API kinds served, each with its apiVersions, newest first."""
        out: dict[str, tuple[str, ...]] = {}
        for info in KINDS.values():
            if info.discovered:
                versions = tuple(v for v in info.api_versions if v in self._istio_versions)
                if versions:
                    out[info.kind] = versions
        return out

    def get(
        self, kind: str, namespace: str | None, name: str, *, api_version: str | None = None
    ) -> Obj | None:
        """One object (a copy), or None."""
        with self._lock:
            info = kind_info(kind)
            ns = namespace if info.namespaced else None
            version = self._version(info, api_version, "get", ns, name)
            self._request(Call("get", kind, ns, name))
            stored = self._objects.get((kind, ns, name))
            return None if stored is None else self._render(stored, version)

    def list(self, kind: str, namespace: str | None, *, api_version: str | None = None) -> ObjList:
        """Objects of a kind (copies), sorted by namespace and name."""
        with self._lock:
            info = kind_info(kind)
            ns = namespace if info.namespaced else None
            version = self._version(info, api_version, "list", ns, None)
            self._request(Call("list", kind, ns, None))
            return [
                self._render(s, version)
                for (k, n, _), s in sorted(self._objects.items(), key=lambda kv: str(kv[0]))
                if k == kind and (ns is None or n == ns)
            ]

    def dry_run_apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply computed but not stored (conflicts are reported as for a real one)."""
        return self._apply(obj, force=force, dry_run=True)

    def apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply by :attr:`field_manager`."""
        return self._apply(obj, force=force, dry_run=False)

    def replace(self, obj: Mapping[str, Any], *, resource_version: str | None = None) -> Obj:
        """Set labels, annotations and every top-level field exactly to *obj*'s (a merge patch).

        Raises:
            NotFoundError: When the object does not exist.
            ConflictError: When *resource_version* is given and the object has another one.
        """
        with self._lock:
            kind, ns, name, info, version = self._identify(obj)
            call = Call(
                "patch", kind, ns, name, field_manager=self._field_manager, patch_type="merge"
            )
            self._request(call)
            stored = self._objects.get((kind, ns, name))
            if stored is None:
                raise self._not_found(call, info, version, name)
            if resource_version is not None and resource_version != self._rv(stored):
                raise self._stale(call, info, version, name)
            new = copy.deepcopy(stored.obj)
            meta = new.setdefault("metadata", {})
            src_meta = obj.get("metadata") or {}
            for key in ("labels", "annotations"):
                if src_meta.get(key):
                    meta[key] = copy.deepcopy(src_meta[key])
                else:
                    meta.pop(key, None)
            for key in [k for k in new if k not in _IDENTITY]:
                del new[key]
            for key, value in obj.items():
                if key not in _IDENTITY:
                    new[key] = copy.deepcopy(value)
            before, after = _fields(stored.obj), _fields(new)
            changed = {
                p
                for p in before.keys() | after.keys()
                if before.get(p, _MISSING) != after.get(p, _MISSING)
            }
            owners = stored.owners
            for owner in owners.values():
                owner.fields = {q for q in owner.fields if not any(_overlap(p, q) for p in changed)}
            mine = owners.setdefault((self._field_manager, "Update"), _Owner(version, set()))
            mine.fields |= {p for p in changed if p in after}
            self._commit(stored, new, version, created=False)
            self._answer(call)
            return self._render(stored, version)

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        api_version: str | None = None,
        uid: str | None = None,
    ) -> None:
        """Delete an object; with *uid*, only if it is still that object (else 409)."""
        with self._lock:
            info = kind_info(kind)
            ns = namespace if info.namespaced else None
            version = self._version(info, api_version, "delete", ns, name)
            call = Call("delete", kind, ns, name)
            self._request(call)
            stored = self._objects.get((kind, ns, name))
            if stored is None:
                raise self._not_found(call, info, version, name)
            actual = stored.obj["metadata"].get("uid")
            if uid is not None and uid != actual:
                raise self._error(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {actual}",
                    call,
                    info,
                )
            del self._objects[(kind, ns, name)]
            self._revision += 1
            self._answer(call)

    # -- set-up and scripting -----------------------------------------------------------------

    def seed(
        self, obj: Mapping[str, Any], *, manager: str = "kubectl", operation: str | None = None
    ) -> Obj:
        """Store an object as if *manager* had written it (no RBAC, no faults, no log entry).

        Use it for the cluster's starting state: Services, Deployments, Pods, Nodes, and Istio
        objects written by other tools (``kubectl-client-side-apply``, ``helm``, ...).

        Args:
            obj: The object.
            manager: The field manager that wrote it.
            operation: ``Apply`` or ``Update``; default ``Apply`` for istiolab's own
                :attr:`field_manager` (istiolab writes with server-side apply), else
                ``Update`` (``kubectl create``, client-side ``kubectl apply``).
        """
        if operation is None:
            operation = "Apply" if manager == self._field_manager else "Update"
        with self._lock:
            data = copy.deepcopy(dict(obj))
            info = kind_info(kind_key(str(data.get("kind")), data.get("apiVersion")))
            meta = data.setdefault("metadata", {})
            if info.namespaced:
                meta.setdefault("namespace", self._namespace)
            else:
                meta.pop("namespace", None)
            ns = meta.get("namespace")
            key = (info.kind, ns, str(meta["name"]))
            version = str(data.get("apiVersion") or info.api_versions[0])
            stored = self._objects.get(key)
            created = stored is None
            if stored is None:
                stored = _Stored({}, {})
            stored.owners = {(manager, operation): _Owner(version, set(_fields(data)))}
            self._commit(stored, data, version, created=created)
            self._objects[key] = stored
            return self._render(stored, version)

    def deny(self, verb: str, kind: str, namespace: str | None = None) -> None:
        """Model an RBAC denial: *verb* on *kind* (in *namespace*, or anywhere) answers 403."""
        self._denied.append((verb, kind, namespace))

    def fail(
        self,
        verb: str,
        kind: str,
        name: str | None = None,
        *,
        status: int = 500,
        reason: str = "InternalError",
        message: str = "Internal error occurred: etcdserver: request timed out",
        times: int = 1,
        dry_run: bool = False,
        patch_type: str | None = None,
    ) -> None:
        """Make the next *times* matching requests fail with an API error.

        Dry runs are not affected unless *dry_run*. *patch_type* (``apply`` or ``merge``, the
        restore of a rollback) narrows a ``patch`` fault to one kind of write. Nothing changes
        when a request fails, as on a real API server.
        """
        self._faults.append(
            _Fault(verb, kind, name, status, reason, message, times, dry_run, False, patch_type)
        )

    def lie(
        self,
        verb: str,
        kind: str,
        name: str | None = None,
        *,
        status: int = 504,
        reason: str = "Timeout",
        message: str = "Timeout: request did not complete within the allotted timeout",
        times: int = 1,
        patch_type: str | None = None,
    ) -> None:
        """Make the next *times* matching writes be **stored**, then answered with an error.

        kube-apiserver answers 504 when its own request timeout fires while the write goes on
        to etcd; a proxy may turn a stored write's answer into an HTML page (``status=200,
        reason="BadResponse"``). Only writes (``patch``, ``delete``) can lie; dry runs never.
        """
        if verb not in ("patch", "delete"):
            raise ValueError(f"only writes can be stored and then answered with an error: {verb}")
        self._faults.append(
            _Fault(verb, kind, name, status, reason, message, times, False, True, patch_type)
        )

    def _answer(self, call: Call) -> None:
        """After a write was stored: raise the error a lying answer scripted, if any."""
        for fault in self._faults:
            if fault.stored and fault.times > 0 and self._matches(fault, call):
                fault.times -= 1
                raise self._error(
                    fault.status, fault.reason, fault.message, call, kind_info(call.kind)
                )

    def set_status(self, kind: str, namespace: str | None, name: str, status: Obj) -> Obj:
        """Write an object's ``status`` as a controller does (istiod's ``validationMessages``).

        A status update bumps the resourceVersion but not the generation, and changes no
        field a manager owns.

        Raises:
            NotFoundError: When the object does not exist.
        """
        with self._lock:
            info = kind_info(kind)
            ns = namespace if info.namespaced else None
            stored = self._objects.get((kind, ns, name))
            if stored is None:
                raise self._error(
                    404,
                    "NotFound",
                    f'{info.resource()} "{name}" not found',
                    Call("patch", kind, ns, name),
                    info,
                )
            new = copy.deepcopy(stored.obj)
            new["status"] = copy.deepcopy(status)
            self._commit(stored, new, str(stored.obj.get("apiVersion")), created=False)
            return self._render(stored, str(stored.obj.get("apiVersion")))

    def stored(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The stored object as it is (no API semantics: no log, RBAC or faults); for tests."""
        with self._lock:
            ns = namespace if kind_info(kind).namespaced else None
            s = self._objects.get((kind, ns, name))
            return None if s is None else copy.deepcopy(s.obj)

    # -- internals ----------------------------------------------------------------------------

    def _apply(self, obj: Mapping[str, Any], *, force: bool, dry_run: bool) -> Obj:
        with self._lock:
            kind, ns, name, info, version = self._identify(obj)
            manager = self._field_manager
            call = Call("patch", kind, ns, name, dry_run, manager, force, "apply")
            self._request(call)
            stored = self._objects.get((kind, ns, name))
            live: Obj
            if stored is None:
                live = {"apiVersion": version, "kind": info.k8s_kind, "metadata": {"name": name}}
                if ns is not None:
                    live["metadata"]["namespace"] = ns
                owners: dict[tuple[str, str], _Owner] = {}
            else:
                live = copy.deepcopy(stored.obj)
                owners = copy.deepcopy(stored.owners)
            want_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if want_rv and (stored is None or want_rv != self._rv(stored)):
                raise self._stale(call, info, version, name)
            config = _fields(obj)
            conflicts: dict[tuple[FieldPath, str], tuple[FieldPath, tuple[str, str]]] = {}
            for p, value in config.items():
                if _get(live, p) == value:
                    continue  # same value: co-owned, never a conflict
                for okey, owner in owners.items():
                    # only this manager's own Apply entry: kube-apiserver keeps its Update
                    # entry (a rollback's merge patch) as another owner, which conflicts
                    if okey == (manager, "Apply"):
                        continue
                    for q in owner.fields:
                        if _overlap(p, q):
                            conflicts.setdefault((p, okey[0]), (q, okey))
            if conflicts and not force:
                causes = [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{m}" using {owners[ok].api_version}',
                        "field": _dotted(p),
                    }
                    for (p, m), (_, ok) in sorted(conflicts.items())
                ]
                summary = ", ".join(f"{c['field']} ({c['message']})" for c in causes)
                raise self._error(
                    409,
                    "Conflict",
                    f"Apply failed with {len(causes)} conflict(s): {summary}",
                    call,
                    info,
                    causes=causes,
                )
            for (p, _), (_q, okey) in conflicts.items():  # forced: ownership moves to us
                owners[okey].fields = {f for f in owners[okey].fields if not _overlap(p, f)}
            mine = owners.get((manager, "Apply"))
            before = mine.fields if mine is not None else set()
            others = [f for k, o in owners.items() if k != (manager, "Apply") for f in o.fields]
            for p in before - config.keys():
                if not any(_overlap(p, q) for q in others):
                    _delete(live, p)
            for p, value in config.items():
                _set(live, p, value)
            live["apiVersion"] = version
            owners[(manager, "Apply")] = _Owner(version, set(config))
            owners = {k: o for k, o in owners.items() if o.fields}
            if dry_run:
                preview = _Stored(live, owners)
                if stored is not None:
                    preview.obj["metadata"]["resourceVersion"] = self._rv(stored)
                return self._render(preview, version)
            if stored is None:
                stored = self._objects[(kind, ns, name)] = _Stored({}, {})
                created = True
            else:
                created = False
            bump = _signature(owners) != _signature(stored.owners)
            stored.owners = owners
            self._commit(stored, live, version, created=created, bump=bump)
            self._answer(call)
            return self._render(stored, version)

    def _identify(self, obj: Mapping[str, Any]) -> tuple[str, str | None, str, KindInfo, str]:
        version = str(obj.get("apiVersion") or "")
        kind = kind_key(str(obj.get("kind") or ""), version)
        info = kind_info(kind)
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        ns = (meta.get("namespace") or self._namespace) if info.namespaced else None
        if version not in info.api_versions:
            raise self._error(
                404,
                "NotFound",
                f"the server could not find the requested resource ({version} {kind})",
                Call("patch", kind, ns, name),
                info,
            )
        self._version(info, version, "patch", ns, name)
        return kind, ns, name, info, version

    def _version(
        self, info: KindInfo, api_version: str | None, verb: str, ns: str | None, name: str | None
    ) -> str:
        if not info.discovered:
            return api_version or info.api_versions[0]
        served = self.served_versions().get(info.kind, ())
        version = api_version or (served[0] if served else info.api_versions[0])
        if version not in served:
            raise self._error(
                404,
                "NotFound",
                f"the server could not find the requested resource ({version} {info.plural})",
                Call(verb, info.kind, ns, name),
                info,
                version=version,
            )
        return version

    def _request(self, call: Call) -> None:
        self.calls.append(call)
        info = kind_info(call.kind)
        for verb, kind, ns in self._denied:
            if verb == call.verb and kind == call.kind and (ns is None or ns == call.namespace):
                group, _ = split_api_version(info.api_versions[0])
                where = f' in the namespace "{call.namespace}"' if call.namespace else ""
                raise self._error(
                    403,
                    "Forbidden",
                    f"{info.resource()}{' ' + repr(call.name) if call.name else ''} is forbidden: "
                    f'User "{self._user}" cannot {call.verb} resource "{info.plural}" in API '
                    f'group "{group}"{where}',
                    call,
                    info,
                )
        for fault in self._faults:
            if not fault.stored and fault.times > 0 and self._matches(fault, call):
                fault.times -= 1
                raise self._error(fault.status, fault.reason, fault.message, call, info)

    @staticmethod
    def _matches(fault: _Fault, call: Call) -> bool:
        return (
            fault.verb == call.verb
            and fault.kind == call.kind
            and (fault.name is None or fault.name == call.name)
            and fault.dry_run == call.dry_run
            and (fault.patch_type is None or fault.patch_type == call.patch_type)
        )

    def _stale(self, call: Call, info: KindInfo, version: str, name: str) -> ApiError:
        """The API server's 409 for a write carrying an outdated resourceVersion."""
        return self._error(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {info.resource(version)} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            call,
            info,
            version=version,
        )

    def _not_found(self, call: Call, info: KindInfo, version: str, name: str) -> ApiError:
        """The API server's 404 for a named object that does not exist."""
        return self._error(
            404,
            "NotFound",
            f'{info.resource(version)} "{name}" not found',
            call,
            info,
            version=version,
        )

    def _error(
        self,
        status: int,
        reason: str,
        message: str,
        call: Call,
        info: KindInfo,
        *,
        causes: object = None,
        version: str | None = None,
    ) -> ApiError:
        return api_error(
            status=status,
            reason=reason,
            message=message,
            verb=call.verb,
            resource=info.resource(version),
            namespace=call.namespace,
            name=call.name,
            namespaced=info.namespaced,
            causes=causes,
            dry_run=call.dry_run,
            context=self._context,
            scrub=Scrubber(),
        )

    @staticmethod
    def _rv(stored: _Stored) -> str:
        return str(stored.obj.get("metadata", {}).get("resourceVersion", ""))

    def _commit(
        self, stored: _Stored, new: Obj, version: str, *, created: bool, bump: bool = False
    ) -> None:
        old = stored.obj
        meta = new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "generation"):
            if key in old.get("metadata", {}):
                meta[key] = old["metadata"][key]
        if created or "uid" not in meta:
            self._uids += 1
            meta["uid"] = f"00000000-0000-4000-8000-{self._uids:012d}"
            meta["creationTimestamp"] = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["generation"] = 1
        elif old.get("spec") != new.get("spec"):
            meta["generation"] = int(meta.get("generation", 1)) + 1
        if created or bump or new != old:
            self._revision += 1
            meta["resourceVersion"] = str(self._revision)
        new["apiVersion"] = version
        meta.pop("managedFields", None)
        stored.obj = new

    def _render(self, stored: _Stored, version: str) -> Obj:
        out = copy.deepcopy(stored.obj)
        out["apiVersion"] = version
        out.setdefault("metadata", {})["managedFields"] = [
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": owner.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(owner.fields),
            }
            for (manager, operation), owner in sorted(stored.owners.items())
        ]
        return out
