"""Apply a plan with server-side apply, keeping a backup; roll an apply back. Read back always.

:func:`apply` refuses a plan with field conflicts (unless it was planned with ``force``) or
rejected objects, writes the backup set's manifest before the first change (and refuses when it
cannot), then, step by step in plan order: reads the live object, saves it in the backup set (or
records that the object is new), applies the object with server-side apply, and **reads it
back**. It stops at the first failure; with ``rollback_on_failure`` it then rolls back what it
applied and reports what the cluster holds, object by object.

:func:`rollback` restores every saved object exactly (labels, annotations, spec) and deletes
only the objects that apply created, in reverse order. An object changed by someone else since
the apply is left alone and reported, unless ``force``. The restore is a JSON merge patch, an
Update by istiolab's field manager; kube-apiserver keeps that apart from istiolab's Apply, so a
later apply that changes a restored field conflicts with "istiolab" itself and needs ``force``,
as the first apply over another tool's fields did.

No answer of the API server is taken on trust: after every write (and every failed write) the
object is read back and compared with what was meant, and the report says what the read-back
shows. A timeout, a 5xx or a ``200`` whose body is not JSON say nothing about what was stored;
a read-back does. Per object, the outcome is one of :data:`OUTCOMES`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from istiolab.errors import ClusterError
from istiolab.kube.adapter import ClusterAdapter
from istiolab.kube.backups import BackupEntry, BackupSet, BackupStore
from istiolab.kube.errors import (
    BackupError,
    BackupUnwritableError,
    NotFoundError,
    OtherClusterError,
    RefusedError,
    StalePlanError,
    is_ambiguous,
)
from istiolab.kube.objects import Obj, content, content_digest, strip, unified_diff
from istiolab.kube.plan import OWN_ANNOTATIONS, Plan, PlanStep, drift, recheck

__all__ = [
    "OUTCOMES",
    "ApplyReport",
    "RollbackPreview",
    "RollbackReport",
    "RollbackResult",
    "StepResult",
    "apply",
    "check_identity",
    "holds",
    "preview_rollback",
    "rollback",
]

StepStatus = Literal["applied", "unchanged", "failed", "not-attempted"]
Outcome = Literal[
    "applied",
    "unchanged",
    "not-applied",
    "not-attempted",
    "restored",
    "deleted",
    "skipped",
    "not-restored",
    "unknown",
]

OUTCOMES: dict[str, str] = {
    "applied": "holds what was applied (read back)",
    "unchanged": "needed no change; not written",
    "not-applied": "the write failed; the read-back shows what the cluster holds instead",
    "not-attempted": "not sent: the apply had stopped before it",
    "restored": "holds again what it held before the apply (read back)",
    "deleted": "created by the apply, and gone again (read back)",
    "skipped": "NOT restored: changed by someone else since the apply, left as it is",
    "not-restored": "NOT restored: the read-back shows what the cluster holds",
    "unknown": "the read-back failed: what the cluster holds is not known",
}
"""Every outcome a report may give an object, with its meaning."""

_BEFORE = frozenset({"restored", "deleted", "not-applied", "not-attempted", "unchanged"})
_UNDONE = frozenset({"restored", "deleted"})


# -- what the cluster holds -------------------------------------------------------------------


def _project(have: Any, want: Any) -> Any:
    """*have* cut down to the fields *want* sets: maps by key, lists by item, scalars whole.

    Lists of one length go item by item because CRD schemas default fields inside list
    items: the Gateway API's CRDs add ``allowedRoutes`` to each listener, ``group``, ``kind``
    and ``weight`` to each backendRef, a ``PathPrefix /`` match to each rule
    (``apis/v1/*_types.go``, ``+kubebuilder:default``), so items read back with more keys.
    """
    if isinstance(want, dict) and want:
        if not isinstance(have, dict):
            return have
        return {k: _project(have.get(k, _MISSING), v) for k, v in want.items()}
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        return [_project(h, w) for h, w in zip(have, want, strict=True)]
    return have


_MISSING = "\0missing"


def holds(obj: Mapping[str, Any] | None, intended: Mapping[str, Any]) -> bool:
    """Whether *obj* holds every field *intended* sets (labels, annotations, spec), as set.

    This is the comparison of a server-side apply's result: the fields istiolab applies, and
    owns, must read back as applied; fields other managers set, and server-set fields
    (``status``, ``resourceVersion``, ``uid``, ``managedFields``, ...), are ignored.
    """
    if obj is None:
        return False
    want = content(intended)
    return bool(_project(content(obj), want) == want)


def _meta(obj: Mapping[str, Any] | None, key: str) -> str | None:
    value = ((obj or {}).get("metadata") or {}).get(key)
    return None if value is None else str(value)


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 300 else text[:300] + "…"


# -- reports ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What happened to one plan step, and what the cluster holds now.

    Attributes:
        step: The plan step.
        status: What the apply did: ``applied``, ``unchanged`` (nothing to do), ``failed`` or
            ``not-attempted``.
        error: Why it failed.
        resource_version: The object's resourceVersion after the apply (read back).
        outcome: What the cluster holds now, after any rollback (one of :data:`OUTCOMES`).
        detail: What the read-back showed, when it is worth saying.
    """

    step: PlanStep
    status: StepStatus
    error: str | None = None
    resource_version: str | None = None
    outcome: Outcome = "unchanged"
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class RollbackResult:
    """What rollback did to one object, as read back.

    Attributes:
        ref: ``Kind/namespace/name``.
        action: The outcome: ``restored``, ``deleted``, ``skipped``, ``not-restored`` or
            ``unknown`` (see :data:`OUTCOMES`).
        detail: What the cluster holds, and why, when it is not simply restored.
    """

    ref: str
    action: Outcome
    detail: str = ""

    @property
    def outcome(self) -> Outcome:
        """The outcome (the same as :attr:`action`)."""
        return self.action

    @property
    def ok(self) -> bool:
        """The object holds what it held before the apply."""
        return self.action in _UNDONE


@dataclasses.dataclass(frozen=True)
class RollbackReport:
    """The outcome of :func:`rollback`.

    Attributes:
        backup_id: The backup set rolled back.
        results: One result per object, in the order they were undone.
        problems: What could not be recorded (the manifest could not be written).
    """

    backup_id: str
    results: tuple[RollbackResult, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every object holds what it held before the apply (read back)."""
        return all(r.ok for r in self.results)

    @property
    def not_restored(self) -> tuple[RollbackResult, ...]:
        """The objects that do not hold what they held before the apply (or may not)."""
        return tuple(r for r in self.results if not r.ok)

    def format(self) -> str:
        """Human report, one line per object."""
        lines = [f"rollback of {self.backup_id}"]
        for r in self.results:
            lines.append(f"  {r.action:<9} {r.ref}" + (f": {r.detail}" if r.detail else ""))
        if not self.results:
            lines.append("  nothing to undo (no step of that apply changed the cluster)")
        lines.extend(f"warning: {p}" for p in self.problems)
        if self.ok:
            lines.append("done: every object holds what it held before the apply (read back)")
        else:
            refs = ", ".join(r.ref for r in self.not_restored)
            lines.append(
                f"rollback incomplete: {len(self.not_restored)} object(s) NOT restored: {refs}; "
                f"retry with `istiolab rollback {self.backup_id}`"
            )
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class ApplyReport:
    """The outcome of :func:`apply`.

    Attributes:
        context: The context.
        namespace: The default namespace.
        backup_id: The backup set that can undo it (None when nothing was to be changed).
        results: One result per plan step, in order.
        rollback: The rollback made after a failure (None when there was none).
        problems: What could not be recorded in the backup set (a full disk).
    """

    context: str
    namespace: str
    backup_id: str | None
    results: tuple[StepResult, ...]
    rollback: RollbackReport | None = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every change was applied (read back)."""
        return all(
            r.status in ("applied", "unchanged") and r.outcome in ("applied", "unchanged")
            for r in self.results
        )

    @property
    def as_before(self) -> bool:
        """After a failure: every object holds what it held before the apply (read back)."""
        return all(r.outcome in _BEFORE for r in self.results)

    @property
    def applied(self) -> tuple[StepResult, ...]:
        """Steps applied (they may have been rolled back since: see ``outcome``)."""
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
        """Human report: each object's outcome (read back), and the backup id."""
        lines = []
        for r in self.results:
            what = "" if r.status == "unchanged" else f"{r.step.action:<7}"
            lines.append(f"  {r.outcome:<13} {what:<7} {r.step.ref}")
            if r.error:
                lines.append(f"      {r.error}")
            if r.detail:
                lines.append(f"      {r.detail}")
        changed = len(self.applied)
        if self.ok:
            lines.append(f"applied {changed} change(s)")
        else:
            lines.append(
                f"apply stopped: {changed} applied, {len(self.failed)} failed, "
                f"{len(self.not_attempted)} not attempted"
            )
        lines.extend(f"warning: {p}" for p in self.problems)
        if self.backup_id is None:
            return "\n".join(lines)
        if self.rollback is None:
            lines.append(f"backup {self.backup_id}: undo with `istiolab rollback {self.backup_id}`")
        elif self.as_before:
            lines.append(
                f"rolled back: every object holds what it held before the apply (read back); "
                f"backup {self.backup_id}"
            )
        else:
            bad = [r.step.ref for r in self.results if r.outcome not in _BEFORE]
            lines.append(
                f"ROLLBACK INCOMPLETE: {len(bad)} object(s) do not hold what they held before "
                f"the apply: {', '.join(bad)}; backup {self.backup_id}: retry with "
                f"`istiolab rollback {self.backup_id}`"
            )
        return "\n".join(lines)


# -- apply ------------------------------------------------------------------------------------


def apply(
    plan: Plan,
    cluster: ClusterAdapter,
    *,
    backups: BackupStore | None = None,
    rollback_on_failure: bool = False,
    allow_managed: bool = False,
    change_cause: str | None = None,
) -> ApplyReport:
    """Apply a plan's changes in order, saving every live object first and reading it back.

    Before anything is written every object the plan changes is read again: one that changed
    since the plan (its content, or who owns its fields) refuses the whole apply, so an
    approved diff is never applied over an edit made while the approval was pending. Each write
    then carries the resourceVersion it was checked at, so a change in the last moment is
    refused by the API server itself, and a forced apply takes over only the conflicts the plan
    showed.

    Args:
        plan: A plan from :func:`~istiolab.kube.plan.plan` for this cluster.
        cluster: The cluster (same context as the plan).
        backups: Where to keep the backup set; default :class:`BackupStore` (``~/.istiolab``
            or ``$ISTIOLAB_HOME``).
        rollback_on_failure: When a step fails, undo the steps applied before it (and any
            change the failed step may have made) and report, object by object, what the
            cluster holds then (``istiolab apply --atomic`` does). False (the default): stop,
            and leave the decision to the caller (the CLI asks; :func:`rollback` does it).
        allow_managed: Also change objects that Argo CD, Flux or Helm manage (break-glass);
            by default the apply is refused when the plan changes one.
        change_cause: Why the change is made. When given, every object written is annotated
            with it and with the backup id (``istiolab.io/change-cause``,
            ``istiolab.io/backup-id``), and the backup manifest records it.

    Returns:
        The report; a failure midway is reported in it (``ok`` False), not raised.

    Raises:
        RefusedError: When the plan has conflicts (without ``force``) or rejected objects, was
            made for another context, or changes managed objects. Nothing is changed then.
        StalePlanError: When an object changed since the plan. Nothing is changed.
        BackupUnwritableError: When the backup set cannot be written. Nothing is changed.
    """
    _refuse_bad_plan(plan, cluster)
    if plan.managed and not allow_managed:
        lines = [f"  {s.ref}: {s.managed.format()}" for s in plan.managed if s.managed]
        raise RefusedError(
            f"refusing to apply: {len(lines)} object(s) are managed by a GitOps controller or "
            "Helm, which would undo or fight the change:\n"
            + "\n".join(lines)
            + "\nchange them where they are managed, or pass --allow-managed (break-glass)"
        )
    if not plan.changes:
        return ApplyReport(
            plan.context,
            plan.namespace,
            None,
            tuple(StepResult(s, "unchanged") for s in plan.steps),
        )
    changed = recheck(plan, cluster)
    if changed:
        raise StalePlanError(
            f"refusing to apply: {len(changed)} object(s) changed on the cluster since the plan "
            "was made:\n"
            + "\n".join(f"  {ref}: {what}" for ref, what in changed)
            + "\nnothing was applied; plan again and review the new diff",
            changed,
        )
    identity = cluster.identity()
    store = backups if backups is not None else BackupStore()
    backup_id = store.new_id()
    # room to rewrite a manifest that records every object: its entries hold what is applied
    reserve = 2 * sum(len(repr(s.desired)) + 1024 for s in plan.changes)
    try:
        backup = store.create(
            cluster.context,
            plan.namespace,
            backup_id=backup_id,
            reserve=reserve,
            identity=identity,
            change_cause=change_cause,
        )
    except BackupError as err:
        raise BackupUnwritableError(
            f"refusing to apply: the backup set {backup_id} could not be written ({err}); "
            "without it nothing could be undone, so nothing was changed (free some space, or "
            "pass --backup-dir)"
        ) from None
    annotations = (
        {}
        if change_cause is None
        else {OWN_ANNOTATIONS[0]: backup.id, OWN_ANNOTATIONS[1]: change_cause[:1024]}
    )
    finished = False
    try:
        report = _apply_steps(
            plan, cluster, backup, rollback_on_failure=rollback_on_failure, annotations=annotations
        )
        finished = True
        return report
    finally:
        if not finished:
            # an exception istiolab did not expect (or Ctrl-C): never leave `in-progress`
            backup.finish("failed", error="the apply was interrupted; see `istiolab rollback`")


def _refuse_bad_plan(plan: Plan, cluster: ClusterAdapter) -> None:
    if plan.context != cluster.context:
        raise RefusedError(
            f'the plan was made for context "{plan.context}", not "{cluster.context}"; plan again'
        )
    if plan.conflicts and not plan.force:
        lines = [f"  {ref}: {c.format()}" for ref, c in plan.conflicts]
        raise RefusedError(
            f"refusing to apply: {len(lines)} field(s) are managed by another field manager:\n"
            + "\n".join(lines)
            + "\ntake them over with --force-conflicts (force=True), or leave them out of your "
            "config",
            plan.conflicts,
        )
    bad = [s for s in plan.steps if s.action in ("rejected", "conflict")]
    if bad:
        lines = [f"  {s.ref}: {s.error or s.action}" for s in bad]
        raise RefusedError(
            f"refusing to apply: {len(bad)} object(s) were rejected:\n" + "\n".join(lines)
        )


def _apply_steps(
    plan: Plan,
    cluster: ClusterAdapter,
    backup: BackupSet,
    *,
    rollback_on_failure: bool,
    annotations: Mapping[str, str],
) -> ApplyReport:
    results: list[StepResult] = []
    failure: str | None = None
    for step in plan.steps:
        if not step.changes:
            results.append(StepResult(step, "unchanged"))
        elif failure is not None:
            results.append(StepResult(step, "not-attempted", outcome="not-attempted"))
        else:
            result = _apply_step(step, cluster, backup, annotations)
            results.append(result)
            if result.status == "failed":
                failure = f"{step.ref}: {result.error}"
    problems: list[str] = []
    if failure is None:
        problem = backup.finish("complete")
        return ApplyReport(
            plan.context, plan.namespace, backup.id, tuple(results), problems=_listed(problem)
        )
    if not rollback_on_failure:
        problem = backup.finish("failed", error=f"the apply stopped at {failure}")
        return ApplyReport(
            plan.context, plan.namespace, backup.id, tuple(results), problems=_listed(problem)
        )
    undo = _undo_all(backup, cluster, force=False, problems=problems)
    by_ref = {r.ref: r for r in undo}
    final: list[StepResult] = []
    for r in results:
        u = by_ref.get(r.step.ref)
        if u is not None:
            r = dataclasses.replace(r, outcome=u.action, detail=u.detail)
        final.append(r)
    rolled = RollbackReport(backup.id, tuple(undo))
    problem = backup.finish(
        "rolled-back" if rolled.ok else "rollback-incomplete",
        error=f"the apply stopped at {failure}; its changes were rolled back"
        + ("" if rolled.ok else " incompletely"),
    )
    problems.extend(_listed(problem))
    return ApplyReport(
        plan.context,
        plan.namespace,
        backup.id,
        tuple(final),
        rollback=rolled,
        problems=tuple(dict.fromkeys(problems)),
    )


def _listed(problem: str | None) -> tuple[str, ...]:
    return () if problem is None else (f"the backup manifest could not be updated: {problem}",)


def _with_annotations(obj: Obj, annotations: Mapping[str, str]) -> Obj:
    if not annotations:
        return obj
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    out["metadata"] = meta
    return out


def _apply_step(
    step: PlanStep, cluster: ClusterAdapter, backup: BackupSet, annotations: Mapping[str, str]
) -> StepResult:
    try:
        live = cluster.get(step.kind, step.namespace, step.name, api_version=step.api_version)
    except ClusterError as err:
        return StepResult(
            step,
            "failed",
            f"cannot read it before the change: {err}",
            outcome="not-applied",
            detail="not sent",
        )
    moved = drift(step, live)
    if moved is not None:
        return StepResult(
            step,
            "failed",
            f"{moved}: the approved diff no longer describes the change",
            outcome="not-applied",
            detail="not sent: plan again and review the new diff",
        )
    desired = _with_annotations(step.desired, annotations)
    try:
        if live is not None:
            entry = backup.record_update(live, desired)
        else:
            entry = backup.record_create(
                step.kind, step.api_version, step.namespace, step.name, desired
            )
    except BackupError as err:
        return StepResult(
            step,
            "failed",
            f"its backup could not be written: {err}",
            outcome="not-applied",
            detail="not sent: nothing may change that could not be undone",
        )
    if backup.disk_full:
        entry.state, entry.error = "failed", "not sent: the backup disk is full"
        _save_quietly(backup)
        return StepResult(
            step,
            "failed",
            f"the backup disk is full ({backup.path})",
            outcome="not-applied",
            detail="not sent: nothing may change that could not be undone",
        )
    answer: Obj | None = None
    failure: ClusterError | None = None
    sent = desired
    rv = _meta(live, "resourceVersion")
    if rv:
        # the version just checked: a change made since is refused by the API server (409), so
        # a forced apply can take over only the conflicts the approved plan showed
        sent = dict(desired)
        sent["metadata"] = {**desired["metadata"], "resourceVersion": rv}
    try:
        answer = cluster.apply(sent, force=bool(step.takeover))
    except ClusterError as err:
        failure = err
    return _verify_apply(step, cluster, backup, entry, live, answer, failure, desired)


def _verify_apply(
    step: PlanStep,
    cluster: ClusterAdapter,
    backup: BackupSet,
    entry: BackupEntry,
    live: Obj | None,
    answer: Obj | None,
    failure: ClusterError | None,
    desired: Obj,
) -> StepResult:
    """Read the object back and decide what the write did, whatever the answer said."""
    said = "" if failure is None else f"the API server answered: {_short(failure)}"
    entry.ambiguous = failure is not None and is_ambiguous(failure)
    try:
        now = cluster.get(step.kind, step.namespace, step.name, api_version=step.api_version)
    except ClusterError as err:
        entry.state = "unknown"
        entry.error = f"{said or 'applied'}; the read-back failed: {_short(err)}"
        _save_quietly(backup)
        return StepResult(
            step,
            "failed",
            entry.error,
            outcome="unknown",
            detail="cannot tell whether the change was stored",
        )
    pre_uid = _meta(live, "uid")
    same_object = not (pre_uid and _meta(now, "uid") and _meta(now, "uid") != pre_uid)
    if answer is not None and _meta(answer, "uid") and _meta(now, "uid"):
        same_object = same_object and _meta(answer, "uid") == _meta(now, "uid")
    if now is not None and same_object and holds(now, desired):
        entry.state, entry.error = "applied", said or None
        entry.uid, entry.resource_version = _meta(now, "uid"), _meta(now, "resourceVersion")
        entry.content_sha256 = content_digest(now)
        _save_quietly(backup)
        if failure is not None:
            return StepResult(
                step,
                "applied",
                resource_version=entry.resource_version,
                outcome="applied",
                detail=f"{said}; but the read-back shows the change was stored",
            )
        moved = answer is not None and _meta(answer, "resourceVersion") not in (
            None,
            entry.resource_version,
        )
        return StepResult(
            step,
            "applied",
            resource_version=entry.resource_version,
            outcome="applied",
            detail="changed again since (a controller's status?), still holding the applied fields"
            if moved
            else "",
        )
    # not (or not only) what was applied
    if now is None and live is None:
        holding = "it does not exist (not created)"
        entry.state = "failed"
    elif now is not None and live is not None and content_digest(now) == content_digest(live):
        holding = "it holds the version from before the apply"
        entry.state = "failed" if same_object else "unknown"
    else:
        holding = "it holds " + _describe(now, entry)
        entry.state = "unknown"  # changed, but not as meant: rollback must look at it
    entry.error = f"{said or 'the API server answered success'}; read back: {holding}"
    _save_quietly(backup)
    error = said or "the API server answered success, but the read-back does not show the change"
    return StepResult(step, "failed", error, outcome="not-applied", detail=f"read back: {holding}")


def _describe(obj: Obj | None, entry: BackupEntry) -> str:
    """What an object holds, in the words of a report."""
    if obj is None:
        return "nothing (it does not exist)"
    rv = _meta(obj, "resourceVersion")
    at = f" (resourceVersion {rv})" if rv else ""
    if entry.content_sha256 is not None and content_digest(obj) == entry.content_sha256:
        return f"the applied version{at}"
    if entry.intended is not None and holds(obj, entry.intended):
        return f"the fields the apply sent{at}"
    return f"a version changed by someone else{at}"


def _save_quietly(backup: BackupSet) -> None:
    # The cluster's state is reported from read-backs; a manifest that cannot be updated is
    # reported when the set is finished, not allowed to hide that state.
    with contextlib.suppress(BackupError):
        backup.save()


# -- rollback ---------------------------------------------------------------------------------


def check_identity(
    backup: BackupSet, cluster: ClusterAdapter, *, allow_other_cluster: bool = False
) -> str | None:
    """Refuse to roll *backup* back into another cluster than the one it was made on.

    Returns:
        A warning when the backup records no identity (made by an older istiolab), else None.

    Raises:
        OtherClusterError: When the cluster's identity is not the backup's (unless
            *allow_other_cluster*).
    """
    recorded = backup.identity
    if recorded is None:
        return (
            f"backup {backup.id} does not record which cluster it was made on (an older "
            "istiolab): check the context before going on"
        )
    here = cluster.identity()
    if recorded.same_as(here) or allow_other_cluster:
        return None
    raise OtherClusterError(
        f"refusing to roll back: backup {backup.id} was made on the cluster at "
        f'{recorded.format()}, but context "{cluster.context}" reaches {here.format()}: '
        "another cluster behind the same context name. Nothing was changed. Pass "
        "--allow-other-cluster only if you mean to write that cluster's objects into this one"
    )


def _refuse_newer(backup: BackupSet, store: BackupStore) -> None:
    newer = store.newer_touching(backup)
    if newer:
        lines = [f"  {b.id} ({b.status}): {', '.join(refs)}" for b, refs in newer]
        raise RefusedError(
            f"refusing to roll back {backup.id}: a newer apply changed the same objects since:\n"
            + "\n".join(lines)
            + f"\nroll back {newer[-1][0].id} first (newest first), or pass --force to "
            "overwrite its changes"
        )


def rollback(
    backup_id: str | None,
    cluster: ClusterAdapter,
    *,
    backups: BackupStore | None = None,
    force: bool = False,
    allow_other_cluster: bool = False,
) -> RollbackReport:
    """Undo an apply: restore the saved objects exactly, delete the ones it created.

    Every object is read first and read back after the write; the report says what the
    read-back shows. An object that already holds its saved version counts as restored, so a
    rollback can be retried until it is complete.

    Args:
        backup_id: The backup set (``istiolab rollback --list``); None: the newest one.
        cluster: The cluster of the backup's context.
        backups: The backup store; default :class:`BackupStore`.
        force: Also restore objects changed by someone else since the apply, delete objects
            of the same name that are not the ones the apply created, roll back a backup set
            that was already rolled back or is still marked in progress, and one that a newer
            apply of the same objects followed.
        allow_other_cluster: Roll back into a cluster whose identity (``kube-system`` uid, or
            server URL) is not the one the backup was made on.

    Returns:
        The report (``ok`` False when some object is not, or may not be, as before).

    Raises:
        ClusterError: When there is no such backup, or it was already rolled back.
        OtherClusterError: When the backup was made on another cluster.
        RefusedError: When a newer apply changed the same objects (it names that backup).
    """
    store = backups if backups is not None else BackupStore()
    backup = store.open(cluster.context, backup_id)
    warning = check_identity(backup, cluster, allow_other_cluster=allow_other_cluster)
    if backup.status == "rolled-back" and not force:
        raise RefusedError(f"backup {backup.id} was already rolled back (use --force to redo it)")
    if backup.status == "in-progress" and not force:
        raise RefusedError(
            f"backup {backup.id} is marked in progress: an apply may still be running (or was "
            "killed); use --force once you are sure it is not running"
        )
    if not force:
        _refuse_newer(backup, store)
    problems: list[str] = [] if warning is None else [warning]
    results = _undo_all(backup, cluster, force=force, problems=problems)
    ok = all(r.ok for r in results)
    problem = backup.finish("rolled-back" if ok else "rollback-incomplete")
    problems.extend(_listed(problem))
    return RollbackReport(backup.id, tuple(results), tuple(dict.fromkeys(problems)))


@dataclasses.dataclass(frozen=True)
class RollbackPreview:
    """What a rollback would do to one object, from a read of the live object.

    Attributes:
        ref: ``Kind/namespace/name``.
        action: ``restore``, ``recreate`` (deleted since the apply: it is created again from
            the backup), ``delete`` (created by the apply), ``skip`` (changed by someone else:
            left alone without ``--force``), ``nothing`` (already as before) or ``unknown``.
        diff: Unified YAML diff, live → after the rollback.
        detail: Why, when it is worth saying.
    """

    ref: str
    action: str
    diff: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ref": self.ref, "action": self.action, "diff": self.diff, "detail": self.detail}


def preview_rollback(backup: BackupSet, cluster: ClusterAdapter) -> list[RollbackPreview]:
    """What :func:`rollback` of *backup* would do, object by object, in its order; no writes.

    The CLI shows it before every rollback (and ``rollback --diff`` shows only it): an object
    is never re-created, or overwritten, without being shown first.
    """
    out: list[RollbackPreview] = []
    for entry in reversed(backup.entries):
        if entry.state == "failed" and not entry.ambiguous:
            continue
        try:
            live = cluster.get(
                entry.kind, entry.namespace, entry.name, api_version=entry.api_version
            )
        except ClusterError as err:
            out.append(RollbackPreview(entry.ref, "unknown", detail=f"cannot read it: {err}"))
            continue
        before = strip(live) if live is not None else None
        if entry.action == "create":
            if live is None:
                out.append(RollbackPreview(entry.ref, "nothing", detail="already gone"))
                continue
            ours = (entry.uid is None or _meta(live, "uid") == entry.uid) and (
                entry.intended is None or holds(live, entry.intended)
            )
            out.append(
                RollbackPreview(
                    entry.ref,
                    "delete" if ours else "skip",
                    unified_diff(before, None, entry.ref),
                    "" if ours else "not the object the apply created, or changed since",
                )
            )
            continue
        try:
            saved = backup.load_object(entry)
        except ClusterError as err:
            out.append(RollbackPreview(entry.ref, "unknown", detail=str(err)))
            continue
        saved["apiVersion"] = entry.api_version
        if live is None:
            out.append(
                RollbackPreview(
                    entry.ref,
                    "recreate",
                    unified_diff(None, strip(saved), entry.ref),
                    "deleted since the apply: it is created again from the backup",
                )
            )
            continue
        if content_digest(live) == content_digest(saved):
            out.append(
                RollbackPreview(entry.ref, "nothing", detail="already holds the saved version")
            )
            continue
        ours = (
            entry.content_sha256 is not None and content_digest(live) == entry.content_sha256
        ) or (entry.intended is not None and holds(live, entry.intended))
        restored = {**strip(live), **{k: v for k, v in strip(saved).items() if k != "metadata"}}
        meta = dict(strip(live).get("metadata") or {})
        saved_meta = strip(saved).get("metadata") or {}
        for key in ("labels", "annotations"):
            meta.pop(key, None)
            if saved_meta.get(key):
                meta[key] = saved_meta[key]
        restored["metadata"] = meta
        for key in [k for k in restored if k not in saved and k not in _IDENTITY_KEYS]:
            del restored[key]
        out.append(
            RollbackPreview(
                entry.ref,
                "restore" if ours else "skip",
                unified_diff(before, restored, entry.ref),
                "" if ours else "changed by someone else since the apply (--force overwrites)",
            )
        )
    return out


_IDENTITY_KEYS = frozenset({"apiVersion", "kind", "metadata"})


def _undo_all(
    backup: BackupSet, cluster: ClusterAdapter, *, force: bool, problems: list[str]
) -> list[RollbackResult]:
    results: list[RollbackResult] = []
    for entry in reversed(backup.entries):
        if entry.state == "failed" and not entry.ambiguous:
            continue  # refused, and read back as before: nothing to undo
        result = _undo(entry, backup, cluster, force=force)
        if result is None:
            continue
        results.append(result)
        entry.rollback, entry.rollback_detail = result.action, result.detail or None
        try:
            backup.save()
        except BackupError as err:
            problems.append(f"the backup manifest could not be updated: {err}")
    return results


def _undo(
    entry: BackupEntry, backup: BackupSet, cluster: ClusterAdapter, *, force: bool
) -> RollbackResult | None:
    """Undo one entry; None when its write failed and it still holds what it held before.

    A write that failed ambiguously (no answer, 5xx) may land after its read-back, so such an
    object is read again here; when it is still as before, there is nothing to report.
    """
    try:
        live = cluster.get(entry.kind, entry.namespace, entry.name, api_version=entry.api_version)
    except ClusterError as err:
        return RollbackResult(entry.ref, "unknown", f"cannot read it: {_short(err)}")
    if entry.action == "create":
        if live is None and entry.state == "failed":
            return None
        return _undo_create(entry, cluster, live, force=force)
    try:
        saved = backup.load_object(entry)
    except ClusterError as err:
        return RollbackResult(
            entry.ref, "not-restored", f"{err}; it holds {_describe(live, entry)}"
        )
    saved["apiVersion"] = entry.api_version
    if (
        entry.state == "failed"
        and live is not None
        and content_digest(live) == content_digest(saved)
    ):
        return None
    return _undo_update(entry, cluster, live, saved, force=force)


def _undo_create(
    entry: BackupEntry, cluster: ClusterAdapter, live: Obj | None, *, force: bool
) -> RollbackResult:
    ref = entry.ref
    if live is None:
        return RollbackResult(
            ref, "deleted", "already gone" if entry.state == "applied" else "it was never created"
        )
    uid = _meta(live, "uid")
    if not force:
        if entry.uid and uid and uid != entry.uid:
            return RollbackResult(
                ref,
                "skipped",
                f"an object of that name created by someone else since the apply (uid {uid}); "
                "left as it is (rerun with --force to delete it)",
            )
        if not entry.uid and not (entry.intended is not None and holds(live, entry.intended)):
            return RollbackResult(
                ref,
                "skipped",
                "exists, but does not hold what the apply sent: it may not be the apply's; "
                "left as it is (rerun with --force to delete it)",
            )
    said = ""
    try:
        cluster.delete(
            entry.kind,
            entry.namespace,
            entry.name,
            api_version=entry.api_version,
            uid=None if force else (uid or entry.uid),
        )
    except NotFoundError:
        pass
    except ClusterError as err:
        said = f"the API server answered: {_short(err)}"
    try:
        now = cluster.get(entry.kind, entry.namespace, entry.name, api_version=entry.api_version)
    except ClusterError as err:
        return RollbackResult(ref, "unknown", _join(said, f"the read-back failed: {_short(err)}"))
    if now is None or (uid and _meta(now, "uid") and _meta(now, "uid") != uid):
        return RollbackResult(ref, "deleted", _join(said, "read back: gone") if said else "")
    return RollbackResult(
        ref, "not-restored", _join(said, f"read back: it still exists, {_describe(now, entry)}")
    )


def _undo_update(
    entry: BackupEntry, cluster: ClusterAdapter, live: Obj | None, saved: Obj, *, force: bool
) -> RollbackResult:
    ref = entry.ref
    want = content_digest(saved)
    if live is not None and content_digest(live) == want:
        if entry.rollback == "restored":
            return RollbackResult(ref, "restored", "restored by an earlier rollback")
        if entry.state != "applied":
            return RollbackResult(ref, "restored", "it holds the version from before the apply")
        return RollbackResult(ref, "restored", "already held the saved version")
    said = ""
    if live is None:
        try:
            cluster.apply(strip(saved), force=True)
        except ClusterError as err:
            said = f"the API server answered: {_short(err)}"
        note = "recreated: it had been deleted since the apply"
    else:
        ours = (
            entry.content_sha256 is not None and content_digest(live) == entry.content_sha256
        ) or (
            entry.state != "applied" and entry.intended is not None and holds(live, entry.intended)
        )
        if not ours and not force:
            return RollbackResult(
                ref,
                "skipped",
                f"changed by someone else since the apply: it holds {_describe(live, entry)}; "
                "left as it is (rerun with --force to overwrite)",
            )
        try:
            # the resourceVersion just read: a change made since is refused with a 409
            cluster.replace(
                saved, resource_version=None if force else _meta(live, "resourceVersion")
            )
        except ClusterError as err:
            said = f"the API server answered: {_short(err)}"
        note = ""
    try:
        now = cluster.get(entry.kind, entry.namespace, entry.name, api_version=entry.api_version)
    except ClusterError as err:
        return RollbackResult(ref, "unknown", _join(said, f"the read-back failed: {_short(err)}"))
    if now is not None and content_digest(now) == want:
        return RollbackResult(
            ref, "restored", _join(note, _join(said, "read back: restored") if said else "")
        )
    return RollbackResult(
        ref, "not-restored", _join(said, f"read back: it holds {_describe(now, entry)}")
    )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
