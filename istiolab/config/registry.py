"""From raw YAML documents to typed resources, with findings for everything that is wrong.

The ``(apiVersion, kind)`` registry maps documents to model classes. Pydantic does the schema
checking; this module turns each of its errors into a :class:`~istiolab.findings.Finding` whose
path is the field's path in the document (``spec.http[0].route[1].weight``), whose line is the
field's line in the file, and whose message names the value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from istiolab.config import gatewayapi, k8s, legacy, model
from istiolab.config.base import Duration, Resource, camel
from istiolab.config.codecs import PathKey, RawDocument
from istiolab.findings import Finding, Severity, finding
from istiolab.limits import MESSAGE_CHARS, quote, truncate

KINDS: tuple[type[Resource], ...] = (
    model.VirtualService,
    model.DestinationRule,
    model.Gateway,
    model.EnvoyFilter,
    model.ServiceEntry,
    legacy.RouteRule,
    legacy.DestinationPolicy,
    legacy.MemQuota,
    legacy.QuotaInstance,
    legacy.MixerRule,
    legacy.QuotaSpec,
    legacy.QuotaSpecBinding,
    k8s.IngressV1Beta1,
    k8s.IngressV1,
    k8s.Service,
    k8s.Deployment,
    k8s.Pod,
    *gatewayapi.GATEWAY_API_KINDS,
)

REGISTRY: dict[tuple[str, str], type[Resource]] = {
    (version, cls.KIND): cls for cls in KINDS for version in cls.API_VERSIONS
}


def get_class(api_version: str, kind: str) -> type[Resource] | None:
    """The model class for ``(apiVersion, kind)``, or None when istiolab does not model it."""
    return REGISTRY.get((api_version, kind))


def path_str(path: Sequence[str | int]) -> str:
    """``("spec", "http", 0, "route")`` → ``spec.http[0].route``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def _describe(data: Any) -> str:
    name = kind = None
    if isinstance(data, dict):
        kind = data.get("kind")
        meta = data.get("metadata")
        if isinstance(meta, dict):
            name = meta.get("name")
            ns = meta.get("namespace") or "default"
            if isinstance(kind, str) and isinstance(name, str):
                return "/".join(_label(part) for part in (kind, ns, name))
    return _label(kind or "document")


def _label(value: Any) -> str:
    """A value as part of a resource label: bounded, even when it is not text."""
    return truncate(value) if isinstance(value, str) else quote(value)


def parse_document(
    doc: RawDocument, *, strict: bool = False
) -> tuple[Resource | None, list[Finding]]:
    """Turn one raw document into a resource, or findings saying why not.

    Args:
        doc: The document.
        strict: Make an unknown kind an error instead of a warning.

    Returns:
        The resource (None when it could not be built or is skipped) and the findings.
    """
    file, line = doc.file, doc.line
    label = doc.file or "<input>"
    if doc.error is not None:
        code = doc.code or ("IL005" if doc.error.startswith("cannot read") else "IL001")
        fix = doc.fix or (
            "check the path"
            if code == "IL005"
            else "fix the YAML syntax at that line (indentation, a missing ':' or quote)"
        )
        where = line if line > 0 else None  # 0: about the whole input, not a line of it
        return None, [finding(code, label, "", doc.error, fix, file=file, line=where)]
    data = doc.data
    if not isinstance(data, dict):
        return None, [
            finding(
                "IL002",
                label,
                "",
                f"document {doc.index + 1} is a {type(data).__name__}, not a mapping",
                "each document must be a Kubernetes-style object with apiVersion, kind, metadata",
                file=file,
                line=line,
            )
        ]
    api_version, kind = data.get("apiVersion"), data.get("kind")
    missing = [
        k for k, v in (("apiVersion", api_version), ("kind", kind)) if not isinstance(v, str)
    ]
    if missing:
        return None, [
            finding(
                "IL003",
                _describe(data),
                missing[0],
                f"{' and '.join(missing)} missing or not a string",
                "add e.g. 'apiVersion: networking.istio.io/v1' and 'kind: VirtualService'",
                file=doc.file,
                line=doc.line_of((missing[0],)),
            )
        ]
    assert isinstance(api_version, str)
    assert isinstance(kind, str)
    cls = get_class(api_version, kind)
    if cls is None:
        known = sorted({f"{v} {c.KIND}" for (v, _), c in REGISTRY.items() if kind == c.KIND})
        hint = (
            f"{truncate(kind)} is modelled as: {', '.join(known)}"
            if known
            else "remove it from the input, or ignore this warning"
        )
        return None, [
            finding(
                "IL004",
                _describe(data),
                "kind",
                f"{truncate(api_version)} {truncate(kind)} is not modelled by istiolab and was "
                "skipped",
                hint,
                severity=Severity.ERROR if strict else None,
                file=doc.file,
                line=doc.line_of(("kind",)),
            )
        ]
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None, [
            finding(
                "IL006",
                truncate(kind),
                "metadata.name",
                f"{truncate(kind)} has no metadata.name",
                "add metadata: {name: <name>}",
                file=doc.file,
                line=doc.line_of(("metadata",)),
            )
        ]
    try:
        return cls.model_validate(data), []
    except ValidationError as err:
        resource = _describe(data)
        return None, [_finding_for(e, cls, data, doc, resource) for e in err.errors()]


