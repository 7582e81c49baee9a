"""The YAML boundary: the only module that reads or writes YAML.

Loading keeps the file and line of every resource and of every field in it, so findings can
point at ``file:line``. YAML is always loaded with the safe loader, and hostile input is
refused, as a finding, before it can cost much: the limits are those of :mod:`istiolab.limits`.

Loading goes in three steps per document. The composer (libyaml's, when available) builds the
node graph, counting nodes and nesting as it goes; an alias is a second reference to the node
it names, so the graph is never bigger than the text. Then one pass over the graph counts the
nodes again with every alias expanded (an alias adds the size of the node it repeats, known from
its first visit), checks the expanded depth, the tags and duplicate keys, and records the line
of every field. Only then is Python data built, from a graph known to be within the limits.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TextIO

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from istiolab import limits
from istiolab.limits import quote, truncate

try:  # the C loader is much faster; fall back when libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
    _Dumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

PathKey = tuple[str | int, ...]
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break
YAML_SUFFIXES = (".yaml", ".yml", ".json")

_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"
_MERGE_TAG = _TAG + "merge"
# What JSON, and so the Kubernetes API, can carry.
_JSON_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float", "str", "seq", "map"))
# Plain scalars that PyYAML resolves to these tags are strings for Kubernetes (go-yaml keeps
# timestamp-like values as strings when decoding untyped data), so they load as strings here.
_IMPLICIT_AS_STRING = frozenset({_TAG + "timestamp", _TAG + "value"})
_READ_CHUNK = 1 << 20
_INT_BITS = 14_000  # about 4200 decimal digits: Python prints integers of up to 4300


@dataclasses.dataclass(frozen=True)
class RawDocument:
    """One YAML document before it becomes a resource.

    Attributes:
        data: The parsed document (any YAML value).
        file: Where it came from (``"<stdin>"`` for standard input, None for in-memory).
        index: Position of the document in its file (0-based).
        line: 1-based line where the document starts (0 when the problem has no line).
        lines: 1-based line of every field, keyed by its path from the document root.
        columns: 1-based column of every field (its key, or the item of a list), keyed alike.
        error: Why the document (or the whole input) could not be loaded, when it could not.
        code: The finding code for *error* (None: a YAML syntax error, IL001).
        fix: What to do about *error*, when there is more to say than the code's default.
    """

    data: Any
    file: str | None
    index: int
    line: int
    lines: Mapping[PathKey, int] = dataclasses.field(default_factory=dict)
    error: str | None = None
    code: str | None = None
    fix: str | None = None
    columns: Mapping[PathKey, int] = dataclasses.field(default_factory=dict)

    def column_of(self, path: Sequence[str | int]) -> int | None:
        """Column of *path* when it has a line of its own (None when only an ancestor has)."""
        return self.columns.get(tuple(path))

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of *path*, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.line


class InputRefused(yaml.YAMLError):
    """Input refused by a limit or a rule of :mod:`istiolab.limits` (a finding when loading).

    Attributes:
        code: The finding code (``IL005`` .. ``IL014``).
        message: What was refused, naming the file when the refusal is about the whole file.
        fix: What to do about it.
        line: 1-based line, or 0 when the refusal is about the whole input.
        fatal: Whether the rest of the input was given up too (not just this document).
    """

    def __init__(self, code: str, message: str, fix: str, line: int = 0, *, fatal: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix
        self.line = line
        self.fatal = fatal

    def document(self, file: str | None, index: int) -> RawDocument:
        """The refusal as a document with ``error`` set."""
        return RawDocument(
            None, file, index, self.line, {}, error=self.message, code=self.code, fix=self.fix
        )


def _too_many_nodes(line: int) -> InputRefused:
    return InputRefused(
        "IL010",
        f"more than {limits.NODES:,} YAML nodes with aliases expanded; the rest of the input "
        "was not read",
        "split the input, or use fewer and smaller aliases (anchors repeated by '*name'); to "
        "raise the limit set ISTIOLAB_MAX_NODES",
        line,
        fatal=True,
    )


def _too_deep(line: int, aliases: bool) -> InputRefused:
    how = " once aliases are expanded" if aliases else ""
    return InputRefused(
        "IL011",
        f"nesting deeper than {limits.NESTING_DEPTH} levels{how}",
        "flatten the structure; no Istio or Kubernetes resource needs such nesting "
        "(ISTIOLAB_MAX_DEPTH raises the limit up to 250)",
        line,
        fatal=not aliases,
    )


def _node_line(node: yaml.Node | None) -> int:
    return 1 if node is None else node.start_mark.line + 1


class _GuardedLoader(_Loader):  # type: ignore[valid-type,misc]
    """The safe loader, counting nodes and nesting while it composes.

    ``descend_resolver`` is called by the composer (libyaml's too) before each node that is not
    an alias, with the node's parent, and ``ascend_resolver`` after it; they count the nodes and
    the depth, so a deep or wide document is refused before the composer recurses further or
    builds more. (Both are plain methods of PyYAML's resolver, used only for path resolvers,
    which the safe loader does not have.)
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _IMPLICIT_AS_STRING]
        for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        max_depth, max_nodes = limits.NESTING_DEPTH, limits.NODES
        depth = composed = 0

        def descend_resolver(current_node: Any, current_index: Any) -> None:
            nonlocal depth, composed
            depth += 1
            composed += 1
            if depth > max_depth or composed > max_nodes:
                line = _last_line(current_node)
                raise _too_deep(line, aliases=False) if depth > max_depth else _too_many_nodes(line)

        def ascend_resolver() -> None:
            nonlocal depth
            depth -= 1

        # Instance attributes shadow the resolver's methods. The composer calls both once per
        # node; closures over local counters add a third of what methods updating attributes
        # of the loader add to the composing time.
        self.__dict__.update(descend_resolver=descend_resolver, ascend_resolver=ascend_resolver)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        # Python refuses to convert decimal integers of more than 4300 digits (ValueError), and
        # to print them; hexadecimal, octal and binary ones are refused here at the same size.
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:
            value = 1 << _INT_BITS
        if value.bit_length() >= _INT_BITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"integer {truncate(node.value, 20)} has too many digits",
                node.start_mark,
            )
        return value


