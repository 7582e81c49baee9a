"""``apply --wait``: read back what istiod wrote in the applied objects' ``status``.

istiod writes an Istio object's ``status`` only when it is configured to: ``observedGeneration``
and the ``Reconciled`` condition with ``PILOT_ENABLE_STATUS=true``, and ``validationMessages``
(the same analyzers as ``istioctl analyze``, codes ``IST0xxx``) with
``values.global.istiod.enableAnalysis=true`` (istio/istio ``pilot/pkg/status/distribution``
and ``pilot/pkg/config/kube/crdclient``; ``IstioStatus`` in istio.io/api ``meta/v1alpha1``).
The Gateway API kinds get ``status.parents[].conditions`` / ``status.conditions`` from
istiod's Gateway controller with ``observedGeneration`` per condition.

Nothing here assumes a status will come: a cluster that writes none is reported as such when
the wait times out, never as a success.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from istiolab.kube.adapter import ClusterAdapter

__all__ = ["ObjectStatus", "read_status", "wait_for_status"]


@dataclasses.dataclass(frozen=True)
class ObjectStatus:
    """What an object's ``status`` said when the wait ended.

    Attributes:
        ref: ``Kind/namespace/name``.
        generation: ``metadata.generation`` as read.
        observed: ``status.observedGeneration`` (or the newest among the conditions'), if any.
        messages: ``(level, code, name)`` of each ``status.validationMessages`` entry.
        conditions: ``(type, status, reason)`` of each status condition.
        found: The object exists.
    """

    ref: str
    generation: int | None
    observed: int | None
    messages: tuple[tuple[str, str, str], ...] = ()
    conditions: tuple[tuple[str, str, str], ...] = ()
    found: bool = True

    @property
    def current(self) -> bool:
        """Whether istiod has processed the applied generation."""
        return (
            self.generation is not None
            and self.observed is not None
            and self.observed >= self.generation
        )

    @property
    def errors(self) -> tuple[tuple[str, str, str], ...]:
        """The ERROR-level validation messages and the False ``Accepted``/``ResolvedRefs``."""
        bad = tuple(m for m in self.messages if m[0] == "ERROR")
        refused = tuple(
            ("ERROR", c[2] or c[0], c[0])
            for c in self.conditions
            if c[0] in ("Accepted", "ResolvedRefs", "Programmed") and c[1] == "False"
        )
        return bad + refused


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_status(cluster: ClusterAdapter, kind: str, namespace: str, name: str) -> ObjectStatus:
    """The status of one object as the API server holds it now."""
    ref = f"{kind}/{namespace}/{name}"
    obj = cluster.get(kind, namespace, name)
    if obj is None:
        return ObjectStatus(ref, None, None, found=False)
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if not isinstance(status, Mapping):
        status = {}
    conditions: list[Mapping[str, Any]] = [
        c for c in status.get("conditions") or [] if isinstance(c, Mapping)
    ]
    for parent in status.get("parents") or []:  # Gateway API routes
        if isinstance(parent, Mapping):
            conditions += [c for c in parent.get("conditions") or [] if isinstance(c, Mapping)]
    observed = _int(status.get("observedGeneration"))
    generations = [g for g in (_int(c.get("observedGeneration")) for c in conditions) if g]
    if observed is None and generations:
        observed = max(generations)
    messages = tuple(
        (
            str(m.get("level") or "INFO"),
            str((m.get("type") or {}).get("code") or ""),
            str((m.get("type") or {}).get("name") or ""),
        )
        for m in status.get("validationMessages") or []
        if isinstance(m, Mapping)
    )
    return ObjectStatus(
        ref,
        _int(meta.get("generation")),
        observed,
        messages,
        tuple(
            (str(c.get("type") or ""), str(c.get("status") or ""), str(c.get("reason") or ""))
            for c in conditions
        ),
    )


def wait_for_status(
    cluster: ClusterAdapter,
    refs: Iterable[tuple[str, str, str]],
    *,
    timeout_s: float,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[ObjectStatus], bool]:
    """Poll until istiod has observed every object's applied generation, or *timeout_s* passes.

    Args:
        cluster: The cluster the objects were applied to.
        refs: ``(kind, namespace, name)`` of each applied object.
        timeout_s: How long to wait in all.
        poll_s: Time between reads.
        clock: Monotonic clock (tests pass a fake one).
        sleep: Sleep function (tests pass a fake one).

    Returns:
        The last status read of each object, and whether all were current before the timeout.
    """
    wanted = list(refs)
    deadline = clock() + timeout_s
    while True:
        statuses = [read_status(cluster, k, ns, n) for k, ns, n in wanted]
        if all(s.current or not s.found for s in statuses):
            return statuses, True
        if clock() >= deadline:
            return statuses, False
        sleep(min(poll_s, max(0.0, deadline - clock())))