_CODE_BY_TYPE = {
    "extra_forbidden": "IL101",
    "missing": "IL102",
    "duration": "IL104",
    "percent": "IL105",
    "http_status": "IL106",
    "regex": "IL107",
    "oneof": "IL108",
    "literal_error": "IL108",
    "enum": "IL108",
    "greater_than_equal": "IL108",
    "less_than_equal": "IL108",
    "greater_than": "IL108",
    "less_than": "IL108",
}


def _data_path(data: Any, loc: Sequence[str | int], etype: str) -> PathKey:
    """Drop pydantic's union-member tags from *loc*, keeping only real keys of *data*."""
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_list or (isinstance(cur, dict) and part in cur):
            out.append(part)
            cur = cur[part]
        elif last and etype == "missing" and isinstance(part, str):
            out.append(part)
        # else: a union tag such as 'int' or 'function-after[...]': not part of the data
    return tuple(out)


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    return [tp]


def _model_at(cls: type[BaseModel], path: PathKey) -> type[BaseModel] | None:
    """The model class that holds the field at *path* (walking lists and dicts)."""
    current: list[Any] = [cls]
    for part in path:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                for name, field in tp.model_fields.items():
                    if part in (name, field.alias, camel(name)):
                        nxt.extend(_unwrap(field.annotation))
            else:
                origin = typing.get_origin(tp)
                args = typing.get_args(tp)
                if origin is list and isinstance(part, int) and args:
                    nxt.extend(_unwrap(args[0]))
                elif origin is dict and isinstance(part, str) and len(args) == 2:
                    nxt.extend(_unwrap(args[1]))
        current = nxt
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


def _allowed_fields(cls: type[BaseModel], parent: PathKey) -> list[str]:
    holder = _model_at(cls, parent)
    if holder is None:
        return []
    return [f.alias or name for name, f in holder.model_fields.items()]


def _short(value: Any, limit: int = 60) -> str:
    # bounded: the value may be huge, or share subtrees through YAML aliases
    return quote(value, limit)