_GuardedLoader.add_constructor(_TAG + "int", _GuardedLoader.construct_yaml_int)


def _last_line(parent: yaml.Node | None) -> int:
    """Line of the last node composed under *parent* (the place the composer has reached)."""
    if parent is None:
        return 1
    value = parent.value
    if isinstance(value, list) and value:
        last = value[-1]
        node = last[-1] if isinstance(last, tuple) else last
        if isinstance(node, yaml.Node) and node.end_mark is not None:
            return node.end_mark.line + 1
    return _node_line(parent)


class _Inspector:
    """The pass over a composed document: expanded size and depth, tags, duplicate keys, lines.

    The node count runs over every document of one input. An alias is met as its anchored node
    again; the first visit recorded its size and height, so a repeat costs one dictionary look-up
    whatever it expands to, and the walk is linear in the size of the graph (that is, the text).
    """

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.max_nodes = limits.NODES
        self.max_depth = limits.NESTING_DEPTH
        self.count = 0
        self.known: dict[int, tuple[int, int]] = {}
        self.open: set[int] = set()
        self.columns: dict[PathKey, int] = {}  # of the last document, keyed as its lines
        self._lines: dict[PathKey, int] = {}

    def document(self, node: yaml.Node) -> dict[PathKey, int]:
        """Check *node* (a document root) and return the line of every field path in it."""
        self.known = {}
        self.open = set()
        lines: dict[PathKey, int] = {}
        self.columns, self._lines = {}, lines
        self._walk(node, (), 1, _node_line(node), lines)
        return lines

    def _walk(
        self, node: yaml.Node, path: PathKey, depth: int, line: int, lines: dict[PathKey, int]
    ) -> int:
        """Visit *node* at *depth* (*line*: where it is used); return its height."""
        if path not in lines:
            lines[path] = node.start_mark.line + 1
            if lines is self._lines:
                self.columns[path] = node.start_mark.column + 1
        key = id(node)
        known = self.known.get(key)
        if known is not None:  # an alias of a node seen before
            size, height = known
            self.count += size
            if self.count > self.max_nodes:
                raise _too_many_nodes(line)
            if depth - 1 + height > self.max_depth:
                raise _too_deep(line, aliases=True)
            return height
        if key in self.open:
            # An alias inside its own anchor: the data would be infinite (no JSON form).
            raise yaml.constructor.ConstructorError(
                None, None, "recursive alias: a node contains itself", node.start_mark
            )
        start = self.count
        self.count = start + 1
        if self.count > self.max_nodes:
            raise _too_many_nodes(node.start_mark.line + 1)
        if depth > self.max_depth:
            raise _too_deep(node.start_mark.line + 1, aliases=False)
        tag = node.tag
        if tag not in _JSON_TAGS:
            if tag == _MERGE_TAG and isinstance(node, ScalarNode):
                node.tag = _STR_TAG  # a plain '<<' that is not a key is just text
            elif self.strict:
                raise _bad_tag(node)
        height = 1
        if isinstance(node, MappingNode):
            self.open.add(key)
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG and isinstance(key_node, ScalarNode):
                    self.count += 1
                    # merged fields are counted and checked; their lines stay the anchor's
                    height = max(height, 1 + self._walk(value_node, path, depth + 1, key_line, {}))
                    continue
                if not isinstance(key_node, ScalarNode):
                    self._walk(key_node, path, depth + 1, key_line, {})
                    height = max(height, 1 + self._walk(value_node, path, depth + 1, key_line, {}))
                    continue
                self.count += 1
                if key_node.tag not in _JSON_TAGS and self.strict:
                    raise _bad_tag(key_node)
                name = key_node.value
                if self.strict:
                    if name in first:
                        raise _duplicate(name, first[name], key_line)
                    first[name] = key_line
                child = (*path, name)
                lines[child] = key_line
                if lines is self._lines:
                    self.columns[child] = key_node.start_mark.column + 1
                height = max(height, 1 + self._walk(value_node, child, depth + 1, key_line, lines))
            self.open.discard(key)
        elif isinstance(node, SequenceNode):
            self.open.add(key)
            item_line = node.start_mark.line + 1
            for i, item in enumerate(node.value):
                height = max(height, 1 + self._walk(item, (*path, i), depth + 1, item_line, lines))
            self.open.discard(key)
        self.known[key] = (self.count - start, height)
        return height


