"""Backup sets: what ``apply`` saved before changing a cluster, and what rollback needs.

A backup set is a folder ``<root>/<context>/<backup-id>/`` with ``manifest.json`` and one YAML
file per object that existed before the apply (its live version, as read just before it was
changed). The manifest lists every object apply touched, in order, with what it did:

* ``update`` — the object existed; its saved file is what rollback restores;
* ``create`` — istiolab created it; rollback deletes it (only if its ``uid`` still matches).

Each entry has a ``state``, always established by reading the object back after the write:
``pending`` (recorded, about to be applied), ``applied`` (the read-back holds what was applied;
with its ``resourceVersion``, ``uid`` and digests), ``failed`` (the write failed and the
read-back holds what was there before) or ``unknown`` (the read-back failed, or holds neither).
``ambiguous`` says whether the failure could have been stored anyway (no answer, 5xx, a body
that is not JSON): rollback checks those objects again. After a rollback each entry also has a
``rollback`` outcome (``restored``, ``deleted``, ``skipped``, ``not-restored``, ``unknown``).

The manifest is written before the first change to the cluster and rewritten atomically after
every step. The set's ``status`` is ``in-progress`` while an apply runs, then ``complete``,
``failed`` (with ``error``, the reason), ``rolled-back`` or ``rollback-incomplete``; it is
never left ``in-progress`` by a failure istiolab survives. Each set keeps a small reserve file
while the apply runs: when the disk fills up, removing it leaves room to record the outcome.

Folders are created with mode 0700 and files with mode 0600 (they hold the cluster's objects).
A manifest that cannot be read is reported by :meth:`BackupStore.scan` as one
:class:`BackupProblem` naming the file; the other backups are still listed.

The manifest records the cluster's identity (``cluster``: the API server's URL and the
``kube-system`` Namespace's uid), so that a backup made on one cluster is never rolled back into
another cluster that happens to have a context of the same name.

The root is ``$ISTIOLAB_HOME/backups`` when ``ISTIOLAB_HOME`` is set, else
``~/.istiolab/backups``. A root shared by several operators (``--backup-dir`` on a shared
volume) works: ids are unique (a timestamp and a random suffix) and every write is atomic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from istiolab.config import codecs
from istiolab.errors import ClusterError
from istiolab.kube.adapter import ClusterIdentity
from istiolab.kube.errors import BackupError
from istiolab.kube.kinds import kind_key
from istiolab.kube.objects import Obj

__all__ = [
    "BackupEntry",
    "BackupProblem",
    "BackupSet",
    "BackupStore",
    "UnusableBackupError",
    "context_dir_name",
    "default_backup_root",
]

MANIFEST = "manifest.json"
RESERVE = ".reserve"
_RESERVE_BASE = 64 * 1024
# No room: a full disk, a quota, or a file-size limit (RLIMIT_FSIZE).
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
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
            apply (read back), to tell a later change of content from a mere status update.
        intended: The object the apply sent (the fields istiolab owns), to tell whether an
            object holds istiolab's write when the answer was lost.
        ambiguous: The write failed in a way that does not say whether it was stored.
        error: Why the step failed.
        rollback: Outcome of the last rollback of this object.
        rollback_detail: What the cluster held after it.
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
    intended: dict[str, Any] | None = None
    ambiguous: bool = False
    error: str | None = None
    rollback: str | None = None
    rollback_detail: str | None = None

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
            "intended": self.intended,
            "ambiguous": self.ambiguous,
            "error": self.error,
            "rollback": self.rollback,
            "rollbackDetail": self.rollback_detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupEntry:
        """Read a manifest entry.

        Raises:
            ValueError: When a required key is missing or a value has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"an entry is a {type(data).__name__}, not an object")
        missing = [k for k in ("kind", "apiVersion", "namespace", "name") if k not in data]
        if missing:
            raise ValueError(f"an entry lacks {', '.join(missing)}")
        action = str(data.get("action"))
        if action not in ("update", "create"):
            raise ValueError(f"an entry has the action {action!r} (update or create)")

        def opt(key: str) -> str | None:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} of an entry is not a string")
            return value

        file = opt("file")
        if file is not None and (Path(file).name != file or file.startswith(".")):
            raise ValueError(f"an entry names the file {file!r} outside its folder")
        return cls(
            kind=str(data["kind"]),
            api_version=str(data["apiVersion"]),
            namespace=str(data["namespace"]),
            name=str(data["name"]),
            action=action,
            file=file,
            state=str(data.get("state", "pending")),
            uid=opt("uid"),
            resource_version=opt("resourceVersion"),
            content_sha256=opt("contentSha256"),
            intended=_intended(data.get("intended")),
            ambiguous=bool(data.get("ambiguous", False)),
            error=opt("error"),
            rollback=opt("rollback"),
            rollback_detail=opt("rollbackDetail"),
        )