def _finding_for(
    e: Any, cls: type[Resource], data: Any, doc: RawDocument, resource: str
) -> Finding:
    etype: str = e["type"]
    e = {**e, "msg": truncate(e["msg"], MESSAGE_CHARS)}  # messages may quote the input
    path = _data_path(data, e["loc"], etype)
    code = _CODE_BY_TYPE.get(etype, "IL103")
    where = truncate(path_str(path), MESSAGE_CHARS)  # keys can be megabytes long too
    line = doc.line_of(path)
    value = e.get("input")
    key = path[-1] if path else ""
    if code == "IL101":
        allowed = _allowed_fields(cls, path[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1)
        message = f"unknown field {quote(key)}" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )
        fix = (
            f"rename it to {close[0]!r}"
            if close
            else f"remove it; fields allowed here: {', '.join(allowed)}"
            if allowed
            else "remove it"
        )
    elif code == "IL102":
        message = f"required field {quote(key)} is missing"
        fix = f"add {where}"
    elif code == "IL104":
        if "milliseconds" in e["msg"]:
            message = f"{_short(value)} is not a whole number of milliseconds"
            fix = (
                f"write {e.get('ctx', {}).get('whole', 1)}ms: istiod refuses durations "
                "finer than 1ms"
            )
        else:
            message = f"{_short(value)} is not a valid duration" + (
                " (at least 1ms)" if "shorter" in e["msg"] else ""
            )
            fix = "write a number with a unit, e.g. '250ms', '1.5s', '1m' (at least 1ms)"
    elif code == "IL105":
        message = f"percentage {_short(value)} is outside 0..100"
        fix = "use a value between 0 and 100"
    elif code == "IL106":
        message = f"HTTP status {_short(value)} is out of range ({e['msg'].split('within ')[-1]})"
        fix = "use a real HTTP status, e.g. 403, 500 or 503"
    elif code == "IL107":
        message = e["msg"]
        fix = "rewrite the pattern for RE2: no look-around, no back-references"
    elif code == "IL108":
        message = f"{_short(value)} is not allowed here: {e['msg']}"
        fix = (
            "use one of the allowed values"
            if etype in ("literal_error", "enum")
            else "use a value " + e["msg"].removeprefix("Input should be ")
        )
        if etype == "oneof":
            message = e["msg"]
            fix = "keep exactly one of them" if "only one" in e["msg"] else "set one of them"
    else:
        message = f"{_short(value)} has the wrong type: {e['msg']}"
        fix = f"give {where or 'it'} a value of the expected type"
        if _is_duration_field(cls, path) and isinstance(value, (int, float)):
            # YAML reads `timeout: 5` as a number; a Duration is a string with a unit
            suggested = f"{value:g}s"
            message = (
                f"{_short(value)} is a number, but a duration is a string with a unit "
                f"(did you mean {suggested!r}?)"
            )
            fix = f"write {suggested!r} (a quoted number with a unit)"
    return finding(code, resource, where, message, fix, file=doc.file, line=line)


_DURATION_MARKS = typing.get_args(Duration)[1:]