class _FallbackError(Exception):
    """A node :func:`_construct` leaves to PyYAML's constructor (a merge key, another tag)."""


def _construct(loader: _GuardedLoader, root: yaml.Node) -> Any:
    """The Python data of a checked document, as PyYAML's safe constructor builds it.

    The document has passed the inspector, so every tag is one of JSON's: this builds the data
    in one recursive pass (depth bounded by the nesting limit), with the loader's own scalar
    constructors for null, booleans, integers and floats, and shares what an alias repeats as
    PyYAML does. It is about three times faster than the constructor's generic machinery, the
    largest part of loading a big file. A merge key (``<<``) or any other tag falls back to
    ``construct_document``.
    """
    scalars = {
        _TAG + "int": loader.construct_yaml_int,
        _TAG + "float": loader.construct_yaml_float,
        _TAG + "bool": loader.construct_yaml_bool,
        _TAG + "null": loader.construct_yaml_null,
    }
    seen: dict[int, Any] = {}

    def build(node: yaml.Node) -> Any:
        known = seen.get(id(node), seen)
        if known is not seen:  # an alias: the same object, as PyYAML shares it
            return known
        tag = node.tag
        if tag == _STR_TAG:
            out: Any = node.value
        elif isinstance(node, MappingNode):
            if tag != _TAG + "map":
                raise _FallbackError
            out = {}
            seen[id(node)] = out
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    raise _FallbackError
                out[build(key_node)] = build(value_node)
            return out
        elif isinstance(node, SequenceNode):
            if tag != _TAG + "seq":
                raise _FallbackError
            out = []
            seen[id(node)] = out
            out.extend(build(item) for item in node.value)
            return out
        else:
            make = scalars.get(tag)
            if make is None:
                raise _FallbackError
            out = make(node)
        seen[id(node)] = out
        return out

    try:
        return build(root)
    except _FallbackError:
        return loader.construct_document(root)


