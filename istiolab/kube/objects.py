"""Plain-data helpers for Kubernetes objects: strip server fields, diff, merge patches.

Objects are JSON-like dicts (what the API sends). :func:`strip` removes what the server manages
(``status``, ``resourceVersion``, ``uid``, ``managedFields``, ...) so that a live object, a
dry-run result and a file compare field by field; :func:`unified_diff` shows the difference as
YAML. :func:`merge_patch` computes an RFC 7386 JSON merge patch that turns one object into
another exactly, which is how rollback restores a saved object.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from istiolab.config import codecs

__all__ = [
    "LAST_APPLIED",
    "SERVER_METADATA",
    "Obj",
    "apply_merge_patch",
    "canonical",
    "content",
    "content_digest",
    "merge_patch",
    "ownership_digest",
    "ref",
    "strip",
    "to_yaml",
    "unified_diff",
]

Obj = dict[str, Any]
"""A Kubernetes object as plain data."""

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
"""``metadata`` fields the API server sets; never written, never diffed."""

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's client-side-apply annotation: large, derived, left out of diffs."""

_TOP_ORDER = ("apiVersion", "kind", "metadata", "spec")


def ref(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name`` of an object (how findings and reports name it)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "-"
    return f"{obj.get('kind', '?')}/{ns}/{meta.get('name', '?')}"


def strip(obj: Mapping[str, Any]) -> Obj:
    """A deep copy without ``status`` and the server-managed metadata.

    Empty ``labels``/``annotations`` maps and kubectl's last-applied annotation are dropped too,
    so that objects that mean the same compare equal.
    """
    out: Obj = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in SERVER_METADATA:
            meta.pop(key, None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            ann.pop(LAST_APPLIED, None)
        for key in ("labels", "annotations"):
            if key in meta and not meta[key]:
                del meta[key]
    return out


def content(obj: Mapping[str, Any]) -> Obj:
    """What rollback restores: labels, annotations and every top-level field but the identity.

    Returns:
        ``{"metadata": {"labels": ..., "annotations": ...}, "spec": ..., ...}`` (stripped).
    """
    s = strip(obj)
    meta = s.pop("metadata", {}) or {}
    s.pop("apiVersion", None)
    s.pop("kind", None)
    out: Obj = {"metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}}
    out.update(s)
    return out


def content_digest(obj: Mapping[str, Any]) -> str:
    """SHA-256 of :func:`content`, stable across key order.

    It tells whether labels, annotations or spec changed; a status update or a new
    resourceVersion alone does not change it.
    """
    text = json.dumps(content(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ownership_digest(obj: Mapping[str, Any]) -> str:
    """SHA-256 of who owns which fields (``metadata.managedFields``), without timestamps.

    Entries for the ``status`` subresource are left out: a controller writing ``status`` does
    not change who owns the fields an apply may take over. Two reads with the same content and
    ownership digests conflict the same way under server-side apply.
    """
    entries = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("subresource") == "status":
            continue
        entries.append(
            [
                str(entry.get("manager", "")),
                str(entry.get("operation", "")),
                json.dumps(entry.get("fieldsV1"), sort_keys=True, separators=(",", ":")),
            ]
        )
    text = json.dumps(sorted(entries), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def canonical(obj: Mapping[str, Any]) -> Obj:
    """:func:`strip` with keys sorted (``apiVersion, kind, metadata, spec`` first)."""
    s = _sorted(strip(obj))
    head = {k: s[k] for k in _TOP_ORDER if k in s}
    head.update({k: v for k, v in s.items() if k not in head})
    return head


def to_yaml(obj: Mapping[str, Any] | None) -> str:
    """Canonical YAML of an object ("" for None)."""
    return "" if obj is None else codecs.dumps([canonical(obj)])


def unified_diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, label: str
) -> str:
    """Unified diff of two objects as canonical YAML ("" when they are equal).

    Args:
        before: The live object (None: it does not exist).
        after: The object as it will be (None: it will be deleted).
        label: ``Kind/namespace/name`` for the ``---``/``+++`` headers.
    """
    a, b = to_yaml(before), to_yaml(after)
    if a == b:
        return ""
    lines = difflib.unified_diff(
        a.splitlines(keepends=True),
        b.splitlines(keepends=True),
        fromfile=f"live/{label}" if before is not None else "/dev/null",
        tofile=f"planned/{label}" if after is not None else "/dev/null",
        n=3,
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return text


def merge_patch(current: Any, target: Any) -> Any:
    """The RFC 7386 JSON merge patch that turns *current* into *target*.

    Maps are patched key by key (a removed key becomes ``null``); lists and scalars are replaced
    whole. ``apply_merge_patch(current, merge_patch(current, target)) == target`` whenever
    *target* has no ``null`` values (Kubernetes objects have none).
    """
    if not isinstance(current, dict) or not isinstance(target, dict):
        return copy.deepcopy(target)
    patch: Obj = {}
    for key in current:
        if key not in target:
            patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            patch[key] = merge_patch(current[key], value)
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch (returns a new value)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out