def _has_duration(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        args = typing.get_args(tp)
        return any(m in _DURATION_MARKS for m in args[1:]) or _has_duration(args[0])
    if origin in (typing.Union, types.UnionType):
        return any(_has_duration(a) for a in typing.get_args(tp))
    return False


def _is_duration_field(cls: type[Resource], path: PathKey) -> bool:
    """Whether the field at *path* is a :data:`~istiolab.config.base.Duration`."""
    if not path or not isinstance(path[-1], str):
        return False
    holder = _model_at(cls, path[:-1])
    if holder is None:
        return False
    for name, field in holder.model_fields.items():
        if path[-1] in (name, field.alias, camel(name)):
            return any(m in _DURATION_MARKS for m in field.metadata) or _has_duration(
                field.annotation
            )
    return False


@dataclasses.dataclass(frozen=True)
class Salvaged:
    """What is left of a resource with schema errors once the fields in error are taken out.

    Attributes:
        resource: The resource built from the rest of the document.
        pruned: Paths (in the document) of the fields taken out, each with the finding that
            made it go.
        removed: Each list (by its path in the document) with the indices of the items taken
            out, so paths in *resource* can be turned back into paths in the document.
    """

    resource: Resource
    pruned: tuple[tuple[PathKey, Finding], ...]
    removed: tuple[tuple[PathKey, tuple[int, ...]], ...]

    def document_path(self, path: Sequence[str | int]) -> PathKey:
        """A path in :attr:`resource` as a path in the document (list items renumbered)."""
        return _document_path(dict(self.removed), path)

    def cause(self, path: Sequence[str | int]) -> Finding | None:
        """The schema finding a finding at *path* (document path) may be a consequence of."""
        key = tuple(path)
        for where, f in self.pruned:
            n = min(len(where), len(key))
            if where[:n] == key[:n]:
                return f
        return None


# The partial resource stops at the object itself: a document whose metadata or whole spec is
# in error is not salvaged (its references would be guesses).
_MIN_PRUNE_DEPTH = 2
_MAX_PRUNE_ROUNDS = 8


def salvage(doc: RawDocument, findings: Sequence[Finding]) -> Salvaged | None:
    """The partially valid resource of a document that failed schema validation, or None.

    Each field in error is taken out (a missing required field takes its object out; an item
    of a list goes with the list's renumbering recorded), and the rest is validated again, a
    few rounds at most. The analyzer runs its reference checks on the result, so one pass
    reports an undefined subset even when the same route also has a bad ``httpStatus``.

    Args:
        doc: The raw document (its data is not changed).
        findings: The schema findings :func:`parse_document` gave for it.

    Returns:
        The salvaged resource, or None when nothing useful is left.
    """
    data = doc.data
    if not isinstance(data, dict) or not findings:
        return None
    cls = get_class(str(data.get("apiVersion")), str(data.get("kind")))
    if cls is None:
        return None
    work = copy.deepcopy(data)
    removed: dict[PathKey, list[int]] = {}
    pruned: list[tuple[PathKey, Finding]] = []
    cause = findings[0]

    for _ in range(_MAX_PRUNE_ROUNDS):
        try:
            res = cls.model_validate(work)
        except ValidationError as err:
            progress = False
            # deepest first, and list items from the end, so earlier cuts do not move later ones
            locs = sorted(
                (_data_path(work, e["loc"], e["type"]) + (("",) if e["type"] == "missing" else ()))
                for e in err.errors()
            )
            for loc in sorted(set(locs), key=lambda p: (-len(p), _neg(p))):
                target = loc[:-1] if loc and loc[-1] == "" else loc
                if loc and loc[-1] == "":  # a missing field: its holder goes
                    target = target[:-1]
                if len(target) < _MIN_PRUNE_DEPTH:
                    return None
                at = _document_path(removed, target)
                if _cut(work, target):
                    progress = True
                    if isinstance(target[-1], int):
                        removed.setdefault(at[:-1], []).append(int(at[-1]))
                    pruned.append((at, _finding_at(findings, at) or cause))
            if not progress:
                return None
            continue
        return Salvaged(
            res, tuple(pruned), tuple((k, tuple(sorted(v))) for k, v in removed.items())
        )
    return None


def _document_path(
    removed: dict[PathKey, tuple[int, ...]] | dict[PathKey, list[int]], path: Sequence[str | int]
) -> PathKey:
    out: list[str | int] = []
    for part in path:
        gone = removed.get(tuple(out))
        if isinstance(part, int) and gone:
            index = part
            for g in sorted(gone):  # each item taken out at or before it shifts it by one
                if g <= index:
                    index += 1
            part = index
        out.append(part)
    return tuple(out)


def _neg(path: PathKey) -> tuple[Any, ...]:
    return tuple(-p if isinstance(p, int) else p for p in path)


def _cut(data: Any, path: PathKey) -> bool:
    """Take the value at *path* out of *data* (a dict key, or a list item)."""
    cur = data
    for part in path[:-1]:
        in_dict = isinstance(cur, dict) and part in cur
        if not (
            in_dict or (isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur))
        ):
            return False
        cur = cur[part]
    last = path[-1]
    if isinstance(cur, dict) and last in cur:
        del cur[last]
        return True
    if isinstance(cur, list) and isinstance(last, int) and 0 <= last < len(cur):
        del cur[last]
        return True
    return False


def _finding_at(findings: Sequence[Finding], path: PathKey) -> Finding | None:
    """The finding whose path is *path* or lies inside it."""
    text = path_str(path)
    for f in findings:
        if f.path == text or f.path.startswith(text + ".") or f.path.startswith(text + "["):
            return f
    return None