def _bad_tag(node: yaml.Node) -> InputRefused:
    tag = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
    return InputRefused(
        "IL013",
        f"YAML tag {quote(tag)} has no JSON form; Kubernetes resources are JSON",
        "remove the tag and write the value as a string, number, boolean, null, list or map "
        "(for !!binary data: a base64 string)",
        node.start_mark.line + 1,
    )


def _duplicate(name: str, first: int, again: int) -> InputRefused:
    return InputRefused(
        "IL014",
        f"key {quote(name)} appears twice in one mapping (lines {first} and {again}); "
        "kubectl rejects such a document, and a YAML loader would silently keep the last",
        "remove one of them, or merge them into one",
        again,
    )


def _list_items(node: yaml.Node) -> list[yaml.Node] | None:
    """The item nodes of a ``kind: *List`` document, else None."""
    if not isinstance(node, MappingNode):
        return None
    kind = items = None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode):
            if key_node.value == "kind" and isinstance(value_node, ScalarNode):
                kind = value_node.value
            elif key_node.value == "items" and isinstance(value_node, SequenceNode):
                items = value_node.value
    return items if isinstance(kind, str) and kind.endswith("List") else None


def _check_document_size(node: yaml.Node, text: str, index: int) -> None:
    """Refuse a document (or an item of a List document) larger than the limit."""
    limit = limits.DOCUMENT_BYTES
    items = _list_items(node)
    for i, part in enumerate([node] if items is None else items):
        start, end = part.start_mark.index, part.end_mark.index
        size = end - start  # characters: a lower bound of the UTF-8 size
        if 4 * size > limit and size <= limit:
            size = len(text[start:end].encode("utf-8", "surrogatepass"))
        if size > limit:
            what = f"document {index + 1}" if items is None else f"item {i} of the List"
            raise InputRefused(
                "IL009",
                f"{what} is {size:,} bytes, more than the limit of {limit:,} bytes per resource",
                "split it; the Kubernetes API server would refuse it anyway (3 MiB per request); "
                "to lint it all the same set ISTIOLAB_MAX_DOCUMENT_BYTES",
                _node_line(part),
            )


def _text_too_large(name: str, size: int | str) -> InputRefused:
    return InputRefused(
        "IL008",
        f"{name} is {size} bytes, more than the limit of {limits.FILE_BYTES:,} bytes per input",
        "split it into several files, or set ISTIOLAB_MAX_FILE_BYTES to raise the limit",
        fatal=True,
    )


def loads(text: str, file: str | None = None) -> list[RawDocument]:
    """Parse every document of a YAML (or JSON) text.

    Nothing raises: a syntax error, and input refused by a limit of :mod:`istiolab.limits` or by
    a rule (tags with no JSON form, duplicate keys), become :class:`RawDocument` entries with
    ``error`` (and ``code``) set, which the caller reports as findings. A refused document is
    skipped and the next one is read; after a syntax error, or when the node count or nesting
    limit stopped the composer, the rest of the text is given up.

    Args:
        text: YAML text, possibly with several ``---`` documents.
        file: Name recorded for findings.

    Returns:
        The documents, empty ones skipped. ``List`` kinds are flattened into their items.
    """
    if len(text) > limits.FILE_BYTES:
        return [_text_too_large(file or "the text", f"{len(text):,}").document(file, 0)]
    docs: list[RawDocument] = []
    try:
        loader = _GuardedLoader(text)
    except UnicodeEncodeError as err:  # lone surrogates (e.g. from surrogateescape decoding)
        return [_not_unicode(text, err, file).document(file, 0)]
    inspector = _Inspector(strict=True)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guards this
                break
            try:
                _check_document_size(node, text, index)
                lines = inspector.document(node)
            except InputRefused as err:
                docs.append(err.document(file, index))
                if err.fatal:
                    break
                index += 1
                continue
            data = _construct(loader, node)
            if data is not None:
                docs.extend(
                    _flatten(
                        RawDocument(
                            data,
                            file,
                            index,
                            node.start_mark.line + 1,
                            lines,
                            columns=inspector.columns,
                        )
                    )
                )
            index += 1
    except InputRefused as err:
        docs.append(err.document(file, index))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        message = _yaml_message(err)
        if "maximum nesting depth" in message:  # libyaml's own limit (1000 levels)
            docs.append(_too_deep(line, aliases=False).document(file, index))
        else:
            docs.append(RawDocument(None, file, index, line, {}, error=message))
    finally:
        loader.dispose()
    if docs and docs[-1].error is not None:
        # libyaml can put the end-of-stream mark one line past the text; point at a real line.
        last = len(_YAML_BREAK.findall(text)) + 1
        if docs[-1].line > last:
            docs[-1] = dataclasses.replace(docs[-1], line=last)
    return docs


