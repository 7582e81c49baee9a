"""Backup sets: what ``apply`` saved before changing a cluster, and what rollback needs.

A backup set is a folder ``<root>/<context>/<backup-id>/`` with ``manifest.json`` and one YAML
file per object that existed before the apply (its live version, as read just before it was
changed). The manifest lists every object apply touched, in order, with what it did:

* ``update`` — the object existed; its saved file is what rollback restores;
* ``create`` — istiolab created it; rollback deletes it (only if its ``uid`` still matches).

Each entry has a ``state``: ``pending`` (about to be applied), ``applied`` (with the
``resourceVersion`` and ``uid`` the API returned), ``failed`` (the API refused; nothing changed)
or ``unknown`` (no answer, e.g. a timeout). The manifest is rewritten atomically after every
step, so it is complete even if istiolab is interrupted.

The root is ``$ISTIOLAB_HOME/backups`` when ``ISTIOLAB_HOME`` is set, else
``~/.istiolab/backups``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from istiolab.config import codecs
from istiolab.errors import ClusterError
from istiolab.kube.objects import Obj

__all__ = [
    "BackupEntry",
    "BackupSet",
    "BackupStore",
    "context_dir_name",
    "default_backup_root",
]

MANIFEST = "manifest.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_backup_root() -> Path:
    """``$ISTIOLAB_HOME/backups``, else ``~/.istiolab/backups``."""
    home = os.environ.get("ISTIOLAB_HOME")
    if home:
        return Path(home).expanduser() / "backups"
    return Path.home() / ".istiolab" / "backups"


def context_dir_name(context: str) -> str:
    """A folder name for a context (EKS contexts are ARNs with ``:`` and ``/``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", context).strip("._") or "context"
    return name[:200]


@dataclasses.dataclass
class BackupEntry:
    """One object an apply touched.

    Attributes:
        kind: Kind.
        api_version: apiVersion it was written with.
        namespace: Namespace.
        name: Name.
        action: ``update`` (existed; saved) or ``create`` (istiolab created it).
        file: The saved live version (``update`` only), relative to the backup folder.
        state: ``pending``, ``applied``, ``failed`` or ``unknown``.
        uid: The object's uid after the apply.
        resource_version: The object's resourceVersion right after istiolab's apply.
        content_sha256: Digest of the object's labels, annotations and spec right after the
            apply, to tell a later change of content from a mere status update.
        error: Why the step failed.
    """

    kind: str
    api_version: str
    namespace: str
    name: str
    action: str
    file: str | None = None
    state: str = "pending"
    uid: str | None = None
    resource_version: str | None = None
    content_sha256: str | None = None
    error: str | None = None

    @property
    def ref(self) -> str:
        """``Kind/namespace/name``."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (manifest keys are camelCase, like Kubernetes)."""
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "file": self.file,
            "state": self.state,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
            "contentSha256": self.content_sha256,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupEntry:
        """Read a manifest entry."""
        return cls(
            kind=str(data["kind"]),
            api_version=str(data["apiVersion"]),
            namespace=str(data["namespace"]),
            name=str(data["name"]),
            action=str(data["action"]),
            file=data.get("file"),
            state=str(data.get("state", "pending")),
            uid=data.get("uid"),
            resource_version=data.get("resourceVersion"),
            content_sha256=data.get("contentSha256"),
            error=data.get("error"),
        )


class BackupSet:
    """One backup folder and its manifest (see the module docstring)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest
        self.entries: list[BackupEntry] = [
            BackupEntry.from_dict(e) for e in manifest.get("entries", [])
        ]

    def __repr__(self) -> str:
        return f"BackupSet(id={self.id!r}, status={self.status!r}, entries={len(self.entries)})"

    @property
    def id(self) -> str:
        """The backup id (a UTC timestamp and a random suffix)."""
        return str(self._manifest["id"])

    @property
    def context(self) -> str:
        """The context the apply changed."""
        return str(self._manifest.get("context", ""))

    @property
    def namespace(self) -> str:
        """The default namespace of the apply."""
        return str(self._manifest.get("namespace", ""))

    @property
    def created(self) -> str:
        """When the apply started (ISO 8601, UTC)."""
        return str(self._manifest.get("created", ""))

    @property
    def status(self) -> str:
        """``in-progress``, ``complete``, ``failed``, ``rolled-back`` or ``rollback-incomplete``."""
        return str(self._manifest.get("status", ""))

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest as written."""
        return json.loads(json.dumps(self._manifest))  # type: ignore[no-any-return]

    def record_update(self, live: Mapping[str, Any]) -> BackupEntry:
        """Save the live version of an object about to change; add an ``update`` entry."""
        meta = live.get("metadata") or {}
        kind, ns, name = str(live.get("kind")), str(meta.get("namespace", "")), str(meta["name"])
        file = f"{len(self.entries) + 1:03d}-{kind}-{ns}-{name}.yaml"
        _write_atomic(self.path / file, codecs.dumps([dict(live)]))
        entry = BackupEntry(kind, str(live.get("apiVersion")), ns, name, "update", file)
        self.entries.append(entry)
        self.save()
        return entry

    def record_create(self, kind: str, api_version: str, namespace: str, name: str) -> BackupEntry:
        """Add a ``create`` entry for an object about to be created."""
        entry = BackupEntry(kind, api_version, namespace, name, "create")
        self.entries.append(entry)
        self.save()
        return entry

    def load_object(self, entry: BackupEntry) -> Obj:
        """The saved live version of an ``update`` entry.

        Raises:
            ClusterError: When the file is missing or unreadable.
        """
        if entry.file is None:
            raise ClusterError(f"backup {self.id}: {entry.ref} was created, nothing was saved")
        path = self.path / entry.file
        try:
            data = codecs.load_data(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ClusterError(f"backup {self.id}: cannot read {path}: {err}") from None
        if not isinstance(data, dict):
            raise ClusterError(f"backup {self.id}: {path} does not hold an object")
        return data

    def set_status(self, status: str, **extra: Any) -> None:
        """Set the status (and extra manifest keys) and save."""
        self._manifest["status"] = status
        self._manifest.update(extra)
        self.save()

    def save(self) -> None:
        """Write the manifest atomically."""
        self._manifest["entries"] = [e.to_dict() for e in self.entries]
        _write_atomic(self.path / MANIFEST, json.dumps(self._manifest, indent=2) + "\n")


class BackupStore:
    """The backup sets of every context under one root folder.

    Args:
        root: Folder; default :func:`default_backup_root` (read when the store is made).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_backup_root()

    def __repr__(self) -> str:
        return f"BackupStore(root={str(self.root)!r})"

    def folder(self, context: str) -> Path:
        """The folder of a context's backup sets."""
        return self.root / context_dir_name(context)

    def create(self, context: str, namespace: str) -> BackupSet:
        """Start a new backup set (status ``in-progress``)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        backup_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        path = self.folder(context) / backup_id
        path.mkdir(parents=True, mode=0o700)
        from istiolab import __version__

        manifest: dict[str, Any] = {
            "id": backup_id,
            "context": context,
            "namespace": namespace,
            "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "istiolab": __version__,
            "status": "in-progress",
            "entries": [],
        }
        backup = BackupSet(path, manifest)
        backup.save()
        return backup

    def backups(self, context: str) -> list[BackupSet]:
        """A context's backup sets, oldest first (unreadable folders are skipped)."""
        folder = self.folder(context)
        if not folder.is_dir():
            return []
        out = []
        for child in sorted(folder.iterdir()):
            if (child / MANIFEST).is_file():
                try:
                    out.append(self._read(child))
                except ClusterError:
                    continue
        return out

    def open(self, context: str, backup_id: str | None = None) -> BackupSet:
        """A backup set by id, or the newest one.

        Raises:
            ClusterError: When the id is malformed or there is no such backup.
        """
        if backup_id is None:
            sets = self.backups(context)
            if not sets:
                raise ClusterError(f'no backups for context "{context}" in {self.folder(context)}')
            return sets[-1]
        if not _ID.fullmatch(backup_id):
            raise ClusterError(f"{backup_id!r} is not a backup id (see `istiolab rollback --list`)")
        path = self.folder(context) / backup_id
        if not (path / MANIFEST).is_file():
            raise ClusterError(
                f'no backup {backup_id} for context "{context}" in {self.folder(context)} '
                "(see `istiolab rollback --list`)"
            )
        return self._read(path)

    @staticmethod
    def _read(path: Path) -> BackupSet:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ClusterError(f"cannot read {path / MANIFEST}: {err}") from None
        if not isinstance(manifest, dict) or "id" not in manifest:
            raise ClusterError(f"{path / MANIFEST} is not an istiolab backup manifest")
        return BackupSet(path, manifest)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