def _intended(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError("intended of an entry is not an object")
    return value


@dataclasses.dataclass(frozen=True)
class BackupProblem:
    """A backup folder whose manifest cannot be used.

    Attributes:
        path: The manifest file.
        message: What is wrong with it (one line).
    """

    path: Path
    message: str

    def format(self) -> str:
        """``<path> <message>``, one line."""
        return f"{self.path} {self.message}"


class BackupSet:
    """One backup folder and its manifest (see the module docstring)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest
        entries = manifest.get("entries", [])
        if not isinstance(entries, list):
            raise ValueError("entries is not a list")
        self.entries: list[BackupEntry] = [BackupEntry.from_dict(e) for e in entries]
        self.disk_full = False
        """Set once a write hit a full disk: no further change may be made to the cluster."""

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
    def identity(self) -> ClusterIdentity | None:
        """The cluster the apply changed (None in backups made before identities were kept)."""
        data = self._manifest.get("cluster")
        if not isinstance(data, dict) or not isinstance(data.get("server"), str):
            return None
        uid = data.get("kubeSystemUid")
        return ClusterIdentity(str(data["server"]), str(uid) if uid else None)

    @property
    def created_ns(self) -> int:
        """When the apply started, in nanoseconds (0 in older manifests), to order sets."""
        value = self._manifest.get("createdNs")
        return value if isinstance(value, int) else 0

    @property
    def change_cause(self) -> str | None:
        """Why the apply was made (``--change-cause``, or the command line)."""
        value = self._manifest.get("changeCause")
        return None if value is None else str(value)

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

    @property
    def error(self) -> str | None:
        """Why the apply failed (status ``failed``), or why a rollback was incomplete."""
        value = self._manifest.get("error")
        return None if value is None else str(value)

    def record_update(
        self, live: Mapping[str, Any], intended: Mapping[str, Any] | None = None
    ) -> BackupEntry:
        """Save the live version of an object about to change; add an ``update`` entry.

        Check :attr:`disk_full` afterwards: when the reserve had to be spent to record the
        entry, the object must not be changed.

        Args:
            live: The object as it is, to restore.
            intended: The object about to be applied.

        Raises:
            BackupError: When the object or the manifest could not be written, or the disk was
                already full: the object must not be changed then.
        """
        self._check_room()
        meta = live.get("metadata") or {}
        kind = kind_key(str(live.get("kind")), str(live.get("apiVersion") or ""))
        ns, name = str(meta.get("namespace", "")), str(meta["name"])
        file = f"{len(self.entries) + 1:03d}-{_safe(kind)}-{_safe(ns)}-{_safe(name)}.yaml"
        try:
            _write_atomic(self.path / file, codecs.dumps([dict(live)]))
        except OSError as err:
            self.disk_full = self.disk_full or err.errno in _FULL
            raise BackupError(f"cannot save {kind}/{ns}/{name} in {self.path}: {err}") from None
        entry = BackupEntry(kind, str(live.get("apiVersion")), ns, name, "update", file)
        entry.intended = None if intended is None else json.loads(json.dumps(intended))
        return self._add(entry)

    def record_create(
        self,
        kind: str,
        api_version: str,
        namespace: str,
        name: str,
        intended: Mapping[str, Any] | None = None,
    ) -> BackupEntry:
        """Add a ``create`` entry for an object about to be created.

        Check :attr:`disk_full` afterwards, as for :meth:`record_update`.

        Raises:
            BackupError: When the manifest could not be written, or the disk was already full.
        """
        self._check_room()
        entry = BackupEntry(kind, api_version, namespace, name, "create")
        entry.intended = None if intended is None else json.loads(json.dumps(intended))
        return self._add(entry)

    def _add(self, entry: BackupEntry) -> BackupEntry:
        self.entries.append(entry)
        try:
            self.save()
        except BackupError:
            self.entries.pop()  # not recorded, so it will not be applied either
            raise
        return entry

    def _check_room(self) -> None:
        # Once the reserve had to be spent, the next backup might not fit: stop changing the
        # cluster while the outcome can still be recorded.
        if self.disk_full:
            raise BackupError(
                f"the disk of the backup set {self.path} is full: no further object is changed"
            )

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
        """Set the status (and extra manifest keys) and save.

        Raises:
            BackupError: When the manifest could not be written.
        """
        self._manifest["status"] = status
        self._manifest.update(extra)
        self.save()

    def finish(self, status: str, **extra: Any) -> str | None:
        """Record the final status (and extra keys: ``error``, the reason); give back the reserve.

        Returns:
            None, or why the manifest could not be written (the caller reports it: the
            cluster's state matters more than the file's).
        """
        self._manifest["status"] = status
        self._manifest.update(extra)
        try:
            self.save()
        except BackupError as err:
            return str(err)
        finally:
            self.release_reserve()
        return None

    def release_reserve(self) -> bool:
        """Delete the reserve file; True when there was one."""
        try:
            (self.path / RESERVE).unlink()
        except OSError:
            return False
        return True

    def save(self) -> None:
        """Write the manifest atomically.

        When the disk is full, the reserve file is given up and the write retried once, so that
        the outcome of an apply can still be recorded; :attr:`disk_full` is set then.

        Raises:
            BackupError: When the manifest could not be written.
        """
        self._manifest["entries"] = [e.to_dict() for e in self.entries]
        text = json.dumps(self._manifest, indent=2) + "\n"
        try:
            _write_atomic(self.path / MANIFEST, text)
            return
        except OSError as err:
            first = err
        if first.errno in _FULL:
            self.disk_full = True
            if self.release_reserve():
                try:
                    _write_atomic(self.path / MANIFEST, text)
                    return
                except OSError as err:
                    first = err
        raise BackupError(f"cannot write {self.path / MANIFEST}: {first}") from None


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

    def new_id(self) -> str:
        """A fresh backup id: a UTC timestamp and a random suffix."""
        now = datetime.datetime.now(datetime.timezone.utc)
        return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"

    def create(
        self,
        context: str,
        namespace: str,
        *,
        backup_id: str | None = None,
        reserve: int = 0,
        identity: ClusterIdentity | None = None,
        change_cause: str | None = None,
    ) -> BackupSet:
        """Start a new backup set (status ``in-progress``), with its manifest on disk.

        Args:
            context: The context the apply changes.
            namespace: Its default namespace.
            backup_id: The id (default :meth:`new_id`), so that a failure can name it.
            reserve: Bytes to keep in reserve beyond 64 KiB, so that the manifest can still be
                rewritten when the disk fills up (about twice its largest size).
            identity: The cluster's identity (rollback refuses another cluster).
            change_cause: Why the apply is made.

        Raises:
            BackupError: When the folder, the manifest or the reserve cannot be written; the
                half-made folder is removed.
        """
        backup_id = backup_id or self.new_id()
        now = datetime.datetime.now(datetime.timezone.utc)
        path = self.folder(context) / backup_id
        try:
            _mkdirs(path)
        except OSError as err:
            raise BackupError(f"cannot create the backup folder {path}: {err}") from None
        from istiolab import __version__

        manifest: dict[str, Any] = {
            "id": backup_id,
            "context": context,
            "namespace": namespace,
            "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            # orders sets made within one second (ids sort by second, then a random suffix)
            "createdNs": time.time_ns(),
            "istiolab": __version__,
            "status": "in-progress",
            "entries": [],
        }
        if identity is not None:
            manifest["cluster"] = identity.to_dict()
        if change_cause is not None:
            manifest["changeCause"] = change_cause
        backup = BackupSet(path, manifest)
        try:
            # the reserve first: a disk with no room for it has no room for the backups
            _write_bytes(path / RESERVE, b"\0" * (_RESERVE_BASE + max(reserve, 0)))
            _write_atomic(path / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        except OSError as err:
            _remove_tree(path)
            raise BackupError(f"cannot write the backup set {path}: {err}") from None
        return backup

    def backups(self, context: str) -> list[BackupSet]:
        """A context's backup sets, oldest first (unreadable ones: see :meth:`scan`)."""
        return self.scan(context)[0]

    def scan(self, context: str) -> tuple[list[BackupSet], list[BackupProblem]]:
        """A context's backup sets, oldest first, and the folders whose manifest is unusable.

        A corrupt manifest never hides the other backups: it becomes one problem naming its
        file. Folders without a manifest (a set that could not be written) are left out.
        """
        folder = self.folder(context)
        if not folder.is_dir():
            return [], []
        out: list[BackupSet] = []
        problems: list[BackupProblem] = []
        try:
            children = sorted(folder.iterdir())
        except OSError as err:
            return [], [BackupProblem(folder, f"cannot list the folder: {err}")]
        for child in children:
            if not (child / MANIFEST).is_file():
                continue
            try:
                out.append(self._read(child))
            except UnusableBackupError as err:
                problems.append(err.problem)
        out.sort(key=lambda b: (b.id[:16], b.created_ns, b.id))
        return out, problems

    def open(self, context: str, backup_id: str | None = None) -> BackupSet:
        """A backup set by id, or the newest one.

        Raises:
            ClusterError: When the id is malformed or there is no such backup, or the backup
                (or, without an id, the newest backup) has an unusable manifest.
        """
        if backup_id is None:
            sets, problems = self.scan(context)
            newest = max((p.path.parent.name for p in problems), default="")
            # An unusable manifest has no createdNs: its folder name's timestamp (to the second)
            # is all that orders it. Only a good set from a later second is surely the newest;
            # one from the same second may be older than the unusable one.
            if sets and newest[:16] < sets[-1].id[:16]:
                return sets[-1]
            if problems:
                # never fall back to an older backup silently: that is another apply
                bad = next(p for p in problems if p.path.parent.name == newest)
                same_second = bool(sets) and newest[:16] == sets[-1].id[:16]
                which = (
                    f"a backup manifest of the same second as {sets[-1].id}"
                    if same_second
                    else "the newest backup manifest"
                )
                raise ClusterError(
                    f"{which} {bad.format()}; name the backup to use "
                    "(see `istiolab rollback --list`)"
                )
            raise ClusterError(f'no backups for context "{context}" in {self.folder(context)}')
        if not _ID.fullmatch(backup_id):
            raise ClusterError(f"{backup_id!r} is not a backup id (see `istiolab rollback --list`)")
        path = self.folder(context) / backup_id
        if not (path / MANIFEST).is_file():
            raise ClusterError(
                f'no backup {backup_id} for context "{context}" in {self.folder(context)} '
                "(see `istiolab rollback --list`)"
            )
        return self._read(path)

    def newer_touching(self, backup: BackupSet) -> list[tuple[BackupSet, list[str]]]:
        """Later backup sets of the same context and cluster that changed objects *backup* did.

        Sets that were rolled back, or that changed nothing, are left out: their objects hold
        what they held before them. Returns ``(set, refs)`` pairs, oldest first.
        """
        refs = {e.ref for e in backup.entries if e.state in ("applied", "unknown") or e.ambiguous}
        out: list[tuple[BackupSet, list[str]]] = []
        sets = self.scan(backup.context)[0]
        ids = [b.id for b in sets]
        later = sets[ids.index(backup.id) + 1 :] if backup.id in ids else []
        for other in later:
            if other.status == "rolled-back":
                continue
            mine, theirs = backup.identity, other.identity
            if mine is not None and theirs is not None and not mine.same_as(theirs):
                continue
            touched = [
                e.ref
                for e in other.entries
                if e.ref in refs and (e.state in ("applied", "unknown") or e.ambiguous)
            ]
            if touched:
                out.append((other, touched))
        return out

    def prune(self, context: str, keep: int) -> list[str]:
        """Delete all but the newest *keep* finished backup sets of *context*; the ids deleted.

        Sets still marked ``in-progress`` (an apply running, or killed) and unreadable folders
        are never deleted: an operator looks at those.
        """
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, not {keep}")
        sets = [b for b in self.scan(context)[0] if b.status != "in-progress"]
        doomed = sets[: max(len(sets) - keep, 0)]
        gone: list[str] = []
        for b in doomed:
            _remove_tree(b.path)
            if not b.path.exists():
                gone.append(b.id)
        return gone

    def check_writable(self, context: str) -> None:
        """Make sure a backup set can be created for *context* before anything is asked.

        Raises:
            BackupError: One line naming the folder that cannot be created or written.
        """
        folder = self.folder(context)
        try:
            _mkdirs(folder)
            probe = folder / f".probe-{secrets.token_hex(4)}"
            _write_bytes(probe, b"")
            probe.unlink()
        except OSError as err:
            raise BackupError(
                f"the backup folder {folder} cannot be written: {err.strerror or err}"
            ) from None

    @staticmethod
    def _read(path: Path) -> BackupSet:
        """Read one backup set.

        Raises:
            UnusableBackupError: One line naming the manifest, whatever is wrong with it.
        """
        file = path / MANIFEST
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UnusableBackupError(file, f"cannot be read: {err}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("id"), str):
            raise UnusableBackupError(file, "is not an istiolab backup manifest (no id)")
        if manifest["id"] != path.name:
            raise UnusableBackupError(file, f"names the backup {manifest['id']!r}")
        try:
            return BackupSet(path, manifest)
        except (ValueError, TypeError, KeyError) as err:
            raise UnusableBackupError(file, f"is not a usable backup manifest: {err}") from None


class UnusableBackupError(ClusterError):
    """A manifest that cannot be used; the message is one line naming the file.

    Attributes:
        problem: The file and what is wrong with it.
    """

    def __init__(self, file: Path, message: str) -> None:
        self.problem = BackupProblem(file, " ".join(message.split())[:300])
        super().__init__(f"backup manifest {self.problem.format()}")


def _safe(part: str) -> str:
    """A name part of a backup file (object names are DNS labels, but be sure)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip(".") or "_"


def _mkdirs(path: Path) -> None:
    """Create *path* and every missing parent with mode 0700.

    ``mkdir -p`` (``Path.mkdir(parents=True)``) gives the parents mode 0777 minus the umask,
    which would leave ``~/.istiolab`` and the context folders readable by everyone.
    """
    missing: list[Path] = []
    cur = path
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by another istiolab
        os.chmod(p, 0o700)  # mkdir's mode is masked by the umask; never wider, but be exact


def _remove_tree(path: Path) -> None:
    """Best effort: remove a backup folder that could not be written completely."""
    try:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    except OSError:
        pass


def _write_bytes(path: Path, data: bytes) -> None:
    """Write *data* to *path* with mode 0600 and flush it to the disk.

    The one place where backup bytes reach the disk (tests inject a full disk here). ``fsync``
    makes a late ENOSPC (delayed allocation, network file systems) surface here, not later.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    """Write a file completely or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        _write_bytes(tmp, text.encode("utf-8"))
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a half-written temporary file is of no use and takes room
        raise
    os.replace(tmp, path)