def _not_unicode(text: str, err: UnicodeEncodeError, file: str | None) -> InputRefused:
    line = len(_YAML_BREAK.findall(text, 0, err.start)) + 1
    return InputRefused(
        "IL012",
        f"{file or 'the text'} is not valid Unicode: character {err.start} "
        f"({text[err.start]!r}) is a lone surrogate",
        "save the file as UTF-8",
        line,
    )


def _yaml_message(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    parts = [p for p in (context, problem) if p]
    text = "; ".join(parts) if parts else (str(err).splitlines() or [type(err).__name__])[0]
    return truncate(text, limits.MESSAGE_CHARS)


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
            cols = {k[2:]: v for k, v in doc.columns.items() if k[:2] == prefix}
            line = doc.lines.get(prefix, doc.line)
            yield RawDocument(item, doc.file, doc.index, line, sub, columns=cols)
    else:
        yield doc


# -- files, directories and standard input ---------------------------------------------------


def _cannot_read(name: str, err: OSError) -> InputRefused:
    reason = err.strerror or type(err).__name__
    return InputRefused(
        "IL005", f"cannot read {name}: {reason}", "check the path and its permissions"
    )


def _file_type(mode: int) -> str | None:
    """What a special file is, or None for a regular file."""
    for test, what in (
        (stat.S_ISREG, None),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return what
    return "special file"


def _special(name: str, what: str) -> InputRefused:
    return InputRefused(
        "IL007",
        f"{name} is a {what}, not a regular file",
        "give regular files or directories; to read a pipe, use '-' (standard input)",
    )


def _expand(paths: Iterable[str | Path]) -> Iterator[tuple[str, Path | None, InputRefused | None]]:
    """``(name, path, None)`` for each input, ``(name, None, refusal)`` for what cannot be read.

    Directories are walked recursively in sorted order, symbolic links to directories are not
    followed (as ``Path.rglob`` does), and a directory that cannot be listed is a refusal.
    """
    for p in paths:
        if str(p) == "-":
            yield "<stdin>", None, None
            continue
        path = Path(p)
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            is_dir = False  # reported when the file is read
        if not is_dir:
            yield str(path), path, None
            continue
        for child, err in _walk_dir(path):
            yield str(child), (None if err else child), err


def _walk_dir(root: Path) -> list[tuple[Path, InputRefused | None]]:
    """The YAML files under *root* and the directories that cannot be listed, sorted."""
    found: list[tuple[Path, InputRefused | None]] = []

    def unreadable(err: OSError) -> None:
        where = Path(err.filename) if err.filename else root
        found.append((where, _cannot_read(f"directory {where}", err)))

    for dirpath, _dirnames, filenames in os.walk(root, onerror=unreadable):
        for f in filenames:
            if os.path.splitext(f)[1].lower() in YAML_SUFFIXES:
                found.append((Path(dirpath, f), None))
    return sorted(found, key=lambda item: item[0])


def iter_yaml_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, Path | None]]:
    """Expand files and directories (recursively, ``*.yaml``/``*.yml``/``*.json``) in order.

    ``-`` means standard input and yields ``("<stdin>", None)``. Directories that cannot be
    listed are left out; :func:`load_paths` reports them.
    """
    for name, path, err in _expand(paths):
        if err is None:
            yield name, path


