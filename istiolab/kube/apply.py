"""Apply a plan with server-side apply, keeping a backup; roll an apply back.

:func:`apply` refuses a plan with field conflicts (unless it was planned with ``force``) or
rejected objects, then, step by step in plan order: reads the live object, saves it in a
backup set (or records that the object is new), and applies the object with server-side
apply. It stops at the first failure and reports what was applied and what was not; the
backup set lets :func:`rollback` undo the applied steps.

:func:`rollback` restores every saved object exactly (labels, annotations, spec) and deletes
only the objects that apply created, in reverse order. An object changed by someone else since
the apply (its resourceVersion moved on) is left alone and reported, unless ``force``.
The restore is a JSON merge patch, an Update by istiolab's field manager; kube-apiserver keeps
that apart from istiolab's Apply, so a later apply that changes a restored field conflicts
with "istiolab" itself and needs ``force``, as the first apply over another tool's fields did.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from istiolab.errors import ClusterError
from istiolab.kube.adapter import ClusterAdapter
from istiolab.kube.backups import BackupEntry, BackupSet, BackupStore
from istiolab.kube.errors import ApiError, ConflictError, NotFoundError, RefusedError
from istiolab.kube.objects import content_digest, strip
from istiolab.kube.plan import Plan, PlanStep

__all__ = [
    "ApplyReport",
    "RollbackReport",
    "StepResult",
    "apply",
    "rollback",
]

StepStatus = Literal["applied", "unchanged", "failed", "not-attempted"]


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What happened to one plan step.

    Attributes:
        step: The plan step.
        status: ``applied``, ``unchanged`` (nothing to do), ``failed`` or ``not-attempted``.
        error: Why it failed.
        resource_version: The object's resourceVersion after the apply.
    """

    step: PlanStep
    status: StepStatus
    error: str | None = None
    resource_version: str | None = None


@dataclasses.dataclass(frozen=True)
class ApplyReport:
    """The outcome of :func:`apply`.

    Attributes:
        context: The context.
        namespace: The default namespace.
        backup_id: The backup set that can undo it (None when nothing was to be changed).
        results: One result per plan step, in order.
    """

    context: str
    namespace: str
    backup_id: str | None
    results: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        """Every change was applied."""
        return not any(r.status in ("failed", "not-attempted") for r in self.results)

    @property
    def applied(self) -> tuple[StepResult, ...]:
        """Steps applied."""
        return tuple(r for r in self.results if r.status == "applied")

    @property
    def failed(self) -> tuple[StepResult, ...]:
        """The step that failed (at most one: apply stops there)."""
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def not_attempted(self) -> tuple[StepResult, ...]:
        """Steps after the failure, not attempted."""
        return tuple(r for r in self.results if r.status == "not-attempted")

    def format(self) -> str:
        """Human report: each step's outcome, and how to undo it."""
        lines = []
        for r in self.results:
            what = "" if r.status == "unchanged" else f"{r.step.action:<7}"
            lines.append(f"  {r.status:<13} {what:<7} {r.step.ref}")
            if r.error:
                lines.append(f"      {r.error}")
        changed = sum(1 for r in self.results if r.status == "applied")
        if self.ok:
            lines.append(f"applied {changed} change(s)")
        else:
            lines.append(
                f"apply stopped: {changed} applied, {len(self.failed)} failed, "
                f"{len(self.not_attempted)} not attempted"
            )
        if self.backup_id is not None:
            lines.append(f"backup {self.backup_id}: undo with `istiolab rollback {self.backup_id}`")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class RollbackResult:
    """What rollback did to one object.

    Attributes:
        ref: ``Kind/namespace/name``.
        action: ``restored``, ``deleted``, ``recreated``, ``skipped`` or ``failed``.
        detail: Why, for skipped and failed objects.
    """

    ref: str
    action: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class RollbackReport:
    """The outcome of :func:`rollback`.

    Attributes:
        backup_id: The backup set rolled back.
        results: One result per object, in the order they were undone.
    """

    backup_id: str
    results: tuple[RollbackResult, ...]

    @property
    def ok(self) -> bool:
        """Every applied change was undone."""
        return all(
            r.action in ("restored", "deleted", "recreated", "unchanged") for r in self.results
        )

    def format(self) -> str:
        """Human report."""
        lines = [f"rollback of {self.backup_id}"]
        for r in self.results:
            lines.append(f"  {r.action:<9} {r.ref}" + (f": {r.detail}" if r.detail else ""))
        if not self.results:
            lines.append("  nothing to undo (no step of that apply changed the cluster)")
        lines.append("done" if self.ok else "rollback incomplete: see the objects above")
        return "\n".join(lines)


