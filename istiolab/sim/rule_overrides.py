"""Field overrides on routing resources: ``rules.set``, and ``--set rules.Kind/name.field``.

A key names one resource by kind and name, ``Kind/name`` or ``Kind/namespace/name``, then a field
path under its ``spec``: ``VirtualService/api.http[0].retries.attempts``. List items are
addressed by index (``http[0]`` or ``http.0``) or, where items have a ``name``, by name
(``http.canary.timeout``). The override is applied to the YAML document before it becomes a
resource, so the value is validated exactly as if it had been written in the file.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from istiolab.config.codecs import RawDocument
from istiolab.errors import ConfigError
from istiolab.findings import Finding, finding

__all__ = ["apply_rule_overrides", "split_key"]

_INDEX = re.compile(r"\[(-?\d+)\]")


def split_key(key: str) -> tuple[str, str | None, str, list[str]]:
    """``"VirtualService/shop/api.http[0].timeout"`` → ``("VirtualService", "shop", "api", [...])``.

    Raises:
        ConfigError: IL401 when the key has no ``Kind/name`` or no field path.
    """
    ref, _, field = key.partition(".")
    parts = ref.split("/")
    if len(parts) not in (2, 3) or not all(parts) or not field:
        raise ConfigError(
            [
                _bad(
                    key,
                    "expected Kind/name.field or Kind/namespace/name.field "
                    "(VirtualService/api.http[0].retries.attempts)",
                )
            ]
        )
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    steps = [s for s in _INDEX.sub(r".\1", field).split(".") if s != ""]
    if steps and steps[0] == "spec":
        steps = steps[1:]
    return kind, namespace, name, steps


def apply_rule_overrides(
    docs: Iterable[RawDocument], overrides: Mapping[str, Any]
) -> list[RawDocument]:
    """The documents with every override applied (copies; the inputs are not changed).

    Raises:
        ConfigError: IL401 for each override whose resource or field does not exist.
    """
    out = list(docs)
    problems: list[Finding] = []
    for key, value in overrides.items():
        try:
            kind, namespace, name, steps = split_key(key)
        except ConfigError as err:
            problems.extend(err.findings)
            continue
        hits = [i for i, d in enumerate(out) if _is(d.data, kind, namespace, name)]
        if not hits:
            problems.append(_bad(key, f"no {kind} named {name!r} in the scenario's rules"))
            continue
        if len(hits) > 1:
            problems.append(
                _bad(key, f"{len(hits)} resources are {kind}/{name}: add the namespace")
            )
            continue
        doc = out[hits[0]]
        data = copy.deepcopy(doc.data)
        spec = data.setdefault("spec", {})
        problem = _set(spec, steps, value)
        if problem:
            problems.append(_bad(key, problem))
            continue
        out[hits[0]] = dataclasses.replace(doc, data=data)
    if problems:
        raise ConfigError(problems)
    return out


def _is(data: Any, kind: str, namespace: str | None, name: str) -> bool:
    if not isinstance(data, dict) or data.get("kind") != kind:
        return False
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict) or meta.get("name") != name:
        return False
    return namespace is None or (meta.get("namespace") or "default") == namespace


def _set(cur: Any, steps: list[str], value: Any) -> str | None:
    """Set *value* at *steps* under *cur*; a message when the path does not exist."""
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        where = ".".join(steps[:i]) or "spec"
        if isinstance(cur, list):
            idx = _list_index(cur, step)
            if idx is None:
                return f"no list item {step!r} at {where} ({len(cur)} item(s))"
            if last:
                cur[idx] = value
                return None
            cur = cur[idx]
        elif isinstance(cur, dict):
            if last:
                cur[step] = value
                return None
            if cur.get(step) is None:
                # a new field: a list index next means the list does not exist
                if _INDEX_STEP.fullmatch(steps[i + 1]):
                    return f"{where}.{step} is not a list in this resource"
                cur[step] = {}
            cur = cur[step]
        else:
            return f"{where} is a {type(cur).__name__}, not an object or a list"
    return None


_INDEX_STEP = re.compile(r"-?\d+")


def _list_index(items: list[Any], step: str) -> int | None:
    if _INDEX_STEP.fullmatch(step):
        idx = int(step)
        return idx % len(items) if -len(items) <= idx < len(items) else None
    return next(
        (k for k, item in enumerate(items) if isinstance(item, dict) and item.get("name") == step),
        None,
    )


def _bad(key: str, message: str) -> Finding:
    return finding(
        "IL401",
        "Scenario",
        f"rules.set.{key}",
        message,
        "name the resource as Kind/name (or Kind/namespace/name) and a field under its spec",
    )
