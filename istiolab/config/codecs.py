"""The YAML boundary: the only module that reads or writes YAML.

Loading keeps the file and line of every resource and of every field in it, so findings can
point at ``file:line``. YAML is always loaded with the safe loader.
"""

from __future__ import annotations

import dataclasses
import io
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

try:  # the C loader is much faster; fall back when libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
    _Dumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

PathKey = tuple[str | int, ...]
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break
YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclasses.dataclass(frozen=True)
class RawDocument:
    """One YAML document before it becomes a resource.

    Attributes:
        data: The parsed document (any YAML value).
        file: Where it came from (``"<stdin>"`` for standard input, None for in-memory).
        index: Position of the document in its file (0-based).
        line: 1-based line where the document starts.
        lines: 1-based line of every field, keyed by its path from the document root.
        error: A YAML syntax error message, when the document could not be parsed.
    """

    data: Any
    file: str | None
    index: int
    line: int
    lines: Mapping[PathKey, int] = dataclasses.field(default_factory=dict)
    error: str | None = None

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of *path*, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.line


def _walk_lines(
    node: yaml.Node,
    path: PathKey,
    out: dict[PathKey, int],
    seen: set[int] | None = None,
    stack: set[int] | None = None,
) -> None:
    seen = set() if seen is None else seen
    stack = set() if stack is None else stack
    out.setdefault(path, node.start_mark.line + 1)
    if id(node) in stack:
        # An alias inside its own anchor: the data would be infinite (no JSON form).
        raise yaml.constructor.ConstructorError(
            None, None, "recursive alias: a node contains itself", node.start_mark
        )
    if id(node) in seen:
        # A further alias of a node already walked: its fields keep the anchor's lines, and
        # "billion laughs" documents cost linear, not exponential, time.
        return
    seen.add(id(node))
    stack.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key == "<<":
                    continue
                out[(*path, key)] = key_node.start_mark.line + 1
                _walk_lines(value_node, (*path, key), out, seen, stack)
                out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_lines(item, (*path, i), out, seen, stack)
    stack.discard(id(node))


def loads(text: str, file: str | None = None) -> list[RawDocument]:
    """Parse every document of a YAML (or JSON) text.

    A syntax error does not raise: it becomes a :class:`RawDocument` with ``error`` set (the
    documents before it are kept), so the caller can report it as a finding.

    Args:
        text: YAML text, possibly with several ``---`` documents.
        file: Name recorded for findings.

    Returns:
        The documents, empty ones skipped. ``List`` kinds are flattened into their items.
    """
    docs: list[RawDocument] = []
    loader = _Loader(io.StringIO(text))
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guards this
                break
            data = loader.construct_document(node)
            if data is not None:
                lines: dict[PathKey, int] = {}
                _walk_lines(node, (), lines)
                docs.extend(
                    _flatten(RawDocument(data, file, index, node.start_mark.line + 1, lines))
                )
            index += 1
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        # libyaml can put the end-of-stream mark one line past the text; point at a real line.
        line = min(line, len(_YAML_BREAK.findall(text)) + 1)
        docs.append(RawDocument(None, file, index, line, {}, error=_yaml_message(err)))
    finally:
        loader.dispose()
    return docs


def _yaml_message(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    parts = [p for p in (context, problem) if p]
    return "; ".join(parts) if parts else str(err).splitlines()[0]


def _flatten(doc: RawDocument) -> Iterator[RawDocument]:
    data = doc.data
    if (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and data["kind"].endswith("List")
        and isinstance(data.get("items"), list)
    ):
        for i, item in enumerate(data["items"]):
            prefix = ("items", i)
            sub = {k[2:]: v for k, v in doc.lines.items() if k[:2] == prefix}
            yield RawDocument(item, doc.file, doc.index, doc.lines.get(prefix, doc.line), sub)
    else:
        yield doc


def iter_yaml_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, Path | None]]:
    """Expand files and directories (recursively, ``*.yaml``/``*.yml``/``*.json``) in order.

    ``-`` means standard input and yields ``("<stdin>", None)``.
    """
    for p in paths:
        if str(p) == "-":
            yield "<stdin>", None
            continue
        path = Path(p)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in YAML_SUFFIXES:
                    yield str(child), child
        else:
            yield str(path), path


def load_paths(paths: Iterable[str | Path], stdin: TextIO | None = None) -> list[RawDocument]:
    """Read files, directories and ``-`` (stdin) into raw documents.

    A path that cannot be read becomes a document with ``error`` set.
    """
    out: list[RawDocument] = []
    for name, path in iter_yaml_files(paths):
        if path is None:
            out.extend(loads((stdin or sys.stdin).read(), name))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            out.append(RawDocument(None, name, 0, 0, {}, error=f"cannot read: {reason}"))
            continue
        out.extend(loads(text, name))
    return out


class _OrderedDumper(_Dumper):  # type: ignore[valid-type,misc]
    """Block style, keys in insertion order, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_OrderedDumper.add_representer(str, _str_representer)


def dumps(documents: Iterable[Any]) -> str:
    """Dump documents as deterministic multi-document YAML (insertion order, block style).

    Args:
        documents: Plain data (dicts, lists, scalars) or objects with ``to_dict()``.

    Returns:
        YAML text; documents separated by ``---``.
    """
    parts = []
    for doc in documents:
        data = doc.to_dict() if hasattr(doc, "to_dict") else doc
        parts.append(
            yaml.dump(
                data,
                Dumper=_OrderedDumper,
                sort_keys=False,
                default_flow_style=False,
                allow_unicode=True,
                width=100,
            )
        )
    return "---\n".join(parts)


def load_data(text: str) -> Any:
    """Parse one YAML document safely into plain data (for small inputs such as case files)."""
    return yaml.load(text, Loader=_Loader)