def _read_at_most(stream: BinaryIO | int, limit: int) -> bytes:
    """Up to *limit* bytes from a binary stream or a file descriptor."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        if isinstance(stream, int):
            chunk = os.read(stream, min(left, _READ_CHUNK))
        else:
            chunk = stream.read(min(left, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # never wait for a writer, should a FIFO slip through
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _read_file(name: str, path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`~istiolab.limits.FILE_BYTES`.

    Raises:
        InputRefused: For anything else (IL005, IL007, IL008); special files are refused from
            ``stat``, before they are opened.
    """
    limit = limits.FILE_BYTES
    try:
        st = os.stat(path)
        what = _file_type(st.st_mode)
        if what is not None:
            raise _special(name, what)
        if st.st_size > limit:
            raise _text_too_large(name, f"{st.st_size:,}")
        fd = os.open(path, _OPEN_FLAGS)
        try:
            what = _file_type(os.fstat(fd).st_mode)  # it may have been replaced meanwhile
            if what is not None:
                raise _special(name, what)
            data = _read_at_most(fd, limit + 1)
        finally:
            os.close(fd)
    except OSError as err:
        raise _cannot_read(name, err) from None
    if len(data) > limit:
        raise _text_too_large(name, f"more than {limit:,}")
    return data


def _read_stdin(stdin: TextIO | None) -> str:
    """Standard input (or *stdin*) as text, at most :data:`~istiolab.limits.FILE_BYTES`."""
    stream = stdin or sys.stdin
    limit = limits.FILE_BYTES
    raw = getattr(stream, "buffer", None)
    try:
        if raw is not None:
            data = _read_at_most(raw, limit + 1)
        else:
            text = stream.read(limit + 1)
            if len(text) > limit:
                raise _text_too_large("<stdin>", f"more than {limit:,}")
            return text
    except UnicodeDecodeError as err:
        raise InputRefused(
            "IL012", f"<stdin> is not valid UTF-8: {err.reason}", _UTF8_FIX
        ) from None
    except OSError as err:
        raise _cannot_read("<stdin>", err) from None
    if len(data) > limit:
        raise _text_too_large("<stdin>", f"more than {limit:,}")
    return _decode(data, "<stdin>")


_UTF8_FIX = "save the input as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), or remove the bad bytes"


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = len(_YAML_BREAK.findall(data[: err.start].decode("utf-8"))) + 1
        bad = data[err.start : min(err.end, err.start + 8)].hex(" ")
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise InputRefused(
            "IL012",
            f"{name} is not valid UTF-8: byte offset {err.start} (line {line}) has "
            f"{bad}: {err.reason}" + (" (it starts like UTF-16)" if utf16 else ""),
            "convert it: iconv -f UTF-16 -t UTF-8" if utf16 else _UTF8_FIX,
            line,
        ) from None


def read_text(path: str | Path, name: str | None = None) -> str:
    """The text of one regular UTF-8 file, read as :func:`load_paths` reads every file.

    For other readers of user files (scenarios, case files), so that ``/dev/zero``, a FIFO or a
    huge file is refused there too.

    Args:
        path: The file.
        name: How findings and messages name it (default: *path*).

    Raises:
        InputRefused: IL005 unreadable, IL007 not a regular file, IL008 larger than
            :data:`~istiolab.limits.FILE_BYTES`, IL012 not UTF-8; ``str(err)`` names the file.
    """
    label = str(path) if name is None else name
    return _decode(_read_file(label, Path(path)), label)


def load_paths(paths: Iterable[str | Path], stdin: TextIO | None = None) -> list[RawDocument]:
    """Read files, directories and ``-`` (stdin) into raw documents.

    An input that cannot be read, or is refused by a limit, becomes a document with ``error``
    and ``code`` set: IL005 unreadable (a directory too), IL007 not a regular file, IL008 too
    large, IL012 not UTF-8; see :func:`loads` for what is refused inside a file.
    """
    out: list[RawDocument] = []
    for name, path, refused in _expand(paths):
        try:
            if refused is not None:
                raise refused
            text = _read_stdin(stdin) if path is None else read_text(path, name)
        except InputRefused as err:
            out.append(err.document(name, 0))
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
    """Parse one YAML document safely into plain data (for small inputs such as case files).

    The limits of :mod:`istiolab.limits` on size, nodes and nesting apply; tags and duplicate
    keys are not checked.

    Raises:
        yaml.YAMLError: For a syntax error, or :class:`InputRefused` (a ``YAMLError`` too).
    """
    if len(text) > limits.FILE_BYTES:
        raise _text_too_large("the text", f"{len(text):,}")
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _Inspector(strict=False).document(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