def apply(
    plan: Plan,
    cluster: ClusterAdapter,
    *,
    backups: BackupStore | None = None,
) -> ApplyReport:
    """Apply a plan's changes in order, saving every live object first.

    Args:
        plan: A plan from :func:`~istiolab.kube.plan.plan` for this cluster.
        cluster: The cluster (same context as the plan).
        backups: Where to keep the backup set; default :class:`BackupStore` (``~/.istiolab``
            or ``$ISTIOLAB_HOME``).

    Returns:
        The report; a failure midway is reported in it (``ok`` False), not raised.

    Raises:
        RefusedError: When the plan has conflicts (without ``force``) or rejected objects, or
            was made for another context. Nothing is changed then.
    """
    if plan.context != cluster.context:
        raise RefusedError(
            f'the plan was made for context "{plan.context}", not "{cluster.context}"; plan again'
        )
    if plan.conflicts and not plan.force:
        lines = [f"  {ref}: {c.format()}" for ref, c in plan.conflicts]
        raise RefusedError(
            f"refusing to apply: {len(lines)} field(s) are managed by another field manager:\n"
            + "\n".join(lines)
            + "\ntake them over with --force (force=True), or leave them out of your config",
            plan.conflicts,
        )
    bad = [s for s in plan.steps if s.action in ("rejected", "conflict")]
    if bad:
        lines = [f"  {s.ref}: {s.error or s.action}" for s in bad]
        raise RefusedError(
            f"refusing to apply: {len(bad)} object(s) were rejected:\n" + "\n".join(lines)
        )
    changes = plan.changes
    if not changes:
        return ApplyReport(
            plan.context,
            plan.namespace,
            None,
            tuple(StepResult(s, "unchanged") for s in plan.steps),
        )
    store = backups if backups is not None else BackupStore()
    backup = store.create(cluster.context, plan.namespace)
    results: list[StepResult] = []
    stopped = False
    for step in plan.steps:
        if not step.changes:
            results.append(StepResult(step, "unchanged"))
            continue
        if stopped:
            results.append(StepResult(step, "not-attempted"))
            continue
        result = _apply_step(step, cluster, backup, force=plan.force)
        results.append(result)
        stopped = result.status == "failed"
    backup.set_status("failed" if stopped else "complete")
    return ApplyReport(plan.context, plan.namespace, backup.id, tuple(results))


def _apply_step(
    step: PlanStep, cluster: ClusterAdapter, backup: BackupSet, *, force: bool
) -> StepResult:
    entry: BackupEntry | None = None
    try:
        live = cluster.get(step.kind, step.namespace, step.name, api_version=step.api_version)
        if live is not None:
            entry = backup.record_update(live)
        else:
            entry = backup.record_create(step.kind, step.api_version, step.namespace, step.name)
        stored = cluster.apply(step.desired, force=force)
    except ApiError as err:
        if entry is not None:
            entry.state, entry.error = "failed", str(err)
            backup.save()
        return StepResult(step, "failed", str(err))
    except ClusterError as err:
        # no answer (timeout, connection lost): the server may or may not have applied it
        if entry is not None:
            entry.state, entry.error = "unknown", str(err)
            backup.save()
        return StepResult(step, "failed", f"{err} (outcome unknown)")
    meta = stored.get("metadata") or {}
    entry.state = "applied"
    entry.uid = meta.get("uid")
    entry.resource_version = meta.get("resourceVersion")
    entry.content_sha256 = content_digest(stored)
    backup.save()
    return StepResult(step, "applied", resource_version=entry.resource_version)


def rollback(
    backup_id: str | None,
    cluster: ClusterAdapter,
    *,
    backups: BackupStore | None = None,
    force: bool = False,
) -> RollbackReport:
    """Undo an apply: restore the saved objects exactly, delete the ones it created.

    Args:
        backup_id: The backup set (``istiolab rollback --list``); None: the newest one.
        cluster: The cluster of the backup's context.
        backups: The backup store; default :class:`BackupStore`.
        force: Also restore objects changed by someone else since the apply, and roll back a
            backup set that was already rolled back.

    Returns:
        The report (``ok`` False when some object could not be undone).

    Raises:
        ClusterError: When there is no such backup, or it was already rolled back.
    """
    store = backups if backups is not None else BackupStore()
    backup = store.open(cluster.context, backup_id)
    if backup.status == "rolled-back" and not force:
        raise RefusedError(f"backup {backup.id} was already rolled back (use --force to redo it)")
    results: list[RollbackResult] = []
    for entry in reversed(backup.entries):
        if entry.state == "failed" or (entry.state != "applied" and entry.action == "create"):
            if entry.state != "failed":
                results.append(
                    RollbackResult(
                        entry.ref,
                        "skipped",
                        "the apply of this new object got no answer; check whether it exists",
                    )
                )
            continue
        results.append(_undo(entry, backup, cluster, force=force))
    ok = all(r.action in ("restored", "deleted", "recreated", "unchanged") for r in results)
    backup.set_status("rolled-back" if ok else "rollback-incomplete")
    return RollbackReport(backup.id, tuple(results))


def _undo(
    entry: BackupEntry, backup: BackupSet, cluster: ClusterAdapter, *, force: bool
) -> RollbackResult:
    guard = None if force or entry.state != "applied" else entry.resource_version
    try:
        if entry.action == "create":
            try:
                cluster.delete(
                    entry.kind,
                    entry.namespace,
                    entry.name,
                    api_version=entry.api_version,
                    uid=None if force else entry.uid,
                )
            except NotFoundError:
                return RollbackResult(entry.ref, "skipped", "already deleted")
            return RollbackResult(entry.ref, "deleted")
        saved = backup.load_object(entry)
        saved["apiVersion"] = entry.api_version
        try:
            try:
                cluster.replace(saved, resource_version=guard)
            except ConflictError:
                # The resourceVersion moved on. If only the status did (istiod and other
                # controllers write status), the content is still what istiolab applied.
                live = cluster.get(
                    entry.kind, entry.namespace, entry.name, api_version=entry.api_version
                )
                if guard is None or live is None or entry.content_sha256 != content_digest(live):
                    raise
                rv = (live.get("metadata") or {}).get("resourceVersion")
                cluster.replace(saved, resource_version=rv)
        except NotFoundError:
            cluster.apply(strip(saved), force=True)
            return RollbackResult(entry.ref, "recreated", "it had been deleted since the apply")
        return RollbackResult(entry.ref, "restored")
    except ConflictError as err:
        return RollbackResult(
            entry.ref,
            "skipped",
            "changed by someone else since the apply; left as it is (rerun with --force to "
            f"overwrite): {err}",
        )
    except ClusterError as err:
        return RollbackResult(entry.ref, "failed", str(err))
